"""The agent's own reported state and the choice of delivery channel (docs/hooks.md).

``cafleet hook`` records what an agent's hooks report (``agent_states``): working,
waiting for permission, idle, gone, each with the time it began (``since``) and the time it
was last confirmed (``reported_at``). The delivery path asks :func:`routes` before it types
a keystroke preview:

1. ``gone`` reported less than ``STATE_FRESH`` seconds ago: held, ``agent_not_running``
   (no screen read);
2. a live background waiter (``cafleet hook wait`` holds its lock): held, ``hook_wait``:
   the waiter wakes the agent with the message, no keystroke;
3. ``waiting_permission`` reported less than ``STATE_FRESH`` seconds ago: held,
   ``permission_dialog`` (no screen read); the message goes in by hook after the dialog;
4. ``working`` or ``waiting_permission`` reported less than ``HOOK_ACTIVE`` seconds ago:
   held, ``hook``: the next PostToolUse / UserPromptSubmit hands it over;
5. anything else (no hooks, idle without a waiter, a stale state): keystrokes, gated.

Cases 2-4 last at most ``CAFLEET_HOOK_GRACE`` seconds from the moment the delivery was
first held; after that the keystroke preview (gated by the screen) is the fallback. A state
is **fresh** for the gate while it is younger than ``STATE_FRESH``; after that the screen
decides.
"""

from __future__ import annotations

from datetime import UTC, datetime

from broker import conf
from broker.hook_files import waiter_alive
from broker.hook_store import GONE, IDLE, STATE_WORDS, WAITING, WORKING, age
from broker.models import AgentState

#: A reported permission dialog or exit is trusted over the screen for this long.
STATE_FRESH = 10.0
#: A working agent's hooks are expected to run again within this long.
HOOK_ACTIVE = 120.0
#: Reasons that keep a delivery for a hook channel (subject to the grace period).
HOOK_REASONS = frozenset({"hook", "hook_wait", "permission_dialog"})


def route(state: str | None, reported_age: float, waiter: bool) -> str | None:
    """The hold reason for a recipient (see the module text), or None for keystrokes."""
    if state == GONE and reported_age < STATE_FRESH:
        return "agent_not_running"
    if waiter:
        return "hook_wait"
    if state == WAITING and reported_age < STATE_FRESH:
        return "permission_dialog"
    if state in (WORKING, WAITING) and reported_age < HOOK_ACTIVE:
        return "hook"
    return None


def _db_path() -> str | None:
    try:
        return conf.database_path()
    except conf.DatabaseURLError:
        return None


def routes(agent_ids) -> dict[str, str]:
    """``{agent_id: hold reason}`` for the recipients that must not get keystrokes now."""
    ids = set(agent_ids)
    if not ids:
        return {}
    states = {
        s.agent_id: s
        for s in AgentState.objects.filter(agent_id__in=ids).only(
            "agent_id", "state", "reported_at"
        )
    }
    db = _db_path()
    at = datetime.now(UTC)
    out = {}
    for aid in ids:
        row = states.get(aid)
        if row is None:
            continue  # no hooks ever ran for this agent: keystrokes
        waiter = db is not None and row.state == IDLE and waiter_alive(db, aid)
        reason = route(row.state, age(row.reported_at, at), waiter)
        if reason:
            out[aid] = reason
    return out


def grace_over(held_since: str | None, environ=None) -> bool:
    grace = conf.hook_grace() if environ is None else conf.hook_grace(environ)
    return held_since is not None and age(held_since) >= grace


def describe(row: AgentState | None, at: datetime | None = None) -> tuple[str | None, int | None]:
    """(state in words, age in whole seconds) for output; (None, None) without hooks."""
    if row is None:
        return None, None
    seconds = age(row.since, at)
    return STATE_WORDS.get(row.state, row.state), (
        int(seconds) if seconds != float("inf") else None
    )


def states_of(agent_ids) -> dict[str, AgentState]:
    return {s.agent_id: s for s in AgentState.objects.filter(agent_id__in=list(agent_ids))}
