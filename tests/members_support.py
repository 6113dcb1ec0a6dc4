"""What the members unit tests (``tests/test_members_*.py``) share: fixtures and helpers for
member workflows (broker.members) and handlers (broker.commands.member) without tmux.

The real ``broker.tmux`` module is used with its single door, ``run``, replaced by a
recorder (``rec``): every test sees the exact tmux argument lists, in order, with the pauses
between them, and can make any tmux verb fail. ``pane`` instead puts a simulated agent pane
(tests/delivery_sim.py) behind that door.

The fixtures are requested by name: a test module binds the ones it uses at module level
(``rec = members_support.rec``), as the injection tests do with their stage.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from broker import members
from broker import tmux as tmux_mod
from broker.clock import new_id
from broker.exceptions import CafleetError
from broker.models import Agent, AgentStatus, Placement, Task, TaskState, TaskType
from broker.services import session_create
from tests.delivery_sim import PaneSim

BIN = Path(__file__).resolve().parent / "bin"
CALLER = ("main", "@1", "%0")


# ------------------------------------------------------------------------------ tmux door
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


def put_behind_tmux(monkeypatch, door, sleep) -> None:
    """``door`` answers every tmux call; tmux's pauses go to ``sleep``."""
    monkeypatch.setattr(tmux_mod, "run", door)
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setattr(tmux_mod, "time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic))


@pytest.fixture
def rec(monkeypatch):
    recorder = Recorder()
    put_behind_tmux(monkeypatch, recorder, recorder.sleep)
    monkeypatch.setenv("TMUX", "/tmp/cafleet-fake-tmux,1,0")
    monkeypatch.setenv("TMUX_PANE", "%0")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return recorder


def simulate_pane(monkeypatch, tmp_path) -> PaneSim:
    """The member's pane %7 simulated (tests/delivery_sim.py): ``tmux.run`` goes to it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    sim = PaneSim("%7")
    put_behind_tmux(monkeypatch, sim, lambda s: None)
    monkeypatch.setattr(tmux_mod, "_foreground_argv", lambda pid: None)
    monkeypatch.setattr(tmux_mod, "VERIFY_POLL", 0.0)
    return sim


@pytest.fixture
def pane(monkeypatch, tmp_path):
    return simulate_pane(monkeypatch, tmp_path)


class FakeClock:
    """A clock whose pauses pass at once and are recorded among ``rec``'s events."""

    def __init__(self, rec):
        self.t = 100.0
        self.rec = rec

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.rec.events.append(("sleep", seconds))
        self.t += seconds


def fake_member_clock(monkeypatch, rec) -> FakeClock:
    """broker.members waits on a :class:`FakeClock` (the CLI path, which passes no clock)."""
    clock = FakeClock(rec)
    monkeypatch.setattr(members, "time", SimpleNamespace(sleep=clock.sleep, monotonic=clock))
    return clock


# ------------------------------------------------------------------------------ rows
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
    """A member registered by the step ``member create`` registers with (its row and pending
    placement), then given its pane (None: still pending) and its time; no tmux."""
    agent, _placement = members._register(
        session_id=team.sid,
        director_ref=director_id or team.did,
        name=name,
        description="does work",
        coding_agent=coding_agent,
        caller=("main", window, None),
    )
    stamp = stamp or agent.registered_at
    Agent.objects.filter(agent_id=agent.agent_id).update(registered_at=stamp)
    Placement.objects.filter(agent_id=agent.agent_id).update(tmux_pane_id=pane, created_at=stamp)
    agent.refresh_from_db()
    return agent


def is_active(agent_id) -> bool:
    return Agent.objects.filter(agent_id=agent_id, status=AgentStatus.ACTIVE).exists()


def only_new_agent(team) -> Agent:
    return (
        Agent.objects.filter(session_id=team.sid)
        .exclude(agent_id__in=[team.did, team.admin.agent_id])
        .get()
    )


def ts(second: int) -> str:
    return f"2026-05-05T12:00:{second:02d}.000000+00:00"


def task(*, frm, to, state=TaskState.INPUT_REQUIRED, at, summary=False) -> Task:
    """A unicast task row (or, with ``summary``, a broadcast summary row) written directly."""
    tid = new_id()
    kind = {
        "context_id": to,
        "to_agent_id": to,
        "type": TaskType.UNICAST,
        "status_state": state,
        "text": "hi",
    }
    if summary:
        kind = {
            "context_id": frm,
            "to_agent_id": "",
            "type": TaskType.BROADCAST_SUMMARY,
            "status_state": TaskState.COMPLETED,
            "origin_task_id": tid,
            "text": "summary",
        }
    return Task.objects.create(
        task_id=tid, from_agent_id=frm, created_at=at, status_timestamp=at, **kind
    )


# ------------------------------------------------------------------------------ workflows
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


def refs(team, member_ref, agent_ref=None) -> dict:
    """The keyword arguments naming the session, the Director and the member, and tmux."""
    return {
        "session_id": team.sid,
        "agent_ref": agent_ref or team.did,
        "member_ref": member_ref,
        "tmux": tmux_mod,
    }


def refusal(call, *args, **kwargs) -> str:
    """The message of the :class:`CafleetError` that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(CafleetError) as info:
        call(*args, **kwargs)
    return info.value.message


def default_prompt(sid, aid, did) -> str:
    return (
        f"Member of cafleet session {sid} (agent={aid}, director={did}).\n"
        f"Load skill 'cafleet'. Bash auto-approves. Poll: cafleet --session-id {sid} "
        f"message poll --agent-id {aid}"
    )


# ------------------------------------------------------------------------------ the CLI
class MemberCli:
    """``cafleet ...`` through the real entry point, in-process, on the test database."""

    def __init__(self, team, capsys):
        from cafleet_project import cli as entry

        self.entry = entry
        self.team = team
        self.capsys = capsys

    def __call__(self, *args):
        code = self.entry._main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return SimpleNamespace(code=code, out=out, err=err)

    def member(self, verb, *args, member=None, agent=None, head=()):
        """``HEAD --session-id S member VERB --agent-id D [--member-id M] ARGS``, with the
        team's session and Director unless told otherwise."""
        ids = ("--agent-id", agent or self.team.did)
        if member is not None:
            ids += ("--member-id", member)
        return self(*head, "--session-id", self.team.sid, "member", verb, *ids, *args)


@pytest.fixture
def mcli(rec, team, monkeypatch, capsys):
    from cafleet_project import cli as entry

    monkeypatch.setattr(entry, "setup_django", lambda path: None)
    return MemberCli(team, capsys)


def lines_of(text: str) -> list[str]:
    assert text.endswith("\n")
    return text[:-1].split("\n")


def json_error_line(message: str, exit_code: int) -> str:
    """The one stderr line of ``--json`` mode for an error."""
    error = {"error": message, "exit_code": exit_code}
    return json.dumps(error, ensure_ascii=False, separators=(",", ":")) + "\n"


# Every pane command once, with the arguments it needs (the target checks come before tmux).
PANE_VERBS = [("capture", ()), ("send-input", ("--choice", "1")), ("exec", ("ls",)), ("ping", ())]


# The hint that ends the error of a ``member delete`` whose pane did not close.
DELETE_RECOVERY = (
    "Recovery: inspect with `cafleet member capture`, answer any prompt with `cafleet "
    "member send-input`, then re-run `cafleet member delete`. Or re-run with `--force` to "
    "skip the wait and kill the pane."
)


def delete_timeout_text(tail: str, pane: str = "%7") -> str:
    """The whole error of a ``member delete`` timeout, with the pane's cleaned tail."""
    return (
        f"pane {pane} did not close within 15.0s after /exit.\n"
        f"--- pane {pane} tail (last 80 lines) ---\n{tail}---\n{DELETE_RECOVERY}"
    )


def delete_report(agent_id: str, pane_status: str, *, force: bool = False) -> list[str]:
    """The lines ``member delete`` prints in text mode."""
    return [
        "Member deleted (--force)." if force else "Member deleted.",
        f"  agent_id:  {agent_id}",
        f"  pane_id:   {pane_status}",
    ]
