"""The delivery worker in-process (issue 9 point 4): retry of held deliveries, stop rules,
escalation exactly once, lease and idle exit. tmux is the stand-in of
tests/delivery_fakes.py; time is a fake clock where the loop's pacing matters."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta

import pytest

from broker import delivery_worker as worker
from broker.models import Agent, Delivery, DeliveryWorker, Task
from broker.services import message_ack, message_cancel, message_poll
from tests.delivery_fakes import FakeTmux
from tests.test_delivery_states import alice_in_pane, send

pytestmark = pytest.mark.django_db


class Clock:
    """``clock``/``sleep`` pair for delivery_run: sleeping advances the clock."""

    def __init__(self, hook=None):
        self.t = 0.0
        self.hook = hook
        self.sleeps = 0

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds
        self.sleeps += 1
        if self.hook:
            self.hook(self.sleeps)


def run(tmux, clock=None, **kw):
    clock = clock or Clock()
    kw.setdefault("hold", 300.0)
    kw.setdefault("idle", 2.0)
    return worker.delivery_run(tmux=tmux, clock=clock, sleep=clock.sleep, **kw)


def state(task) -> tuple[str, str | None]:
    d = Delivery.objects.get(task_id=task.task_id)
    return d.state, d.reason


def admin_notes(fleet) -> list[Task]:
    return list(Task.objects.filter(from_agent_id=fleet.admin).order_by("created_at"))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------ retry
def test_held_is_retried_and_delivered_once_the_gate_passes(fleet):
    tmux, member = alice_in_pane(fleet, "permission_dialog")
    task, _ = send(fleet, tmux, member, "after the dialog")

    def flip(n):
        if n == 3:  # the dialog is answered after three passes
            tmux.gate["%5"] = None

    passes = run(tmux, Clock(flip), idle=1.0)
    assert state(task) == ("seen", None)
    assert len(tmux.typed_into("%5")) == 1
    assert "after the dialog" in tmux.typed_into("%5")[0]
    assert tmux.offers.count("%5") == 1 + 4  # the send's try, then one per pass until it went
    d = Delivery.objects.get(task_id=task.task_id)
    assert d.attempts == "5" and d.held_since is not None and d.escalated_at is None
    # held in passes 1-3 (last seen held at t=1.0), delivered in pass 4, exit at t=2.0
    assert passes == 5
    assert not DeliveryWorker.objects.exists()  # lease released on exit


def test_held_deliveries_of_one_pane_go_out_in_order(fleet):
    tmux, member = alice_in_pane(fleet, "draft")
    first, _ = send(fleet, tmux, member, "first")
    second, _ = send(fleet, tmux, member, "second")
    tmux.gate["%5"] = None
    run(tmux, max_passes=1)
    typed = tmux.typed_into("%5")
    assert [p.rsplit("\n", 1)[1] for p in typed] == ["first", "second"]
    assert state(first)[0] == state(second)[0] == "seen"


@pytest.mark.parametrize("how", ["ack", "cancel"])
def test_acked_or_canceled_stop_retrying(fleet, how):
    tmux, member = alice_in_pane(fleet, "busy")
    task, _ = send(fleet, tmux, member)
    if how == "ack":
        message_ack(session_id=fleet.sid, agent_ref=member, task_ref=task.task_id)
    else:
        message_cancel(session_id=fleet.sid, agent_ref=fleet.director, task_ref=task.task_id)
    tmux.gate["%5"] = None
    offers = len(tmux.offers)
    run(tmux, max_passes=3)
    assert len(tmux.offers) == offers and tmux.typed == []
    assert worker.open_count() == 0


def test_recipient_gone_stops_retrying(fleet):
    tmux, member = alice_in_pane(fleet, "busy")
    task, _ = send(fleet, tmux, member)
    Agent.objects.get(agent_id=member).deregister()
    offers = len(tmux.offers)
    run(tmux, max_passes=2)
    assert state(task) == ("failed", "recipient_gone")
    assert len(tmux.offers) == offers


def test_pane_gone_reported_by_the_gate_stops_retrying(fleet):
    tmux, member = alice_in_pane(fleet, "busy")
    task, _ = send(fleet, tmux, member)
    tmux.gone.add("%5")
    run(tmux, max_passes=3)
    assert state(task) == ("failed", "pane_gone")
    assert tmux.offers.count("%5") == 2  # the send, then one retry that learned it is gone


# ------------------------------------------------------------------------------ idle exit
def test_idle_exit_when_nothing_is_held(fleet):
    clock = Clock()
    passes = run(FakeTmux(), clock, idle=3.0, interval=0.5)
    assert clock.t == pytest.approx(3.0)
    assert passes == 7
    assert not DeliveryWorker.objects.exists()


def test_no_idle_exit_while_something_is_held(fleet):
    tmux, member = alice_in_pane(fleet, "busy")
    send(fleet, tmux, member)
    passes = run(tmux, idle=1.0, max_passes=20)
    assert passes == 20
    message_poll(agent_id=member, include_all=False, since=None, page_size=None)
    assert worker.open_count() == 0  # polling made it seen: nothing is held any more


# ------------------------------------------------------------------------------ escalation
def age_hold(task, minutes: float) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="microseconds")
    Delivery.objects.filter(task_id=task.task_id).update(held_since=old)


def test_escalation_exactly_once_and_no_keystroke_into_the_member_pane(fleet):
    tmux, member = alice_in_pane(fleet, "permission_dialog")
    task, _ = send(fleet, tmux, member, "please look")
    age_hold(task, 6)
    run(tmux, max_passes=4, hold=300.0)
    notes = admin_notes(fleet)
    assert len(notes) == 1
    note = notes[0]
    assert (note.context_id, note.to_agent_id, note.type) == (
        fleet.director,
        fleet.director,
        "unicast",
    )
    assert note.status_state == "input_required" and note.origin_task_id is None
    assert "alice" in note.text and member[:8] in note.text and task.task_id[:8] in note.text
    assert (
        f"message {task.task_id[:8]} from {fleet.director[:8]} for 6 min: waiting for "
        "permission." in note.text
    )
    assert note.text.endswith(
        f"cafleet --session-id {fleet.sid} member capture --agent-id {fleet.director} "
        f"--member-id {member}"
    )
    d = Delivery.objects.get(task_id=task.task_id)
    assert d.state == "held" and d.escalated_at is not None
    # the member's pane was only ever asked through the gate; nothing was typed there
    assert tmux.typed_into("%5") == []
    # the note itself is a delivery like any other, previewed into the Director's pane
    assert Delivery.objects.get(task_id=note.task_id).state == "seen"
    assert len(tmux.typed_into(fleet.pane)) == 1
    # a second run, and a direct call, never escalate the same delivery again
    run(tmux, max_passes=3, hold=300.0)
    assert worker.escalate(timeout=1.0) == []
    assert len(admin_notes(fleet)) == 1


def test_no_escalation_before_the_timeout(fleet):
    tmux, member = alice_in_pane(fleet, "draft")
    task, _ = send(fleet, tmux, member)
    age_hold(task, 4)
    run(tmux, max_passes=2, hold=300.0)
    assert admin_notes(fleet) == []
    run(tmux, max_passes=1, hold=200.0)
    assert len(admin_notes(fleet)) == 1
    assert "draft in the input" in admin_notes(fleet)[0].text


def test_root_director_hold_is_marked_but_not_messaged(fleet):
    tmux, member = alice_in_pane(fleet)
    tmux.gate[fleet.pane] = "draft"
    task, _ = send(fleet, tmux, fleet.director, "to the boss", sender=member)
    age_hold(task, 10)
    run(tmux, max_passes=2, hold=300.0)
    assert admin_notes(fleet) == []
    assert Delivery.objects.get(task_id=task.task_id).escalated_at is not None


def test_hold_timeout_setting():
    assert worker.hold_timeout({}) == 300.0
    assert worker.hold_timeout({"CAFLEET_DELIVERY_HOLD_TIMEOUT": "0.5"}) == 0.5
    assert worker.idle_exit({}) == 180.0
    for bad in ("0", "-1", "x", "inf", ""):
        with pytest.raises(worker.CafleetError) as exc:
            worker.idle_exit({"CAFLEET_DELIVERY_IDLE_EXIT": bad})
        assert exc.value.message == (
            f"invalid value for CAFLEET_DELIVERY_IDLE_EXIT: '{bad}' (expected a positive number)."
        )


# ------------------------------------------------------------------------------ lease
def test_two_workers_one_holder(db):
    key = "host:/db"
    me, other = os.getpid(), os.getppid()
    assert worker.acquire(key, me) is True
    assert worker.acquire(key, other) is False
    assert worker.acquire(key, me) is True  # the holder may renew
    assert DeliveryWorker.objects.get(key=key).pid == str(me)
    assert worker.heartbeat(key, other) is False
    assert worker.heartbeat(key, me) is True


def test_stale_heartbeat_is_taken_over(db):
    key = "host:/db"
    assert worker.acquire(key, os.getppid())
    old = (datetime.now(UTC) - timedelta(seconds=60)).isoformat(timespec="microseconds")
    DeliveryWorker.objects.filter(key=key).update(heartbeat_at=old)
    assert worker.acquire(key, os.getpid()) is True
    assert DeliveryWorker.objects.get(key=key).pid == str(os.getpid())
    assert worker.heartbeat(key, os.getppid()) is False  # the old holder learns it lost


def test_dead_holder_is_taken_over_at_once(db):
    key = "host:/db"
    assert worker.acquire(key, dead_pid())
    assert worker.acquire(key, os.getpid()) is True


def test_delivery_run_refuses_while_another_worker_holds_the_lease(fleet):
    worker.acquire(worker.lease_key(), os.getppid())
    with pytest.raises(worker.CafleetError) as exc:
        run(FakeTmux(), max_passes=1)
    assert exc.value.message == (
        f"a delivery worker is already running for this database (pid {os.getppid()})."
    )
    assert DeliveryWorker.objects.get().pid == str(os.getppid())


def test_lost_lease_ends_the_worker(fleet):
    def steal(n):
        if n == 2:
            DeliveryWorker.objects.update(pid=str(os.getppid()))

    clock = Clock(steal)
    passes = run(FakeTmux(), clock, idle=100.0, max_passes=50)
    assert passes < 10  # it noticed at the next heartbeat
    assert DeliveryWorker.objects.get().pid == str(os.getppid())  # not released by the loser


def test_autostart_off_starts_nothing(fleet, monkeypatch):
    monkeypatch.setenv("CAFLEET_DELIVERY_AUTOSTART", "0")
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    assert worker.ensure_worker() is False
    assert started == []


def test_autostart_skips_when_a_live_worker_holds_the_lease(fleet, monkeypatch):
    started = []

    def popen(*a, **k):
        started.append((a, k))
        return types.SimpleNamespace(pid=4242)

    monkeypatch.setattr(subprocess, "Popen", popen)
    worker.acquire(worker.lease_key(), os.getppid())
    assert worker.ensure_worker(environ={"CAFLEET_DELIVERY_AUTOSTART": "1"}) is False
    DeliveryWorker.objects.all().delete()
    assert worker.ensure_worker(environ={"CAFLEET_DELIVERY_AUTOSTART": "1"}) is True
    (argv,), kwargs = started[0]
    assert argv == [sys.executable, "-m", "cafleet_project.cli", "deliver"]
    assert kwargs["start_new_session"] is True and kwargs["stdin"] == subprocess.DEVNULL
    log = worker.log_path()
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_idle_exit_looks_again_after_releasing_the_lease(fleet, monkeypatch):
    """A command that holds a delivery while the worker is leaving is not stranded."""
    tmux, member = alice_in_pane(fleet, "busy")
    original = worker.release
    held = []

    def release(key, pid):
        original(key, pid)
        if not held:  # right after the lease is given up, a send holds a delivery
            held.append(send(fleet, tmux, member)[0])

    monkeypatch.setattr(worker, "release", release)
    passes = run(tmux, idle=1.0, max_passes=12)
    assert passes == 12  # it stayed for the new held delivery
    offers_for_it = tmux.offers.count("%5")
    assert offers_for_it >= 1 + 8  # the send's try plus the worker's retries
    assert not DeliveryWorker.objects.exists()


def test_a_lost_insert_race_is_a_lost_lease(db, monkeypatch):
    """Where writes do not start IMMEDIATE (PostgreSQL), two first workers may both find no
    row; the one whose INSERT fails does not hold the lease."""
    key = "host:/db"
    assert worker.acquire(key, os.getppid())
    real_filter = DeliveryWorker.objects.filter
    calls = []

    def first_sees_nothing(*a, **k):
        calls.append(1)
        qs = real_filter(*a, **k)
        return qs.none() if len(calls) == 1 else qs

    with monkeypatch.context() as patch:
        patch.setattr(DeliveryWorker.objects, "filter", first_sees_nothing)
        assert worker.acquire(key, os.getpid()) is False
    assert DeliveryWorker.objects.get(key=key).pid == str(os.getppid())
