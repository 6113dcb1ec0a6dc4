"""Member workflows (broker.members) and handlers (broker.commands.member) without tmux.

The real ``broker.tmux`` module is used with its single door, ``run``, replaced by a
recorder: every test sees the exact tmux argument lists, in order, with the pauses between
them, and can make any tmux verb fail.
"""

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from broker import members
from broker import tmux as tmux_mod
from broker.clock import new_id, now
from broker.exceptions import CafleetError
from broker.models import Agent, AgentStatus, Placement, Task, TaskState, TaskType
from broker.services import agent_register, session_create, session_delete
from tests.delivery_sim import PaneSim

BIN = Path(__file__).resolve().parent / "bin"
CALLER = ("main", "@1", "%0")


# ------------------------------------------------------------------------------ fixtures
class Recorder:
    """Stands in for ``broker.tmux.run``: records argv, replays outputs, injects failures."""

    def __init__(self):
        self.events: list[tuple] = []
        self.outputs: dict[str, object] = {
            "display-message": "main|@1|%0\n",
            "split-window": "%7\n",
            "list-panes": "%0\n",
            "capture-pane": "",
        }
        self.failures: dict[str, object] = {}

    def __call__(self, args, *, timeout=10.0, input=None):
        args = [str(a) for a in args]
        self.events.append(("run", args, timeout))
        verb = args[0]
        failure = self.failures.get(verb)
        if failure is not None:
            if isinstance(failure, BaseException):
                raise failure
            raise tmux_mod.TmuxError(
                f"tmux command failed: tmux {' '.join(args)}\nstderr: {failure}"
            )
        out = self.outputs.get(verb, "")
        return out(args) if callable(out) else out

    def sleep(self, seconds):
        self.events.append(("sleep", seconds))

    @property
    def calls(self) -> list[list[str]]:
        return [e[1] for e in self.events if e[0] == "run"]

    @property
    def keystrokes(self) -> list[list[str]]:
        return [c for c in self.calls if c[0] in ("send-keys", "kill-pane")]

    def script(self) -> list:
        """Runs as argv lists and pauses as ("sleep", s), in order."""
        return [e[1] if e[0] == "run" else e for e in self.events]


@pytest.fixture
def rec(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(tmux_mod, "run", recorder)
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setattr(
        tmux_mod, "time", SimpleNamespace(sleep=recorder.sleep, monotonic=time.monotonic)
    )
    monkeypatch.setenv("TMUX", "/tmp/cafleet-fake-tmux,1,0")
    monkeypatch.setenv("TMUX_PANE", "%0")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return recorder


@pytest.fixture
def team(db):
    session, director, admin, _placement = session_create(
        label=None, coding_agent="claude", caller=CALLER
    )
    return SimpleNamespace(
        sid=session.session_id, director=director, admin=admin, did=director.agent_id
    )


def add_member(
    team,
    *,
    director_id=None,
    name="worker",
    pane="%7",
    window="@1",
    stamp=None,
    coding_agent="claude",
) -> Agent:
    """A member row + placement written directly (no tmux)."""
    stamp = stamp or now()
    agent = Agent.objects.create(
        agent_id=new_id(),
        session_id=team.sid,
        name=name,
        description="does work",
        registered_at=stamp,
        agent_card_json=json.dumps({"name": name}),
    )
    Placement.objects.create(
        agent=agent,
        director_agent_id=director_id or team.did,
        tmux_session="main",
        tmux_window_id=window,
        tmux_pane_id=pane,
        coding_agent=coding_agent,
        created_at=stamp,
    )
    return agent


def is_active(agent_id) -> bool:
    return Agent.objects.filter(agent_id=agent_id, status=AgentStatus.ACTIVE).exists()


def spawn(team, *, name="alice", coding_agent="claude", prompt=(), director=None, warnings=None):
    caller = members.member_preflight(name=name, coding_agent=coding_agent, tmux=tmux_mod)
    sink = warnings if warnings is not None else []
    return members.member_create(
        session_id=team.sid,
        director_ref=director or team.did,
        name=name,
        description="desc",
        coding_agent=coding_agent,
        prompt=prompt,
        caller=caller,
        tmux=tmux_mod,
        environ=os.environ,
        warn=sink.append,
    )


def default_prompt(sid, aid, did) -> str:
    return (
        f"Member of cafleet session {sid} (agent={aid}, director={did}).\n"
        f"Load skill 'cafleet'. Bash auto-approves. Poll: cafleet --session-id {sid} "
        f"message poll --agent-id {aid}"
    )


def only_new_agent(team) -> Agent:
    return (
        Agent.objects.filter(session_id=team.sid)
        .exclude(agent_id__in=[team.did, team.admin.agent_id])
        .get()
    )


# ------------------------------------------------------------------------------ prompt
IDS = {"session_id": "S", "agent_id": "A", "director_agent_id": "D"}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            (),
            "Member of cafleet session S (agent=A, director=D).\nLoad skill 'cafleet'. Bash "
            "auto-approves. Poll: cafleet --session-id S message poll --agent-id A",
        ),
        (("",), None),
        (
            ("Hi", "{agent_id},", "from", "{director_agent_id}", "in", "{session_id}"),
            "Hi A, from D in S",
        ),
        (("json:", '{{"k":', "1}}", "{agent_id}"), 'json: {"k": 1} A'),
        (("{{agent_id}}",), "{agent_id}"),
    ],
    ids=["default", "empty-word-default", "placeholders", "double-braces", "escaped-name"],
)
def test_build_prompt(words, expected):
    got = members.build_prompt(words, **IDS)
    if expected is None:
        expected = members.build_prompt((), **IDS)
    assert got == expected


def test_unknown_placeholder_message():
    with pytest.raises(members.PromptError) as info:
        members.build_prompt(("do", "{task}", "now"), **IDS)
    assert str(info.value) == (
        "Unknown placeholder 'task' in custom prompt. Supported placeholders: {session_id}, "
        "{agent_id}, {director_agent_id}. Double literal braces ({{, }}) to keep them as text."
    )


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        (("a", "{"), "Single '{' encountered in format string"),
        (("a", "}"), "Single '}' encountered in format string"),
        (("{}",), "Replacement index 0 out of range for positional args tuple"),
        (("{0}",), "Replacement index 0 out of range for positional args tuple"),
        (("{agent_id:zz}",), None),  # the wording varies between Python versions
        (("{agent_id!q}",), "Unknown conversion specifier q"),
    ],
    ids=[
        "lone-open",
        "lone-close",
        "positional-empty",
        "positional-0",
        "bad-spec",
        "bad-conversion",
    ],
)
def test_malformed_prompt_message(words, reason):
    if reason is None:
        with pytest.raises(ValueError) as parser:
            "".join(words).format(**IDS)
        reason = str(parser.value)
    with pytest.raises(members.PromptError) as info:
        members.build_prompt(words, **IDS)
    assert str(info.value) == (
        f"Malformed custom prompt: {reason}. Double literal braces "
        "({{, }}) to keep them as text."
    )


# ------------------------------------------------------------------------------ create
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
def test_create_unknown_placeholder_rolls_back(team, rec):
    with pytest.raises(CafleetError) as info:
        spawn(team, prompt=("hello", "{unknown}"))
    agent = only_new_agent(team)
    assert info.value.exit_code == 1
    assert info.value.message == (
        "prompt resolution failed: Unknown placeholder 'unknown' in custom prompt. Supported "
        "placeholders: {session_id}, {agent_id}, {director_agent_id}. Double literal braces "
        f"({{{{, }}}}) to keep them as text. Rolled back registration of {agent.agent_id}."
    )
    assert agent.status == AgentStatus.DEREGISTERED
    assert not Placement.objects.filter(agent_id=agent.agent_id).exists()
    assert [c[0] for c in rec.calls] == ["display-message"]  # no split-window


@pytest.mark.django_db
def test_create_malformed_prompt_rolls_back(team, rec):
    with pytest.raises(CafleetError) as info:
        spawn(team, prompt=("{}",))
    agent = only_new_agent(team)
    assert info.value.message.startswith(
        "prompt resolution failed: Malformed custom prompt: Replacement index 0 out of range"
    )
    assert info.value.message.endswith(f"Rolled back registration of {agent.agent_id}.")
    assert not is_active(agent.agent_id)


@pytest.mark.django_db
def test_create_split_failure_command_too_long(team, rec):
    rec.failures["split-window"] = "command too long"
    with pytest.raises(CafleetError) as info:
        spawn(team, prompt=("x" * 5000,))
    agent = only_new_agent(team)
    message = info.value.message
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
    with pytest.raises(CafleetError) as info:
        spawn(team)
    agent = only_new_agent(team)
    assert info.value.message == (
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
    with pytest.raises(CafleetError) as info:
        spawn(team)
    agent = only_new_agent(team)
    assert info.value.message == (
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
    with pytest.raises(CafleetError) as info:
        spawn(team, prompt=("{nope}",), warnings=warnings)
    agent = only_new_agent(team)
    assert info.value.message.endswith(f"Rolled back registration of {agent.agent_id}.")
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
    with pytest.raises(CafleetError) as info:
        spawn(team, director=ghost)
    assert info.value.message == (
        f"register failed: Director agent '{ghost}' not found or "
        f"not active in session '{team.sid}'."
    )
    with pytest.raises(CafleetError) as info:
        spawn(team, director="zzzz")
    assert info.value.message == (
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
    with pytest.raises(CafleetError) as info:
        members.member_create(
            session_id=missing,
            director_ref=team.did,
            name="x",
            description="x",
            coding_agent="claude",
            caller=CALLER,
            tmux=tmux_mod,
        )
    assert info.value.message == f"register failed: Session '{missing}' not found."
    assert not [c for c in rec.calls if c[0] == "split-window"][1:]  # only the nested spawn


@pytest.mark.parametrize("name", ["Administrator", "administrator", "  ADMINISTRATOR "])
def test_preflight_reserved_name_before_any_tmux(rec, name):
    with pytest.raises(CafleetError, match=r"^the name 'Administrator' is reserved\.$"):
        members.member_preflight(name=name, coding_agent="claude", tmux=tmux_mod)
    assert rec.calls == []


def test_preflight_checks_in_order(rec, monkeypatch):
    def preflight(**kw):
        return members.member_preflight(name="x", tmux=tmux_mod, **kw)

    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: None)
    with pytest.raises(CafleetError, match="^tmux binary not found on PATH$"):
        preflight(coding_agent="claude")
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.delenv("TMUX")
    with pytest.raises(
        CafleetError, match="^cafleet member commands must be run inside a tmux session$"
    ):
        preflight(coding_agent="claude")
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    with pytest.raises(CafleetError, match="^binary codex not found on PATH$"):
        preflight(coding_agent="codex", which=lambda name: None)
    monkeypatch.delenv("TMUX_PANE")
    with pytest.raises(
        CafleetError, match="^TMUX_PANE is not set; not running inside a tmux pane$"
    ):
        preflight(coding_agent="claude")
    monkeypatch.setenv("TMUX_PANE", "%0")
    rec.outputs["display-message"] = "garbage\n"
    with pytest.raises(
        CafleetError,
        match=r"^unexpected tmux display-message output: "
        r"'garbage'$",
    ):
        preflight(coding_agent="claude")
    rec.outputs["display-message"] = "s|@2|%4\n"
    assert preflight(coding_agent="codex") == ("s", "@2", "%4")
    assert all(c[0] == "display-message" for c in rec.calls)


# ------------------------------------------------------------------------------ targets
@pytest.mark.django_db
def test_target_checks(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    plain = agent_register(session_id=team.sid, name="plain", description="x", skills_json=None)
    theirs = add_member(team, director_id=other.agent_id, pane="%8")
    pending = add_member(team, pane=None)
    gone = add_member(team, pane="%6")
    gone.deregister()

    def target(ref, action="send", **kw):
        return members.member_target(
            session_id=team.sid, agent_ref=team.did, member_ref=ref, action=action, **kw
        )

    for ref, expected in [
        ("short", "Agent short not found"),
        (new_id(), None),
        (gone.agent_id, f"Agent {gone.agent_id} not found"),
        (
            team.admin.agent_id,
            f"agent {team.admin.agent_id} has no placement row; it was not spawned via "
            "`cafleet member create`.",
        ),
        (
            plain.agent_id[:8],
            f"agent {plain.agent_id} has no placement row; it was not spawned via "
            "`cafleet member create`.",
        ),
        (
            theirs.agent_id,
            f"agent {theirs.agent_id} is not a member of your team "
            f"(director_agent_id={other.agent_id}).",
        ),
        (team.did, f"agent {team.did} is not a member of your team (director_agent_id=None)."),
        (
            pending.agent_id,
            f"member {pending.agent_id} has no pane yet (pending placement) — nothing to send.",
        ),
    ]:
        with pytest.raises(CafleetError) as info:
            target(ref)
        assert info.value.message == (expected or f"Agent {ref} not found")
    with pytest.raises(CafleetError, match="nothing to capture"):
        target(pending.agent_id, action="capture")
    with pytest.raises(CafleetError) as info:
        target(plain.agent_id, action=None, deleting=True)
    assert info.value.message == (
        f"agent {plain.agent_id} has no placement; use `cafleet agent deregister` instead"
    )
    assert target(pending.agent_id.upper()[:10], action=None).pane is None
    assert rec.calls == []


@pytest.mark.django_db
def test_cross_director_refused_with_zero_keystrokes(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    theirs = add_member(team, director_id=other.agent_id, pane="%8")
    common = dict(
        session_id=team.sid, agent_ref=team.did, member_ref=theirs.agent_id, tmux=tmux_mod
    )
    attempts = [
        lambda: members.member_capture(lines=30, ansi=False, **common),
        lambda: members.member_send_input(choice=1, **common),
        lambda: members.member_send_input(freetext="hi", **common),
        lambda: members.member_exec(command="ls", **common),
        lambda: members.member_ping(**common),
        lambda: members.member_delete(force=False, **common),
        lambda: members.member_delete(force=True, **common),
    ]
    for attempt in attempts:
        with pytest.raises(CafleetError, match="is not a member of your team"):
            attempt()
    assert rec.calls == []
    assert is_active(theirs.agent_id)


# ------------------------------------------------------------------------------ capture
@pytest.mark.django_db
def test_capture_argv_cleaning_and_errors(team, rec):
    member = add_member(team)
    common = dict(
        session_id=team.sid, agent_ref=team.did, member_ref=member.agent_id, tmux=tmux_mod
    )
    rec.outputs["capture-pane"] = "\x1b[1mbold\x1b[0m\nloading 10%\rloading 100%\n"
    target, text = members.member_capture(lines=30, ansi=False, **common)
    assert text == "bold\nloading 100%\n"
    assert target.pane == "%7"
    _, raw = members.member_capture(lines=200, ansi=True, **common)
    assert raw == "\x1b[1mbold\x1b[0m\nloading 10%\rloading 100%\n"
    assert rec.calls == [
        ["capture-pane", "-p", "-t", "%7", "-S", "-30"],
        ["capture-pane", "-p", "-t", "%7", "-S", "-200"],
    ]
    for bad in (0, -5):
        with pytest.raises(CafleetError) as info:
            members.member_capture(lines=bad, ansi=False, **common)
        assert info.value.message == (
            f"capture failed: capture_pane: lines must be positive, got {bad}"
        )
    assert len(rec.calls) == 2
    rec.failures["capture-pane"] = "can't find pane: %7"
    with pytest.raises(CafleetError) as info:
        members.member_capture(lines=30, ansi=False, **common)
    assert info.value.message == (
        "capture failed: tmux command failed: tmux capture-pane -p "
        "-t %7 -S -30\nstderr: can't find pane: %7"
    )


# ------------------------------------------------------------------------------ keystrokes
@pytest.fixture
def pane(monkeypatch, tmp_path):
    """The member's pane %7 simulated (tests/delivery_sim.py): ``tmux.run`` goes to it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    sim = PaneSim("%7")
    monkeypatch.setattr(tmux_mod, "run", sim)
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setattr(tmux_mod, "_foreground_argv", lambda pid: None)
    monkeypatch.setattr(tmux_mod, "VERIFY_POLL", 0.0)
    monkeypatch.setattr(
        tmux_mod, "time", SimpleNamespace(sleep=lambda s: None, monotonic=time.monotonic)
    )
    return sim


@pytest.mark.django_db
def test_send_input_choice_and_freetext_keystrokes(team, pane):
    member = add_member(team)
    common = dict(
        session_id=team.sid, agent_ref=team.did, member_ref=member.agent_id[:8], tmux=tmux_mod
    )
    members.member_send_input(choice=2, **common)
    assert pane.keystrokes == [["send-keys", "-t", "%7", "2"]]
    pane.calls.clear()
    members.member_send_input(freetext="hi $HOME `x` Enter C-c", **common)
    # 4 as a plain key, then the text as a bracketed paste (never send-keys), then Enter
    keys = [["<buf>" if a.startswith("cafleet-") else a for a in k] for k in pane.keystrokes]
    assert keys[:3] == [
        ["send-keys", "-t", "%7", "4"],
        ["paste-buffer", "-p", "-d", "-b", "<buf>", "-t", "%7"],
        ["send-keys", "-t", "%7", "Enter"],
    ]
    assert not any("-l" in k for k in keys)
    pane.calls.clear()
    members.member_send_input(freetext="", **common)
    assert pane.keystrokes == [["send-keys", "-t", "%7", "4"], ["send-keys", "-t", "%7", "Enter"]]
    pane.fail["send-keys"] = "no server running"
    with pytest.raises(
        CafleetError,
        match=r"^send failed: tmux command failed: tmux send-keys "
        r"-t %7 2\nstderr: no server running$",
    ):
        members.member_send_input(choice=2, **common)


@pytest.mark.django_db
def test_send_input_refuses_a_pane_not_running_the_agent(team, pane):
    member = add_member(team)
    pane.command = "bash"
    with pytest.raises(CafleetError) as info:
        members.member_send_input(
            session_id=team.sid,
            agent_ref=team.did,
            member_ref=member.agent_id,
            choice=1,
            tmux=tmux_mod,
        )
    assert info.value.message == "pane %7 is not ready: agent not running"
    assert pane.keystrokes == []


@pytest.mark.django_db
def test_send_input_still_answers_a_menu(team, pane):
    """The screen gate does not apply: answering a question is the Director's action."""
    member = add_member(team)
    pane.dialog = True
    members.member_send_input(
        session_id=team.sid, agent_ref=team.did, member_ref=member.agent_id, choice=1, tmux=tmux_mod
    )
    assert pane.keystrokes == [["send-keys", "-t", "%7", "1"]]


@pytest.mark.django_db
def test_exec_keystrokes(team, pane):
    member = add_member(team)
    target = members.member_exec(
        session_id=team.sid,
        agent_ref=team.did,
        member_ref=member.agent_id,
        command="git status | wc -l",
        tmux=tmux_mod,
    )
    assert target.member.name == "worker"
    assert [c[0] for c in pane.keystrokes] == ["paste-buffer", "send-keys"]
    assert pane.keystrokes[1] == ["send-keys", "-t", "%7", "Enter"]
    assert pane.submitted == ["! git status | wc -l"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ({"dialog": True}, "waiting for permission"),
        ({"draft": "hello wor"}, "draft in the input"),
        ({"command": "bash"}, "agent not running"),
        ({"gone": True}, "pane gone"),
    ],
)
def test_exec_and_ping_refuse_a_pane_that_is_not_ready(team, pane, setup, words):
    member = add_member(team)
    for key, value in setup.items():
        setattr(pane, key, value)
    common = dict(
        session_id=team.sid, agent_ref=team.did, member_ref=member.agent_id, tmux=tmux_mod
    )
    with pytest.raises(CafleetError) as info:
        members.member_exec(command="rm -rf build", **common)
    assert info.value.message == f"pane %7 is not ready: {words}"
    with pytest.raises(CafleetError) as info:
        members.member_ping(**common)
    assert info.value.message == f"pane %7 is not ready: {words}"
    assert pane.keystrokes == [] and pane.submitted == []


@pytest.mark.django_db
def test_ping_keystrokes_and_not_delivered(team, pane):
    member = add_member(team)
    common = dict(
        session_id=team.sid, agent_ref=team.did[:8], member_ref=member.agent_id, tmux=tmux_mod
    )
    members.member_ping(**common)
    poll = f"cafleet --session-id {team.sid} message poll --agent-id {member.agent_id}"
    assert pane.submitted == [poll]
    assert [c[0] for c in pane.keystrokes] == ["paste-buffer", "send-keys"]
    pane.fail["paste-buffer"] = "server exited unexpectedly"
    with pytest.raises(CafleetError) as info:
        members.member_ping(**common)
    assert info.value.message == (
        "send failed: tmux send-keys did not deliver the poll-trigger keystroke to pane %7."
    )


# ------------------------------------------------------------------------------ delete
class FakeClock:
    def __init__(self, rec):
        self.t = 100.0
        self.rec = rec

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.rec.events.append(("sleep", seconds))
        self.t += seconds


def delete(team, rec, member, *, force=False, warnings=None, **kw):
    clock = FakeClock(rec)
    sink = warnings if warnings is not None else []
    return members.member_delete(
        session_id=team.sid,
        agent_ref=team.did,
        member_ref=member.agent_id,
        force=force,
        tmux=tmux_mod,
        warn=sink.append,
        sleep=clock.sleep,
        clock=clock,
        **kw,
    )


@pytest.mark.django_db
def test_delete_default_waits_then_deregisters_then_rebalances(team, rec):
    member = add_member(team, window="@4")
    answers = iter(["%0\n%7\n", "%0\n%7\n", "%0\n"])
    rec.outputs["list-panes"] = lambda args: next(answers)
    result = delete(team, rec, member)
    assert result == (member.agent_id, "Member deleted.", "%7 (closed)")
    listing = ["list-panes", "-a", "-F", "#{pane_id}"]
    assert rec.script() == [
        ["send-keys", "-t", "%7", "/exit", "Enter"],
        listing,
        ("sleep", 0.5),
        listing,
        ("sleep", 0.5),
        listing,
        ["select-layout", "-t", "@4", "main-vertical"],
    ]
    assert not is_active(member.agent_id)
    assert not Placement.objects.filter(agent_id=member.agent_id).exists()


@pytest.mark.django_db
def test_delete_exit_on_gone_pane_is_fine(team, rec):
    member = add_member(team)
    rec.failures["send-keys"] = "can't find pane: %7"
    assert delete(team, rec, member)[2] == "%7 (closed)"
    assert not is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_force_kills_even_when_gone(team, rec):
    member = add_member(team)
    assert delete(team, rec, member, force=True) == (
        member.agent_id,
        "Member deleted (--force).",
        "%7 (killed)",
    )
    assert rec.calls == [["kill-pane", "-t", "%7"], ["select-layout", "-t", "@1", "main-vertical"]]
    again = add_member(team, pane="%8")
    rec.failures["kill-pane"] = "can't find pane: %8"
    warnings = []
    rec.failures["select-layout"] = "no such window"
    assert delete(team, rec, again, force=True, warnings=warnings)[2] == "%8 (killed)"
    assert not is_active(again.agent_id)
    assert warnings == [
        "Warning: select-layout failed: tmux command failed: tmux select-layout "
        "-t @1 main-vertical\nstderr: no such window"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("force", [False, True], ids=["default", "force"])
def test_delete_pending_makes_no_tmux_call(team, rec, force):
    member = add_member(team, pane=None)
    assert delete(team, rec, member, force=force) == (
        member.agent_id,
        "Member deleted.",
        "(pending — no pane)",
    )
    assert rec.calls == []
    assert not is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_timeout_keeps_member_and_reports_tail(team, rec):
    member = add_member(team)
    rec.outputs["list-panes"] = "%0\n%7\n"
    rec.outputs["capture-pane"] = "\x1b[2m> /exit\x1b[0m\nignoring /exit\n\n\n"
    with pytest.raises(members.DeleteTimeout) as info:
        delete(team, rec, member)
    exc = info.value
    assert exc.exit_code == 2
    assert exc.usage is False
    assert exc.stdout_json == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
    assert exc.message == (
        "pane %7 did not close within 15.0s after /exit.\n"
        "--- pane %7 tail (last 80 lines) ---\n"
        "> /exit\nignoring /exit\n"
        "---\n"
        "Recovery: inspect with `cafleet member capture`, answer any prompt with `cafleet "
        "member send-input`, then re-run `cafleet member delete`. Or re-run with `--force` to "
        "skip the wait and kill the pane."
    )
    script = rec.script()
    assert script[0] == ["send-keys", "-t", "%7", "/exit", "Enter"]
    assert script[-1] == ["capture-pane", "-p", "-t", "%7", "-S", "-80"]
    assert sum(e[1] for e in script if e[0] == "sleep") == pytest.approx(15.0)
    assert script.count(["list-panes", "-a", "-F", "#{pane_id}"]) == 31
    assert not any(c[0] in ("kill-pane", "select-layout") for c in rec.calls)
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_timeout_with_failing_tail_capture(team, rec):
    member = add_member(team)
    rec.outputs["list-panes"] = "%7\n"
    rec.failures["capture-pane"] = "boom"
    warnings = []
    with pytest.raises(members.DeleteTimeout) as info:
        delete(team, rec, member, warnings=warnings, deadline=1.0)
    assert warnings == [
        "Warning: capture_pane failed during timeout handling: tmux command "
        "failed: tmux capture-pane -p -t %7 -S -80\nstderr: boom. The timeout "
        "error and recovery hint still print."
    ]
    assert "--- pane %7 tail (last 80 lines) ---\n---\nRecovery:" in info.value.message


@pytest.mark.django_db
def test_delete_tmux_failures(team, rec):
    member = add_member(team)
    rec.failures["send-keys"] = "no server running on /tmp/x"
    with pytest.raises(CafleetError) as info:
        delete(team, rec, member)
    assert info.value.message == (
        "send_exit failed for pane %7: tmux command failed: tmux send-keys -t %7 /exit Enter\n"
        "stderr: no server running on /tmp/x. The tmux server may be unreachable. Verify with "
        "'cafleet doctor', then re-run 'cafleet member delete', or use '--force' to kill the "
        "pane directly."
    )
    rec.failures["kill-pane"] = "no server running on /tmp/x"
    with pytest.raises(CafleetError) as info:
        delete(team, rec, member, force=True)
    assert info.value.message == (
        "kill_pane failed for pane %7: tmux command failed: tmux kill-pane -t %7\n"
        "stderr: no server running on /tmp/x. The tmux server may be unreachable. Verify with "
        "'cafleet doctor', then re-run the command."
    )
    del rec.failures["send-keys"]
    rec.failures["list-panes"] = "lost server"
    with pytest.raises(CafleetError) as info:
        delete(team, rec, member)
    assert info.value.message == (
        "tmux call failed while waiting for pane %7 to close: tmux command failed: tmux "
        "list-panes -a -F #{pane_id}\nstderr: lost server"
    )
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_deregister_failure(team, rec, monkeypatch):
    member = add_member(team)

    def refuse(self, *, at=None, note=""):
        raise CafleetError(f"agent {self.agent_id} not found or already deregistered.")

    monkeypatch.setattr(Agent, "deregister", refuse)
    with pytest.raises(CafleetError) as info:
        delete(team, rec, member, force=True)
    assert info.value.message == (
        f"deregister failed: agent {member.agent_id} not found or already deregistered."
    )
    assert not any(c[0] == "select-layout" for c in rec.calls)


# ------------------------------------------------------------------------------ list
def ts(second: int) -> str:
    return f"2026-05-05T12:00:{second:02d}.000000+00:00"


def task(*, frm, to, state=TaskState.INPUT_REQUIRED, at, summary=False) -> Task:
    tid = new_id()
    if summary:
        return Task.objects.create(
            task_id=tid,
            context_id=frm,
            from_agent_id=frm,
            to_agent_id="",
            type=TaskType.BROADCAST_SUMMARY,
            created_at=at,
            status_state=TaskState.COMPLETED,
            status_timestamp=at,
            origin_task_id=tid,
            text="summary",
        )
    return Task.objects.create(
        task_id=tid,
        context_id=to,
        from_agent_id=frm,
        to_agent_id=to,
        type=TaskType.UNICAST,
        created_at=at,
        status_state=state,
        status_timestamp=at,
        text="hi",
    )


@pytest.mark.django_db
def test_list_selects_own_active_members_in_order(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    second = add_member(team, name="second", stamp=ts(2))
    first = add_member(team, name="first", stamp=ts(1), pane=None)
    add_member(team, name="theirs", director_id=other.agent_id, stamp=ts(3))
    gone = add_member(team, name="gone", stamp=ts(4))
    gone.deregister()
    rows = members.member_list(session_id=team.sid, agent_ref=team.did)
    assert [r.agent.name for r in rows] == ["first", "second"]
    assert rows[0].placement.tmux_pane_id is None
    assert members.member_list(session_id=team.sid, agent_ref="nobody-at-all") == []
    assert members.member_list(session_id=new_id(), agent_ref=team.did) == []
    assert members.member_list(session_id=team.sid, agent_ref=team.admin.agent_id) == []
    assert [
        r.agent.agent_id for r in members.member_list(session_id=team.sid, agent_ref=team.did[:8])
    ] == [first.agent_id, second.agent_id]
    assert rec.calls == []


@pytest.mark.django_db
def test_activity_values(team):
    busy = add_member(team, name="busy", stamp=ts(0))
    quiet = add_member(team, name="quiet", stamp=ts(0))
    did, mid = team.did, busy.agent_id
    task(frm=did, to=mid, at=ts(1))  # unread
    task(frm=did, to=mid, at=ts(2))  # unread
    task(frm=did, to=mid, state=TaskState.COMPLETED, at=ts(5))  # acked at :05
    task(frm=did, to=mid, state=TaskState.CANCELED, at=ts(6))  # canceled at :06
    task(frm=mid, to=did, at=ts(3))  # sent at :03
    task(frm=mid, to=mid, at=ts(40), summary=True)  # summary rows count for nothing
    task(frm=quiet.agent_id, to=quiet.agent_id, at=ts(50), summary=True)
    at = datetime(2026, 5, 5, 12, 1, 6, 900000, tzinfo=UTC)
    rows = members.member_list(session_id=team.sid, agent_ref=did, activity=True, at=at)
    got = {r.agent.name: (r.last_sent, r.last_recv, r.last_ack, r.idle, r.unread) for r in rows}
    assert got == {"busy": (ts(3), ts(6), ts(5), 60, 2), "quiet": (None, None, None, None, 0)}
    Task.objects.filter(context_id=mid, status_timestamp=ts(1)).update(
        status_state=TaskState.COMPLETED, status_timestamp=ts(7)
    )
    rows = members.member_list(session_id=team.sid, agent_ref=did, activity=True, at=at)
    busy_row = next(r for r in rows if r.agent.name == "busy")
    assert (busy_row.unread, busy_row.last_ack, busy_row.idle) == (1, ts(7), 59)


def test_idle_never_negative_and_floored():
    at = datetime(2026, 5, 5, 12, 0, 0, tzinfo=UTC)
    assert members.idle_seconds(ts(30), None, at) == 0
    assert members.idle_seconds(None, "2026-05-05T11:59:58.500000+00:00", at) == 1
    assert members.idle_seconds(None, None, at) is None


@pytest.mark.django_db
def test_list_with_activity_is_one_query_for_fifty_members(team, django_assert_num_queries):
    for i in range(50):
        m = add_member(team, name=f"m{i}", pane=f"%{i + 10}")
        task(frm=team.did, to=m.agent_id, at=now())
        task(frm=m.agent_id, to=team.did, at=now())
    with django_assert_num_queries(1):
        rows = members.member_list(session_id=team.sid, agent_ref=team.did, activity=True)
    assert len(rows) == 50
    assert all(r.unread == 1 and r.last_sent and r.last_recv for r in rows)


# ------------------------------------------------------------------------------ handlers
@pytest.fixture
def mcli(rec, monkeypatch, capsys):
    """Run ``cafleet ...`` through the real entry point, in-process, on the test database."""
    from cafleet_project import cli as entry

    monkeypatch.setattr(entry, "setup_django", lambda path: None)

    def run(*args):
        code = entry._main([str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(code=code, out=out, err=err)

    return run


def lines_of(text: str) -> list[str]:
    assert text.endswith("\n")
    return text[:-1].split("\n")


@pytest.mark.django_db
def test_cli_create_outputs(team, rec, mcli):
    base = ("--session-id", team.sid)
    res = mcli(
        *base, "member", "create", "--agent-id", team.did, "--name", "alice", "--description", "d"
    )
    assert res.code == 0, res.err
    agent = Agent.objects.get(name="alice")
    assert res.out == f"{agent.agent_id[:8]} alice backend=claude pane=%7\n"
    rec.outputs["split-window"] = "%8\n"
    res = mcli(
        *base,
        "member",
        "create",
        "--agent-id",
        team.did[:8],
        "--name",
        "bob",
        "--description",
        "d",
        "--coding-agent",
        "codex",
        "--full",
        "--",
        "go",
        "{agent_id}",
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
    res = mcli(
        "--json",
        *base,
        "member",
        "create",
        "--agent-id",
        team.did,
        "--name",
        "carol",
        "--description",
        "d",
    )
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
    base = (
        "--session-id",
        team.sid,
        "member",
        "create",
        "--agent-id",
        team.did,
        "--description",
        "d",
    )
    monkeypatch.delenv("TMUX")
    res = mcli(*base, "--name", "a\x1b[31mb")
    assert (res.code, res.err.splitlines()[-1]) == (
        2,
        "Error: --name may not contain control characters.",
    )
    res = mcli(*base, "--name", "Administrator")
    assert (res.code, res.err) == (1, "Error: the name 'Administrator' is reserved.\n")
    res = mcli(*base, "--name", "x")
    assert res.err == "Error: cafleet member commands must be run inside a tmux session\n"
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    res = mcli(*base, "--name", "x", "--", "{bad}")
    new = only_new_agent(team)
    assert res.code == 1
    assert res.err.endswith(f"Rolled back registration of {new.agent_id}.\n")
    assert rec.calls == [
        ["display-message", "-p", "-t", "%0", "#{session_name}|#{window_id}|#{pane_id}"]
    ]


@pytest.mark.django_db
def test_cli_list_text_layout(team, mcli):
    res = mcli("--session-id", team.sid, "member", "list", "--agent-id", team.did)
    assert res.out == "0 members.\n"
    one = add_member(team, name="alice", stamp=ts(1), pane="%12")
    res = mcli("--session-id", team.sid, "member", "list", "--agent-id", team.did)
    assert lines_of(res.out) == [
        "1 member:",
        "  agent_id  name      status  backend  session  window_id  pane_id  created_at",
        "  --------  --------  ------  -------  -------  ---------  -------  " + "-" * len(ts(1)),
        f"  {one.agent_id[:8]}  alice     active  claude   main     @1         %12      {ts(1)}",
    ]
    two = add_member(team, name="a-much-longer-name", stamp=ts(2), pane=None, coding_agent="codex")
    task(frm=team.did, to=two.agent_id, at=ts(3))
    res = mcli("--session-id", team.sid, "member", "list", "--agent-id", team.did)
    out = lines_of(res.out)
    assert out[0] == "2 members:"
    # columns widen to their longest value: every row stays aligned
    assert out[1] == (
        "  agent_id  name                status  backend  session  window_id  pane_id    created_at"
    )
    assert out[4] == (
        f"  {two.agent_id[:8]}  a-much-longer-name  active  codex    main     "
        f"@1         (pending)  {ts(2)}"
    )
    res = mcli("--session-id", team.sid, "member", "list", "--agent-id", team.did, "--activity")
    out = lines_of(res.out)
    assert out[1:3] == [
        "  agent_id  name                status  last_sent  last_recv  last_ack   idle   unread  held"
        "  channel  state  age",
        "  --------  ------------------  ------  ---------  ---------  ---------  -----  ------  ----"
        "  -------  -----  ---",
    ]
    assert (
        out[3] == f"  {one.agent_id[:8]}  alice               active  -          -          -"
        "          -      0       0     -        -      -"
    )
    assert out[4].startswith(
        f"  {two.agent_id[:8]}  a-much-longer-name  active  -          12:00:03   -          "
    )
    assert out[4].endswith("  1       0     -        -      -")
    for line in out:
        assert line == line.rstrip()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h")],
)
def test_idle_text(seconds, text):
    from broker.commands.member import idle_text

    assert idle_text(seconds) == text


@pytest.mark.django_db
def test_cli_list_json(team, mcli):
    member = add_member(team, name="alice", stamp=ts(1), pane=None)
    res = mcli("--json", "--session-id", team.sid, "member", "list", "--agent-id", team.did)
    assert json.loads(res.out) == [
        {
            "agent_id": member.agent_id,
            "name": "alice",
            "description": "does work",
            "status": "active",
            "registered_at": ts(1),
            "placement": {
                "director_agent_id": team.did,
                "tmux_session": "main",
                "tmux_window_id": "@1",
                "tmux_pane_id": None,
                "coding_agent": "claude",
                "created_at": ts(1),
            },
        }
    ]
    res = mcli(
        "--json", "--session-id", team.sid, "member", "list", "--agent-id", team.did, "--activity"
    )
    entry = json.loads(res.out)[0]
    assert list(entry)[-9:] == [
        "last_sent", "last_recv", "last_ack", "idle", "unread", "held",
        "channel", "state", "state_age",
    ]  # fmt: skip
    assert (entry["last_sent"], entry["idle"], entry["unread"], entry["held"]) == (None, None, 0, 0)


@pytest.mark.django_db
def test_cli_capture_send_input_exec_ping_outputs(team, rec, mcli, monkeypatch, tmp_path):
    member = add_member(team, name="alice")
    base = ("--session-id", team.sid)
    ids = ("--agent-id", team.did, "--member-id", member.agent_id[:8])
    rec.outputs["capture-pane"] = "line one\nline two\n\n"
    res = mcli(*base, "member", "capture", *ids, "--tail", "5", "--full")
    assert (res.code, res.out) == (0, "line one\nline two\n")  # trailing blank dropped
    assert rec.calls[-1] == ["capture-pane", "-p", "-t", "%7", "-S", "-5"]
    res = mcli("--json", *base, "member", "capture", *ids)
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "lines": 30,
        "content": "line one\nline two\n",
    }
    # the keystroke commands go through the gate: a simulated idle pane answers them
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    sim = PaneSim("%7")
    monkeypatch.setattr(tmux_mod, "run", sim)
    monkeypatch.setattr(tmux_mod, "_foreground_argv", lambda pid: None)
    monkeypatch.setattr(tmux_mod, "VERIFY_POLL", 0.0)
    res = mcli(*base, "member", "send-input", *ids, "--choice", "2")
    assert res.out == "Sent choice 2 to member alice (%7).\n"
    res = mcli("--json", *base, "member", "send-input", *ids, "--choice", "3")
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "action": "choice",
        "value": "3",
    }
    res = mcli(*base, "member", "send-input", *ids, "--freetext", "hi")
    assert res.out == "Sent free text to member alice (%7).\n"
    res = mcli("--json", *base, "member", "send-input", *ids, "--freetext", "")
    assert json.loads(res.out)["value"] == ""
    res = mcli(*base, "member", "exec", *ids, "  git status  ")
    assert res.out == "Sent bash command 'git status' to member alice (%7).\n"
    assert sim.submitted[-1] == "! git status"
    res = mcli(*base, "member", "exec", *ids, "echo 'it' | tr a-z A-Z")
    assert res.out == ("Sent bash command \"echo 'it' | tr a-z A-Z\" to member alice (%7).\n")
    res = mcli(*base, "member", "exec", *ids, "echo \"a\" 'b' \\x")
    assert res.out == ("Sent bash command 'echo \"a\" \\'b\\' \\\\x' to member alice (%7).\n")
    res = mcli("--json", *base, "member", "exec", *ids, " ls -l ")
    assert json.loads(res.out) == {
        "member_agent_id": member.agent_id,
        "pane_id": "%7",
        "command": "ls -l",
    }
    res = mcli(*base, "member", "ping", *ids)
    assert res.out == "Pinged member alice (%7) — poll keystroke dispatched.\n"
    res = mcli(*base, "member", "ping", *ids, "--quiet")
    assert res.out == f"{member.agent_id[:8]}\n"
    res = mcli("--json", *base, "member", "ping", *ids, "--quiet")
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
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        args[0],
        "--agent-id",
        team.did,
        "--member-id",
        team.did,
        *args[1:],
    )
    assert res.code == 2
    assert res.err.endswith(f"\n\nError: {message}\n")
    assert res.err.startswith("Usage: cafleet member ")
    assert res.out == ""
    res = mcli(
        "--json",
        "--session-id",
        team.sid,
        "member",
        args[0],
        "--agent-id",
        team.did,
        "--member-id",
        team.did,
        *args[1:],
    )
    assert (
        res.err
        == json.dumps({"error": message, "exit_code": 2}, ensure_ascii=False, separators=(",", ":"))
        + "\n"
    )
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_guard_before_database_and_targets(team, rec, mcli, monkeypatch):
    from broker.exceptions import NotReady

    def not_ready():
        raise NotReady("database /tmp/registry.db is not initialised. Run 'cafleet db init'.")

    ids = ("--agent-id", team.did, "--member-id", "nobody00")
    monkeypatch.delenv("TMUX")
    monkeypatch.setattr("broker.database.ensure_ready", not_ready)
    for verb, extra in [
        ("capture", ()),
        ("send-input", ("--choice", "1")),
        ("exec", ("ls",)),
        ("ping", ()),
        ("delete", ()),
    ]:
        res = mcli("--session-id", team.sid, "member", verb, *ids, *extra)
        assert (res.code, res.err) == (
            1,
            "Error: cafleet member commands must be run inside a tmux session\n",
        ), verb
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: None)
    res = mcli("--session-id", team.sid, "member", "ping", *ids)
    assert res.err == "Error: tmux binary not found on PATH\n"
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    res = mcli("--session-id", team.sid, "member", "ping", *ids)
    assert res.err == (
        "Error: database /tmp/registry.db is not initialised. Run 'cafleet db init'.\n"
    )
    res = mcli("--session-id", team.sid, "member", "list", "--agent-id", team.did)
    assert res.code == 1  # list needs no tmux but does need the database
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_capture_lines_zero_after_target_before_tmux(team, rec, mcli):
    member = add_member(team)
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        "capture",
        "--agent-id",
        team.did,
        "--member-id",
        member.agent_id,
        "--lines",
        "0",
    )
    assert (res.code, res.err) == (
        1,
        "Error: capture failed: capture_pane: lines must be positive, got 0\n",
    )
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        "capture",
        "--agent-id",
        team.did,
        "--member-id",
        "nobody00",
        "--lines",
        "-3",
    )
    assert res.err == "Error: Agent nobody00 not found\n"
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_delete_outputs(team, rec, mcli):
    member = add_member(team)
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        member.agent_id,
    )
    assert lines_of(res.out) == [
        "Member deleted.",
        f"  agent_id:  {member.agent_id}",
        "  pane_id:   %7 (closed)",
    ]
    forced = add_member(team, pane="%8")
    res = mcli(
        "--json",
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        forced.agent_id[:8],
        "-f",
    )
    assert json.loads(res.out) == {"agent_id": forced.agent_id, "pane_status": "%8 (killed)"}
    pending = add_member(team, pane=None)
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        pending.agent_id,
        "--force",
    )
    assert lines_of(res.out)[2] == "  pane_id:   (pending — no pane)"
    plain = agent_register(session_id=team.sid, name="plain", description="x", skills_json=None)
    res = mcli(
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        plain.agent_id,
    )
    assert res.err == (
        f"Error: agent {plain.agent_id} has no placement; use `cafleet agent deregister` instead\n"
    )


@pytest.mark.django_db
def test_cli_delete_timeout_text_and_json(team, rec, mcli, monkeypatch):
    member = add_member(team)
    rec.outputs["list-panes"] = "%7\n"
    rec.outputs["capture-pane"] = "> /exit\nstandin: ignoring /exit\n\n"
    clock = FakeClock(rec)
    monkeypatch.setattr(members, "time", SimpleNamespace(sleep=clock.sleep, monotonic=clock))
    args = (
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        member.agent_id,
    )
    res = mcli(*args)
    block = (
        "pane %7 did not close within 15.0s after /exit.\n"
        "--- pane %7 tail (last 80 lines) ---\n"
        "> /exit\nstandin: ignoring /exit\n"
        "---\n"
        "Recovery: inspect with `cafleet member capture`, answer any prompt with `cafleet "
        "member send-input`, then re-run `cafleet member delete`. Or re-run with `--force` "
        "to skip the wait and kill the pane."
    )
    assert (res.code, res.out, res.err) == (2, "", f"Error: {block}\n")
    res = mcli("--json", "--pretty", *args)
    assert res.code == 2
    assert json.loads(res.out) == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
    assert (
        res.err
        == json.dumps({"error": block, "exit_code": 2}, ensure_ascii=False, separators=(",", ":"))
        + "\n"
    )
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_cli_unknown_and_deregistered_member(team, rec, mcli):
    gone = add_member(team)
    gone.deregister()
    for verb, extra in [
        ("capture", ()),
        ("send-input", ("--choice", "1")),
        ("exec", ("ls",)),
        ("ping", ()),
    ]:
        res = mcli(
            "--session-id",
            team.sid,
            "member",
            verb,
            "--agent-id",
            team.did,
            "--member-id",
            gone.agent_id,
            *extra,
        )
        assert res.err == f"Error: Agent {gone.agent_id} not found\n", verb
    assert rec.calls == []


@pytest.mark.django_db
def test_cli_session_id_required(team, rec, mcli):
    res = mcli("member", "list", "--agent-id", team.did)
    assert res.code == 1
    assert res.err.startswith("Error: --session-id <uuid> is required for this subcommand.")


@pytest.mark.django_db
def test_cli_json_warning_precedes_json_error(team, rec, mcli, monkeypatch):
    """acceptance 25: a warning stays plain text and comes before the JSON error line."""
    member = add_member(team)
    rec.outputs["list-panes"] = "%7\n"
    rec.failures["capture-pane"] = "boom"
    clock = FakeClock(rec)
    monkeypatch.setattr(members, "time", SimpleNamespace(sleep=clock.sleep, monotonic=clock))
    res = mcli(
        "--json",
        "--session-id",
        team.sid,
        "member",
        "delete",
        "--agent-id",
        team.did,
        "--member-id",
        member.agent_id,
    )
    assert res.code == 2
    lines = res.err.splitlines()
    assert lines[0].startswith("Warning: capture_pane failed during timeout handling: ")
    assert lines[1].startswith("stderr: boom")  # tmux failure texts carry a second line
    assert json.loads(lines[-1])["exit_code"] == 2
    assert len(lines) == 3
    assert json.loads(res.out) == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
