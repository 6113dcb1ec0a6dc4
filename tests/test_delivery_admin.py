"""The admin shows delivery states: message list column and filter, agents' held count, the
timeline's badges (issue 9 point 5)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from broker import admin_display
from broker.models import Agent, Task
from broker.services import message_broadcast
from tests.delivery_fakes import FakeTmux
from tests.test_delivery_states import add_member, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail(fleet):
    tmux = FakeTmux()
    fleet.alice = add_member(fleet, "alice", "%5")
    fleet.bob = add_member(fleet, "bob", "%6")
    fleet.carol = add_member(fleet, "carol", None)
    tmux.gate["%5"] = "permission_dialog"
    fleet.held, _ = send(fleet, tmux, fleet.alice, "waits for the dialog")
    fleet.seen, _ = send(fleet, tmux, fleet.bob, "went straight in")
    fleet.owed, _ = send(fleet, tmux, fleet.carol, "no pane yet")
    fleet.summary, _, _ = message_broadcast(
        session_id=fleet.sid, agent_ref=fleet.director, text="all", limit=200, tmux=tmux
    )
    return fleet


def test_message_list_has_a_preview_column(admin_client, mail):
    response = admin_client.get(reverse("admin:cafleet_task_changelist"))
    assert response.status_code == 200
    model_admin = admin.site._registry[Task]
    shown = {t.task_id: t for t in response.context["cl"].result_list}
    assert "held: waiting for permission" in model_admin.preview_state(shown[mail.held.task_id])
    assert ">seen<" in model_admin.preview_state(shown[mail.seen.task_id])
    assert "owed (no pane)" in model_admin.preview_state(shown[mail.owed.task_id])
    assert model_admin.preview_state(shown[mail.summary.task_id]) == "—"
    html = response.content.decode()
    assert 'class="cafleet-preview cafleet-preview-held"' in html


def test_message_list_filters_by_delivery_state(admin_client, mail):
    response = admin_client.get(
        reverse("admin:cafleet_task_changelist"), {"delivery__state__exact": "held"}
    )
    got = {t.task_id for t in response.context["cl"].result_list}
    alice_broadcast = Task.objects.get(origin_task_id=mail.summary.task_id, context_id=mail.alice)
    assert got == {mail.held.task_id, alice_broadcast.task_id}


def test_message_detail_shows_the_preview_state(admin_client, mail):
    response = admin_client.get(reverse("admin:cafleet_task_change", args=[mail.held.task_id]))
    assert "held: waiting for permission" in response.content.decode()


def test_agent_list_counts_held_previews(admin_client, mail):
    response = admin_client.get(reverse("admin:cafleet_agent_changelist"))
    model_admin = admin.site._registry[Agent]
    held = {a.name: model_admin.held(a) for a in response.context["cl"].result_list}
    assert held["alice"] == 2  # the unicast and the broadcast delivery
    assert held["bob"] == 0 and held["carol"] == 0 and held["Director"] == 0


def test_timeline_badges(admin_client, mail):
    response = admin_client.get(reverse("admin:cafleet_session_timeline", args=[mail.sid]))
    events = response.context["events"]
    sent = {e.task.task_id: e for e in events if e.kind == "sent"}
    assert "held: waiting for permission" in sent[mail.held.task_id].preview
    assert ">seen<" in sent[mail.seen.task_id].preview
    broadcast = next(e for e in events if e.kind == "broadcast")
    badges = {d.recipient.name: admin_display.delivery_label(d.task) for d in broadcast.deliveries}
    assert badges == {
        "alice": "held: waiting for permission",
        "bob": "seen",
        "carol": "owed (no pane)",
    }
    html = response.content.decode()
    assert html.count("cafleet-preview-held") == 2


def test_timeline_query_count_does_not_grow_with_messages(
    admin_client, mail, django_assert_max_num_queries
):
    tmux = FakeTmux()
    for i in range(20):
        send(mail, tmux, mail.bob, f"more {i}")
    with django_assert_max_num_queries(20):
        admin_client.get(reverse("admin:cafleet_session_timeline", args=[mail.sid]))
