"""Member workflows: spawn, list, drive and tear down member panes (cli.md §4.5, tmux.md §4-9).

Keyword-only functions named ``member_<verb>``. Each takes ``tmux``: the ``broker.tmux``
module or a test double exposing the same functions. Database writes run inside
``transaction.atomic()``; tmux is touched only after the commit, so a slow pane never holds
the write lock. Warnings go through a ``warn(line)`` callable (the command's stderr).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from broker.clock import now
from broker.conf import raw_database_url
from broker.exceptions import CafleetError
from broker.ids import resolve_agent
from broker.member_hooks import member_env, remove_settings, settings_for
from broker.member_list import MemberRow, idle_seconds, member_list  # noqa: F401 - re-exported
from broker.member_target import Target, member_target
from broker.members_actions import (  # noqa: F401 - re-exported
    member_capture,
    member_exec,
    member_ping,
    member_send_input,
)
from broker.models import (
    Agent,
    AgentStatus,
    MemberEvent,
    MemberEventKind,
    Placement,
)
from broker.services import (
    check_not_reserved,
    require_active_agent,
    require_live_session,
)
from broker.spawn_prompt import (
    PromptError,
    backend_argv,
    build_prompt,
    check_template_widths,
)

# ------------------------------------------------------------------------------ constants
#: tmux.md §5 / §12.
DELETE_DEADLINE = 15.0
DELETE_POLL_INTERVAL = 0.5
DELETE_TAIL_LINES = 80

RECOVERY_HINT = (
    "Recovery: inspect with `cafleet member capture`, answer any prompt with "
    "`cafleet member send-input`, then re-run `cafleet member delete`. Or re-run with "
    "`--force` to skip the wait and kill the pane."
)


def no_warn(line: str) -> None:
    """The default ``warn``: warnings go nowhere."""


# ------------------------------------------------------------------------------ create
def member_preflight(
    *, name: str, coding_agent: str, tmux, environ=os.environ, which=shutil.which
) -> tuple[str, str, str]:
    """``member create`` steps 2-5 (nothing written): reserved name, tmux guard, backend
    binary, caller pane. Returns the caller's ``(tmux_session, window_id, pane_id)``."""
    check_not_reserved(name)
    tmux.require_tmux(environ)
    if not which(coding_agent):
        raise CafleetError(f"binary {coding_agent} not found on PATH")
    return tmux.require_caller_pane(environ)


def _register(
    *,
    session_id: str,
    director_ref: str,
    name: str,
    description: str,
    coding_agent: str,
    caller: tuple[str, str, str],
) -> tuple[Agent, Placement]:
    """Step 6: the member and its pending placement, one transaction."""
    prefix = "register failed: "
    require_live_session(session_id, prefix=prefix)
    director_id = resolve_agent(session_id, director_ref)
    director = require_active_agent(
        session_id,
        director_id,
        error=f"{prefix}Director agent '{director_id}' not found or not active "
        f"in session '{session_id}'.",
    )
    if director.is_administrator:
        raise CafleetError(f"{prefix}Administrator cannot be a director")
    stamp = now()
    with transaction.atomic():
        agent = Agent.objects.enroll(
            session_id=session_id, name=name, description=description, stamp=stamp
        )
        placement = Placement.place(
            agent,
            director_id=director_id,
            caller=caller,
            pane_id=None,
            coding_agent=coding_agent,
            stamp=stamp,
        )
        MemberEvent.objects.create(
            agent=agent,
            director_agent_id=director_id,
            event=MemberEventKind.CREATED,
            at=stamp,
            coding_agent=coding_agent,
        )
    return agent, placement


def _record_pane(agent_id: str, pane: str) -> bool:
    """Step 9: store the pane id; False when the placement row has vanished."""
    with transaction.atomic():
        if not Placement.objects.filter(agent_id=agent_id).update(tmux_pane_id=pane):
            return False
        MemberEvent.objects.filter(agent_id=agent_id, event=MemberEventKind.CREATED).update(
            tmux_pane_id=pane
        )
        return True


def _rollback(agent: Agent, session_id: str, warn) -> None:
    """Deregister a half-created member (its placement goes with it).

    A rollback that fails leaves an orphan; that is reported, never raised, so the
    original failure stays the command's error.
    """
    remove_settings(agent.agent_id)
    try:
        agent.deregister(note="rolled back")
    except Exception as exc:  # any failure here only warns
        if _already_gone(agent.agent_id):
            return  # deregistered by someone else meanwhile: nothing is orphaned
        cause = " ".join(str(exc).split()) or type(exc).__name__
        warn(
            f"WARNING: rollback deregister failed — agent {agent.agent_id} is orphaned in the "
            f"registry. Run `cafleet --session-id {session_id} agent deregister --agent-id "
            f"{agent.agent_id}` manually to clean up. Cause: {cause}"
        )


def _already_gone(agent_id: str) -> bool:
    try:
        return not Agent.objects.filter(agent_id=agent_id, status=AgentStatus.ACTIVE).exists()
    except Exception:  # the database itself failing: report the orphan
        return False


def member_create(
    *,
    session_id: str,
    director_ref: str,
    name: str,
    description: str,
    coding_agent: str,
    prompt=(),
    caller: tuple[str, str, str],
    tmux,
    environ=os.environ,
    warn=no_warn,
) -> tuple[Agent, Placement]:
    """cli.md §4.5.1 steps 6-11. ``caller`` comes from :func:`member_preflight`.

    An absurd format width in a custom prompt is refused before anything is written. Once
    the member is registered, every failure rolls the registration back — an unexpected
    exception too (reported as ``member create failed: ...``), and Ctrl-C (re-raised after
    the rollback) — so no orphan member is ever left behind.
    """
    try:
        check_template_widths(prompt)
    except PromptError as exc:
        raise CafleetError(f"prompt resolution failed: {exc}") from None
    agent, placement = _register(
        session_id=session_id,
        director_ref=director_ref,
        name=name,
        description=description,
        coding_agent=coding_agent,
        caller=caller,
    )
    done = f"Rolled back registration of {agent.agent_id}."

    def fail(message: str):
        _rollback(agent, session_id, warn)
        return _RolledBack(f"{message} {done}")

    try:
        _spawn_registered(
            agent,
            placement,
            prompt=prompt,
            caller=caller,
            tmux=tmux,
            environ=environ,
            warn=warn,
            fail=fail,
        )
    except _RolledBack:
        raise
    except BaseException as exc:
        _rollback(agent, session_id, warn)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C and friends: rolled back, then passed on unchanged
        cause = " ".join(str(exc).split())
        cause = f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__
        raise CafleetError(f"member create failed: {cause}. {done}") from None
    return agent, placement


class _RolledBack(CafleetError):
    """A ``member create`` failure whose registration has already been rolled back."""


def _spawn_registered(agent, placement, *, prompt, caller, tmux, environ, warn, fail) -> None:
    """Steps 7-10 for a registered member; ``fail(message)`` rolls back and returns the
    error to raise."""
    session_id = agent.session_id
    coding_agent = placement.coding_agent
    name = agent.name

    try:
        text = build_prompt(
            prompt,
            session_id=session_id,
            agent_id=agent.agent_id,
            director_agent_id=placement.director_agent_id,
        )
    except PromptError as exc:
        raise fail(f"prompt resolution failed: {exc}") from None

    window_id = caller[1]
    argv = backend_argv(coding_agent, name, text, settings_for(agent, coding_agent, environ))
    try:
        pane = tmux.split_window(
            window_id, argv, raw_database_url(environ), env=member_env(agent, environ)
        )
        if not pane:
            raise tmux.TmuxError("split-window printed no pane id")
    except Exception as exc:  # every spawn failure rolls back
        raise fail(f"tmux split-window failed: {exc}.") from None

    try:
        recorded = _record_pane(agent.agent_id, pane)
    except Exception as exc:
        _send_exit_quietly(tmux, pane)
        raise fail(f"placement update failed: {exc}.") from None
    if not recorded:
        _send_exit_quietly(tmux, pane)
        raise fail("placement row vanished before pane-id patch.")
    placement.tmux_pane_id = pane

    _select_layout(tmux, window_id, warn)


def _send_exit_quietly(tmux, pane: str) -> None:
    try:
        tmux.send_exit(pane)
    except Exception:  # tmux.md §4.4 step 4: errors ignored
        pass


def _select_layout(tmux, window_id: str, warn) -> None:
    try:
        tmux.select_layout(window_id)
    except Exception as exc:  # a layout failure only warns
        warn(f"Warning: select-layout failed: {exc}")


# ------------------------------------------------------------------------------ delete
class DeleteTimeout(CafleetError):
    """The pane did not close after ``/exit``: exit 2 without a usage banner."""

    usage = False


def _timeout_error(member_id: str, pane: str, tail: str) -> DeleteTimeout:
    lines = [
        f"pane {pane} did not close within {DELETE_DEADLINE}s after /exit.",
        f"--- pane {pane} tail (last {DELETE_TAIL_LINES} lines) ---",
    ]
    if tail:
        lines.append(tail)
    lines += ["---", RECOVERY_HINT]
    return DeleteTimeout(
        "\n".join(lines),
        exit_code=2,
        stdout_json={"agent_id": member_id, "pane_status": f"{pane} (timeout)"},
    )


@dataclass(frozen=True)
class ExitWait:
    """How ``member delete`` waits for a pane to close after ``/exit``: ``sleep`` and
    ``clock`` (injectable for tests), and the deadline in seconds."""

    sleep: Callable[[float], object]
    clock: Callable[[], float]
    deadline: float


def exit_wait(sleep=None, clock=None, deadline: float | None = None) -> ExitWait:
    """An :class:`ExitWait`; each part left out is ``time.sleep``, ``time.monotonic`` and
    :data:`DELETE_DEADLINE` (read at the call)."""
    return ExitWait(
        sleep or time.sleep,
        clock or time.monotonic,
        DELETE_DEADLINE if deadline is None else deadline,
    )


def member_delete(
    *,
    session_id: str,
    agent_ref: str,
    member_ref: str,
    force: bool,
    tmux,
    warn=no_warn,
    sleep=None,
    clock=None,
    deadline: float | None = None,
) -> tuple[str, str, str]:
    """cli.md §4.5.2. Returns ``(member_id, header, pane_status)``.

    Order is always: exit or kill, then deregister, then rebalance the layout. ``sleep``,
    ``clock`` and ``deadline`` default to ``time.sleep``, ``time.monotonic`` and 15.0 s.
    """
    target = member_target(
        session_id=session_id,
        agent_ref=agent_ref,
        member_ref=member_ref,
        action=None,
        deleting=True,
    )
    wait = exit_wait(sleep, clock, deadline)
    return close_member(target, force=force, tmux=tmux, warn=warn, wait=wait)


def close_member(
    target: Target, *, force: bool, tmux, warn, wait: ExitWait
) -> tuple[str, str, str]:
    """The ``member delete`` protocol for a checked target (cli.md §4.5.2): exit or kill,
    then deregister, then rebalance the layout. Returns ``(member_id, header, pane_status)``."""
    member_id, pane = target.member_id, target.pane
    if not pane:
        _deregister(target.member, "(pending — no pane)")
        return member_id, "Member deleted.", "(pending — no pane)"

    if force:
        try:
            tmux.kill_pane(pane)
        except Exception as exc:
            raise CafleetError(
                f"kill_pane failed for pane {pane}: {exc}. The tmux server may "
                "be unreachable. Verify with 'cafleet doctor', then re-run the "
                "command."
            ) from None
        header, status = "Member deleted (--force).", f"{pane} (killed)"
    else:
        try:
            tmux.send_exit(pane)
        except Exception as exc:
            raise CafleetError(
                f"send_exit failed for pane {pane}: {exc}. The tmux server may "
                "be unreachable. Verify with 'cafleet doctor', then re-run "
                "'cafleet member delete', or use '--force' to kill the pane "
                "directly."
            ) from None
        if not _wait_gone(tmux, pane, wait):
            raise _timeout_error(member_id, pane, _tail(tmux, pane, warn))
        header, status = "Member deleted.", f"{pane} (closed)"

    _deregister(target.member, status)
    _select_layout(tmux, target.placement.tmux_window_id, warn)
    return member_id, header, status


def _wait_gone(tmux, pane: str, wait: ExitWait) -> bool:
    """Check ``list-panes`` every 0.5 s until the pane is absent or the deadline passes."""
    end = wait.clock() + wait.deadline
    while True:
        try:
            alive = pane in tmux.list_pane_ids()
        except Exception as exc:
            raise CafleetError(
                f"tmux call failed while waiting for pane {pane} to close: {exc}"
            ) from None
        if not alive:
            return True
        remaining = end - wait.clock()
        if remaining <= 0:
            return False
        wait.sleep(min(DELETE_POLL_INTERVAL, remaining))


def _tail(tmux, pane: str, warn) -> str:
    try:
        return tmux.capture(pane, DELETE_TAIL_LINES, ansi=False).rstrip("\n")
    except Exception as exc:
        warn(
            f"Warning: capture_pane failed during timeout handling: {exc}. The timeout error "
            "and recovery hint still print."
        )
        return ""


def _deregister(member: Agent, note: str) -> None:
    remove_settings(member.agent_id)
    try:
        member.deregister(note=note)
    except Exception as exc:
        raise CafleetError(f"deregister failed: {exc}") from None
