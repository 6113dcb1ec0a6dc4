"""``cafleet hook <event>``: the coding agent's own hooks call this (docs/hooks.md).

Claude Code runs ``cafleet hook <Event>`` at fixed points of its loop with the event's JSON
on stdin. This module answers without Django, with the standard library only, because it
runs on every tool call of every agent:

* **Fast path** (nothing owed, no state change): one read-only SQLite query tells who the
  agent is, its last recorded state and how many deliveries are owed to it. Then exit 0 with
  no output.
* **Mail or state to record**: one short write transaction (``BEGIN IMMEDIATE``, a few
  statements) claims the owed deliveries and/or records the agent's state; for
  ``PostToolUse`` / ``UserPromptSubmit`` the claimed messages are printed as
  ``hookSpecificOutput.additionalContext``.
* ``cafleet hook wait`` (a Stop hook with ``asyncRewake``): one background waiter per agent
  (an ``flock``); exits 2 with the message on stderr when mail arrives (the client wakes the
  idle agent with it), quietly 0 at its timeout or when the agent is gone.

A hook never hurts its agent: every failure (bad JSON, database missing or locked, no such
agent, a bug) ends in exit 0 with no output and one line in ``hook.log`` (0600) beside the
database. The busy timeout is short (``BUSY_TIMEOUT``), so a hook never holds a turn longer
than one database read plus, with mail, one short write.

The work is split by what it touches: ``broker.hook_files`` (the hooks directory, the log,
the ``flock`` helpers), ``broker.hook_store`` (the SQL), ``broker.hook_event`` (one event)
and ``broker.hook_wait`` (the waiter); this module parses the command line and keeps every
failure quiet. The agent is named by ``CAFLEET_AGENT_ID`` (``member create`` puts it, with
``CAFLEET_SESSION_ID`` and ``CAFLEET_DATABASE_URL``, in the member's environment), else, for
the Director's own session (``cafleet hooks install``), by its pane (``TMUX_PANE`` → the
placement of an active agent).
"""

from __future__ import annotations

import os
import sys

from broker.hook_event import handle_event, read_payload
from broker.hook_files import (
    database_path,
    ensure_hooks_dir,
    log,
    take_lock,
    waiter_alive,
    waiter_lock_path,
)
from broker.hook_store import STATE_WORDS, age
from broker.hook_wait import WAIT_TIMEOUT, wait

# The names other modules and tests use through ``broker.hook``.
__all__ = [
    "EVENTS",
    "STATE_WORDS",
    "age",
    "ensure_hooks_dir",
    "handle_event",
    "main",
    "take_lock",
    "wait",
    "waiter_alive",
    "waiter_lock_path",
]

EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "SessionEnd",
    "wait",
)


def _parse(argv: list[str]) -> tuple[str, bool, float]:
    """``hook EVENT [--director] [--timeout S]`` → (event, director_only, timeout)."""
    event = ""
    director = False
    timeout = WAIT_TIMEOUT
    it = iter(argv)
    for word in it:
        if word == "--director":
            director = True
        elif word == "--timeout":
            timeout = float(next(it))
            if not 0 < timeout <= 86400:
                raise ValueError(f"bad --timeout {timeout}")
        elif word.startswith("--timeout="):
            timeout = float(word.split("=", 1)[1])
            if not 0 < timeout <= 86400:
                raise ValueError(f"bad --timeout {timeout}")
        elif not event:
            event = word
        else:
            raise ValueError(f"unexpected argument {word!r}")
    if event not in EVENTS:
        raise ValueError(f"unknown hook event {event!r}")
    return event, director, timeout


def main(argv: list[str], *, stdin=None, stdout=None, stderr=None, environ=os.environ) -> int:
    """``cafleet hook ...`` (``argv`` after the word ``hook``). Always 0, except the
    waiter's 2 when it hands mail over."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    db_path = None
    event = " ".join(argv[:1])[:40] or "?"
    try:
        event, director, timeout = _parse(argv)
        from broker.conf import hook_identity

        agent_id = hook_identity(environ)[0]
        if director and agent_id:
            return 0  # a member: its own per-member hooks speak for it
        if not agent_id and not environ.get("TMUX_PANE"):
            return 0  # neither a member nor in a pane: nobody to speak for, no database read
        db_path = database_path(environ)
        payload = read_payload(stdin)
        if event == "wait":
            return wait(payload, db_path, timeout=timeout, environ=environ, stderr=stderr)
        out = handle_event(event, payload, db_path, environ)
        if out:
            stdout.write(out + "\n")
            stdout.flush()
        return 0
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            return 0
        log(db_path, f"hook {event}: {type(exc).__name__}: {exc}")
        return 0
