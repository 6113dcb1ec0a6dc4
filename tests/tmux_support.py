"""What the tests against an isolated tmux server share: a session made by ``cafleet session
create`` in the server's first pane (:class:`TmuxFleet`), with the ``cafleet`` calls those
tests make on it (members spawned as stand-in agents, messages sent and polled).

Every ``cafleet`` call runs with ``TMUX``/``TMUX_PANE`` naming the test's own server (so
plain ``tmux`` reaches it) and ``CAFLEET_DATABASE_URL`` naming the test's database.
"""

from __future__ import annotations

from tests.plugins.tmux_server import STANDIN_READY, wait_log


def fleet_env(db, server, **extra) -> dict:
    """The environment of a ``cafleet`` call in ``server``'s first pane on ``db``."""
    return server.env(None, CAFLEET_DATABASE_URL=db.url, **extra)


def in_session(db, server, sid, *argv, json_mode=False, input=None, env=None, timeout=60):
    """``[--json] --session-id SID ARGV`` in ``server``'s first pane (``env`` adds to its
    environment; a ``None`` value removes a variable)."""
    head = ("--json",) if json_mode else ()
    return db.run(
        *head,
        "--session-id",
        sid,
        *argv,
        input=input,
        env={**fleet_env(db, server), **(env or {})},
        timeout=timeout,
    )


class TmuxFleet:
    """A session created by ``cafleet session create`` in the server's first pane."""

    def __init__(self, db, server, *create_args):
        self.db = db
        self.server = server
        created = self.run("--json", "session", "create", *create_args)
        assert created.code == 0, created.err
        self.sid = created.json["session_id"]
        self.did = created.json["director"]["agent_id"]

    def env(self, **extra) -> dict:
        return fleet_env(self.db, self.server, **extra)

    def run(self, *argv, input=None, env=None, timeout=60):
        return self.db.run(*argv, input=input, env={**self.env(), **(env or {})}, timeout=timeout)

    def cafleet(self, *argv, input=None, json_mode=False, env=None, timeout=60):
        """``[--json] --session-id <this session> ARGV``."""
        return in_session(
            self.db,
            self.server,
            self.sid,
            *argv,
            json_mode=json_mode,
            input=input,
            env=env,
            timeout=timeout,
        )

    def member(self, verb, *argv, json_mode=False, env=None, timeout=60):
        return self.cafleet("member", verb, *argv, json_mode=json_mode, env=env, timeout=timeout)

    def spawn(
        self, name, *extra, backend="claude", director=None, log=None, description=None
    ) -> dict:
        """``member create --json`` of a stand-in agent (logging to ``log`` when given);
        waits for the stand-in's banner. Returns the JSON."""
        if log is not None:
            self.server.set_env("STANDIN_LOG", str(log))
        result = self.member(
            "create",
            "--agent-id",
            director or self.did,
            "--name",
            name,
            "--description",
            description or f"{name} does things",
            "--coding-agent",
            backend,
            *extra,
            json_mode=True,
        )
        assert result.code == 0, result.err
        data = result.json
        self.server.wait_for(
            data["placement"]["tmux_pane_id"], f"standin-{backend} argv=", timeout=15
        )
        return data

    def spawn_ready(self, name, log, timeout=15.0) -> tuple[str, str]:
        """A stand-in claude member logging to ``log``, waited for until it has started and
        shows its input box. Returns its agent id and pane id."""
        data = self.spawn(name, log=log)
        wait_log(log, lambda ev: any(e["event"] == "start" for e in ev), timeout)
        pane = data["placement"]["tmux_pane_id"]
        self.server.wait_for(pane, STANDIN_READY, timeout)
        return data["agent_id"], pane

    def send(self, to, text, *extra, env=None):
        """``message send --json`` from the Director to ``to``."""
        return self.cafleet(
            "message",
            "send",
            "--agent-id",
            self.did,
            "--to",
            to,
            *extra,
            "--text",
            text,
            json_mode=True,
            env=env,
        )

    def register(self, name, description) -> str:
        """``agent register``: the new agent's id."""
        made = self.cafleet(
            "agent", "register", "--name", name, "--description", description, json_mode=True
        )
        assert made.code == 0, made.err
        return made.json["agent_id"]


def ids(fleet, member_id, director=None):
    """``--agent-id`` (the Director unless told) and ``--member-id`` of a member command."""
    return ("--agent-id", director or fleet.did, "--member-id", member_id)
