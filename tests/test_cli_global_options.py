"""Global options, error forms and id prefixes through the entry point, in-process.

Runs on pytest-django's file database. Numbers in test names refer to ``acceptance.md``.
"""

import json

import pytest

from broker.models import Agent, Task
from tests.cli_helpers import as_agent, send, sid_args
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db


def show_agent(cli, fleet, ref, *globals_):
    """``agent show --id <ref>`` as the Director."""
    return cli(*globals_, *as_agent(fleet, fleet.director, "agent show", "--id", ref))


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
    r = send(cli, fleet, to=b, text="x" * 80)
    assert r.lines[-1] == "x" * 50 + "…"
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "abc")
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b)
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        "Error: invalid value for CAFLEET_MAX_TEXT_LEN: 'abc' (expected a positive integer).\n"
    )


def test_15_bad_max_text_len_on_send_writes_nothing(cli, fleet, monkeypatch):
    monkeypatch.setenv("CAFLEET_MAX_TEXT_LEN", "0")
    r = send(cli, fleet, to=fleet.admin, text="hi")
    assert r.code == 1 and Task.objects.count() == 0


def test_16_17_18_19_json_modes(cli, fleet):
    b = fleet.register("bøb", "a" * 70)
    show = ("agent", "show", "--agent-id", fleet.director, "--id", b)
    r = cli("--json", *sid_args(fleet), *show)
    assert r.code == 0 and r.out.count("\n") == 1 and ", " not in r.out and ": " not in r.out
    assert '"description":"' + "a" * 60 + '…"' in r.out and "bøb" in r.out  # UTF-8, no \u
    pretty = cli(*sid_args(fleet), "--json", "--pretty", *show)
    assert pretty.out.startswith('{\n  "id": ')
    assert json.loads(pretty.out) == r.json
    text = cli(*sid_args(fleet), "--pretty", *show)
    assert text.out == f"{b[:8]} bøb active\n"


def test_20_timestamps_always_32_chars(cli, fleet, monkeypatch):
    from datetime import UTC, datetime

    import broker.clock as clock

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 5, 5, 12, 0, 0, 0, tzinfo=UTC)

    monkeypatch.setattr(clock, "datetime", Frozen)
    r = send(cli, fleet, to=fleet.admin, text="x", json=True)
    assert r.json["task"]["ts"] == "2026-05-05T12:00:00.000000+00:00"


# ----------------------------------------------------------------------------- errors
def test_21_22_runtime_error_forms(cli, fleet):
    r = show_agent(cli, fleet, "nobody11")
    assert (r.code, r.out, r.err) == (1, "", "Error: Agent nobody11 not found\n")
    r = show_agent(cli, fleet, "nobody11", "--json")
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
    r = send(cli, fleet, sender=fleet.director[:8], to=b[:8].upper(), text="hi", json=True)
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
    x_id = "abcdef01-0000-4000-8000-000000000001"
    for agent_id, name in ((x_id, "x"), ("abcdef01-1111-4000-8000-000000000002", "y")):
        Agent.objects.create(
            agent_id=agent_id,
            session_id=fleet.sid,
            name=name,
            description="",
            registered_at="2026-01-01T00:00:00.000000+00:00",
            agent_card_json="{}",
        )
    r = show_agent(cli, fleet, "abcdef01")
    assert r.err == "Error: id prefix 'abcdef01' is ambiguous (2 matches).\n"
    r = show_agent(cli, fleet, x_id[:30])
    assert r.out.startswith("abcdef01 x active")


def test_32_33_short_and_foreign_prefixes(cli, fleet):
    other = make_fleet("other")
    b = other.register("bob")
    r = show_agent(cli, fleet, b[:7])
    assert r.err == f"Error: Agent {b[:7]} not found\n"
    r = show_agent(cli, fleet, b[:8])
    assert r.err == f"Error: Agent {b[:8]} not found\n"
    r = show_agent(cli, fleet, b)
    assert r.err == f"Error: Agent {b} not found\n"
