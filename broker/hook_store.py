"""The database side of ``cafleet hook``: plain ``sqlite3`` on the broker's tables, without
Django (docs/hooks.md). One read-only query finds the agent, its last recorded state and its
owed mail; the writes (claiming mail, recording a state) run in one short ``BEGIN
IMMEDIATE`` transaction. Every connection has a short busy timeout (``BUSY_TIMEOUT``).

Standard library only: this runs on every hook call (``broker.hook``).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager

from broker.hook_files import held_by_another

#: Busy timeout of every hook connection (seconds): a locked database is a logged no-op.
BUSY_TIMEOUT = 0.25
#: A recorded state is written again (same state) at most this often, so that its age
#: stays meaningful without a write on every tool call.
STATE_REFRESH = 5.0
#: At most this many messages go into one hook's text; the rest wait for the next hook.
MAX_PER_HOOK = 10

WORKING, WAITING, IDLE, GONE = "working", "waiting_permission", "idle", "gone"
STATE_WORDS = {
    WORKING: "working",
    WAITING: "waiting for permission",
    IDLE: "idle",
    GONE: "gone",
}


def connect(db_path: str, *, write: bool = False) -> sqlite3.Connection:
    """A connection with the contract's settings and a short busy timeout.

    Read-only (``mode=ro``) unless ``write``; never creates the file. Autocommit mode:
    writes open their own ``BEGIN IMMEDIATE``.
    """
    from urllib.parse import quote

    mode = "rw" if write else "ro"
    uri = f"file:{quote(os.path.abspath(db_path))}?mode={mode}"
    con = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
    if write:
        con.execute("PRAGMA foreign_keys = ON")
    return con


@contextmanager
def write_transaction(db_path: str):
    """One ``BEGIN IMMEDIATE`` write on a fresh connection: committed when the block ends,
    rolled back on any failure, and the connection closed either way."""
    con = connect(db_path, write=True)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()


# ------------------------------------------------------------------------------ who
# The agent: by id (members) or by its pane (the Director). Columns: agent id, session id,
# name, state, reported_at, owed (owed/held deliveries of unacknowledged tasks), woken
# (deliveries handed over by the waiter, still to be confirmed).
_ME_BY_ID = "SELECT agent_id, session_id, name FROM agents WHERE agent_id = ? AND status = 'active'"
_ME_BY_PANE = (
    "SELECT a.agent_id, a.session_id, a.name FROM agent_placements p "
    "JOIN agents a ON a.agent_id = p.agent_id "
    "WHERE p.tmux_pane_id = ? AND a.status = 'active' ORDER BY p.created_at DESC LIMIT 1"
)
_FAST = """
SELECT me.agent_id, me.session_id, me.name, s.state, s.reported_at,
  (SELECT count(*) FROM tasks t JOIN task_deliveries d ON d.task_id = t.task_id
    WHERE t.context_id = me.agent_id AND t.status_state = 'input_required'
      AND d.state IN ('owed', 'held')),
  (SELECT count(*) FROM tasks t JOIN task_deliveries d ON d.task_id = t.task_id
    WHERE t.context_id = me.agent_id AND d.state = 'offered' AND d.channel = 'wake')
FROM ({me}) AS me LEFT JOIN agent_states s ON s.agent_id = me.agent_id
"""
FAST_BY_ID = _FAST.format(me=_ME_BY_ID)
FAST_BY_PANE = _FAST.format(me=_ME_BY_PANE)


class Identity:
    """Who the hook speaks for, and what one read found."""

    def __init__(self, row):
        (
            self.agent_id,
            self.session_id,
            self.name,
            self.state,
            self.reported_at,
            self.owed,
            self.woken,
        ) = row


def identify(con, environ=os.environ) -> Identity | None:
    """One query: the agent (by ``CAFLEET_AGENT_ID`` or by ``TMUX_PANE``) and its mail."""
    from broker.conf import hook_identity

    agent_id, session = hook_identity(environ)
    if agent_id:
        row = con.execute(FAST_BY_ID, (agent_id,)).fetchone()
    else:
        pane = environ.get("TMUX_PANE")
        if not pane:
            return None
        row = con.execute(FAST_BY_PANE, (pane,)).fetchone()
    if row is None:
        return None
    me = Identity(row)
    if agent_id and session and session != me.session_id:
        return None
    return me


def look_up(db_path: str, environ=os.environ) -> Identity | None:
    """:func:`identify` on a read-only connection of its own, closed again at once."""
    con = connect(db_path)
    try:
        return identify(con, environ)
    finally:
        con.close()


def age(stamp: str | None, at=None) -> float:
    """Seconds from a stored timestamp to ``at`` (default: now); infinite when unreadable."""
    if not stamp:
        return float("inf")
    from datetime import UTC, datetime

    try:
        return ((at or datetime.now(UTC)) - datetime.fromisoformat(stamp)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def needs_state_write(me: Identity, state: str | None) -> bool:
    if state is None:
        return False
    return me.state != state or age(me.reported_at) >= STATE_REFRESH


# ------------------------------------------------------------------------------ writes
_CLAIM_SELECT = """
SELECT t.task_id, t.from_agent_id, t.status_timestamp, t.text, sender.name
FROM tasks t JOIN task_deliveries d ON d.task_id = t.task_id
LEFT JOIN agents sender ON sender.agent_id = t.from_agent_id
WHERE t.context_id = ? AND t.status_state = 'input_required' AND d.state IN ('owed', 'held')
ORDER BY t.created_at, t.task_id LIMIT ?
"""


def claim(con, agent_id: str, channel: str, stamp: str) -> list[tuple]:
    """Take the owed deliveries (inside the caller's transaction): ``channel`` ``hook``
    marks them offered and seen (the text is in the model's next request), ``wake`` marks
    them offered (seen once the agent's loop runs again)."""
    rows = con.execute(_CLAIM_SELECT, (agent_id, MAX_PER_HOOK)).fetchall()
    seen = stamp if channel == "hook" else None
    state = "seen" if channel == "hook" else "offered"
    taken = []
    for row in rows:
        changed = con.execute(
            "UPDATE task_deliveries SET state = ?, channel = ?, reason = NULL, offered_at = ?, "
            "seen_at = ?, attempts = CAST(CAST(attempts AS INTEGER) + 1 AS TEXT), "
            "updated_at = ? WHERE task_id = ? AND state IN ('owed', 'held')",
            (state, channel, stamp, seen, stamp, row[0]),
        ).rowcount
        if changed:
            taken.append(row)
    return taken


def confirm_woken(con, agent_id: str, stamp: str) -> int:
    """Deliveries the waiter handed over are seen once the agent's loop runs again."""
    return con.execute(
        "UPDATE task_deliveries SET state = 'seen', seen_at = ?, updated_at = ? "
        "WHERE state = 'offered' AND channel = 'wake' AND task_id IN "
        "(SELECT task_id FROM tasks WHERE context_id = ?)",
        (stamp, stamp, agent_id),
    ).rowcount


def mark_submitted(con, agent_id: str, prompt: str, stamp: str) -> int:
    """A submitted prompt that carries preview headers proves those previews arrived."""
    import re

    prefixes = set(re.findall(r"\[cafleet msg ([0-9a-f]{8}) ", prompt or ""))
    done = 0
    for prefix in sorted(prefixes):
        done += con.execute(
            "UPDATE task_deliveries SET state = 'seen', reason = NULL, seen_at = ?, "
            "updated_at = ? WHERE state IN ('owed', 'held', 'offered') AND task_id IN "
            "(SELECT task_id FROM tasks WHERE context_id = ? AND task_id LIKE ?)",
            (stamp, stamp, agent_id, prefix + "%"),
        ).rowcount
    return done


def keys_in_flight(con, agent_id: str) -> bool:
    """True while another process types into the agent's pane (it holds the pane's typist
    lock, ``broker.tmux.TypistLock``): the hook then leaves the mail to that preview."""
    row = con.execute(
        "SELECT tmux_pane_id FROM agent_placements WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    if not row or not row[0]:
        return False
    from broker.tmux import TypistLock

    try:
        return held_by_another(TypistLock(row[0]).path)
    except OSError:
        return False


def record_state(con, agent_id: str, state: str, event: str, stamp: str) -> None:
    con.execute(
        "INSERT INTO agent_states (agent_id, state, event, since, reported_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
        "since = CASE WHEN agent_states.state = excluded.state THEN agent_states.since "
        "ELSE excluded.since END, state = excluded.state, event = excluded.event, "
        "reported_at = excluded.reported_at",
        (agent_id, state, event, stamp, stamp),
    )
