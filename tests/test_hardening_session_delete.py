"""``session delete`` and live member panes (issue 11 item 11).

``--close-members`` runs the ``member delete`` protocol for every live member, then deletes the
session; without it, the member panes left running are listed on stderr with the command that
closes each. The tmux tests use the stand-in agents on the isolated tmux server.
"""

from __future__ import annotations

import sqlite3

import pytest

from broker import members
from broker import tmux as tmux_mod
from broker.models import Agent, Placement, Session
from tests.conftest import place_member
from tests.plugins.tmux_server import STANDIN_READY

# ----------------------------------------------------------------------------- tmux (e2e)


class TmuxFleet:
    def __init__(self, db, server):
        self.db, self.server = db, server
        data = self.run("--json", "session", "create").json
        self.sid, self.did = data["session_id"], data["director"]["agent_id"]

    def run(self, *argv, timeout=90):
        env = self.server.env(None, CAFLEET_DATABASE_URL=self.db.url)
        return self.db.run(*argv, env=env, timeout=timeout)

    def spawn(self, name, backend="claude", director=None) -> tuple[str, str]:
        r = self.run("--json", "--session-id", self.sid, "member", "create", "--agent-id",
                     director or self.did, "--name", name, "--description", "d",
                     "--coding-agent", backend)  # fmt: skip
        assert r.code == 0, r.err
        aid, pane = r.json["agent_id"], r.json["placement"]["tmux_pane_id"]
        self.server.wait_for(pane, STANDIN_READY, timeout=15)
        return aid, pane

    def statuses(self) -> dict:
        con = sqlite3.connect(self.db.path)
        try:
            return dict(con.execute("SELECT name, status FROM agents"))
        finally:
            con.close()


@pytest.fixture
def tfleet(fresh_db, tmux_server):
    return TmuxFleet(fresh_db, tmux_server)


@pytest.mark.tmux
def test_close_members_closes_every_pane_then_deletes(tfleet):
    server = tfleet.server
    alice, alice_pane = tfleet.spawn("alice")
    bob, bob_pane = tfleet.spawn("bob", backend="codex")
    r = tfleet.run("session", "delete", "--close-members", tfleet.sid[:8])
    assert (r.code, r.err) == (0, "")
    assert r.lines == [
        f"Member {bob} deleted: {bob_pane} (closed)",  # newest first
        f"Member {alice} deleted: {alice_pane} (closed)",
        f"Deleted session {tfleet.sid}. Deregistered 2 agents.",
    ]
    assert not server.pane_alive(alice_pane) and not server.pane_alive(bob_pane)
    assert server.pane_alive(server.first_pane)
    assert set(tfleet.statuses().values()) == {"deregistered"}
    again = tfleet.run("session", "delete", "--close-members", tfleet.sid)
    assert (again.code, again.out, again.err) == (
        0,
        f"Deleted session {tfleet.sid}. Deregistered 0 agents.\n",
        "",
    )


@pytest.mark.tmux
def test_without_the_flag_the_left_panes_are_listed_with_their_command(tfleet):
    server = tfleet.server
    alice, alice_pane = tfleet.spawn("alice")
    bob, bob_pane = tfleet.spawn("bob")
    r = tfleet.run("session", "delete", tfleet.sid)
    assert r.code == 0
    assert r.out == f"Deleted session {tfleet.sid}. Deregistered 4 agents.\n"
    assert r.err.splitlines() == [
        "Warning: 2 member panes left running (session delete does not close panes); "
        "close each with:",
        f"  tmux kill-pane -t {bob_pane}    # bob ({bob[:8]})",
        f"  tmux kill-pane -t {alice_pane}    # alice ({alice[:8]})",
        "Next time, 'cafleet session delete --close-members <session-id>' closes member panes "
        "first.",
    ]
    assert server.pane_alive(alice_pane) and server.pane_alive(bob_pane)  # acceptance 73
    for line in r.err.splitlines()[1:3]:
        command = line.split("#")[0].split()
        assert command[:3] == ["tmux", "kill-pane", "-t"]
        server.run(*command[1:])  # the printed command closes the pane
    assert not server.pane_alive(alice_pane) and not server.pane_alive(bob_pane)


def test_bare_session_delete_prints_no_warning(fresh_db):
    from tests.conftest import seed_session

    fleet = seed_session(fresh_db)  # the Director's pane is not a member pane
    r = fresh_db.run("session", "delete", fleet.sid)
    assert (r.code, r.err) == (0, "")
    assert r.out == f"Deleted session {fleet.sid}. Deregistered 2 agents.\n"


# ----------------------------------------------------------------------------- in-process
class FakePanes:
    """The tmux functions ``member delete`` uses, over a set of live panes."""

    def __init__(self, monkeypatch, alive, stubborn=()):
        self.alive, self.stubborn, self.calls = set(alive), set(stubborn), []
        monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
        monkeypatch.setattr(tmux_mod, "send_exit", self.send_exit)
        monkeypatch.setattr(tmux_mod, "list_pane_ids", lambda: set(self.alive))
        monkeypatch.setattr(tmux_mod, "select_layout", lambda w: self.calls.append(("layout", w)))
        monkeypatch.setattr(tmux_mod, "capture", lambda p, n, ansi: "waiting for an answer\n")
        monkeypatch.setattr(tmux_mod, "kill_pane", self.kill)
        monkeypatch.setattr(members, "DELETE_DEADLINE", 0.05)
        monkeypatch.setattr(members, "DELETE_POLL_INTERVAL", 0.01)

    def send_exit(self, pane):
        self.calls.append(("exit", pane))
        if pane not in self.stubborn:
            self.alive.discard(pane)

    def kill(self, pane):
        self.calls.append(("kill", pane))
        self.alive.discard(pane)


def add_member(fleet, name, pane, director=None, stamp=None):
    """A member in ``pane`` under ``director`` (the fleet's Director by default)."""
    return place_member(fleet.sid, director or fleet.director, name, pane, stamp=stamp)


def status(agent) -> str:
    return Agent.objects.get(agent_id=agent.agent_id).status


def test_a_pane_that_does_not_close_keeps_the_session(cli, fleet, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/cafleet-fake,1,0")
    alice = add_member(fleet, "alice", "%7", stamp="2026-01-01T00:00:01.000000+00:00")
    bob = add_member(fleet, "bob", "%8", stamp="2026-01-01T00:00:02.000000+00:00")
    panes = FakePanes(monkeypatch, {"%1", "%7", "%8"}, stubborn={"%7"})
    r = cli("session", "delete", "--close-members", fleet.sid)
    assert r.code == 1 and r.out == ""
    assert r.err.splitlines() == [
        f"Error: session {fleet.sid} not deleted: 1 of 2 member(s) did not close.",
        f"  deleted:     {bob.agent_id} (bob): %8 (closed)",
        f"  not closed:  {alice.agent_id} (alice): pane %7 did not close within 0.05s after /exit.",
        "Inspect with `cafleet member capture`, answer any prompt with `cafleet member "
        f"send-input`, then re-run `cafleet session delete --close-members {fleet.sid}`; or "
        "close a wedged pane with `cafleet member delete --force`.",
    ]
    assert Session.objects.get(session_id=fleet.sid).deleted_at is None
    assert (status(alice), status(bob)) == ("active", "deregistered")
    assert ("exit", "%1") not in panes.calls  # the Director's own pane is never touched

    # once the member is dealt with, a re-run finishes the job
    panes.stubborn.clear()
    r = cli("session", "delete", "--close-members", fleet.sid)
    assert r.code == 0, r.err
    assert r.lines == [
        f"Member {alice.agent_id} deleted: %7 (closed)",
        f"Deleted session {fleet.sid}. Deregistered 2 agents.",
    ]


def test_close_members_needs_tmux_only_for_panes(cli, fleet, monkeypatch):
    add_member(fleet, "alice", "%7")
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    r = cli("session", "delete", "--close-members", fleet.sid)
    assert (r.code, r.err) == (
        1,
        "Error: cafleet session delete --close-members must be run inside a tmux session\n",
    )
    assert Session.objects.get(session_id=fleet.sid).deleted_at is None
    # pending members (no pane yet) need no tmux: they are deregistered
    other = type(fleet)(fleet.sid, fleet.director, fleet.admin)
    Placement.objects.filter(tmux_pane_id="%7").update(tmux_pane_id=None)
    r = cli("session", "delete", "--close-members", other.sid)
    assert r.code == 0, r.err
    assert r.lines[0].endswith("deleted: (pending — no pane)")


def test_members_of_members_close_before_their_director(cli, fleet, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/cafleet-fake,1,0")
    lead = add_member(fleet, "lead", "%7", stamp="2026-01-01T00:00:01.000000+00:00")
    sub = add_member(
        fleet, "sub", "%8", director=lead.agent_id, stamp="2026-01-01T00:00:02.000000+00:00"
    )
    panes = FakePanes(monkeypatch, {"%1", "%7", "%8"})
    r = cli("session", "delete", "--close-members", fleet.sid)
    assert r.code == 0, r.err
    assert [c for c in panes.calls if c[0] == "exit"] == [("exit", "%8"), ("exit", "%7")]
    assert (status(lead), status(sub)) == ("deregistered", "deregistered")


def test_help_and_grammar_know_the_flag():
    from broker import grammar

    assert grammar.parse(["session", "delete", "--close-members", "x"]).options == {
        "close_members": True,
        "session_ref": "x",
    }
    assert "--close-members" in grammar.help_for(("session", "delete"))
