"""Member workflows: spawn, list, drive and tear down member panes (cli.md §4.5, tmux.md §4-9).

Keyword-only functions named ``member_<verb>``. Each takes ``tmux``: the ``broker.tmux``
module or a test double exposing the same functions. Database writes run inside
``transaction.atomic()``; tmux is touched only after the commit, so a slow pane never holds
the write lock. Warnings go through a ``warn(line)`` callable (the command's stderr).
"""

from __future__ import annotations

import os
import re
import shutil
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from broker.clock import new_id, now
from broker.conf import raw_database_url
from broker.exceptions import CafleetError
from broker.ids import resolve_agent
from broker.models import (
    Agent,
    AgentStatus,
    DeliveryState,
    MemberEvent,
    MemberEventKind,
    Placement,
    Task,
    TaskState,
    TaskType,
)
from broker.output import compact_json
from broker.services import (
    PREFIX_HINT,
    check_not_reserved,
    is_short_prefix,
    require_active_agent,
    require_live_session,
)

# ------------------------------------------------------------------------------ constants
DEFAULT_PROMPT = (
    "Member of cafleet session {session_id} (agent={agent_id}, "
    "director={director_agent_id}).\n"
    "Load skill 'cafleet'. Bash auto-approves. Poll: cafleet --session-id {session_id} "
    "message poll --agent-id {agent_id}"
)
_BRACES_HINT = "Double literal braces ({{, }}) to keep them as text."
_PLACEHOLDERS = "{session_id}, {agent_id}, {director_agent_id}"
#: Largest width or precision a custom prompt's replacement field may ask for. A field such
#: as ``{agent_id:>99999999999}`` would otherwise try to build a string of that many
#: characters (MemoryError) — the whole prompt must fit one command-line argument anyway.
MAX_FORMAT_WIDTH = 10000
#: Bound on a custom prompt's length once its widths are applied (many fields of width
#: 10000 each would still need gigabytes); larger is refused before registration.
MAX_PROMPT_CHARS = 131072

#: tmux.md §5 / §12.
DELETE_DEADLINE = 15.0
DELETE_POLL_INTERVAL = 0.5
DELETE_TAIL_LINES = 80

RECOVERY_HINT = (
    "Recovery: inspect with `cafleet member capture`, answer any prompt with "
    "`cafleet member send-input`, then re-run `cafleet member delete`. Or re-run with "
    "`--force` to skip the wait and kill the pane."
)


def backend_argv(coding_agent: str, name: str, prompt: str) -> list[str]:
    """The member's program and arguments (tmux.md §4.2); the prompt is one argument, last."""
    if coding_agent == "codex":
        return ["codex", "--ask-for-approval", "never", "--sandbox", "workspace-write", prompt]
    return ["claude", "--permission-mode", "dontAsk", "--name", name, prompt]


class PromptError(Exception):
    """A custom prompt that cannot be resolved; ``str(exc)`` is the contract's reason."""


def build_prompt(words, *, session_id: str, agent_id: str, director_agent_id: str) -> str:
    """Resolve the spawn prompt (tmux.md §4.1) with Python format-string rules.

    ``words`` are the words after ``--``, joined with single spaces; none (or only empty
    strings) selects the two-line default template.
    """
    words = tuple(words or ())
    template = " ".join(words) if any(words) else DEFAULT_PROMPT
    try:
        return template.format(
            session_id=session_id, agent_id=agent_id, director_agent_id=director_agent_id
        )
    except KeyError as exc:
        name = exc.args[0] if exc.args else ""
        raise PromptError(
            f"Unknown placeholder '{name}' in custom prompt. Supported "
            f"placeholders: {_PLACEHOLDERS}. {_BRACES_HINT}"
        ) from None
    except (IndexError, ValueError, AttributeError, TypeError) as exc:
        raise PromptError(f"Malformed custom prompt: {exc}. {_BRACES_HINT}") from None


def check_template_widths(words) -> None:
    """Refuse a custom prompt whose widths or precisions exceed :data:`MAX_FORMAT_WIDTH`.

    Runs before anything is registered. Only the sizes are checked here: any other template
    error is left to :func:`build_prompt` (which runs after registration, cli.md §4.5.1
    step 7). Every number in a format spec counts, nested fields included.
    """
    words = tuple(words or ())
    if not any(words):
        return
    template = " ".join(words)
    pending = [template]
    padding = 0
    while pending:
        try:
            fields = list(string.Formatter().parse(pending.pop()))
        except ValueError:
            return  # malformed: build_prompt reports it
        for _literal, _name, spec, _conversion in fields:
            if not spec:
                continue
            for number in re.findall(r"\d+", spec):
                if len(number.lstrip("0")) > 5 or int(number) > MAX_FORMAT_WIDTH:
                    raise PromptError(
                        f"Malformed custom prompt: format width or precision {number} is "
                        f"larger than {MAX_FORMAT_WIDTH}. {_BRACES_HINT}"
                    )
                padding += int(number)
            if "{" in spec:
                pending.append(spec)
    if len(template) + padding > MAX_PROMPT_CHARS:
        raise PromptError(
            f"Malformed custom prompt: its format widths would make it longer than "
            f"{MAX_PROMPT_CHARS} characters. {_BRACES_HINT}"
        )


def _no_warn(line: str) -> None:
    pass


# ------------------------------------------------------------------------------ target checks
@dataclass
class Target:
    """A member that passed the §4.5 step-4 checks."""

    member: Agent
    placement: Placement

    @property
    def member_id(self) -> str:
        return self.member.agent_id

    @property
    def pane(self) -> str | None:
        return self.placement.tmux_pane_id


def member_target(
    *,
    session_id: str,
    agent_ref: str,
    member_ref: str,
    action: str | None = "send",
    deleting: bool = False,
) -> Target:
    """The shared target checks of cli.md §4.5 step 4, in order, then the acting agent.

    After the same-Director check, ``--agent-id`` must still be active: a deregistered
    Director cannot drive, read or delete its former members (issue 11 item 9).

    ``action`` (``capture`` or ``send``) names what a pending placement cannot do; ``None``
    (``member delete``) accepts a pending placement. ``deleting`` selects ``member delete``'s
    wording for a missing placement.
    """
    director_id = resolve_agent(session_id, agent_ref)
    member_id = resolve_agent(session_id, member_ref)
    member = require_active_agent(session_id, member_id)  # unknown session named first
    placement = Placement.objects.filter(agent_id=member_id).first()
    if placement is None:
        if deleting:
            raise CafleetError(
                f"agent {member_id} has no placement; use `cafleet agent deregister` instead"
            )
        raise CafleetError(
            f"agent {member_id} has no placement row; it was not spawned via "
            "`cafleet member create`."
        )
    if placement.director_agent_id != director_id:
        if is_short_prefix(agent_ref):
            raise CafleetError(f"id prefix '{agent_ref}' is too short; {PREFIX_HINT}.")
        raise CafleetError(
            f"agent {member_id} is not a member of your team "
            f"(director_agent_id={placement.director_agent_id})."
        )
    if not Agent.objects.filter(
        agent_id=director_id, session_id=session_id, status=AgentStatus.ACTIVE
    ).exists():
        # A deregistered Director keeps its members' placements: it may not act on them.
        raise CafleetError(
            f"Director agent '{director_id}' not found or not active in session '{session_id}'."
        )
    if action is not None and not placement.tmux_pane_id:
        raise CafleetError(
            f"member {member_id} has no pane yet (pending placement) — nothing to {action}."
        )
    return Target(member=member, placement=placement)


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
    tmux_session, window_id, _pane = caller
    stamp = now()
    with transaction.atomic():
        agent = Agent.objects.create(
            agent_id=new_id(),
            session_id=session_id,
            name=name,
            description=description,
            registered_at=stamp,
            agent_card_json=compact_json({"name": name, "description": description, "skills": []}),
        )
        placement = Placement.objects.create(
            agent=agent,
            director_agent_id=director_id,
            tmux_session=tmux_session,
            tmux_window_id=window_id,
            tmux_pane_id=None,
            coding_agent=coding_agent,
            created_at=stamp,
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
    try:
        agent.deregister(note="rolled back")
    except Exception as exc:  # noqa: BLE001 - any failure here only warns
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
    except Exception:  # noqa: BLE001 - the database itself failing: report the orphan
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
    warn=_no_warn,
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
    argv = backend_argv(coding_agent, name, text)
    try:
        pane = tmux.split_window(window_id, argv, raw_database_url(environ))
        if not pane:
            raise tmux.TmuxError("split-window printed no pane id")
    except Exception as exc:  # noqa: BLE001 - every spawn failure rolls back
        raise fail(f"tmux split-window failed: {exc}.") from None

    try:
        recorded = _record_pane(agent.agent_id, pane)
    except Exception as exc:  # noqa: BLE001
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
    except Exception:  # noqa: BLE001, S110 - tmux.md §4.4 step 4: errors ignored
        pass


def _select_layout(tmux, window_id: str, warn) -> None:
    try:
        tmux.select_layout(window_id)
    except Exception as exc:  # noqa: BLE001 - a layout failure only warns
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


def member_delete(
    *,
    session_id: str,
    agent_ref: str,
    member_ref: str,
    force: bool,
    tmux,
    warn=_no_warn,
    sleep=None,
    clock=None,
    deadline: float | None = None,
) -> tuple[str, str, str]:
    """cli.md §4.5.2. Returns ``(member_id, header, pane_status)``.

    Order is always: exit or kill, then deregister, then rebalance the layout. ``sleep``,
    ``clock`` and ``deadline`` default to ``time.sleep``, ``time.monotonic`` and 15.0 s.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = DELETE_DEADLINE if deadline is None else deadline
    target = member_target(
        session_id=session_id,
        agent_ref=agent_ref,
        member_ref=member_ref,
        action=None,
        deleting=True,
    )
    return close_member(
        target, force=force, tmux=tmux, warn=warn, sleep=sleep, clock=clock, deadline=deadline
    )


def close_member(
    target: Target, *, force: bool, tmux, warn, sleep, clock, deadline: float
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
        except Exception as exc:  # noqa: BLE001
            raise CafleetError(
                f"kill_pane failed for pane {pane}: {exc}. The tmux server may "
                "be unreachable. Verify with 'cafleet doctor', then re-run the "
                "command."
            ) from None
        header, status = "Member deleted (--force).", f"{pane} (killed)"
    else:
        try:
            tmux.send_exit(pane)
        except Exception as exc:  # noqa: BLE001
            raise CafleetError(
                f"send_exit failed for pane {pane}: {exc}. The tmux server may "
                "be unreachable. Verify with 'cafleet doctor', then re-run "
                "'cafleet member delete', or use '--force' to kill the pane "
                "directly."
            ) from None
        if not _wait_gone(tmux, pane, sleep=sleep, clock=clock, deadline=deadline):
            raise _timeout_error(member_id, pane, _tail(tmux, pane, warn))
        header, status = "Member deleted.", f"{pane} (closed)"

    _deregister(target.member, status)
    _select_layout(tmux, target.placement.tmux_window_id, warn)
    return member_id, header, status


def _wait_gone(tmux, pane: str, *, sleep, clock, deadline: float) -> bool:
    """Check ``list-panes`` every 0.5 s until the pane is absent or the deadline passes."""
    end = clock() + deadline
    while True:
        try:
            alive = pane in tmux.list_pane_ids()
        except Exception as exc:  # noqa: BLE001
            raise CafleetError(
                f"tmux call failed while waiting for pane {pane} to close: {exc}"
            ) from None
        if not alive:
            return True
        remaining = end - clock()
        if remaining <= 0:
            return False
        sleep(min(DELETE_POLL_INTERVAL, remaining))


def _tail(tmux, pane: str, warn) -> str:
    try:
        return tmux.capture(pane, DELETE_TAIL_LINES, ansi=False).rstrip("\n")
    except Exception as exc:  # noqa: BLE001
        warn(
            f"Warning: capture_pane failed during timeout handling: {exc}. The timeout error "
            "and recovery hint still print."
        )
        return ""


def _deregister(member: Agent, note: str) -> None:
    try:
        member.deregister(note=note)
    except Exception as exc:  # noqa: BLE001
        raise CafleetError(f"deregister failed: {exc}") from None


# ------------------------------------------------------------------------------ list
@dataclass
class MemberRow:
    agent: Agent
    placement: Placement
    last_sent: str | None = None
    last_recv: str | None = None
    last_ack: str | None = None
    unread: int = 0
    idle: int | None = None
    held: int = 0


def _latest(queryset, outer: str, field: str):
    """``SELECT MAX(status_timestamp) ...`` of ``queryset`` correlated on ``field``."""
    grouped = queryset.filter(**{field: OuterRef(outer)}).order_by().values(field)
    return Subquery(grouped.annotate(v=Max("status_timestamp")).values("v")[:1])


def idle_seconds(last_sent: str | None, last_recv: str | None, at: datetime) -> int | None:
    """Whole seconds since the later of the two timestamps, never below 0 (data-model §7)."""
    stamps = [s for s in (last_sent, last_recv) if s]
    if not stamps:
        return None
    latest = datetime.fromisoformat(max(stamps))
    return max(0, int((at - latest).total_seconds() // 1))


def member_list(
    *, session_id: str, agent_ref: str, activity: bool = False, at: datetime | None = None
) -> list[MemberRow]:
    """Active members whose placement names ``agent_ref`` as Director (cli.md §4.5.3).

    No session gate (an unknown id lists nothing) and no tmux. With ``activity`` the
    data-model §7 values are computed in the same SQL query through correlated aggregate
    subqueries over the two task indexes; broadcast summary rows are ignored.
    """
    director_id = resolve_agent(session_id, agent_ref)
    qs = (
        Placement.objects.filter(
            director_agent_id=director_id,
            agent__session_id=session_id,
            agent__status=AgentStatus.ACTIVE,
        )
        .select_related("agent")
        .order_by("agent__registered_at", "agent_id")
    )
    if activity:
        deliveries = Task.objects.exclude(type=TaskType.BROADCAST_SUMMARY)
        received = (
            deliveries.filter(context_id=OuterRef("agent_id")).order_by().values("context_id")
        )
        qs = qs.annotate(
            a_last_sent=_latest(deliveries, "agent_id", "from_agent_id"),
            a_last_recv=_latest(deliveries, "agent_id", "context_id"),
            a_last_ack=_latest(
                deliveries.filter(status_state=TaskState.COMPLETED), "agent_id", "context_id"
            ),
            a_unread=Coalesce(
                Subquery(
                    received.filter(status_state=TaskState.INPUT_REQUIRED)
                    .annotate(n=Count("task_id"))
                    .values("n")[:1]
                ),
                0,
            ),
            # deliveries held by the pane gate (docs/delivery-states.md), unread tasks only
            a_held=Coalesce(
                Subquery(
                    received.filter(
                        status_state=TaskState.INPUT_REQUIRED, delivery__state=DeliveryState.HELD
                    )
                    .annotate(n=Count("task_id"))
                    .values("n")[:1]
                ),
                0,
            ),
        )
    rows = []
    moment = at or datetime.now(UTC)
    for placement in qs:
        row = MemberRow(agent=placement.agent, placement=placement)
        if activity:
            row.last_sent = placement.a_last_sent
            row.last_recv = placement.a_last_recv
            row.last_ack = placement.a_last_ack
            row.unread = int(placement.a_unread or 0)
            row.held = int(placement.a_held or 0)
            row.idle = idle_seconds(row.last_sent, row.last_recv, moment)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ pane actions
def member_capture(
    *, session_id: str, agent_ref: str, member_ref: str, lines: int, ansi: bool, tmux
) -> tuple[Target, str]:
    """cli.md §4.5.4: the pane's last ``lines`` lines, cleaned unless ``ansi``."""
    target = member_target(
        session_id=session_id, agent_ref=agent_ref, member_ref=member_ref, action="capture"
    )
    try:
        content = tmux.capture(target.pane, lines, ansi=ansi)
    except Exception as exc:  # noqa: BLE001
        raise CafleetError(f"capture failed: {exc}") from None
    return target, content


def _not_ready(target: Target, result) -> CafleetError:
    """``pane %5 is not ready: waiting for permission`` (nothing was typed)."""
    words = getattr(result, "reason_text", "") or "not ready"
    return CafleetError(f"pane {target.pane} is not ready: {words}")


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
            tmux.send_freetext(target.pane, freetext)
    except Exception as exc:  # noqa: BLE001
        raise CafleetError(f"send failed: {exc}") from None
    return target


def member_exec(*, session_id: str, agent_ref: str, member_ref: str, command: str, tmux) -> Target:
    """cli.md §4.5.6 (command already validated and stripped): ``! <command>`` + Enter,
    behind the pane gate (docs/delivery.md); a refused gate types nothing."""
    target = member_target(session_id=session_id, agent_ref=agent_ref, member_ref=member_ref)
    try:
        result = tmux.send_exec(target.pane, command, coding_agent=_coding_agent(target))
    except Exception as exc:  # noqa: BLE001
        raise CafleetError(f"send failed: {exc}") from None
    if result.status == "held" or result.reason == "pane_gone":
        raise _not_ready(target, result)
    if not result:
        raise CafleetError(f"send failed: tmux could not type into pane {target.pane}.")
    return target


def member_ping(*, session_id: str, agent_ref: str, member_ref: str, tmux) -> Target:
    """cli.md §4.5.7: type the member's poll command into its pane, behind the pane gate."""
    target = member_target(session_id=session_id, agent_ref=agent_ref, member_ref=member_ref)
    try:
        delivered = tmux.poll_trigger(
            target.pane, session_id, target.member_id, coding_agent=_coding_agent(target)
        )
    except Exception as exc:  # noqa: BLE001
        raise CafleetError(f"send failed: {exc}") from None
    if delivered.status == "held" or delivered.reason == "pane_gone":
        raise _not_ready(target, delivered)
    if not delivered:
        raise CafleetError(
            "send failed: tmux send-keys did not deliver the poll-trigger "
            f"keystroke to pane {target.pane}."
        )
    return target


# ------------------------------------------------------------------------------ session delete
def session_members(session_id: str) -> list[Target]:
    """Every active member of the session (an agent with a placement under a Director),
    newest first, so that a member that is itself a Director goes after its own members."""
    placements = (
        Placement.objects.filter(
            agent__session_id=session_id,
            agent__status=AgentStatus.ACTIVE,
            director_agent__isnull=False,
        )
        .select_related("agent")
        .order_by("-created_at", "-agent_id")
    )
    return [Target(member=p.agent, placement=p) for p in placements]


@dataclass
class Closed:
    """One member handled by ``session delete --close-members``."""

    target: Target
    status: str = ""  # ``<pane> (closed)``, ``(pending — no pane)``...
    error: CafleetError | None = None


def session_close_members(
    *, session_id: str, tmux, warn=_no_warn, sleep=None, clock=None, deadline=None
) -> list[Closed]:
    """``session delete --close-members``, first part: the ``member delete`` protocol for
    every live member of the session, each in turn. A member whose pane does not close is
    reported in its :class:`Closed` and the others are still closed; the caller deletes the
    session only when every member is gone. The tmux guard runs only when a pane exists."""
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = DELETE_DEADLINE if deadline is None else deadline
    targets = session_members(session_id)
    if any(t.pane for t in targets):
        tmux.require_tmux(command="session delete --close-members")
    results = []
    for target in targets:
        try:
            _, _, status = close_member(
                target,
                force=False,
                tmux=tmux,
                warn=warn,
                sleep=sleep,
                clock=clock,
                deadline=deadline,
            )
            results.append(Closed(target, status))
        except CafleetError as exc:
            results.append(Closed(target, f"{target.pane} (not closed)", exc))
    return results
