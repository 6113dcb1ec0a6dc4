"""``cafleet hook wait``: the background waiter of one idle agent (docs/hooks.md).

Run as a Stop hook with ``asyncRewake``: one waiter per agent (an ``flock`` in the hooks
directory). It exits 2 with the message on stderr when mail arrives (the client wakes the
idle agent with it), quietly 0 at its timeout, when the agent is gone, or when its client is.

Standard library only (``broker.hook`` imports it on every hook call).
"""

from __future__ import annotations

import os
import sys
import time

from broker.hook_event import handle_event, mail_text
from broker.hook_files import ensure_hooks_dir, take_lock, utc_now, waiter_lock_path
from broker.hook_store import GONE, Identity, claim, look_up, write_transaction

#: The waiter looks at the database file's change stamp this often.
WAIT_POLL = 0.25
#: How long a starting waiter tries to take the lock from a waiter that is just leaving.
WAIT_LOCK_TRY = 1.0
#: Default waiter timeout (seconds); the Stop hook's own timeout is a little longer.
WAIT_TIMEOUT = 3540.0


def _stamp(db_path: str) -> tuple:
    """What changes when anyone writes the database (the file and its WAL)."""
    out = []
    for name in (db_path, db_path + "-wal"):
        try:
            st = os.stat(name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def wait(
    payload: dict,
    db_path: str,
    *,
    timeout: float = WAIT_TIMEOUT,
    environ=os.environ,
    stderr=None,
    poll: float = WAIT_POLL,
) -> int:
    """The background waiter: exit code 2 (message on ``stderr``) when mail arrives, 0 at
    ``timeout``, when the agent is gone, or when another waiter already runs."""
    stderr = stderr or sys.stderr
    # As the Stop hook it also records "idle" (and hands over mail owed right now).
    me = look_up(db_path, environ)
    if me is None:
        return 0
    ensure_hooks_dir(db_path)
    fd = take_lock(waiter_lock_path(db_path, me.agent_id), WAIT_LOCK_TRY)
    if fd is None:
        handle_event("Stop", payload, db_path, environ)
        return 0
    try:
        handle_event("Stop", payload, db_path, environ)
        deadline = time.monotonic() + timeout
        parent = os.getppid()
        last = None
        while time.monotonic() < deadline:
            now_stamp = _stamp(db_path)
            if now_stamp != last:
                last = now_stamp
                me = look_up(db_path, environ)
                if me is None or me.state == GONE:
                    return 0
                if me.owed:
                    text = _wake(me, db_path)
                    if text:
                        stderr.write(text + "\n")
                        stderr.flush()
                        return 2
            if os.getppid() != parent:
                return 0  # the client is gone
            time.sleep(poll)
        return 0
    finally:
        os.close(fd)


def _wake(me: Identity, db_path: str) -> str | None:
    stamp = utc_now()
    with write_transaction(db_path) as con:
        taken = claim(con, me.agent_id, "wake", stamp)
    if not taken:
        return None
    return mail_text(me, taken)
