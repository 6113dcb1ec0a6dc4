"""Delivery states (issue 9 point 5): owed → held → offered → seen, through the services
with a stand-in tmux layer (tests/delivery_fakes.py)."""

from __future__ import annotations

import pytest

from broker import delivery
from broker.models import Delivery, Task, TaskType
from broker.services import (
    message_ack,
    message_broadcast,
    message_cancel,
    message_poll,
    message_send,
    message_show,
)
from tests.conftest import place_member
from tests.delivery_fakes import FakeTmux

pytestmark = pytest.mark.django_db


def add_member(fleet, name: str, pane: str | None, coding_agent: str = "claude") -> str:
    """A member of the fleet's Director in ``pane``; returns its id."""
    member = place_member(
        fleet.sid, fleet.director, name, pane, description="works", coding_agent=coding_agent
    )
    return member.agent_id


def alice_in_pane(fleet, gate: str | None = None, **fake) -> tuple[FakeTmux, str]:
    """A stand-in tmux layer (``fake``: its options) and the member alice in pane %5, whose
    gate answers ``gate`` (None: the pane is ready)."""
    tmux = FakeTmux(**fake)
    member = add_member(fleet, "alice", "%5")
    tmux.gate["%5"] = gate
    return tmux, member


def send(fleet, tmux, to: str, text: str = "hello", sender: str | None = None):
    return message_send(
        session_id=fleet.sid,
        agent_ref=sender or fleet.director,
        to_ref=to,
        text=text,
        limit=200,
        tmux=tmux,
    )


def row(task_id: str) -> Delivery:
    return Delivery.objects.get(task_id=task_id)


def test_verified_preview_is_seen_with_channel_and_times(fleet):
    tmux, member = alice_in_pane(fleet, verified=True)
    task, notified = send(fleet, tmux, member)
    d = row(task.task_id)
    assert notified is True
    assert (d.state, d.reason, d.channel, d.attempts) == ("seen", None, "keys", "1")
    assert d.offered_at == d.seen_at and len(d.offered_at) == 32
    assert task.delivery.state == "seen"
    assert tmux.typed_into("%5")[0].startswith(f"[cafleet msg {task.task_id[:8]} from ")


def test_unverified_preview_is_offered_then_seen_on_poll(fleet):
    tmux, member = alice_in_pane(fleet, verified=False)
    task, notified = send(fleet, tmux, member)
    d = row(task.task_id)
    assert notified is True
    assert (d.state, d.channel, d.seen_at) == ("offered", "keys", None)
    polled = message_poll(agent_id=member, include_all=False, since=None, page_size=None)
    assert [t.task_id for t in polled] == [task.task_id]
    assert polled[0].delivery.state == "seen"
    d = row(task.task_id)
    assert d.state == "seen" and d.seen_at >= d.offered_at
    assert d.offered_at is not None


def test_held_records_reason_and_since_and_types_nothing(fleet):
    tmux, member = alice_in_pane(fleet, "permission_dialog")
    task, notified = send(fleet, tmux, member)
    d = row(task.task_id)
    assert notified is False
    assert (d.state, d.reason, d.channel, d.offered_at) == ("held", "permission_dialog", None, None)
    assert d.held_since == d.updated_at and d.attempts == "1"
    assert tmux.typed == [] and tmux.offers == ["%5"]
    assert delivery.send_summary(task.delivery) == "Preview held: waiting for permission."


def test_held_again_keeps_first_held_since_and_counts_attempts(fleet):
    tmux, member = alice_in_pane(fleet, "draft")
    task, _ = send(fleet, tmux, member)
    first = row(task.task_id).held_since
    delivery.record({task.task_id: delivery.Outcome("held", "busy")})
    d = row(task.task_id)
    assert (d.state, d.reason, d.held_since, d.attempts) == ("held", "busy", first, "2")


@pytest.mark.parametrize(
    ("pane", "sender_is_recipient", "reason", "summary"),
    [
        (None, False, "no_pane", "No pane to preview."),
        ("%5", True, "self", "No preview (sent to yourself)."),
    ],
)
def test_not_applicable_stays_owed_with_reason(fleet, pane, sender_is_recipient, reason, summary):
    tmux = FakeTmux()
    member = add_member(fleet, "alice", pane)
    task, notified = send(fleet, tmux, member, sender=member if sender_is_recipient else None)
    d = row(task.task_id)
    assert notified is False
    assert (d.state, d.reason, d.attempts) == ("owed", reason, "0")
    assert tmux.offers == []
    assert delivery.send_summary(task.delivery) == summary


def test_administrator_has_no_pane(fleet):
    tmux = FakeTmux()
    task, _ = send(fleet, tmux, fleet.admin)
    assert (row(task.task_id).state, row(task.task_id).reason) == ("owed", "no_pane")


def test_pane_gone_fails_and_is_final(fleet):
    tmux, member = alice_in_pane(fleet)
    tmux.gone.add("%5")
    task, _ = send(fleet, tmux, member)
    d = row(task.task_id)
    assert (d.state, d.reason) == ("failed", "pane_gone")
    assert delivery.send_summary(d) == "Preview not delivered: pane gone."
    # A later "delivered" outcome cannot revive it (only open states move forward).
    delivery.record({task.task_id: delivery.Outcome("delivered", None, True)})
    assert row(task.task_id).state == "failed"


def test_a_late_preview_never_moves_a_seen_row_back(fleet):
    tmux, member = alice_in_pane(fleet, "busy")
    task, _ = send(fleet, tmux, member)
    message_poll(agent_id=member, include_all=False, since=None, page_size=None)
    seen = row(task.task_id)
    assert seen.state == "seen"
    delivery.record({task.task_id: delivery.Outcome("delivered", None, False)})
    delivery.record({task.task_id: delivery.Outcome("held", "draft")})
    after = row(task.task_id)
    assert (after.state, after.seen_at, after.reason) == ("seen", seen.seen_at, "busy")


def test_show_marks_seen_only_for_the_recipient(fleet):
    tmux, member = alice_in_pane(fleet, "busy")
    task, _ = send(fleet, tmux, member)
    shown = message_show(session_id=fleet.sid, agent_ref=fleet.director, task_ref=task.task_id)
    assert shown.delivery.state == "held" and row(task.task_id).state == "held"
    shown = message_show(session_id=fleet.sid, agent_ref=member, task_ref=task.task_id[:8])
    assert shown.delivery.state == "seen" and row(task.task_id).state == "seen"


def test_ack_marks_seen_and_cancel_leaves_the_state(fleet):
    tmux, member = alice_in_pane(fleet, "draft")
    acked, _ = send(fleet, tmux, member, "one")
    canceled, _ = send(fleet, tmux, member, "two")
    message_ack(session_id=fleet.sid, agent_ref=member, task_ref=acked.task_id)
    message_cancel(session_id=fleet.sid, agent_ref=fleet.director, task_ref=canceled.task_id)
    assert row(acked.task_id).state == "seen"
    assert (row(canceled.task_id).state, row(canceled.task_id).reason) == ("held", "draft")


def test_poll_marks_only_the_returned_rows_seen_in_one_update(fleet, django_assert_num_queries):
    tmux, member = alice_in_pane(fleet, "busy")
    tasks = [send(fleet, tmux, member, f"m{i}")[0] for i in range(3)]
    with django_assert_num_queries(2):  # one SELECT, one UPDATE
        polled = message_poll(agent_id=member, include_all=False, since=None, page_size=2)
    assert {t.delivery.state for t in polled} == {"seen"}
    states = {t.task_id: row(t.task_id).state for t in tasks}
    assert sorted(states.values()) == ["held", "seen", "seen"]
    assert states[tasks[0].task_id] == "held"  # the oldest was not on the page
    with django_assert_num_queries(1):  # nothing new to mark: no UPDATE
        message_poll(agent_id=member, include_all=False, since=None, page_size=2)


def test_broadcast_creates_one_owed_row_per_delivery_and_none_for_the_summary(fleet):
    tmux = FakeTmux()
    panes = {add_member(fleet, f"m{i}", f"%{10 + i}"): f"%{10 + i}" for i in range(4)}
    nopane = add_member(fleet, "pending", None)
    tmux.gate["%11"] = "menu"
    summary, n, delivered = message_broadcast(
        session_id=fleet.sid, agent_ref=fleet.director, text="all hands", limit=200, tmux=tmux
    )
    assert (n, delivered) == (5, 3)
    assert not Delivery.objects.filter(task_id=summary.task_id).exists()
    rows = {
        t.context_id: t.delivery
        for t in Task.objects.filter(origin_task_id=summary.task_id, type=TaskType.UNICAST)
    }
    assert set(rows) == {*panes, nopane}
    held = [aid for aid, pane in panes.items() if pane == "%11"][0]
    assert (rows[held].state, rows[held].reason) == ("held", "menu")
    assert (rows[nopane].state, rows[nopane].reason) == ("owed", "no_pane")
    assert sorted(r.state for r in rows.values()) == ["held", "owed", "seen", "seen", "seen"]


def test_broadcast_previews_run_concurrently(fleet):
    tmux = FakeTmux(delay=0.2)
    for i in range(8):
        add_member(fleet, f"m{i}", f"%{20 + i}")
    message_broadcast(
        session_id=fleet.sid, agent_ref=fleet.director, text="go", limit=200, tmux=tmux
    )
    assert len(tmux.typed) == 8
    assert tmux.max_active >= 4  # several panes were being typed into at the same time


def test_one_pane_keeps_order_behind_a_held_preview():
    tmux = FakeTmux()
    tmux.gate["%1"] = "draft"
    jobs = [delivery.Job(f"t{i}", "%1", "claude", f"p{i}") for i in range(3)]
    jobs.append(delivery.Job("other", "%2", "claude", "q"))
    outcomes = delivery.run_jobs(tmux, jobs)
    assert tmux.offers.count("%1") == 1  # later previews for the held pane were not tried
    assert {outcomes[f"t{i}"].reason for i in range(3)} == {"draft"}
    assert outcomes["other"].status == "delivered"


def test_a_raising_tmux_layer_is_held_as_tmux_error(fleet):
    class Broken(FakeTmux):
        def deliver_preview(self, *a, **k):
            raise RuntimeError("boom")

    member = add_member(fleet, "alice", "%5")
    task, notified = send(fleet, Broken(), member)
    assert notified is False
    assert (row(task.task_id).state, row(task.task_id).reason) == ("held", "tmux_error")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (True, ("delivered", None, False)),
        (False, ("held", "tmux_error", False)),
        (FakeTmux().pane_gate("%1", "claude"), ("delivered", None, False)),
        (
            type("D", (), {"status": "failed", "reason": "tmux_error"})(),
            ("held", "tmux_error", False),
        ),
        (
            type("D", (), {"status": "failed", "reason": "pane_gone"})(),
            ("failed", "pane_gone", False),
        ),
    ],
)
def test_normalise(result, expected):
    o = delivery.normalise(result)
    assert (o.status, o.reason, o.verified) == expected


def test_delivery_line_in_words(fleet):
    tmux, member = alice_in_pane(fleet, "agent_not_running")
    task, _ = send(fleet, tmux, member)
    d = row(task.task_id)
    assert delivery.delivery_line(d) == f"delivery: held (agent not running) since {d.held_since}"
    delivery.record({task.task_id: delivery.Outcome("delivered", None, True)})
    d = row(task.task_id)
    assert delivery.delivery_line(d) == (
        f"delivery: seen via keys offered {d.offered_at} seen {d.seen_at}"
    )


def test_no_preview_costs_no_second_write(fleet):
    """Without a pane the reason is written with the row; nothing is updated afterwards."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member = add_member(fleet, "alice", None)
    with CaptureQueriesContext(connection) as queries:
        task, _ = send(fleet, FakeTmux(), member)
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any(s.startswith('UPDATE "task_deliveries"') for s in sql)
    assert sum(s.startswith('INSERT INTO "task_deliveries"') for s in sql) == 1
    assert (row(task.task_id).state, row(task.task_id).reason) == ("owed", "no_pane")
