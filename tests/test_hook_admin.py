"""The admin names each delivery's channel and each agent's hook-reported state (issue 10
point 5)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from broker.models import Agent, Delivery
from tests.delivery_fakes import FakeTmux
from tests.test_delivery_states import add_member, send
from tests.test_hook_routes import report

pytestmark = pytest.mark.django_db


def test_agents_list_shows_the_reported_state_and_its_age(admin_client, fleet):
    alice = add_member(fleet, "alice", "%5")
    add_member(fleet, "bob", "%6")
    report(alice, "working", 42)
    response = admin_client.get(reverse("admin:cafleet_agent_changelist"))
    assert response.status_code == 200
    model_admin = admin.site._registry[Agent]
    shown = {a.name: model_admin.reported_state(a) for a in response.context["cl"].result_list}
    assert shown["bob"] == "—"
    words, _, age = shown["alice"].partition(" · ")
    assert words == "working" and 42 <= int(age.rstrip("s")) < 60
    assert "state (hooks)" in response.content.decode().lower()


def test_timeline_names_the_channel(admin_client, fleet):
    tmux = FakeTmux()
    alice = add_member(fleet, "alice", "%5")
    bob = add_member(fleet, "bob", "%6")
    by_keys, _ = send(fleet, tmux, bob, "typed in")
    report(alice, "working")
    by_hook, _ = send(fleet, tmux, alice, "handed to the hook")
    Delivery.objects.filter(task_id=by_hook.task_id).update(
        state="seen", reason=None, channel="hook"
    )
    response = admin_client.get(reverse("admin:cafleet_session_timeline", args=[fleet.sid]))
    sent = {e.task.task_id: e for e in response.context["events"] if e.kind == "sent"}
    assert (
        'class="cafleet-channel" title="delivery channel">via hook<'
        in sent[by_hook.task_id].preview
    )
    assert ">via keys<" in sent[by_keys.task_id].preview
