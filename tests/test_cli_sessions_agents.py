"""``session`` and ``agent`` commands through the entry point, in-process.

Runs on pytest-django's file database. Numbers in test names refer to ``acceptance.md``.
"""

import json
import re

import pytest

from broker.models import Agent, Placement, Session, Task
from tests.cli_helpers import register_argv, send, sid_args
from tests.conftest import make_fleet, place_member

pytestmark = pytest.mark.django_db

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


# ----------------------------------------------------------------------------- sessions
def test_60_61_62_64_session_list(cli, db):
    r = cli("session", "list")
    assert r.out == "No sessions found.\n"
    assert cli("--json", "session", "list").out == "[]\n"
    f1 = make_fleet("alpha")
    f2 = make_fleet(None)
    cli("session", "delete", f2.sid)
    r = cli("session", "list")
    assert r.lines[0] == f"{'SESSION_ID':<40} {'LABEL':<20} {'AGENTS':<8} CREATED_AT"
    created = Session.objects.get(pk=f1.sid).created_at
    assert r.lines[1:] == [f"{f1.sid:<40} {'alpha':<20} {'2':<8} {created}"]
    rows = cli("session", "list", "--json").json
    assert rows == [
        {"session_id": f1.sid, "label": "alpha", "created_at": created, "agent_count": 2}
    ]


def test_63_list_all_rejected(cli):
    assert cli("session", "list", "--all").code == 2


def test_65_66_67_session_show(cli, fleet):
    r = cli("session", "show", fleet.sid)
    created = Session.objects.get(pk=fleet.sid).created_at
    assert r.out == f"session_id: {fleet.sid}\nlabel:      test\ncreated_at: {created}\n"
    data = cli("--json", "session", "show", fleet.sid).json
    assert data == {
        "session_id": fleet.sid,
        "label": "test",
        "created_at": created,
        "deleted_at": None,
        "director_agent_id": fleet.director,
    }
    cli("session", "delete", fleet.sid)
    r = cli("session", "show", fleet.sid, "--json")
    assert TS.fullmatch(r.json["deleted_at"])
    assert cli("session", "show", fleet.sid).lines[-1].startswith("deleted_at: ")
    r = cli("session", "show", "nope")
    assert (r.code, r.err) == (1, "Error: session 'nope' not found.\n")


def test_65_no_label_line(cli, db):
    f = make_fleet(None)
    assert cli("session", "show", f.sid).lines[1] == "label:"


def test_68_to_74_session_delete(cli, fleet):
    b = fleet.register("bob")
    send(cli, fleet, to=b, text="keep me")
    before = list(Task.objects.values())
    r = cli("session", "delete", fleet.sid)
    assert r.out == f"Deleted session {fleet.sid}. Deregistered 3 agents.\n"
    assert (
        cli("session", "delete", fleet.sid).out
        == f"Deleted session {fleet.sid}. Deregistered 0 agents.\n"
    )
    assert not Agent.objects.filter(session_id=fleet.sid, status="active").exists()
    assert not Agent.objects.filter(session_id=fleet.sid, deregistered_at__isnull=True).exists()
    assert not Placement.objects.exists()
    assert list(Task.objects.values()) == before
    r = cli(*register_argv(fleet, "late"))
    assert (r.code, r.err) == (1, f"Error: session {fleet.sid} is deleted\n")
    r = cli("session", "delete", "nope")
    assert (r.code, r.err) == (1, "Error: session 'nope' not found.\n")
    r = cli("--json", "session", "delete", fleet.sid)
    assert r.out.startswith("Deleted session ")


def test_75_register_unknown_session(cli, db):
    r = cli(
        "--session-id", "no-such-session", "agent", "register", "--name", "n", "--description", "d"
    )
    assert (r.code, r.err) == (1, "Error: Session 'no-such-session' not found.\n")


# ----------------------------------------------------------------------------- agents
def test_76_77_79_register(cli, fleet):
    r = cli(*register_argv(fleet, "bob"))
    assert r.lines[0] == "Agent registered successfully!"
    assert re.fullmatch(r"  agent_id:  [0-9a-f-]{36}", r.lines[1])
    assert r.lines[2] == "  name:      bob"
    data = cli("--json", *register_argv(fleet, "c")).json
    assert list(data) == ["agent_id", "name", "registered_at"]
    assert TS.fullmatch(data["registered_at"])


def test_78_skills(cli, fleet):
    r = cli("--json", *register_argv(fleet, "s", "d", "--skills", '[{"name":"x"}]'))
    card = json.loads(Agent.objects.get(pk=r.json["agent_id"]).agent_card_json)
    assert card == {"name": "s", "description": "d", "skills": [{"name": "x"}]}
    r = cli(*register_argv(fleet, "s", "d", "--skills", "not json"))
    assert r.code == 1 and r.err.startswith("Error: Invalid JSON in --skills: ")


@pytest.mark.parametrize("name", ["Administrator", "administrator", " ADMINISTRATOR "])
def test_80_reserved_name(cli, fleet, name):
    count = Agent.objects.count()
    r = cli(*register_argv(fleet, name))
    assert (r.code, r.err) == (1, "Error: the name 'Administrator' is reserved.\n")
    assert Agent.objects.count() == count


def test_81_82_protected_agents(cli, fleet):
    r = cli(*sid_args(fleet), "agent", "deregister", "--agent-id", fleet.director)
    assert (r.code, r.err) == (
        1,
        "Error: cannot deregister the root Director; use 'cafleet session delete' instead.\n",
    )
    r = cli(*sid_args(fleet), "agent", "deregister", "--agent-id", fleet.admin)
    assert (r.code, r.err) == (1, "Error: Administrator cannot be deregistered\n")
    assert Agent.objects.filter(status="active").count() == 2
    assert Placement.objects.filter(agent_id=fleet.director).exists()


def test_83_84_deregister(cli, fleet):
    b = place_member(fleet.sid, fleet.director, "bob", None).agent_id
    r = cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    assert r.out == "Agent deregistered successfully.\n"
    assert not Placement.objects.filter(agent_id=b).exists()
    r = cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    assert (r.code, r.err) == (1, f"Error: agent {b} not found or already deregistered.\n")
    c = fleet.register("carl")
    assert cli("--json", *sid_args(fleet), "agent", "deregister", "--agent-id", c).json == {
        "status": "deregistered"
    }


def test_85_86_87_90_agent_list(cli, fleet):
    b = fleet.register("bob", "d" * 70)
    c = fleet.register("carl")
    cli(*sid_args(fleet), "agent", "deregister", "--agent-id", c)
    r = cli(*sid_args(fleet), "agent", "list", "--agent-id", fleet.director)
    ids = sorted([fleet.director, fleet.admin], key=lambda x: x)
    names = {fleet.director: "Director", fleet.admin: "Administrator"}
    expected = [f"{i[:8]} {names[i]} active" for i in ids] + [f"{b[:8]} bob active"]
    assert r.out == "\n\n".join(expected) + "\n"
    items = cli("--json", *sid_args(fleet), "agent", "list", "--agent-id", fleet.director).json
    assert [set(i) for i in items] == [{"id", "name", "description", "status"}] * 3
    assert items[2]["description"] == "d" * 60 + "…" and len(items[2]["id"]) == 8
    other = make_fleet("other")
    r = cli(*sid_args(fleet), "agent", "list", "--agent-id", other.director)
    assert r.err == f"Error: agent {other.director} is not a member of session {fleet.sid}.\n"


def test_88_89_agent_list_full(cli, fleet):
    b = fleet.register("bob", "d" * 70)
    items = cli("--json", *sid_args(fleet), "agent", "list", "--agent-id", b, "--full").json
    assert list(items[-1]) == [
        "agent_id",
        "name",
        "description",
        "status",
        "registered_at",
        "agent_card",
    ]
    assert items[-1]["description"] == "d" * 70
    assert items[-1]["agent_card"] == {"name": "bob", "description": "d" * 70, "skills": []}
    text = cli(*sid_args(fleet), "agent", "list", "--agent-id", b, "--full").out
    block = text.split("\n\n")[-1].splitlines()
    assert block == [
        f"  agent_id:    {b}",
        "  name:        bob",
        f"  description: {'d' * 70}",
        "  status:      active",
        '  agent_card:  {"name":"bob","description":"' + "d" * 70 + '","skills":[]}',
    ]


def test_91_92_93_agent_show(cli, fleet):
    b = fleet.register("bob")
    data = cli(
        "--json", *sid_args(fleet), "agent", "show", "--agent-id", b, "--id", fleet.director
    ).json
    assert data["coding_agent"] == "claude" and data["name"] == "Director"
    assert (
        "coding_agent"
        not in cli("--json", *sid_args(fleet), "agent", "show", "--agent-id", b, "--id", b).json
    )
    full = cli(
        "--json", *sid_args(fleet), "agent", "show", "--agent-id", b, "--id", fleet.admin, "--full"
    ).json
    assert list(full) == [
        "agent_id",
        "name",
        "description",
        "status",
        "registered_at",
        "kind",
        "placement",
        "agent_card",
    ]
    assert full["kind"] == "builtin-administrator" and full["placement"] is None
    d = cli(
        "--json",
        *sid_args(fleet),
        "agent",
        "show",
        "--agent-id",
        b,
        "--id",
        fleet.director,
        "--full",
    ).json
    assert d["kind"] == "user" and d["placement"]["director_agent_id"] is None
    cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", b)
    assert r.err == f"Error: Agent {b} not found\n"


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--name", "a\x1b[31mb"),
        ("--name", "tab\there"),
        ("--description", "x\x7f"),
        ("--description", "\x85"),
    ],
)
def test_231_control_characters_refused(cli, fleet, flag, value):
    argv = {"--name": "ok", "--description": "ok"}
    argv[flag] = value
    count = Agent.objects.count()
    r = cli(
        *sid_args(fleet),
        "agent",
        "register",
        "--name",
        argv["--name"],
        "--description",
        argv["--description"],
    )
    assert r.code == 2 and r.err.endswith(f"Error: {flag} may not contain control characters.\n")
    assert Agent.objects.count() == count
