"""Helpers shared by the admin tests (tests/test_admin_*.py): URLs, rows and the `team` fixture."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from broker.models import Agent, Placement, Task
from broker.services import (
    message_ack,
    message_broadcast,
    message_cancel,
    message_send,
)

LOGIN = "/admin/login/"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def send(fleet, sender: str, to: str, text: str) -> Task:
    task, _ = message_send(session_id=fleet.sid, agent_ref=sender, to_ref=to, text=text, limit=200)
    return task


@pytest.fixture
def team(fleet):
    """A session with a member (placement under the Director), a plain agent and mail."""
    member = Agent.objects.get(agent_id=fleet.register("builder", "builds"))
    Placement.objects.create(
        agent=member,
        director_agent_id=fleet.director,
        tmux_session="cafleet-test",
        tmux_window_id="@1",
        tmux_pane_id="%2",
        coding_agent="codex",
        created_at=member.registered_at,
    )
    plain = fleet.register("reviewer", "reviews")
    fleet.member = member.agent_id
    fleet.plain = plain
    fleet.hello = send(fleet, fleet.director, member.agent_id, "hello builder\nsecond line")
    fleet.reply = send(fleet, member.agent_id, fleet.director, "on it")
    message_ack(session_id=fleet.sid, agent_ref=member.agent_id, task_ref=fleet.hello.task_id)
    fleet.oops = send(fleet, fleet.director, plain, "never mind")
    message_cancel(session_id=fleet.sid, agent_ref=fleet.director, task_ref=fleet.oops.task_id)
    fleet.summary, _, _ = message_broadcast(
        session_id=fleet.sid, agent_ref=fleet.director, text="standup now", limit=200
    )
    return fleet


def changelist(model) -> str:
    return reverse(f"admin:cafleet_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:cafleet_{obj._meta.model_name}_change", args=[obj.pk])


def timeline(sid: str) -> str:
    return reverse("admin:cafleet_session_timeline", args=[sid])


def rows(response) -> list:
    return list(response.context["cl"].result_list)
