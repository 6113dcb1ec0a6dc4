"""A command killed between its commit and its preview leaves the delivery ``owed`` with no
reason. The delivery worker takes such a row up once it is older than ``STRANDED_AFTER``
(never sooner: the command may still be typing it), through the same gate as a held one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker import delivery_worker as worker
from broker.models import Delivery
from tests.test_delivery_states import alice_in_pane, send
from tests.test_delivery_worker import Clock, run, state

pytestmark = pytest.mark.django_db


def stranded(task, *, age: float) -> None:
    """The row as a command killed right after its commit leaves it: owed, no reason, no
    attempt recorded, last written ``age`` seconds ago."""
    stamp = (datetime.now(UTC) - timedelta(seconds=age)).isoformat(timespec="microseconds")
    Delivery.objects.filter(task_id=task.task_id).update(
        state="owed",
        reason=None,
        channel=None,
        offered_at=None,
        seen_at=None,
        attempts="0",
        updated_at=stamp,
    )


def test_a_stranded_owed_delivery_is_typed_by_the_worker(fleet):
    tmux, member = alice_in_pane(fleet, verified=True)
    task, _ = send(fleet, tmux, member, "lost in a crash")
    stranded(task, age=worker.STRANDED_AFTER + 5)
    before = len(tmux.typed_into("%5"))
    run(tmux, Clock(), idle=1.0)
    assert state(task) == ("seen", None)
    typed = tmux.typed_into("%5")[before:]
    assert len(typed) == 1 and "lost in a crash" in typed[0]


def test_a_fresh_owed_delivery_is_left_to_its_command(fleet):
    tmux, member = alice_in_pane(fleet, verified=True)
    task, _ = send(fleet, tmux, member, "still being typed")
    stranded(task, age=1.0)
    before = len(tmux.typed_into("%5"))
    run(tmux, Clock(), idle=1.0)
    assert state(task) == ("owed", None)
    assert tmux.typed_into("%5")[before:] == []


def test_a_stranded_delivery_behind_a_dialog_is_held_not_typed(fleet):
    tmux, member = alice_in_pane(fleet, verified=True)
    task, _ = send(fleet, tmux, member, "wait for the dialog")
    stranded(task, age=worker.STRANDED_AFTER + 5)
    tmux.gate["%5"] = "permission_dialog"
    before = len(tmux.typed_into("%5"))
    run(tmux, Clock(), idle=1.0, max_passes=3)
    assert state(task) == ("held", "permission_dialog")
    assert tmux.typed_into("%5")[before:] == []
