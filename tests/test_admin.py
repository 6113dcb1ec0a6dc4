"""The Django admin, through Django's test client (in-process, test database).

Read-only ModelAdmins (no hard deletes), list columns and filters, links between pages,
the session timeline and its send form, the soft-delete action, times in the viewer's
zone, login-required on every admin URL, CSRF, and the one-time login link.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from broker import admin_views, loginlink
from broker.models import Agent, AgentStatus, Placement, Session, Task, TaskState, TaskType
from broker.services import (
    agent_register,
    message_ack,
    message_broadcast,
    message_cancel,
    message_send,
    session_delete,
)
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db

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


# ------------------------------------------------------------------------------ access
SAMPLES = ("1", "cafleet", "x")
_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")


def _concrete(pattern) -> str:
    """A path that ``pattern`` (RoutePattern or RegexPattern) matches."""
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:(\w+):)?\w+>", lambda m: "1" if m.group(1) == "int" else "x", str(pattern)
        )
    regex = pattern._regex.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    return _GROUP.sub(lambda m: next(s for s in SAMPLES if re.fullmatch(m.group(2), s)), regex)


def _sample_urls() -> list[tuple[str, str]]:
    """(URL, name) for every pattern of the URLconf, crawled from the resolver."""
    found = set()

    def walk(patterns, prefix):
        for entry in patterns:
            here = prefix + _concrete(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, here)
            elif isinstance(entry, URLPattern):
                found.add((here, entry.name or ""))

    walk(get_resolver().url_patterns, "/")
    return sorted(found)


def test_url_crawl_covers_the_admin():
    names = {name for _, name in _sample_urls()}
    assert {
        "index",
        "logout",
        "cafleet_session_timeline",
        "cafleet_task_changelist",
        "cafleet_agent_change",
        "cafleet_session_delete",
        "app_list",
        "view_on_site",
        "cafleet-login-link",
        "auth_user_changelist",
    } <= names
    assert len(_sample_urls()) > 40


def test_anonymous_requests_end_at_the_login_page(client, team):
    crawled = 0
    for url, name in _sample_urls():
        if name == "login":
            continue
        for method in (client.get, client.post):
            response = method(url, follow=True)
            assert response.status_code == 200, (url, response.status_code)
            final = response.redirect_chain[-1][0] if response.redirect_chain else url
            assert final.startswith(LOGIN), (url, final)
            assert b'id="login-form"' in response.content, url
        crawled += 1
    assert crawled > 40


def test_anonymous_timeline_and_send_redirect_to_login(client, team):
    response = client.post(timeline(team.sid), {"to": "*", "text": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")
    assert not Task.objects.filter(from_agent_id=team.admin).exists()


def test_root_redirects_to_admin(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_post_without_csrf_token_is_refused(admin_user, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(timeline(team.sid), {"to": "*", "text": "x"}).status_code == 403
    assert (
        client.post(
            changelist(Session),
            {"action": "soft_delete", "_selected_action": [team.sid], "confirm": "yes"},
        ).status_code
        == 403
    )
    assert Session.objects.get(pk=team.sid).deleted_at is None
    assert not Task.objects.filter(from_agent_id=team.admin).exists()
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(LOGIN, {"username": "admin", "password": "password"}).status_code == 403


def test_post_with_csrf_token_works(admin_user, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(timeline(team.sid)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        timeline(team.sid), {"to": team.plain, "text": "with token", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Task.objects.filter(from_agent_id=team.admin, text="with token").exists()


def test_login_page_explains_how_to_get_in(client):
    html = client.get(LOGIN).content.decode()
    assert "one-time login link" in html and "cafleet django changepassword" in html


# ------------------------------------------------------------------------------ login link
def test_login_link_logs_in_once(client, admin_user):
    token = loginlink.issue(admin_user.pk)
    url = loginlink.login_path(token)
    assert url == f"/admin/login/link/{token}/"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and page.context["user"] == admin_user

    again = Client().get(url, follow=True)
    assert again.redirect_chain[-1][0].startswith(LOGIN)
    assert b"already used or has expired" in again.content
    assert not again.context["user"].is_authenticated


def test_login_link_refuses_inactive_or_unknown_users(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="x-pw-123", is_staff=False)
    for pk in (user.pk, 999999):
        response = client.get(loginlink.login_path(loginlink.issue(pk)))
        assert response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_login_link_is_spent_only_by_get(client, admin_user):
    url = loginlink.login_path(loginlink.issue(admin_user.pk))
    for method in (client.head, client.post):
        response = method(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session
    assert client.get(url)["Location"] == "/admin/"
    assert "_auth_user_id" in client.session


def test_login_link_tokens_expire_and_are_single_use():
    clock = [1000.0]
    token = loginlink.issue(7, clock=lambda: clock[0])
    clock[0] += loginlink.VALID_SECONDS - 1
    assert loginlink.redeem(token, clock=lambda: clock[0]) == 7
    assert loginlink.redeem(token, clock=lambda: clock[0]) is None

    late = loginlink.issue(8, clock=lambda: clock[0])
    clock[0] += loginlink.VALID_SECONDS
    assert loginlink.redeem(late, clock=lambda: clock[0]) is None
    assert loginlink.redeem("", clock=lambda: clock[0]) is None
    assert loginlink.redeem("nope" * 100) is None
    assert loginlink.VALID_SECONDS == 15 * 60
