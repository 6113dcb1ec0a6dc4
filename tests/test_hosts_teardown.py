"""``session delete --close-members`` with members on several hosts (issue 13): a pane of
another host is never touched from here; the session stays until that member is closed on
its own host."""

from __future__ import annotations

from broker.models import Placement, Session
from tests.test_hardening_session_delete import FakePanes, add_member, status


def test_another_hosts_member_is_left_alone_and_keeps_the_session(cli, fleet, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/cafleet-fake,1,0")
    monkeypatch.setenv("CAFLEET_HOST_ID", "host-a")
    alice = add_member(fleet, "alice", "%7", stamp="2026-01-01T00:00:01.000000+00:00")
    bob = add_member(fleet, "bob", "%8", stamp="2026-01-01T00:00:02.000000+00:00")
    Placement.objects.filter(agent_id=alice.agent_id).update(host_id="host-b")
    Placement.objects.filter(agent_id=bob.agent_id).update(host_id="host-a")
    panes = FakePanes(monkeypatch, {"%1", "%7", "%8"})
    r = cli("session", "delete", "--close-members", fleet.sid)
    assert r.code == 1 and r.out == ""
    lines = r.err.splitlines()
    assert lines[0] == f"Error: session {fleet.sid} not deleted: 1 of 2 member(s) did not close."
    assert f"  deleted:     {bob.agent_id} (bob): %8 (closed)" in lines
    assert (
        f"  not closed:  {alice.agent_id} (alice): member {alice.agent_id} runs on host "
        "'host-b', not on this host ('host-a'); run this command on 'host-b'."
    ) in lines
    assert not any(call[1] == "%7" for call in panes.calls)  # host b's pane id: untouched
    assert Session.objects.get(session_id=fleet.sid).deleted_at is None
    assert (status(alice), status(bob)) == ("active", "deregistered")
