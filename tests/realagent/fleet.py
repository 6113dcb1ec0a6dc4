"""A cafleet session whose members sit in panes running the real clients.

The Director is the line stand-in (``tests/bin/claude``) in the isolated tmux server; each
member is registered with a placement that points at a pane of a
:class:`~tests.realagent.harness.RealAgent` (or at a plain shell). Messages go out through
``cafleet message send`` as a subprocess, with ``TMUX`` naming the isolated server, so the
delivery code and its background worker run exactly as for a user.
"""

from __future__ import annotations

import sqlite3

from bench.timing import wait_until
from broker.clock import new_id, now
from tests.plugins.tmux_server import STANDIN_READY


class RealFleet:
    def __init__(self, db, server, **env: str):
        self.db = db
        self.server = server
        self.director_pane = server.spawn("claude")
        server.wait_for(self.director_pane, STANDIN_READY)
        settings = {
            "CAFLEET_DATABASE_URL": db.url,
            "CAFLEET_DELIVERY_AUTOSTART": "1",
            "CAFLEET_DELIVERY_IDLE_EXIT": "5",
        }
        settings.update(env)
        self.env = server.env(self.director_pane, **settings)
        made = db.run("--json", "session", "create", env=self.env)
        assert made.code == 0, made.err
        self.session_id = made.json["session_id"]
        self.director = made.json["director"]["agent_id"]
        self.admin = made.json["administrator_agent_id"]

    # -- database -------------------------------------------------------------------------
    def rows(self, sql: str, *params):
        con = sqlite3.connect(self.db.path, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def add_member(self, name: str, pane: str, coding_agent: str) -> str:
        """Register ``name`` with a placement on ``pane`` (as ``member create`` records it)."""
        member = new_id()
        stamp = now()
        window = self.server.display(pane, "#{window_id}")
        con = sqlite3.connect(self.db.path, timeout=10)
        with con:
            con.execute(
                "INSERT INTO agents (agent_id,session_id,name,description,status,"
                "registered_at,deregistered_at,agent_card_json) VALUES (?,?,?,?,?,?,NULL,?)",
                (member, self.session_id, name, "a real client", "active", stamp,
                 f'{{"name":"{name}"}}'),
            )  # fmt: skip
            con.execute(
                "INSERT INTO agent_placements (agent_id,director_agent_id,tmux_session,"
                "tmux_window_id,tmux_pane_id,coding_agent,created_at) VALUES (?,?,?,?,?,?,?)",
                (member, self.director, self.server.session, window, pane, coding_agent, stamp),
            )
        con.close()
        return member

    def task_to(self, member: str, needle: str) -> str:
        found = self.rows(
            "SELECT task_id FROM tasks WHERE context_id=? AND text LIKE ?", member, f"%{needle}%"
        )
        assert len(found) == 1, found
        return found[0][0]

    def delivery(self, task_id: str) -> tuple:
        """``(state, reason, attempts, escalated_at)`` of the task's delivery."""
        ((row),) = self.rows(
            "SELECT state, reason, attempts, escalated_at FROM task_deliveries WHERE task_id=?",
            task_id,
        )
        return tuple(row)

    def admin_notes(self) -> list[tuple]:
        """``(context_id, text)`` of every message the Administrator sent."""
        return self.rows("SELECT context_id, text FROM tasks WHERE from_agent_id=?", self.admin)

    # -- CLI ------------------------------------------------------------------------------
    def send(self, member: str, text: str):
        sent = self.db.run(
            "--session-id", self.session_id, "message", "send", "--agent-id", self.director,
            "--to", member, "--text", text, env=self.env,
        )  # fmt: skip
        assert sent.code == 0, sent.err
        return sent

    def wait(self, predicate, timeout: float = 30.0, what: str = "condition"):
        return wait_until(predicate, timeout, what, step=0.1)

    def wait_attempts(self, task_id: str, count: int, timeout: float = 30.0) -> tuple:
        """Wait until the worker has offered the delivery ``count`` times; its row."""
        return self.wait(
            lambda: (row := self.delivery(task_id)) and int(row[2]) >= count and row,
            timeout,
            f"{count} delivery attempts",
        )
