"""Member pane actions: capture, send-input, exec and ping (cli.md §4.5.4-7, tmux.md).

Keyword-only functions named ``member_<verb>``, beside the spawn and teardown workflows of
``broker.members`` (which re-exports them). Each resolves its target with
``broker.member_target`` and takes ``tmux``: the ``broker.tmux`` module or a test double
exposing the same functions. Nothing here writes to the database.
"""

from __future__ import annotations

from broker.exceptions import CafleetError
from broker.member_target import Target, member_target


def member_capture(
    *, session_id: str, agent_ref: str, member_ref: str, lines: int, ansi: bool, tmux
) -> tuple[Target, str]:
    """cli.md §4.5.4: the pane's last ``lines`` lines, cleaned unless ``ansi``."""
    target = member_target(
        session_id=session_id, agent_ref=agent_ref, member_ref=member_ref, action="capture"
    )
    try:
        content = tmux.capture(target.pane, lines, ansi=ansi)
    except Exception as exc:
        raise CafleetError(f"capture failed: {exc}") from None
    return target, content


def _not_ready(target: Target, result) -> CafleetError:
    """``pane %5 is not ready: waiting for permission`` (nothing was typed)."""
    words = getattr(result, "reason_text", "") or "not ready"
    return CafleetError(f"pane {target.pane} is not ready: {words}")


def _check_reported_state(target: Target) -> None:
    """A fresh hook-reported permission dialog or exit refuses the keystroke before any
    screen read (docs/hooks.md, "Freshness"); otherwise the pane gate decides."""
    from broker.agentstate import routes
    from broker.delivery import reason_words

    reason = routes([target.member_id]).get(target.member_id)
    if reason in ("permission_dialog", "agent_not_running"):
        words = reason_words(reason)
        raise CafleetError(f"pane {target.pane} is not ready: {words} (reported by its hooks)")


def _coding_agent(target: Target) -> str:
    return target.placement.coding_agent or "claude"


def member_send_input(
    *,
    session_id: str,
    agent_ref: str,
    member_ref: str,
    choice: int | None = None,
    freetext: str | None = None,
    tmux,
) -> Target:
    """cli.md §4.5.5 (inputs already validated): a menu digit, or ``4`` + literal text.

    An explicit Director action: no screen gate, but the pane's foreground process must be
    the member's coding agent (never a shell), else ``pane <p> is not ready: <reason>``.
    """
    target = member_target(session_id=session_id, agent_ref=agent_ref, member_ref=member_ref)
    gate = tmux.agent_gate(target.pane, _coding_agent(target))
    if gate.status != "delivered":
        if gate.reason == "tmux_error":
            raise CafleetError(f"send failed: could not inspect pane {target.pane}")
        raise _not_ready(target, gate)
    try:
        if freetext is None:
            tmux.send_choice(target.pane, choice)
        else:
            tmux.send_freetext(target.pane, freetext, coding_agent=_coding_agent(target))
    except Exception as exc:
        raise CafleetError(f"send failed: {exc}") from None
    return target


def member_exec(*, session_id: str, agent_ref: str, member_ref: str, command: str, tmux) -> Target:
    """cli.md §4.5.6 (command already validated and stripped): ``! <command>`` + Enter,
    behind the pane gate (docs/delivery.md); a refused gate types nothing."""
    target = member_target(session_id=session_id, agent_ref=agent_ref, member_ref=member_ref)
    _check_reported_state(target)
    try:
        result = tmux.send_exec(target.pane, command, coding_agent=_coding_agent(target))
    except Exception as exc:
        raise CafleetError(f"send failed: {exc}") from None
    if result.status == "held" or result.reason == "pane_gone":
        raise _not_ready(target, result)
    if not result:
        raise CafleetError(f"send failed: tmux could not type into pane {target.pane}.")
    return target


def member_ping(*, session_id: str, agent_ref: str, member_ref: str, tmux) -> Target:
    """cli.md §4.5.7: type the member's poll command into its pane, behind the pane gate."""
    target = member_target(session_id=session_id, agent_ref=agent_ref, member_ref=member_ref)
    _check_reported_state(target)
    try:
        delivered = tmux.poll_trigger(
            target.pane, session_id, target.member_id, coding_agent=_coding_agent(target)
        )
    except Exception as exc:
        raise CafleetError(f"send failed: {exc}") from None
    if delivered.status == "held" or delivered.reason == "pane_gone":
        raise _not_ready(target, delivered)
    if not delivered:
        raise CafleetError(
            "send failed: tmux send-keys did not deliver the poll-trigger "
            f"keystroke to pane {target.pane}."
        )
    return target
