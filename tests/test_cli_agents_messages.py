"""Commands through the entry point, in-process, on pytest-django's file database.

Numbers in test names refer to ``acceptance.md``.
"""

import json
import re

import pytest

from broker.models import Agent, Placement, Session, Task
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def sid_args(fleet):
    return ("--session-id", fleet.sid)


# ----------------------------------------------------------------------------- global
def test_04_05_session_id_required(cli):
    expected = (
        "Error: --session-id <uuid> is required for this subcommand. Create a session "
        "with 'cafleet session create' and pass its id.\n"
    )
    for argv in (
        ["agent", "list", "--agent-id", "X"],
        ["agent", "register", "--name", "n", "--description", "d"],
        ["message", "poll", "--agent-id", "X"],
        ["member", "list", "--agent-id", "X"],
        ["--session-id", "", "agent", "list", "--agent-id", "X"],
    ):
        r = cli(*argv)
        assert (r.code, r.out, r.err) == (1, "", expected), argv


def test_06_session_id_ignored_by_session_list(cli, fleet):
    r = cli("--session-id", "whatever", "session", "list")
    assert r.code == 0 and fleet.sid in r.out


def test_08_09_misplaced_flags(cli, fleet):
    r = cli("agent", "list", "--json", "--agent-id", fleet.director)
    assert r.code == 2 and "\nError: No such option: --json\nGlobal flags " in r.err
    r = cli("agent", "list", "--session-id", fleet.sid, "--agent-id", fleet.director)
    assert r.code == 2 and "\nError: No such option: --session-id\nGlobal flags " in r.err
    r = cli("--agent-id", fleet.director, "agent", "list")
    assert r.code == 2 and r.err.endswith("Error: No such option: --agent-id\n")


def test_10_missing_agent_id_usage_block(cli, fleet):
    r = cli(*sid_args(fleet), "agent", "list")
    lines = r.err.splitlines()
    assert r.code == 2 and r.out == ""
    assert lines[0].startswith("Usage: cafleet agent list")
    assert lines[1] == "Try 'cafleet agent list --help' for help."
    assert lines[2] == ""
    assert lines[3] == "Error: Missing option '--agent-id'."


def test_14_15_max_text_len(cli, fleet, monkeypatch):
    b = fleet.register("bob")
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "50")
    r = cli(
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        b,
        "--text",
        "x" * 80,
    )
    assert r.lines[-1] == "x" * 50 + "…"
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "abc")
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b)
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        "Error: invalid value for CAFLEET_MAX_TEXT_LEN: 'abc' (expected a positive integer).\n"
    )


def test_15_bad_max_text_len_on_send_writes_nothing(cli, fleet, monkeypatch):
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "0")
    r = cli(
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        fleet.admin,
        "--text",
        "hi",
    )
    assert r.code == 1 and Task.objects.count() == 0


def test_16_17_18_19_json_modes(cli, fleet):
    b = fleet.register("bøb", "a" * 70)
    r = cli("--json", *sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", b)
    assert r.code == 0 and r.out.count("\n") == 1 and ", " not in r.out and ": " not in r.out
    assert '"description":"' + "a" * 60 + '…"' in r.out and "bøb" in r.out  # UTF-8, no \u
    pretty = cli(
        *sid_args(fleet),
        "--json",
        "--pretty",
        "agent",
        "show",
        "--agent-id",
        fleet.director,
        "--id",
        b,
    )
    assert pretty.out.startswith('{\n  "id": ')
    assert json.loads(pretty.out) == r.json
    text = cli(
        *sid_args(fleet), "--pretty", "agent", "show", "--agent-id", fleet.director, "--id", b
    )
    assert text.out == f"{b[:8]} bøb active\n"


def test_20_timestamps_always_32_chars(cli, fleet, monkeypatch):
    from datetime import UTC, datetime

    import broker.clock as clock

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 5, 5, 12, 0, 0, 0, tzinfo=UTC)

    monkeypatch.setattr(clock, "datetime", Frozen)
    r = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        fleet.admin,
        "--text",
        "x",
    )
    assert r.json["task"]["ts"] == "2026-05-05T12:00:00.000000+00:00"


# ----------------------------------------------------------------------------- errors
def test_21_22_runtime_error_forms(cli, fleet):
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", "nobody11")
    assert (r.code, r.out, r.err) == (1, "", "Error: Agent nobody11 not found\n")
    r = cli(
        "--json",
        *sid_args(fleet),
        "agent",
        "show",
        "--agent-id",
        fleet.director,
        "--id",
        "nobody11",
    )
    assert (r.code, r.out) == (1, "")
    assert r.err == '{"error":"Agent nobody11 not found","exit_code":1}\n'


def test_23_24_usage_error_in_json(cli):
    r = cli("--json", "--pretty", "agent", "list")
    assert (r.code, r.out) == (2, "")
    assert r.err == '{"error":"Missing option \'--agent-id\'.","exit_code":2}\n'


def test_27_debug_traceback(cli, fleet, monkeypatch):
    import broker.services as services

    def boom(**kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(services, "agent_list", boom)
    r = cli(*sid_args(fleet), "agent", "list", "--agent-id", fleet.director)
    assert (r.code, r.err) == (1, "Error: kaput\n")
    monkeypatch.setenv("CAFLEET_DEBUG", "1")
    r = cli(*sid_args(fleet), "agent", "list", "--agent-id", fleet.director)
    assert r.code == 1 and "Traceback (most recent call last)" in r.err
    assert r.err.rstrip().splitlines()[-1] == "Error: kaput"


def test_28_quiet_full_exclusive(cli, fleet):
    for argv in (
        ["message", "send", "--agent-id", "a", "--to", "b", "--text", "x"],
        ["message", "ack", "--agent-id", "a", "--task-id", "t"],
    ):
        r = cli(*sid_args(fleet), *argv, "--quiet", "--full")
        assert r.code == 2
        assert r.err.endswith("Error: --quiet and --full are mutually exclusive.\n")


# ----------------------------------------------------------------------------- id prefixes
def test_29_34_35_prefixes_and_case(cli, fleet):
    b = fleet.register("bob")
    r = cli(
        *sid_args(fleet),
        "--json",
        "message",
        "send",
        "--agent-id",
        fleet.director[:8],
        "--to",
        b[:8].upper(),
        "--text",
        "hi",
    )
    tid8 = r.json["task"]["id"]
    task = Task.objects.get(task_id__startswith=tid8)
    assert task.context_id == b and task.from_agent_id == fleet.director  # full ids stored
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b[:8], "--task-id", tid8)
    assert r.code == 0
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b[:8], "--task-id", tid8.upper())
    assert r.err == "Error: Cannot ACK task in state completed\n"
    r = cli(
        "--session-id",
        fleet.sid[:8].upper(),
        "agent",
        "show",
        "--agent-id",
        fleet.director[:10],
        "--id",
        b[:8],
    )
    assert r.out == f"{b[:8]} bob active\n"
    r = cli(
        *sid_args(fleet), "message", "show", "--agent-id", fleet.admin[:8], "--task-id", "deadbeef"
    )
    assert r.err == "Error: Task deadbeef not found\n"
    r = cli(*sid_args(fleet), "agent", "list", "--agent-id", "ffffffff-nope")
    assert r.err == f"Error: agent ffffffff-nope is not a member of session {fleet.sid}.\n"


def test_30_session_prefix(cli, fleet):
    r = cli("session", "show", fleet.sid[:8])
    assert r.lines[0] == f"session_id: {fleet.sid}"
    r = cli("session", "delete", fleet.sid[:8])
    assert r.out == f"Deleted session {fleet.sid}. Deregistered 2 agents.\n"


def test_31_ambiguous_prefix(cli, fleet):
    a1 = Agent.objects.create(
        agent_id="abcdef01-0000-4000-8000-000000000001",
        session_id=fleet.sid,
        name="x",
        description="",
        registered_at="2026-01-01T00:00:00.000000+00:00",
        agent_card_json="{}",
    )
    Agent.objects.create(
        agent_id="abcdef01-1111-4000-8000-000000000002",
        session_id=fleet.sid,
        name="y",
        description="",
        registered_at="2026-01-01T00:00:00.000000+00:00",
        agent_card_json="{}",
    )
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", "abcdef01")
    assert r.err == "Error: id prefix 'abcdef01' is ambiguous (2 matches).\n"
    r = cli(
        *sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", a1.agent_id[:30]
    )
    assert r.out.startswith("abcdef01 x active")


def test_32_33_short_and_foreign_prefixes(cli, fleet):
    other = make_fleet("other")
    b = other.register("bob")
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", b[:7])
    assert r.err == f"Error: Agent {b[:7]} not found\n"
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", b[:8])
    assert r.err == f"Error: Agent {b[:8]} not found\n"
    r = cli(*sid_args(fleet), "agent", "show", "--agent-id", fleet.director, "--id", b)
    assert r.err == f"Error: Agent {b} not found\n"


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
    cli(
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        b,
        "--text",
        "keep me",
    )
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
    r = cli(*sid_args(fleet), "agent", "register", "--name", "late", "--description", "d")
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
    r = cli(*sid_args(fleet), "agent", "register", "--name", "bob", "--description", "d")
    assert r.lines[0] == "Agent registered successfully!"
    assert re.fullmatch(r"  agent_id:  [0-9a-f-]{36}", r.lines[1])
    assert r.lines[2] == "  name:      bob"
    data = cli(
        "--json", *sid_args(fleet), "agent", "register", "--name", "c", "--description", "d"
    ).json
    assert list(data) == ["agent_id", "name", "registered_at"]
    assert TS.fullmatch(data["registered_at"])


def test_78_skills(cli, fleet):
    r = cli(
        "--json",
        *sid_args(fleet),
        "agent",
        "register",
        "--name",
        "s",
        "--description",
        "d",
        "--skills",
        '[{"name":"x"}]',
    )
    card = json.loads(Agent.objects.get(pk=r.json["agent_id"]).agent_card_json)
    assert card == {"name": "s", "description": "d", "skills": [{"name": "x"}]}
    r = cli(
        *sid_args(fleet),
        "agent",
        "register",
        "--name",
        "s",
        "--description",
        "d",
        "--skills",
        "not json",
    )
    assert r.code == 1 and r.err.startswith("Error: Invalid JSON in --skills: ")


@pytest.mark.parametrize("name", ["Administrator", "administrator", " ADMINISTRATOR "])
def test_80_reserved_name(cli, fleet, name):
    count = Agent.objects.count()
    r = cli(*sid_args(fleet), "agent", "register", "--name", name, "--description", "d")
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
    b = fleet.register("bob")
    Placement.objects.create(
        agent_id=b,
        director_agent_id=fleet.director,
        tmux_session="s",
        tmux_window_id="@1",
        tmux_pane_id=None,
        created_at="x" * 32,
    )
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


# ----------------------------------------------------------------------------- send
def send(cli, fleet, *extra, sender=None, to=None, text="hello"):
    args = [*sid_args(fleet), "message", "send", "--agent-id", sender or fleet.director, "--to", to]
    if text is not None:
        args += ["--text", text]
    return cli(*args, *extra)


def test_94_to_98_destination_errors(cli, fleet):
    assert send(cli, fleet, to="bob").err == "Error: Invalid destination format: bob\n"
    assert send(cli, fleet, to="deadbeef").err == "Error: Destination agent not found: deadbeef\n"
    b = fleet.register("bob")
    cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    assert send(cli, fleet, to=b).err == f"Error: Destination agent not found: {b}\n"
    r = send(cli, fleet, sender=b, to=fleet.admin)
    assert r.err == f"Error: Sender agent not found or not active in session: {b}\n"
    other = make_fleet("other")
    assert (
        send(cli, fleet, to=other.director).err
        == f"Error: Destination agent not in session: {other.director}\n"
    )
    r = send(cli, fleet, sender=other.director, to=fleet.admin)
    assert r.err == f"Error: Sender agent not found or not active in session: {other.director}\n"
    assert Task.objects.count() == 0


def test_99_100_101_102_103_send_outputs(cli, fleet):
    b = fleet.register("bob")
    r = send(cli, fleet, to=b, text="hello\nworld")
    task = Task.objects.get()
    assert (
        task.type,
        task.context_id,
        task.to_agent_id,
        task.status_state,
        task.origin_task_id,
        task.text,
    ) == ("unicast", b, b, "input_required", None, "hello\nworld")
    assert task.created_at == task.status_timestamp
    assert r.out == (
        f"Message sent. No pane to preview.\n[{task.task_id[:8]} | from:{fleet.director[:8]} | "
        f"{task.status_timestamp}]\nhello\nworld\n"
    )
    data = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        b,
        "--text",
        "x",
    ).json
    assert list(data) == ["task", "notification_sent", "delivery"]
    assert data["notification_sent"] is False
    assert data["delivery"] == {
        "state": "owed",
        "reason": "no_pane",
        "channel": None,
        "offered_at": None,
        "seen_at": None,
    }
    assert list(data["task"]) == ["id", "from", "ts", "text"]
    full = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        b,
        "--text",
        "x",
        "--full",
    ).json
    assert list(full["task"]) == [
        "task_id",
        "context_id",
        "from_agent_id",
        "to_agent_id",
        "type",
        "created_at",
        "status_state",
        "status_timestamp",
        "origin_task_id",
        "text",
    ]
    q = send(cli, fleet, "--quiet", to=b)
    assert re.fullmatch(r"[0-9a-f]{8}\n", q.out)
    verbose = send(cli, fleet, "--full", to=b, text="v")
    t = Task.objects.get(task_id=verbose.lines[1].split()[-1])
    assert verbose.lines == [
        "Message sent. No pane to preview.",
        f"  id:    {t.task_id}",
        "  state: input_required",
        f"  from:  {fleet.director}",
        f"  to:    {b}",
        "  type:  unicast",
        "  text:  v",
    ]


def test_104_105_106_truncation(cli, fleet):
    b = fleet.register("bob")
    r = send(cli, fleet, to=b, text="é" * 300)
    assert r.lines[-1] == "é" * 200 + "…"
    assert Task.objects.get().text == "é" * 300
    r = send(cli, fleet, "--full", to=b, text="é" * 300)
    assert r.lines[-1] == "  text:  " + "é" * 300
    r = send(cli, fleet, to=b, text="😀" * 200)
    assert r.lines[-1] == "😀" * 200


def test_107_stdin_body(cli, fleet):
    r = cli(
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        fleet.admin,
        "--text",
        "-",
        stdin=b"line1\n'q' \"d\" $x `b`\n",
    )
    assert r.code == 0
    assert Task.objects.get().text == "line1\n'q' \"d\" $x `b`\n"


def test_108_112_text_file(cli, fleet, tmp_path):
    body = "quotes ' \" back\\slash\ttab\nnew 😀\n"
    p = tmp_path / "body.txt"
    p.write_text(body, encoding="utf-8")
    r = send(cli, fleet, "--text-file", p, to=fleet.admin, text=None)
    assert r.code == 0 and Task.objects.get().text == body
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe bad")
    r = send(cli, fleet, "--text-file", bad, to=fleet.admin, text=None)
    assert r.code == 2 and r.err.endswith("Error: message text is not valid UTF-8.\n")
    r = send(cli, fleet, "--text-file", tmp_path / "missing", to=fleet.admin, text=None)
    assert r.code == 2
    assert r.err.endswith(
        f"Error: cannot read --text-file '{tmp_path / 'missing'}': No such file or directory\n"
    )


def test_109_110_body_source_errors(cli, fleet, tmp_path):
    msg = "Error: --text and --text-file are mutually exclusive; supply exactly one.\n"
    assert send(cli, fleet, to=fleet.admin, text=None).err.endswith(msg)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    r = send(cli, fleet, "--text-file", empty, to=fleet.admin)
    assert r.code == 2 and r.err.endswith(msg)
    for argv, stdin in (
        (["--text", ""], None),
        (["--text", "-"], b""),
        (["--text-file", empty], None),
    ):
        r = cli(
            *sid_args(fleet),
            "message",
            "send",
            "--agent-id",
            fleet.director,
            "--to",
            fleet.admin,
            *argv,
            stdin=stdin,
        )
        assert r.code == 2 and r.err.endswith("Error: message text may not be empty.\n")
    assert Task.objects.count() == 0


def test_111_size_limit(cli, fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("CAFLEET_MAX_BODY_BYTES", "10")
    r = send(cli, fleet, to=fleet.admin, text="é" * 5)
    assert r.code == 0
    big = tmp_path / "big.txt"
    big.write_bytes(b"z" * 25)
    r = send(cli, fleet, "--text-file", big, to=fleet.admin, text=None)
    assert r.err.endswith(
        "Error: message text is 25 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    r = send(cli, fleet, to=fleet.admin, text="é" * 5 + "x")
    assert r.code == 2 and r.err.endswith(
        "Error: message text is 11 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    r = cli(
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        fleet.admin,
        "--text",
        "-",
        stdin=b"y" * 100000,
    )
    # reading a stream stops once the limit is exceeded, so its full size is not known
    assert r.err.endswith(
        "Error: message text is over 10 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    assert Task.objects.count() == 1


def test_113_114_no_preview_targets(cli, fleet):
    r = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        fleet.director,
        "--text",
        "self",
    )
    assert r.json["notification_sent"] is False
    b = fleet.register("plain")
    r = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "send",
        "--agent-id",
        fleet.director,
        "--to",
        b,
        "--text",
        "x",
    )
    assert r.json["notification_sent"] is False


# ----------------------------------------------------------------------------- broadcast
def test_125_to_131_broadcast(cli, fleet):
    b = fleet.register("bob")
    c = fleet.register("carl")
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "all")
    summary = Task.objects.get(type="broadcast_summary")
    assert r.out == f"broadcast id={summary.task_id[:8]} recipients=2 delivered=0\n"
    rows = Task.objects.filter(type="unicast")
    assert sorted(t.context_id for t in rows) == sorted([fleet.director, c])
    assert {t.origin_task_id for t in rows} == {summary.task_id}
    assert {t.created_at for t in Task.objects.all()} == {summary.created_at}
    assert (
        summary.context_id,
        summary.from_agent_id,
        summary.to_agent_id,
        summary.status_state,
        summary.origin_task_id,
        summary.text,
    ) == (b, b, "", "completed", summary.task_id, "Broadcast sent to 2 recipients")
    assert not Task.objects.filter(context_id=fleet.admin).exists()
    r = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "broadcast",
        "--agent-id",
        fleet.admin,
        "--text",
        "from admin",
    )
    data = r.json
    assert len(data) == 1 and data[0]["notifications_sent_count"] == 0
    assert data[0]["task"]["kind"] == "broadcast_summary"
    assert data[0]["task"]["origin"] == data[0]["task"]["id"]
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "x", "--full")
    assert r.lines[1] == "  state: completed" and "  type:  broadcast_summary" in r.lines
    assert not any(line.startswith("  to:") for line in r.lines)
    assert r.lines[-1] == "  text:  Broadcast sent to 2 recipients"


def test_133_134_broadcast_edges(cli, fleet):
    b = fleet.register("bob")
    cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "x")
    assert r.err == f"Error: Sender agent not found or not active in session: {b}\n"
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", fleet.director, "--text", "x")
    assert "recipients=0" in r.out
    assert Task.objects.get().text == "Broadcast sent to 0 recipients"


# ----------------------------------------------------------------------------- poll
def test_135_136_137_141_142_143_poll(cli, fleet):
    b = fleet.register("bob")
    assert cli(*sid_args(fleet), "message", "poll", "--agent-id", b).out == "No messages found.\n"
    assert cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b).out == "[]\n"
    t1 = send(cli, fleet, "--quiet", to=b, text="first").out.strip()
    t2 = send(cli, fleet, "--quiet", to=b, text="second").out.strip()
    t3 = send(cli, fleet, "--quiet", to=b, text="third").out.strip()
    cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t1)
    cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t2)
    cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "bc")
    items = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b).json
    assert [i["id"] for i in items] == [t3]
    assert list(items[0]) == ["id", "from", "ts", "text", "delivery"]
    assert items[0]["delivery"]["state"] == "seen"  # polling marks it seen
    everything = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--all").json
    assert {i["id"] for i in everything} == {t1, t2, t3}  # no broadcast summary
    ts = [i["ts"] for i in everything]
    assert ts == sorted(ts, reverse=True)
    d = cli(*sid_args(fleet), "message", "poll", "--agent-id", fleet.director)
    assert " | origin:" in d.lines[0]
    dj = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", fleet.director).json
    assert "origin" in dj[0] and "kind" not in dj[0]


def test_138_139_since(cli, fleet):
    b = fleet.register("bob")
    send(cli, fleet, to=b, text="one")
    task = Task.objects.get()
    ts = task.status_timestamp
    r = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", ts).json
    assert len(r) == 1
    z = ts.replace("+00:00", "Z")
    assert (
        len(cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", z).json)
        == 1
    )
    later = ts[:19] + "+00:00"  # fewer fractional digits → earlier or equal instant
    assert (
        len(
            cli(
                "--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", later
            ).json
        )
        == 1
    )
    assert (
        cli(
            "--json",
            *sid_args(fleet),
            "message",
            "poll",
            "--agent-id",
            b,
            "--since",
            "2999-01-01T00:00:00+02:00",
        ).json
        == []
    )
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--since", "yesterday")
    assert r.code == 2 and r.err.endswith(
        "Error: Invalid value for '--since': 'yesterday' is not an ISO-8601 timestamp.\n"
    )


def test_140_144_page_size_and_full(cli, fleet):
    b = fleet.register("bob")
    send(cli, fleet, to=b, text="one")
    send(cli, fleet, to=b, text="two")
    assert (
        len(
            cli(
                "--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--page-size", "1"
            ).json
        )
        == 1
    )
    assert cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--page-size", "0").code == 2
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--full")
    first = r.out.split("\n\n")[0].splitlines()
    assert [line.split(":")[0].strip() for line in first] == [
        "id",
        "state",
        "from",
        "to",
        "type",
        "text",
    ]


# ----------------------------------------------------------------------------- ack/cancel
def test_149_to_157_ack_cancel(cli, fleet):
    b = fleet.register("bob")
    t = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", fleet.director, "--task-id", t)
    assert r.err == "Error: Only the recipient can ACK a task\n"
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", b, "--task-id", t)
    assert r.err == "Error: Only the sender can cancel a task\n"
    before = Task.objects.get().status_timestamp
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t)
    task = Task.objects.get()
    assert task.status_state == "completed" and task.status_timestamp > before
    assert r.lines[0] == "Message acknowledged." and r.lines[1].startswith(f"[{t} | from:")
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t)
    assert r.err == "Error: Cannot cancel task in state completed\n"
    t2 = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t2)
    assert r.lines[0] == "Task canceled."
    assert Task.objects.get(task_id__startswith=t2).status_state == "canceled"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t2)
    assert r.err == "Error: Cannot ACK task in state canceled\n"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", "0badbeef")
    assert r.err == "Error: Task 0badbeef not found\n"
    t3 = send(cli, fleet, "--quiet", to=b).out.strip()
    assert (
        cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t3, "--quiet").out
        == f"{t3}\n"
    )
    t4 = send(cli, fleet, "--quiet", to=b).out.strip()
    acked = cli("--json", *sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t4).json
    assert list(acked) == ["task"] and acked["task"]["id"] == t4


def test_summary_rows_cannot_be_acked_or_canceled(cli, fleet):
    cli(*sid_args(fleet), "message", "broadcast", "--agent-id", fleet.director, "--text", "x")
    s = Task.objects.get().task_id
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", s)
    assert r.err == "Error: Cannot cancel task in state completed\n"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", fleet.director, "--task-id", s)
    assert r.err == "Error: Cannot ACK task in state completed\n"


def test_158_159_160_show_and_gate(cli, fleet):
    b = fleet.register("bob")
    c = fleet.register("carl")
    t = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli("--json", *sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", t)
    assert r.json["task"]["id"] == t
    assert (
        cli(*sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", t)
        .lines[0]
        .startswith(f"[{t} |")
    )
    other = make_fleet("other")
    o = other.register("oscar")
    ot = cli(
        "--json",
        "--session-id",
        other.sid,
        "message",
        "send",
        "--agent-id",
        other.director,
        "--to",
        o,
        "--text",
        "secret",
    ).json["task"]["id"]
    full_ot = Task.objects.get(task_id__startswith=ot).task_id
    r = cli(*sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", full_ot)
    assert r.err == f"Error: Task {full_ot} not found\n"
    for verb in ("poll",):
        r = cli(*sid_args(fleet), "message", verb, "--agent-id", o)
        assert r.err == f"Error: agent {o} is not a member of session {fleet.sid}.\n"
    for verb in ("ack", "cancel", "show"):
        r = cli(*sid_args(fleet), "message", verb, "--agent-id", o, "--task-id", t)
        assert r.err == f"Error: agent {o} is not a member of session {fleet.sid}.\n"
