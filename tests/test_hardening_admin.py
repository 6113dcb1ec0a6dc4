"""The admin, as a first-time user found it (issue 11 item 19), through Django's test client.

The messages list refreshes itself and lets its body column wrap; one word per message state
everywhere (``unread``, never ``input_required``); member created/deleted events in the
timeline; a deleted member keeps its kind; cafleet's own models come first on the index.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.urls import reverse

from broker import members
from broker.models import Agent, MemberEvent, Task
from broker.services import message_send, session_delete

pytestmark = pytest.mark.django_db


class FakeTmux:
    """What ``member delete --force`` calls."""

    def __init__(self):
        self.calls = []

    def kill_pane(self, pane):
        self.calls.append(("kill", pane))

    def select_layout(self, window):
        self.calls.append(("layout", window))


def spawn(fleet, name: str, pane: str, director=None) -> Agent:
    """A member as ``member create`` leaves it (registration, then the pane id)."""
    agent, _ = members._register(
        session_id=fleet.sid,
        director_ref=director or fleet.director,
        name=name,
        description=f"{name} works",
        coding_agent="codex",
        caller=("cafleet-test", "@1", fleet.pane),
    )
    assert members._record_pane(agent.agent_id, pane)
    return agent


def force_delete(fleet, agent: Agent) -> None:
    members.member_delete(
        session_id=fleet.sid,
        agent_ref=fleet.director,
        member_ref=agent.agent_id,
        force=True,
        tmux=FakeTmux(),
    )


@pytest.fixture
def crew(fleet):
    fleet.alice = spawn(fleet, "alice", "%5")
    fleet.bob = spawn(fleet, "bob", "%6")
    fleet.task, _ = message_send(
        session_id=fleet.sid,
        agent_ref=fleet.director,
        to_ref=fleet.alice.agent_id,
        text="please start",
        limit=200,
    )
    force_delete(fleet, fleet.alice)
    return fleet


def timeline_url(sid: str) -> str:
    return reverse("admin:cafleet_session_timeline", args=[sid])


# ----------------------------------------------------------------------------- member events
def test_member_events_are_recorded(crew):
    rows = list(
        MemberEvent.objects.filter(agent_id=crew.alice.agent_id)
        .order_by("id")
        .values_list("event", "tmux_pane_id", "coding_agent", "note", "director_agent_id")
    )
    assert rows == [
        ("created", "%5", "codex", "", crew.director),
        ("deleted", "%5", "codex", "%5 (killed)", crew.director),
    ]
    session_delete(session_ref=crew.sid)
    bob = list(MemberEvent.objects.filter(agent_id=crew.bob.agent_id).values_list("event", "note"))
    assert bob == [("created", ""), ("deleted", "session deleted")]
    # the root Director and the Administrator are not members: no events
    assert not MemberEvent.objects.filter(agent_id__in=[crew.director, crew.admin]).exists()


def test_timeline_shows_member_created_and_deleted(admin_client, crew):
    response = admin_client.get(timeline_url(crew.sid))
    assert response.status_code == 200
    kinds = [(e.kind, e.target.name if e.target else None) for e in response.context["events"]]
    assert kinds == [
        ("member-created", "alice"),
        ("member-created", "bob"),
        ("sent", "alice"),
        ("member-deleted", "alice"),
    ]
    html = response.content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Director created member alice codex, pane %5" in text
    assert "member alice deleted %5 (killed)" in text
    fragment = admin_client.get(timeline_url(crew.sid), {"fragment": "1"}).content.decode()
    assert fragment.count("cafleet-member-created") == 2
    assert fragment.count("cafleet-member-deleted") == 1


def test_a_deleted_member_keeps_its_kind(admin_client, crew):
    agents = reverse("admin:cafleet_agent_changelist")
    response = admin_client.get(agents)
    kinds = {row.name: row for row in response.context["cl"].result_list}
    from broker.admin_views import agent_kind

    assert agent_kind(kinds["alice"]) == "member"  # deregistered, placement gone
    assert agent_kind(kinds["bob"]) == "member"
    html = response.content.decode()
    alice_row = next(r for r in html.split("<tr") if ">alice<" in r)
    assert '<td class="field-kind">member</td>' in alice_row
    assert "agent</td>" not in alice_row.replace("field-kind", "")
    only_members = admin_client.get(agents, {"kind": "member"})
    assert {a.name for a in only_members.context["cl"].result_list} == {"alice", "bob"}
    plain = admin_client.get(agents, {"kind": "agent"})
    assert {a.name for a in plain.context["cl"].result_list} == set()
    detail = admin_client.get(reverse("admin:cafleet_agent_change", args=[crew.alice.pk]))
    assert re.search(r"Kind:</label>\s*<div class=\"readonly\">member</div>", detail.text)
    # the session page's agents inline says member too
    session_page = admin_client.get(reverse("admin:cafleet_session_change", args=[crew.sid]))
    kinds = re.findall(r'field-kind">\s*<p>([^<]*)</p>', session_page.text)
    assert sorted(kinds) == ["Administrator", "Director", "member", "member"], kinds


# ----------------------------------------------------------------------------- state words
def test_message_page_uses_the_state_word_everywhere(admin_client, crew):
    task = Task.objects.get(pk=crew.task.pk)
    assert str(task) == f"{task.task_id[:8]} unicast unread"
    page = admin_client.get(reverse("admin:cafleet_task_change", args=[task.pk]))
    assert page.status_code == 200
    assert "input_required" not in page.text
    title = re.search(r"<title>(.*?)</title>", page.text, re.S).group(1)
    assert "unread" in title
    listing = admin_client.get(reverse("admin:cafleet_task_changelist"))
    visible = re.sub(r'(href|value|name|id|class)="[^"]*"', "", listing.text)
    assert "input_required" not in visible
    assert "unread" in visible


def test_task_words():
    task = SimpleNamespace(type="unicast", origin_task_id=None, status_state="completed")
    assert Task.state_word.fget(task) == "acknowledged"
    assert Task.kind_word.fget(task) == "unicast"
    summary = SimpleNamespace(type="broadcast_summary", origin_task_id=None, status_state="x")
    assert (Task.state_word.fget(summary), Task.kind_word.fget(summary)) == (
        "sent",
        "broadcast summary",
    )


# ----------------------------------------------------------------------------- messages list
def test_messages_list_loads_the_refresh_script(admin_client, crew):
    listing = admin_client.get(reverse("admin:cafleet_task_changelist"))
    assert "cafleet/changelist.js" in listing.text
    assert "cafleet/tz.js" in listing.text and "cafleet/admin.css" in listing.text
    assert 'id="changelist-form"' in listing.text  # what the script swaps in
    # other lists do not refresh themselves
    agents = admin_client.get(reverse("admin:cafleet_agent_changelist"))
    assert "cafleet/changelist.js" not in agents.text


def test_refresh_script_and_stylesheet_are_served(admin_client):
    from django.contrib.staticfiles import finders

    script = open(finders.find("cafleet/changelist.js"), encoding="utf-8").read()
    assert "changelist-form" in script and "model-task" in script
    css = open(finders.find("cafleet/admin.css"), encoding="utf-8").read()
    assert "td.field-body_preview" in css


# ----------------------------------------------------------------------------- index
def test_index_lists_cafleet_models_before_groups_and_users(admin_client, crew):
    page = admin_client.get(reverse("admin:index"))
    apps = page.context["app_list"]
    assert apps[0]["app_label"] == "cafleet"
    assert [m["object_name"] for m in apps[0]["models"]] == [
        "Session",
        "Agent",
        "Task",
        "Placement",
    ][: len(apps[0]["models"])]
    html = page.text
    assert html.index("/admin/cafleet/session/") < html.index("/admin/auth/group/")
    assert html.index("/admin/cafleet/task/") < html.index("/admin/auth/user/")
