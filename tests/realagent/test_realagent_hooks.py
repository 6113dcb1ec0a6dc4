"""The hook channel on the real Claude Code (docs/hooks.md), against the mock model.

A member is started as ``member create`` starts it: ``--permission-mode dontAsk``, its
per-member ``--settings`` file (cafleet's hooks and allow rules) and ``CAFLEET_*`` in its
environment. Messages are sent with the real ``cafleet`` binary through a ``tmux`` wrapper
that logs every tmux call, so a test proves that no keystroke went to the member's pane.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench.timing import wait_until as shared_wait_until
from broker import hooksettings
from broker.hook import waiter_alive
from tests.conftest import CAFLEET
from tests.plugins.tmux_server import BIN_DIR
from tests.realagent.harness import CLAUDE_DIALOG, IDLE_FOOTER, RealAgent
from tests.test_hooks import delivery, session_with_alice
from tests.test_hooks import send as hook_send

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]

ANTHROPIC = "anthropic"
VENV_BIN = str(Path(CAFLEET).parent)


class Member(RealAgent):
    """A real Claude Code started like a cafleet member (its env names it to its hooks)."""

    extra_env: dict = {}

    def env(self) -> dict:
        env = super().env()
        env.update(self.extra_env)
        return env

    def is_idle(self, screen: str) -> bool:
        # In dontAsk mode the idle footer names the mode instead of "? for shortcuts".
        if "don't ask on" in screen:
            screen = screen + "\n" + IDLE_FOOTER
        return super().is_idle(screen)


@pytest.fixture
def fleet_db(fresh_db):
    return fresh_db, session_with_alice(fresh_db)


@pytest.fixture
def tmux_log(tmp_path):
    """A ``tmux`` wrapper first on PATH that appends each call's argv to a log."""
    wrap = tmp_path / "wrapbin"
    wrap.mkdir()
    log = tmp_path / "tmux-calls.log"
    real = "/usr/bin/tmux" if os.path.exists("/usr/bin/tmux") else "tmux"
    script = wrap / "tmux"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    script.chmod(0o755)
    return wrap, log


@pytest.fixture
def start_member(tmux_server, mock_model, agent_workdir, fleet_db):
    db, fleet = fleet_db
    started = []

    def _start(*, mode: str = "dontAsk", extra=(), binary=CAFLEET, url=None) -> Member:
        settings = hooksettings.write_member_settings(str(db.path), fleet.member, binary)
        member = Member(
            tmux_server, "claude", mock_model, agent_workdir / f"m{len(started)}",
            extra_args=["--permission-mode", mode, "--name", "alice", "--settings", settings,
                        *extra],
        )  # fmt: skip
        member.extra_env = {
            "CAFLEET_DATABASE_URL": url or db.url,
            "CAFLEET_SESSION_ID": fleet.sid,
            "CAFLEET_AGENT_ID": fleet.member,
            "CAFLEET_DELIVERY_AUTOSTART": "0",
            # cafleet on PATH; never the stand-in agents of tests/bin.
            "PATH": ":".join(
                [VENV_BIN]
                + [
                    p
                    for p in os.environ.get("PATH", "/usr/bin:/bin").split(":")
                    if p and Path(p) != BIN_DIR
                ]
            ),
        }
        started.append(member)
        member.start(timeout=60)
        # The member's pane is its placement: keystrokes would be possible.
        db.execute("INSERT INTO agent_placements (agent_id, director_agent_id, tmux_session, "
                "tmux_window_id, tmux_pane_id, coding_agent, created_at) VALUES "
                "(?, ?, 'x', '@9', ?, 'claude', '2026-11-30T00:00:00.000000+00:00')",
            fleet.member, fleet.director, member.pane)  # fmt: skip
        return member

    try:
        yield _start
    finally:
        for member in started:
            member.stop()


def logged_env(db, tmux_server, tmux_log) -> dict:
    """The environment of a ``cafleet`` call whose tmux calls go through the logging wrapper."""
    wrap, _log = tmux_log
    return {**db.env, "PATH": f"{wrap}:{tmux_server.base_env['PATH']}",
            "TMUX": tmux_server.tmux_var}  # fmt: skip


def send(db, fleet, tmux_server, tmux_log, text):
    return hook_send(db, fleet, text, env=logged_env(db, tmux_server, tmux_log))


def typed_into(log: Path, pane: str) -> list[str]:
    if not log.exists():
        return []
    return [
        line
        for line in log.read_text().splitlines()
        if pane in line and line.split()[0] in ("send-keys", "paste-buffer")
    ]


def state(db, agent_id):
    got = db.rows("SELECT state FROM agent_states WHERE agent_id = ?", agent_id)
    return got[0][0] if got else None


def wait_until(predicate, timeout=30.0, what="condition"):
    return shared_wait_until(predicate, timeout, what)


def requests_with(model, needle):
    return [r for r in model.requests(ANTHROPIC) if needle in json.dumps(r.body)]


def tool_results(body) -> list[str]:
    """The text of every tool_result block of the request's last user message."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    if not messages:
        return []
    out = []
    content = messages[-1].get("content")
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, list):
                inner = " ".join(str(b.get("text", "")) for b in inner if isinstance(b, dict))
            out.append(str(inner))
    return out


def assert_once_per_request(model, needle):
    hits = requests_with(model, needle)
    assert hits, f"{needle!r} never reached the model"
    for r in hits:
        text = json.dumps(r.body)
        spots = [
            text[max(0, i - 300) : i + 80] for i in range(len(text)) if text.startswith(needle, i)
        ]
        assert text.count(needle) == 1, "injected more than once: " + " ||| ".join(spots)
    return hits


def test_busy_member_receives_through_post_tool_use_without_keystroke(
    start_member, mock_model, fleet_db, tmux_server, tmux_log
):
    db, fleet = fleet_db
    member = start_member(extra=("--allowedTools", "Bash(sleep:*)"))
    mock_model.bash(ANTHROPIC, "sleep 4", "Wait a little")
    mock_model.reply(ANTHROPIC, "finished the wait")
    member.submit("please wait a little")
    wait_until(lambda: state(db, fleet.member) == "working", what="working state")
    task = send(db, fleet, tmux_server, tmux_log, "peer note 5521 about the build")
    assert delivery(db, task)[0] == "held"  # kept for the hook, not typed
    hits = wait_until(lambda: requests_with(mock_model, "peer note 5521"), 30, "injection")
    assert_once_per_request(mock_model, "peer note 5521")
    assert delivery(db, task) == ("seen", "hook")
    assert "tool_result" in json.dumps(hits[0].body)  # it came with the tool result
    member.wait_idle()
    assert typed_into(tmux_log[1], member.pane) == []
    assert mock_model.user_turns_containing(ANTHROPIC, "peer note 5521") == []


def test_idle_member_is_woken_by_the_waiter_without_keystroke(
    start_member, mock_model, fleet_db, tmux_server, tmux_log
):
    db, fleet = fleet_db
    member = start_member()
    mock_model.reply(ANTHROPIC, "hello there")
    member.submit("say hello")
    member.wait_text("hello there")
    member.wait_idle()
    # The waiter takes its lock first, then records "idle" (in between, mail is held for
    # the hook channel, never typed).
    wait_until(
        lambda: waiter_alive(str(db.path), fleet.member) and state(db, fleet.member) == "idle",
        20,
        "a live waiter and the idle state",
    )
    mock_model.reply(ANTHROPIC, "answering the peer 7730")
    task = send(db, fleet, tmux_server, tmux_log, "wake note 7730 from the director")
    wait_until(lambda: requests_with(mock_model, "wake note 7730"), 30, "wake")
    member.wait_text("answering the peer 7730")
    assert_once_per_request(mock_model, "wake note 7730")
    assert delivery(db, task)[1] == "wake"
    assert typed_into(tmux_log[1], member.pane) == []


def test_permission_dialog_state_within_2s_and_no_keystroke(
    start_member, mock_model, fleet_db, tmux_server, tmux_log
):
    db, fleet = fleet_db
    member = start_member(mode="default")
    marker = member.cwd / "approved"
    mock_model.bash(ANTHROPIC, f"touch {marker}", "Create the marker")
    mock_model.reply(ANTHROPIC, "marker made")
    member.submit("make the marker")
    member.wait_text(CLAUDE_DIALOG)
    shown = time.monotonic()
    wait_until(lambda: state(db, fleet.member) == "waiting_permission", 5, "waiting state")
    assert time.monotonic() - shown <= 2.0
    task = send(db, fleet, tmux_server, tmux_log, "dialog note 4410")
    assert delivery(db, task)[0] == "held"
    time.sleep(1.0)
    assert CLAUDE_DIALOG in member.screen()  # untouched
    assert typed_into(tmux_log[1], member.pane) == []
    member.send_keys("Enter")  # the user answers the dialog (the test, not cafleet)
    wait_until(lambda: requests_with(mock_model, "dialog note 4410"), 30, "after dialog")
    assert_once_per_request(mock_model, "dialog note 4410")
    assert marker.exists()
    assert delivery(db, task) == ("seen", "hook")


def test_spawned_member_runs_cafleet_poll_without_a_dialog(
    start_member, mock_model, fleet_db, tmux_server, tmux_log
):
    db, fleet = fleet_db
    member = start_member()
    task = send(db, fleet, tmux_server, tmux_log, "poll note 9902")
    # The pane's PATH is the tmux server's here, without the venv: the member calls cafleet
    # by the absolute path its settings allow (``Bash(<path>:*)``).
    command = f"{CAFLEET} --session-id {fleet.sid} message poll --agent-id {fleet.member}"
    mock_model.bash(ANTHROPIC, command, "Check my inbox")
    mock_model.reply(ANTHROPIC, "inbox read")
    member.submit("check your inbox")
    member.wait_text("inbox read", timeout=60)
    assert CLAUDE_DIALOG not in member.screen()
    outputs = [text for r in mock_model.requests(ANTHROPIC) for text in tool_results(r.body)]
    assert len(outputs) == 1
    assert "poll note 9902" in outputs[0] and "permission" not in outputs[0].lower()
    assert delivery(db, task)[0] == "seen"


@pytest.mark.parametrize("fault", ["broken_database", "missing_binary"])
def test_a_broken_hook_never_stops_the_turn(start_member, mock_model, fleet_db, fault):
    db, _fleet = fleet_db
    log = db.path.parent / "hook.log"
    if fault == "broken_database":
        bad = db.path.parent / "broken.db"
        bad.write_bytes(b"this is not a database" * 50)
        member = start_member(url=f"sqlite:///{bad}", extra=("--allowedTools", "Bash(true)"))
    else:
        member = start_member(
            binary=str(db.path.parent / "no-such" / "cafleet"),
            extra=("--allowedTools", "Bash(true)"),
        )
    mock_model.bash(ANTHROPIC, "true", "Do nothing")
    mock_model.reply(ANTHROPIC, "turn finished 6161")
    member.submit("run true")
    member.wait_text("turn finished 6161", timeout=60)
    member.wait_idle()
    lines = wait_until(lambda: log.exists() and log.read_text().splitlines(), 10, "log lines")
    if fault == "broken_database":
        assert any("DatabaseError" in line for line in lines)
    else:
        assert any("cafleet binary missing" in line for line in lines)
    assert "hook error" not in member.screen().lower()


def test_director_gets_mail_after_hooks_install(
    tmux_server, mock_model, agent_workdir, fleet_db, tmux_log
):
    """``cafleet hooks install`` into the Director's own settings (hot-reloaded by the
    running client): the Director, found by its pane, receives through PostToolUse."""
    db, fleet = fleet_db
    director = Member(
        tmux_server, "claude", mock_model, agent_workdir / "director",
        extra_args=["--name", "director", "--allowedTools", "Bash(sleep:*)"],
    )  # fmt: skip
    director.extra_env = {"CAFLEET_DATABASE_URL": db.url, "CAFLEET_DELIVERY_AUTOSTART": "0"}
    director.start(timeout=60)
    try:
        db.execute("UPDATE agent_placements SET tmux_pane_id = ? WHERE agent_id = ?",
                   director.pane, fleet.director)  # fmt: skip
        settings = director.home / ".claude" / "settings.json"
        before = settings.read_bytes()
        r = db.run("hooks", "install", "--settings-file", str(settings))
        assert r.code == 0, r.err
        time.sleep(2.0)  # the running client reloads its settings
        mock_model.bash(ANTHROPIC, "sleep 3", "Wait")
        mock_model.reply(ANTHROPIC, "director done")
        director.submit("wait a little")
        wait_until(
            lambda: state(db, fleet.director) == "working",
            20,
            "the Director's hooks report it working",
        )
        task = hook_send(db, fleet, "report 3380 from alice", to=fleet.director,
                         sender=fleet.member, env=logged_env(db, tmux_server, tmux_log))  # fmt: skip
        wait_until(lambda: requests_with(mock_model, "report 3380"), 30, "director injection")
        assert_once_per_request(mock_model, "report 3380")
        assert delivery(db, task) == ("seen", "hook")
        assert typed_into(tmux_log[1], director.pane) == []
        director.wait_text("director done")
        r = db.run("hooks", "uninstall", "--settings-file", str(settings))
        assert r.code == 0, r.err
        assert settings.read_bytes() == before
    finally:
        director.stop()
