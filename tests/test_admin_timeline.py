"""The admin session timeline, its send form and times in the viewer's zone (test client)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from broker import admin_views
from broker.models import Session, Task, TaskState, TaskType
from broker.services import session_delete
from tests import admin_helpers
from tests.admin_helpers import LOGIN, change, changelist, timeline

pytestmark = pytest.mark.django_db

team = admin_helpers.team  # the shared fixture, requested by name


# ------------------------------------------------------------------------------ timeline
def test_timeline_shows_the_conversation_in_time_order(admin_client, team):
    response = admin_client.get(timeline(team.sid))
    assert response.status_code == 200
    events = response.context["events"]
    assert [(e.kind, e.task.task_id) for e in events] == [
        ("sent", team.hello.task_id),
        ("sent", team.reply.task_id),
        ("acknowledged", team.hello.task_id),
        ("sent", team.oops.task_id),
        ("canceled", team.oops.task_id),
        ("broadcast", team.summary.task_id),
    ]
    broadcast = events[-1]
    assert broadcast.body == "standup now"
    assert [(d.recipient.name, d.state) for d in broadcast.deliveries] == [
        ("builder", "unread"),
        ("reviewer", "unread"),
    ]
    html = response.content.decode()
    bodies = re.findall(r'<div class="cafleet-body">([^<]*)', html)
    assert bodies == ["hello builder\nsecond line", "on it", "never mind", "standup now"]
    assert 'id="cafleet-send-form"' in html
    assert "cafleet/timeline.js" in html and "cafleet/tz.js" in html


def test_timeline_fragment_for_auto_refresh(admin_client, team):
    response = admin_client.get(timeline(team.sid), {"fragment": "1"})
    assert response["X-Cafleet-Timeline"] == "1"
    html = response.content.decode()
    assert "standup now" in html and "<form" not in html and "<html" not in html


def test_timeline_pages_back_in_time(admin_client, team, monkeypatch):
    monkeypatch.setattr(admin_views, "TIMELINE_PAGE", 4)
    first = admin_client.get(timeline(team.sid))
    newest = [e.kind for e in first.context["events"]]
    assert newest == ["acknowledged", "sent", "canceled", "broadcast"]
    older = first.context["older"]
    assert older is not None
    second = admin_client.get(timeline(team.sid), {"before": older})
    assert [e.kind for e in second.context["events"]] == ["sent", "sent"]
    assert second.context["older"] is None
    assert second.context["refresh_ms"] == 0  # only the newest page refreshes


def test_timeline_send_unicast_as_administrator(admin_client, team, monkeypatch):
    from broker import tmux

    previews = []
    monkeypatch.setattr(tmux, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setattr(
        tmux,
        "deliver_preview",
        lambda pane, payload, **kw: previews.append((pane, payload)) or True,
    )
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "5")
    response = admin_client.post(timeline(team.sid), {"to": team.member, "text": "build it\r\nnow"})
    assert response.status_code == 302
    assert response["Location"] == f"{timeline(team.sid)}?to={team.member}#send"
    task = Task.objects.get(from_agent_id=team.admin)
    assert (task.context_id, task.type, task.status_state, task.text) == (
        team.member,
        TaskType.UNICAST,
        TaskState.INPUT_REQUIRED,
        "build it\nnow",
    )
    assert previews == [
        (
            "%2",
            f"[cafleet msg {task.task_id[:8]} from {team.admin[:8]} "
            f"{task.status_timestamp}]\nbuild…",
        )
    ]
    assert LogEntry.objects.get(object_id=task.task_id).is_addition()
    page = admin_client.get(response["Location"])
    assert f"Message {task.task_id[:8]} sent with an inline preview." in page.content.decode()
    assert page.context["form"]["to"].value() == team.member  # the same recipient again


def test_timeline_broadcast_as_administrator(admin_client, team, monkeypatch):
    from broker import tmux

    monkeypatch.setattr(tmux, "tmux_binary", lambda: None)
    response = admin_client.post(timeline(team.sid), {"to": "*", "text": "all hands"}, follow=True)
    summary = Task.objects.get(from_agent_id=team.admin, type=TaskType.BROADCAST_SUMMARY)
    deliveries = Task.objects.filter(origin_task_id=summary.task_id, type=TaskType.UNICAST)
    assert {d.context_id for d in deliveries} == {team.director, team.member, team.plain}
    assert f"Broadcast {summary.task_id[:8]} sent to 3 recipients" in response.content.decode()


def test_timeline_form_errors(admin_client, team):
    response = admin_client.post(timeline(team.sid), {"to": team.member, "text": ""})
    assert response.status_code == 200 and response.context["form"].errors
    response = admin_client.post(timeline(team.sid), {"to": "not-an-agent", "text": "x"})
    assert "to" in response.context["form"].errors
    response = admin_client.post(timeline(team.sid), {"to": "", "text": "x"})
    assert "to" in response.context["form"].errors  # no recipient chosen: not a broadcast
    assert not Task.objects.filter(from_agent_id=team.admin).exists()


def test_timeline_body_limit(admin_client, team, monkeypatch):
    monkeypatch.setenv("CAFLEET_MAX_BODY_BYTES", "4")
    response = admin_client.post(timeline(team.sid), {"to": team.member, "text": "12345"})
    assert "the limit is 4 bytes" in response.content.decode()
    assert not Task.objects.filter(from_agent_id=team.admin).exists()


def test_timeline_of_a_deleted_session_cannot_send(admin_client, team):
    session_delete(session_ref=team.sid)
    response = admin_client.get(timeline(team.sid))
    assert response.status_code == 200 and response.context["form"] is None
    assert b"This session is deleted" in response.content
    response = admin_client.post(timeline(team.sid), {"to": "*", "text": "x"}, follow=True)
    assert b"its Administrator cannot send" in response.content
    assert not Task.objects.filter(from_agent_id=team.admin).exists()


def test_timeline_needs_permission_to_send(client, team, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="cafleet")
    )
    client.force_login(viewer)
    response = client.get(timeline(team.sid))
    assert response.status_code == 200 and response.context["form"] is None
    assert client.post(timeline(team.sid), {"to": "*", "text": "x"}).status_code == 403
    assert client.get(timeline("0" * 36)).status_code == 404


# ------------------------------------------------------------------------------ time zones
def test_times_show_in_the_viewer_zone(admin_client, team):
    session = Session.objects.get(pk=team.sid)
    created = datetime.fromisoformat(session.created_at)
    admin_client.cookies["tz"] = "Asia/Tokyo"
    html = admin_client.get(changelist(Session)).content.decode()
    tokyo = (created + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S JST")
    assert tokyo in html
    assert f'datetime="{session.created_at}"' in html
    admin_client.cookies["tz"] = "Not/AZone"
    html = admin_client.get(changelist(Session)).content.decode()
    assert created.strftime("%Y-%m-%d %H:%M:%S UTC") in html
    for odd in ("America", "Etc", "x" * 5000, "../../etc/passwd"):
        admin_client.cookies["tz"] = odd
        response = admin_client.get(changelist(Session))
        assert response.status_code == 200, odd
        assert created.strftime("%Y-%m-%d %H:%M:%S UTC") in response.content.decode()


def test_every_page_loads_the_time_zone_script(admin_client, team):
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["cafleet"]),
        changelist(Session),
        change(Session.objects.get(pk=team.sid)),
        changelist(Task),
        timeline(team.sid),
        reverse("admin:password_change"),
    ]
    for url in pages:
        assert b"cafleet/tz.js" in admin_client.get(url).content, url
    assert b"cafleet/tz.js" in Client().get(LOGIN).content
