"""The channel choice (docs/hooks.md): a recipient whose hooks report it keeps its mail for
the hook (or its waiter) and gets no keystroke; keystrokes come back after the grace period
or when the hooks have gone quiet. In-process, with the stand-in tmux layer."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from broker import agentstate, hook
from broker.clock import now
from broker.conf import database_path
from broker.delivery_worker import retry_held
from broker.models import AgentState
from tests.delivery_fakes import FakeTmux
from tests.test_delivery_states import add_member, row, send

pytestmark = pytest.mark.django_db


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def report(agent_id: str, state: str, age: float = 0.0) -> None:
    AgentState.objects.update_or_create(
        agent_id=agent_id,
        defaults={"state": state, "event": "test", "since": ago(age), "reported_at": ago(age)},
    )


@pytest.mark.parametrize(
    ("state", "age", "reason"),
    [
        ("working", 1, "hook"),
        ("waiting_permission", 1, "permission_dialog"),
        ("waiting_permission", 30, "hook"),
        ("gone", 1, "agent_not_running"),
    ],
)
def test_reported_state_holds_without_touching_the_pane(fleet, state, age, reason):
    tmux = FakeTmux()
    member = add_member(fleet, "alice", "%5")
    report(member, state, age)
    task, notified = send(fleet, tmux, member)
    d = row(task.task_id)
    assert notified is False
    assert (d.state, d.reason) == ("held", reason)
    assert tmux.offers == []  # no gate, no screen read, no keystroke


@pytest.mark.parametrize(("state", "age"), [("idle", 1), ("working", 500), ("gone", 60)])
def test_no_live_hook_means_keystrokes(fleet, state, age):
    tmux = FakeTmux()
    member = add_member(fleet, "alice", "%5")
    report(member, state, age)
    task, notified = send(fleet, tmux, member)
    assert notified is True and tmux.typed_into("%5")
    assert row(task.task_id).channel == "keys"


def test_live_waiter_holds_for_the_wake(fleet):
    tmux = FakeTmux()
    member = add_member(fleet, "alice", "%5")
    report(member, "idle")
    db = database_path()
    hook.ensure_hooks_dir(db)
    fd = hook.take_lock(hook.waiter_lock_path(db, member), 0)
    assert fd is not None
    try:
        task, notified = send(fleet, tmux, member)
    finally:
        os.close(fd)
    assert (row(task.task_id).state, row(task.task_id).reason) == ("held", "hook_wait")
    assert tmux.offers == []
    # The waiter is gone: the worker's next pass types the preview.
    retry_held(tmux, limit=200)
    assert tmux.typed_into("%5")


def test_keys_after_the_grace_period(fleet, monkeypatch):
    monkeypatch.setenv("CAFLEET_HOOK_GRACE", "5")
    tmux = FakeTmux()
    member = add_member(fleet, "alice", "%5")
    report(member, "working")
    task, _ = send(fleet, tmux, member)
    retry_held(tmux, limit=200)
    assert tmux.offers == [] and row(task.task_id).state == "held"
    d = row(task.task_id)
    d.held_since = ago(6)
    d.save()
    report(member, "working")
    retry_held(tmux, limit=200)
    assert tmux.typed_into("%5")
    assert (row(task.task_id).state, row(task.task_id).channel) == ("seen", "keys")


def test_route_table():
    assert agentstate.route(None, 0, False) is None
    assert agentstate.route("idle", 0, True) == "hook_wait"
    assert agentstate.route("gone", 0, True) == "agent_not_running"
    assert agentstate.route("working", agentstate.HOOK_ACTIVE + 1, False) is None
    assert agentstate.grace_over(None) is False
    assert agentstate.grace_over(now()) is False


def test_member_list_and_show_name_channel_and_state(fleet, cli, monkeypatch):
    from broker.commands import Call
    from broker.models import Delivery

    tmux = FakeTmux()
    monkeypatch.setattr(Call, "tmux", property(lambda self: tmux))
    member = add_member(fleet, "alice", "%5")
    report(member, "waiting_permission", 75)
    task, _ = send(fleet, tmux, member)
    Delivery.objects.filter(task_id=task.task_id).update(
        state="seen", reason=None, channel="hook", offered_at=now(), seen_at=now()
    )
    r = cli("--session-id", fleet.sid, "member", "list", "--agent-id", fleet.director,
            "--activity")  # fmt: skip
    assert r.lines[3].endswith("  hook     waiting for permission  1m")
    j = cli("--json", "--session-id", fleet.sid, "member", "list", "--agent-id",
            fleet.director, "--activity")  # fmt: skip
    entry = j.json[0]
    assert (entry["channel"], entry["state"]) == ("hook", "waiting for permission")
    assert 75 <= entry["state_age"] < 90
    show = cli("--session-id", fleet.sid, "message", "show", "--agent-id", member,
               "--task-id", task.task_id)  # fmt: skip
    assert any(line.strip().startswith("delivery: seen via hook") for line in show.lines), show.out


@pytest.mark.parametrize("verb", ["exec", "ping"])
def test_exec_and_ping_trust_a_fresh_permission_report(fleet, verb):
    from broker.exceptions import CafleetError
    from broker.members import member_exec, member_ping

    tmux = FakeTmux()
    tmux.send_exec = tmux.poll_trigger = lambda *a, **k: pytest.fail("typed into the pane")
    member = add_member(fleet, "alice", "%5")
    report(member, "waiting_permission", 1)
    common = dict(session_id=fleet.sid, agent_ref=fleet.director, member_ref=member, tmux=tmux)
    with pytest.raises(CafleetError) as info:
        if verb == "exec":
            member_exec(command="ls", **common)
        else:
            member_ping(**common)
    assert info.value.message == (
        "pane %5 is not ready: waiting for permission (reported by its hooks)"
    )


def test_member_delete_removes_the_settings_file(fleet):
    from broker.hooksettings import member_settings_path, write_member_settings
    from broker.members import member_delete

    class Panes:
        def kill_pane(self, pane):
            self.killed = pane

        def select_layout(self, window):
            pass

    member = add_member(fleet, "alice", "%5")
    path = write_member_settings(database_path(), member, "/opt/cafleet")
    assert os.path.exists(path) and path == member_settings_path(database_path(), member)
    tmux = Panes()
    member_delete(session_id=fleet.sid, agent_ref=fleet.director, member_ref=member,
                  force=True, tmux=tmux)  # fmt: skip
    assert tmux.killed == "%5"
    assert not os.path.exists(path)
