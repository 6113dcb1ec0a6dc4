"""The ``cafleet member`` pane commands in-process, without tmux: outputs of ``capture``,
``send-input``, ``exec`` and ``ping``, and the order of the checks (validation, the tmux
guard, the database, the target) before any tmux call (tests/members_support.py)."""

import json

import pytest

from broker import tmux as tmux_mod
from tests import members_support
from tests.members_support import PANE_VERBS, add_member, json_error_line, simulate_pane

# the shared fixtures, requested by name
rec, team, mcli = members_support.rec, members_support.team, members_support.mcli


@pytest.mark.django_db
def test_cli_capture_send_input_exec_ping_outputs(team, rec, mcli, monkeypatch, tmp_path):
    member = add_member(team, name="alice")

    def run(verb, *args, head=()):
        return mcli.member(verb, *args, member=member.agent_id[:8], head=head)

    rec.outputs["capture-pane"] = "line one\nline two\n\n"
    res = run("capture", "--tail", "5", "--full")
    assert (res.code, res.out) == (0, "line one\nline two\n")  # trailing blank dropped
    assert rec.calls[-1] == ["capture-pane", "-p", "-t", "%7", "-S", "-5"]
    res = run("capture", head=("--json",))
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "lines": 30,
        "content": "line one\nline two\n",
    }
    # the keystroke commands go through the gate: a simulated idle pane answers them
    sim = simulate_pane(monkeypatch, tmp_path)
    res = run("send-input", "--choice", "2")
    assert res.out == "Sent choice 2 to member alice (%7).\n"
    res = run("send-input", "--choice", "3", head=("--json",))
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "action": "choice",
        "value": "3",
    }
    res = run("send-input", "--freetext", "hi")
    assert res.out == "Sent free text to member alice (%7).\n"
    res = run("send-input", "--freetext", "", head=("--json",))
    assert json.loads(res.out)["value"] == ""
    res = run("exec", "  git status  ")
    assert res.out == "Sent bash command 'git status' to member alice (%7).\n"
    assert sim.submitted[-1] == "! git status"
    res = run("exec", "echo 'it' | tr a-z A-Z")
    assert res.out == ("Sent bash command \"echo 'it' | tr a-z A-Z\" to member alice (%7).\n")
    res = run("exec", "echo \"a\" 'b' \\x")
    assert res.out == ("Sent bash command 'echo \"a\" \\'b\\' \\\\x' to member alice (%7).\n")
    res = run("exec", " ls -l ", head=("--json",))
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "command": "ls -l",
    }
    res = run("ping")
    assert res.out == "Pinged member alice (%7) — poll keystroke dispatched.\n"
    res = run("ping", "--quiet")
    assert res.out == f"{member.agent_id[:8]}\n"
    res = run("ping", "--quiet", head=("--json",))
    assert json.loads(res.out) == {"member_agent_id": member.agent_id, "pane_id": "%7"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("send-input", "--freetext", "  !ls"),
            "--freetext may not start with '!' — that triggers the coding agent's shell-execution "
            "shortcut. Use 'cafleet member exec' for shell dispatch instead.",
        ),
        (
            ("send-input", "--choice", "1", "--freetext", "!x"),
            "--freetext may not start with '!' — that triggers the coding agent's shell-execution "
            "shortcut. Use 'cafleet member exec' for shell dispatch instead.",
        ),
        (("send-input",), "--choice and --freetext are mutually exclusive; supply exactly one."),
        (
            ("send-input", "--choice", "1", "--freetext", "x"),
            "--choice and --freetext are mutually exclusive; supply exactly one.",
        ),
        (("send-input", "--freetext", "a\nb"), "free text may not contain newlines."),
        (("send-input", "--freetext", "a\rb"), "free text may not contain newlines."),
        (
            ("send-input", "--choice", "4"),
            "Invalid value for '--choice': 4 is not in the range 1<=x<=3.",
        ),
        (("exec", ""), "command may not be empty."),
        (("exec", "   "), "command may not be empty."),
        (("exec", "a\nb"), "command may not contain newlines."),
        (("exec", " \n "), "command may not contain newlines."),
        (("exec",), "Missing argument 'COMMAND'."),
    ],
    ids=[
        "bang",
        "bang-first",
        "neither",
        "both",
        "newline",
        "cr",
        "choice-range",
        "exec-empty",
        "exec-blank",
        "exec-newline",
        "exec-newline-first",
        "exec-missing",
    ],
)
def test_cli_validation_exit_2_before_tmux_guard(team, rec, mcli, monkeypatch, args, message):
    monkeypatch.delenv("TMUX")  # validation comes before the tmux guard
    res = mcli.member(args[0], *args[1:], member=team.did)
    assert res.code == 2
    assert res.err.endswith(f"\n\nError: {message}\n")
    assert res.err.startswith("Usage: cafleet member ")
    assert res.out == ""
    res = mcli.member(args[0], *args[1:], member=team.did, head=("--json",))
    assert res.err == json_error_line(message, 2)
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_guard_before_database_and_targets(team, rec, mcli, monkeypatch):
    from broker.exceptions import NotReady

    def not_ready():
        raise NotReady("database /tmp/registry.db is not initialised. Run 'cafleet db init'.")

    monkeypatch.delenv("TMUX")
    monkeypatch.setattr("broker.database.ensure_ready", not_ready)
    for verb, extra in [*PANE_VERBS, ("delete", ())]:
        res = mcli.member(verb, *extra, member="nobody00")
        assert (res.code, res.err) == (
            1,
            "Error: cafleet member commands must be run inside a tmux session\n",
        ), verb
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: None)
    res = mcli.member("ping", member="nobody00")
    assert res.err == "Error: tmux binary not found on PATH\n"
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    res = mcli.member("ping", member="nobody00")
    assert res.err == (
        "Error: database /tmp/registry.db is not initialised. Run 'cafleet db init'.\n"
    )
    res = mcli.member("list")
    assert res.code == 1  # list needs no tmux but does need the database
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_capture_lines_zero_after_target_before_tmux(team, rec, mcli):
    member = add_member(team)
    res = mcli.member("capture", "--lines", "0", member=member.agent_id)
    assert (res.code, res.err) == (
        1,
        "Error: capture failed: capture_pane: lines must be positive, got 0\n",
    )
    res = mcli.member("capture", "--lines", "-3", member="nobody00")
    assert res.err == "Error: Agent nobody00 not found\n"
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_unknown_and_deregistered_member(team, rec, mcli):
    gone = add_member(team)
    gone.deregister()
    for verb, extra in PANE_VERBS:
        res = mcli.member(verb, *extra, member=gone.agent_id)
        assert res.err == f"Error: Agent {gone.agent_id} not found\n", verb
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_session_id_required(team, rec, mcli):
    res = mcli("member", "list", "--agent-id", team.did)
    assert res.code == 1
    assert res.err.startswith("Error: --session-id <uuid> is required for this subcommand.")
