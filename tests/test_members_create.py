"""``member create`` without tmux: the exact tmux calls, the rows, every rollback, and the
CLI's outputs (tests/members_support.py)."""

import json
import os
from types import SimpleNamespace

import pytest

from broker import members
from broker.clock import new_id
from broker.exceptions import CafleetError
from broker.models import Agent, AgentStatus, Placement
from broker.services import agent_register, session_delete
from tests import members_support
from tests.members_support import (
    default_prompt,
    is_active,
    lines_of,
    only_new_agent,
    refusal,
    spawn,
)

# the shared fixtures, requested by name
rec, team, mcli = members_support.rec, members_support.team, members_support.mcli


def failed_spawn(team, **kw) -> tuple[CafleetError, Agent]:
    """The error of a ``member create`` that fails after registering, and the member's row."""
    with pytest.raises(CafleetError) as info:
        spawn(team, **kw)
    return info.value, only_new_agent(team)


def settings_args(agent_id: str) -> list[str]:
    """``--settings <file>`` on SQLite; nothing on PostgreSQL, where members run without hooks
    (docs/hooks.md: the hook path reads SQLite only)."""
    from broker.conf import backend, database_path
    from broker.hooksettings import member_settings_path

    if backend() != "sqlite":
        return []
    return ["--settings", member_settings_path(database_path(), agent_id)]


@pytest.mark.django_db
def test_create_claude_exact_calls_and_rows(team, rec):
    rec.outputs["display-message"] = "main|@5|%3\n"  # the caller's window, not D's stored @1
    warnings = []
    agent, placement = spawn(team, warnings=warnings)
    prompt = default_prompt(team.sid, agent.agent_id, team.did)
    assert rec.script() == [
        ["display-message", "-p", "-t", "%0", "#{session_name}|#{window_id}|#{pane_id}"],
        [
            "split-window",
            "-d",
            "-t",
            "@5",
            "-P",
            "-F",
            "#{pane_id}",
            "-e",
            f"CAFLEET_DATABASE_URL={os.environ['CAFLEET_DATABASE_URL']}",
            # issue 10: the member's ids for its own hooks, and its hooks settings file.
            "-e",
            f"CAFLEET_SESSION_ID={team.sid}",
            "-e",
            f"CAFLEET_AGENT_ID={agent.agent_id}",
            "claude",
            "--permission-mode",
            "dontAsk",
            "--name",
            "alice",
            *settings_args(agent.agent_id),
            prompt,
        ],
        ["select-layout", "-t", "@5", "main-vertical"],
    ]
    assert warnings == []
    row = Placement.objects.get(agent_id=agent.agent_id)
    assert (row.tmux_pane_id, row.tmux_window_id, row.tmux_session) == ("%7", "@5", "main")
    assert row.director_agent_id == team.did
    assert row.coding_agent == "claude"
    assert row.created_at == agent.registered_at
    assert placement.tmux_pane_id == "%7"
    assert json.loads(agent.agent_card_json) == {
        "name": "alice",
        "description": "desc",
        "skills": [],
    }


@pytest.mark.django_db
def test_create_codex_without_database_url(team, rec, monkeypatch):
    monkeypatch.delenv("CAFLEET_DATABASE_URL")
    agent, placement = spawn(
        team, name="bob", coding_agent="codex", prompt=("work", "on", "{{x}}", "{agent_id}")
    )
    split = rec.calls[1]
    assert split == [
        "split-window",
        "-d",
        "-t",
        "@1",
        "-P",
        "-F",
        "#{pane_id}",
        "-e",
        f"CAFLEET_SESSION_ID={team.sid}",
        "-e",
        f"CAFLEET_AGENT_ID={agent.agent_id}",
        "codex",
        "--ask-for-approval",
        "never",
        "--sandbox",
        "workspace-write",
        f"work on {{x}} {agent.agent_id}",
    ]
    assert not any(w.startswith("CAFLEET_DATABASE_URL") for w in split)
    assert placement.coding_agent == "codex"


@pytest.mark.django_db
def test_create_passes_the_directors_host_id_to_the_member(team, rec, monkeypatch):
    monkeypatch.setenv("CAFLEET_HOST_ID", "build-01")
    agent, placement = spawn(team, name="bob", coding_agent="codex", prompt=("work",))
    split = rec.calls[1]
    k = split.index("codex")
    assert split[k - 6 : k] == [
        "-e",
        f"CAFLEET_SESSION_ID={team.sid}",
        "-e",
        f"CAFLEET_AGENT_ID={agent.agent_id}",
        "-e",
        "CAFLEET_HOST_ID=build-01",
    ]
    assert placement.host_id == "build-01"


@pytest.mark.django_db
def test_create_unknown_placeholder_rolls_back(team, rec):
    error, agent = failed_spawn(team, prompt=("hello", "{unknown}"))
    assert error.exit_code == 1
    assert error.message == (
        "prompt resolution failed: Unknown placeholder 'unknown' in custom prompt. Supported "
        "placeholders: {session_id}, {agent_id}, {director_agent_id}. Double literal braces "
        f"({{{{, }}}}) to keep them as text. Rolled back registration of {agent.agent_id}."
    )
    assert agent.status == AgentStatus.DEREGISTERED
    assert not Placement.objects.filter(agent_id=agent.agent_id).exists()
    assert [c[0] for c in rec.calls] == ["display-message"]  # no split-window


@pytest.mark.django_db
def test_create_malformed_prompt_rolls_back(team, rec):
    error, agent = failed_spawn(team, prompt=("{}",))
    assert error.message.startswith(
        "prompt resolution failed: Malformed custom prompt: Replacement index 0 out of range"
    )
    assert error.message.endswith(f"Rolled back registration of {agent.agent_id}.")
    assert not is_active(agent.agent_id)


@pytest.mark.django_db
def test_create_split_failure_command_too_long(team, rec):
    rec.failures["split-window"] = "command too long"
    error, agent = failed_spawn(team, prompt=("x" * 5000,))
    message = error.message
    assert message.startswith(
        "tmux split-window failed: tmux command failed: tmux split-window -d -t @1"
    )
    assert message.endswith(
        f"\nstderr: command too long. Rolled back registration of {agent.agent_id}."
    )
    assert not is_active(agent.agent_id)
    assert not Placement.objects.filter(agent_id=agent.agent_id).exists()
    assert [c[0] for c in rec.calls] == ["display-message", "split-window"]


@pytest.mark.django_db
def test_create_select_layout_failure_only_warns(team, rec):
    rec.failures["select-layout"] = "no such window"
    warnings = []
    agent, placement = spawn(team, warnings=warnings)
    assert warnings == [
        "Warning: select-layout failed: tmux command failed: tmux select-layout "
        "-t @1 main-vertical\nstderr: no such window"
    ]
    assert is_active(agent.agent_id)
    assert placement.tmux_pane_id == "%7"


@pytest.mark.django_db
def test_create_placement_vanished_sends_exit_and_rolls_back(team, rec):
    def split_and_lose_row(args):
        Placement.objects.all().exclude(director_agent__isnull=True).delete()
        return "%9\n"

    rec.outputs["split-window"] = split_and_lose_row
    error, agent = failed_spawn(team)
    assert error.message == (
        "placement row vanished before pane-id patch. Rolled back "
        f"registration of {agent.agent_id}."
    )
    assert rec.calls[-1] == ["send-keys", "-t", "%9", "/exit", "Enter"]
    assert not is_active(agent.agent_id)


@pytest.mark.django_db
def test_create_placement_update_failure_ignores_exit_error(team, rec, monkeypatch):
    def broken(agent_id, pane):
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(members, "_record_pane", broken)
    rec.failures["send-keys"] = "server exited"
    error, agent = failed_spawn(team)
    assert error.message == (
        f"placement update failed: disk I/O error. Rolled back registration of {agent.agent_id}."
    )
    assert rec.calls[-1] == ["send-keys", "-t", "%7", "/exit", "Enter"]
    assert not is_active(agent.agent_id)


@pytest.mark.django_db
def test_create_rollback_failure_prints_orphan_warning(team, rec, monkeypatch):
    def refuse(self, *, at=None, note=""):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(Agent, "deregister", refuse)
    warnings = []
    error, agent = failed_spawn(team, prompt=("{nope}",), warnings=warnings)
    assert error.message.endswith(f"Rolled back registration of {agent.agent_id}.")
    assert warnings == [
        f"WARNING: rollback deregister failed — agent {agent.agent_id} is orphaned in the "
        f"registry. Run `cafleet --session-id {team.sid} agent deregister --agent-id "
        f"{agent.agent_id}` manually to clean up. Cause: database is locked"
    ]
    assert is_active(agent.agent_id)


@pytest.mark.django_db
def test_create_register_failures(team, rec):
    with pytest.raises(CafleetError, match="^register failed: Administrator cannot be a director$"):
        spawn(team, director=team.admin.agent_id)
    ghost = new_id()
    assert refusal(spawn, team, director=ghost) == (
        f"register failed: Director agent '{ghost}' not found or "
        f"not active in session '{team.sid}'."
    )
    assert refusal(spawn, team, director="zzzz") == (
        f"register failed: Director agent 'zzzz' not found or not active in session '{team.sid}'"
        " (an id prefix needs at least 8 characters)."
    )
    other = agent_register(session_id=team.sid, name="lead", description="x", skills_json=None)
    agent, _ = spawn(team, director=other.agent_id[:8])  # nested teams; prefix resolves
    assert Placement.objects.get(agent_id=agent.agent_id).director_agent_id == other.agent_id
    session_delete(session_ref=team.sid)
    with pytest.raises(CafleetError, match=f"^register failed: session {team.sid} is deleted$"):
        spawn(team)
    missing = new_id()
    nowhere = SimpleNamespace(sid=missing, did=team.did)
    assert refusal(spawn, nowhere, name="x") == f"register failed: Session '{missing}' not found."
    assert not [c for c in rec.calls if c[0] == "split-window"][1:]  # only the nested spawn


# ------------------------------------------------------------------------------ CLI


@pytest.mark.django_db
def test_cli_create_outputs(team, rec, mcli):
    res = mcli.member("create", "--name", "alice", "--description", "d")
    assert res.code == 0, res.err
    agent = Agent.objects.get(name="alice")
    assert res.out == f"{agent.agent_id[:8]} alice backend=claude pane=%7\n"
    rec.outputs["split-window"] = "%8\n"
    res = mcli.member(
        "create",
        *("--name", "bob", "--description", "d", "--coding-agent", "codex", "--full"),
        *("--", "go", "{agent_id}"),
        agent=team.did[:8],
    )
    bob = Agent.objects.get(name="bob")
    assert lines_of(res.out) == [
        "Member registered and spawned.",
        f"  agent_id:  {bob.agent_id}",
        "  name:      bob",
        "  backend:   codex",
        "  pane_id:   %8",
        "  window_id: @1",
    ]
    assert rec.calls[-2][-1] == f"go {bob.agent_id}"
    rec.outputs["split-window"] = "%9\n"
    rec.failures["select-layout"] = "oops"
    res = mcli.member("create", "--name", "carol", "--description", "d", head=("--json",))
    assert res.code == 0
    data = json.loads(res.out)
    assert list(data) == ["agent_id", "name", "registered_at", "placement"]
    assert data["placement"] == {
        "director_agent_id": team.did,
        "tmux_session": "main",
        "tmux_window_id": "@1",
        "tmux_pane_id": "%9",
        "coding_agent": "claude",
        "created_at": data["registered_at"],
    }
    assert res.err.startswith("Warning: select-layout failed: tmux command failed:")


@pytest.mark.django_db
def test_cli_create_check_order(team, rec, mcli, monkeypatch):
    def create(*args):
        return mcli.member("create", "--description", "d", *args)

    monkeypatch.delenv("TMUX")
    res = create("--name", "a\x1b[31mb")
    assert (res.code, res.err.splitlines()[-1]) == (
        2,
        "Error: --name may not contain control characters.",
    )
    res = create("--name", "Administrator")
    assert (res.code, res.err) == (1, "Error: the name 'Administrator' is reserved.\n")
    res = create("--name", "x")
    assert res.err == "Error: cafleet member commands must be run inside a tmux session\n"
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    res = create("--name", "x", "--", "{bad}")
    new = only_new_agent(team)
    assert res.code == 1
    assert res.err.endswith(f"Rolled back registration of {new.agent_id}.\n")
    assert rec.calls == [
        ["display-message", "-p", "-t", "%0", "#{session_name}|#{window_id}|#{pane_id}"]
    ]
