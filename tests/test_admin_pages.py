"""The Django admin pages, through Django's test client (in-process, test database).

Read-only ModelAdmins (no hard deletes), list columns and filters, links between pages and
the soft-delete action.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from broker import admin_views
from broker.models import Agent, AgentStatus, Placement, Session, Task, TaskType
from broker.services import agent_register, session_delete
from tests import admin_helpers
from tests.admin_helpers import change, changelist, rows, send, stamp, timeline
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db

team = admin_helpers.team  # the shared fixture, requested by name


# ------------------------------------------------------------------------------ read-only
@pytest.mark.parametrize(
    "model", [Session, Agent, Task, Placement], ids=["session", "agent", "task", "placement"]
)
def test_model_admins_refuse_add_change_delete(model, rf, admin_user):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = admin_user
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)
    for inline in model_admin.get_inline_instances(request):
        assert not inline.has_add_permission(request, None)
        assert not inline.has_change_permission(request)
        assert not inline.has_delete_permission(request)


def test_delete_and_change_views_are_refused(admin_client, team):
    task = Task.objects.get(pk=team.hello.task_id)
    objects = [Session.objects.get(pk=team.sid), Agent.objects.get(pk=team.plain), task]
    for obj in objects:
        url = change(obj)
        assert admin_client.get(url).status_code == 200  # viewable
        assert admin_client.post(url, {"label": "x"}).status_code == 403
        delete = reverse(f"admin:cafleet_{obj._meta.model_name}_delete", args=[obj.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()
    add = reverse("admin:cafleet_task_add")
    assert admin_client.post(add, {"text": "x"}).status_code == 403


def test_bulk_delete_action_does_nothing(admin_client, team):
    before = Task.objects.count()
    response = admin_client.post(
        changelist(Task),
        {"action": "delete_selected", "_selected_action": [team.hello.task_id], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert Task.objects.count() == before
    response = admin_client.post(
        changelist(Session),
        {"action": "delete_selected", "_selected_action": [team.sid], "post": "yes"},
    )
    assert Session.objects.filter(pk=team.sid).exists()
    assert Agent.objects.filter(session_id=team.sid).count() == 4


# ------------------------------------------------------------------------------ sessions
def test_session_list_columns(admin_client, team):
    other = make_fleet(label="other")
    session_delete(session_ref=other.sid)
    response = admin_client.get(changelist(Session))
    assert response.status_code == 200
    by_id = {s.session_id: s for s in rows(response)}
    live = by_id[team.sid]
    # Director, Administrator, builder, reviewer; unread: reply + 2 broadcast deliveries.
    assert live.active_count == 4
    assert live.unread_count == 3
    assert by_id[other.sid].active_count == 0
    html = response.content.decode()
    assert "test" in html and "other" in html
    assert reverse("admin:cafleet_agent_change", args=[team.director]) in html
    assert timeline(team.sid) in html


@pytest.mark.parametrize(
    ("state", "expected"), [("live", {"test"}), ("deleted", {"gone"}), ("", {"test", "gone"})]
)
def test_session_live_deleted_filter(admin_client, fleet, state, expected):
    gone = make_fleet(label="gone")
    session_delete(session_ref=gone.sid)
    response = admin_client.get(changelist(Session), {"state": state} if state else {})
    assert {s.label for s in rows(response)} == expected


def test_session_detail_has_agent_and_placement_inlines(admin_client, team):
    response = admin_client.get(change(Session.objects.get(pk=team.sid)))
    html = response.content.decode()
    formsets = [f.formset for f in response.context["inline_admin_formsets"]]
    agents, placements = formsets
    assert {form.instance.name for form in agents.forms} == {
        "Director",
        "Administrator",
        "builder",
        "reviewer",
    }
    assert {form.instance.name for form in placements.forms} == {"Director", "builder"}
    assert "%2" in html and "codex" in html
    assert timeline(team.sid) in html
    assert 'name="_save"' not in html  # view only


def test_soft_delete_action_confirms_then_calls_the_service(admin_client, team):
    data = {"action": "soft_delete", "_selected_action": [team.sid]}
    response = admin_client.post(changelist(Session), data)
    assert response.status_code == 200
    assert b"Soft-delete these sessions?" in response.content
    assert Session.objects.get(pk=team.sid).deleted_at is None

    response = admin_client.post(changelist(Session), {**data, "confirm": "yes"}, follow=True)
    assert b"Soft-deleted 1 session; 4 agents deregistered." in response.content
    session = Session.objects.get(pk=team.sid)
    assert session.deleted_at is not None
    assert not Agent.objects.filter(session=session, status=AgentStatus.ACTIVE).exists()
    assert not Placement.objects.filter(agent__session=session).exists()
    assert Task.objects.filter(context__session=session).count() == 6  # tasks are kept
    assert LogEntry.objects.filter(object_id=team.sid).count() == 1

    response = admin_client.post(changelist(Session), data)
    assert b"already deleted" in response.content


# ------------------------------------------------------------------------------ agents
def test_agent_list_kinds_and_links(admin_client, team):
    response = admin_client.get(changelist(Agent))
    model_admin = admin.site._registry[Agent]
    kinds = {a.name: model_admin.kind(a) for a in rows(response)}
    assert kinds == {
        "Director": "Director",
        "Administrator": "Administrator",
        "builder": "member",
        "reviewer": "agent",
    }
    html = response.content.decode()
    assert f"?inbox={team.member}" in html and f"?outbox={team.member}" in html
    assert "%2" in html and "(pending)" not in html


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("director", {"Director"}),
        ("administrator", {"Administrator"}),
        ("member", {"builder"}),
        ("agent", {"reviewer"}),
    ],
)
def test_agent_kind_filter(admin_client, team, kind, names):
    response = admin_client.get(changelist(Agent), {"kind": kind})
    assert {a.name for a in rows(response)} == names


def test_agent_filters_and_search(admin_client, team):
    other = make_fleet(label="other")
    agent_register(session_id=other.sid, name="builder-two", description="x", skills_json=None)
    response = admin_client.get(changelist(Agent), {"q": "builder"})
    assert {a.name for a in rows(response)} == {"builder", "builder-two"}
    response = admin_client.get(changelist(Agent), {"session__session_id__exact": other.sid})
    assert {a.name for a in rows(response)} == {"Director", "Administrator", "builder-two"}
    response = admin_client.get(changelist(Agent), {"placement__coding_agent": "codex"})
    assert {a.name for a in rows(response)} == {"builder"}
    session_delete(session_ref=other.sid)
    response = admin_client.get(changelist(Agent), {"status__exact": "deregistered"})
    assert {a.name for a in rows(response)} == {"Director", "Administrator", "builder-two"}


def test_agent_detail_links_to_inbox_outbox_and_timeline(admin_client, team):
    response = admin_client.get(change(Agent.objects.get(pk=team.member)))
    html = response.content.decode()
    assert f"{changelist(Task)}?inbox={team.member}" in html
    assert f"{changelist(Task)}?outbox={team.member}" in html
    assert f"{timeline(team.sid)}?to={team.member}" in html
    assert "builtin" not in html  # a plain card
    assert "%2" in html  # the placement inline


# ------------------------------------------------------------------------------ messages
def test_message_list_shows_names_states_and_previews(admin_client, team):
    response = admin_client.get(changelist(Task))
    assert response.status_code == 200
    model_admin = admin.site._registry[Task]
    shown = {t.task_id: t for t in rows(response)}
    assert len(shown) == 6
    hello = shown[team.hello.task_id]
    assert model_admin.sender(hello).endswith(">Director</a>")
    assert model_admin.recipient(hello).endswith(">builder</a>")
    assert admin_views.state_label(hello) == "acknowledged"
    assert admin_views.state_label(shown[team.reply.task_id]) == "unread"
    assert admin_views.state_label(shown[team.oops.task_id]) == "canceled"
    assert model_admin.recipient(shown[team.summary.task_id]) == "everyone (broadcast)"
    html = response.content.decode()
    assert "hello builder second line" in html  # the preview flattens line breaks
    assert "Messages (tasks)" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "input_required"}, {"on it", "standup now"}),
        ({"state": "completed"}, {"hello builder\nsecond line"}),
        ({"state": "canceled"}, {"never mind"}),
        ({"type__exact": "broadcast_summary"}, {"Broadcast sent to 2 recipients"}),
        ({"q": "BUILDER"}, {"hello builder\nsecond line"}),
        ({"q": "<hello>"}, {"hello builder\nsecond line"}),
    ],
    ids=["unread", "acknowledged", "canceled", "summary", "search", "id-prefix"],
)
def test_message_filters(admin_client, team, params, expected):
    if params.get("q") == "<hello>":
        params = {"q": team.hello.task_id[:8]}
    response = admin_client.get(changelist(Task), params)
    assert {t.text for t in rows(response)} == expected


def test_message_session_filter(admin_client, team):
    other = make_fleet(label="other")
    send(other, other.director, other.admin, "elsewhere")
    response = admin_client.get(changelist(Task), {"session": other.sid})
    assert [t.text for t in rows(response)] == ["elsewhere"]
    response = admin_client.get(changelist(Task), {"session": team.sid})
    assert len(rows(response)) == 6


def test_message_age_filter(admin_client, team):
    now = datetime.now(UTC)
    Task.objects.filter(pk=team.hello.pk).update(created_at=stamp(now - timedelta(hours=2)))
    Task.objects.filter(pk=team.reply.pk).update(created_at=stamp(now - timedelta(days=3)))
    Task.objects.filter(pk=team.oops.pk).update(created_at=stamp(now - timedelta(days=30)))
    ages = {}
    for age in ("hour", "today", "week"):
        ages[age] = {t.task_id for t in rows(admin_client.get(changelist(Task), {"age": age}))}
    recent = {t.task_id for t in Task.objects.filter(origin_task_id=team.summary.task_id)}
    assert ages["hour"] == recent
    assert ages["week"] == recent | {team.hello.task_id, team.reply.task_id}
    # "today" starts at the viewer's midnight: 2 hours ago may or may not be today.
    assert recent <= ages["today"] <= recent | {team.hello.task_id}


def test_message_age_today_uses_the_viewer_zone(admin_client, team):
    # 30 minutes ago: "today" in any zone whose midnight is not within the last 30 minutes.
    now = datetime.now(UTC)
    Task.objects.filter(pk=team.hello.pk).update(created_at=stamp(now - timedelta(hours=20)))
    admin_client.cookies["tz"] = "Pacific/Kiritimati"  # UTC+14
    kiri = {t.task_id for t in rows(admin_client.get(changelist(Task), {"age": "today"}))}
    local_hour = (now + timedelta(hours=14)).hour
    assert (team.hello.task_id in kiri) == (local_hour >= 20)


def test_inbox_and_outbox_filters(admin_client, team):
    response = admin_client.get(changelist(Task), {"inbox": team.member})
    assert [t.text for t in rows(response)] == ["standup now", "hello builder\nsecond line"]
    assert "builder (" in response.content.decode()  # the active filter names the agent
    response = admin_client.get(changelist(Task), {"outbox": team.member})
    assert [t.text for t in rows(response)] == ["on it"]
    response = admin_client.get(changelist(Task), {"inbox": "0" * 8})
    assert rows(response) == []


def test_message_detail_full_body_and_broadcast_group(admin_client, team):
    long_body = "line one\n" + "x" * 5000 + "\n<script>alert(1)</script>"
    task = send(team, team.director, team.member, long_body)
    html = admin_client.get(change(task)).content.decode()
    assert "x" * 5000 in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html

    delivery = Task.objects.filter(
        origin_task_id=team.summary.task_id, type=TaskType.UNICAST
    ).first()
    html = admin_client.get(change(delivery)).content.decode()
    group = Task.objects.filter(origin_task_id=team.summary.task_id)
    assert group.count() == 3
    for row in group:
        assert change(row) in html
    assert "standup now" in html
    for name in ("builder", "reviewer", "everyone"):
        assert f"<td>{name}</td>" in html
