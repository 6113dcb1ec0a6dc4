"""Issue 9 acceptance on the real Claude Code 2.1.328: what ``cafleet message send`` does to a
member pane in every state the pane gate knows (shell, dialog, draft, lone ``!``,
copy-mode, busy, a stopped client), the 50-preview loop, and the held → escalation path.

Each test drives cafleet as a user does (``message send`` as a subprocess, the background
delivery worker started on its own) and checks the result where it lands: in the mock
model's recorded requests, on the pane's screen and in the files a command would create.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.realagent.fleet import RealFleet
from tests.realagent.harness import CLAUDE_DIALOG, alive

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]

BACKEND = "anthropic"


@pytest.fixture
def fleet(fresh_db, tmux_server):
    return RealFleet(fresh_db, tmux_server)


def turns(agent, needle: str) -> list[str]:
    return agent.model.user_turns_containing(agent.backend, needle)


def open_dialog(agent, marker) -> None:
    agent.model.bash(agent.backend, f"touch {marker}", "Create the marker")
    agent.submit("please create the marker")
    agent.wait_text(CLAUDE_DIALOG)


def dialog_part(screen: str) -> str:
    return screen[screen.index("Bash command") :]


def test_a_shell_pane_never_runs_the_body_and_the_message_stays_held(fleet, tmux_server, tmp_path):
    window, pane = tmux_server.new_window("/bin/sh")
    member = fleet.add_member("shelly", pane, "claude")
    probe = tmp_path / "x"
    sent = fleet.send(member, f"touch {probe}")
    assert sent.lines[0] == "Message sent. Preview held: agent not running."
    task = fleet.task_to(member, "touch")
    row = fleet.wait_attempts(task, 3)
    assert row[:2] == ("held", "agent_not_running")
    assert not probe.exists()
    assert "touch" not in tmux_server.capture(pane)


def test_an_open_dialog_is_never_answered_and_the_message_arrives_after_it(
    fleet, start_agent, tmp_path
):
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    marker = agent.cwd / "dialog-marker"
    open_dialog(agent, marker)
    before = agent.model.turn_count(BACKEND)
    sent = fleet.send(member, "news while the dialog is open 3141")
    assert sent.lines[0] == "Message sent. Preview held: waiting for permission."
    task = fleet.task_to(member, "3141")
    assert fleet.wait_attempts(task, 4)[:2] == ("held", "permission_dialog")
    # The worker kept trying; the dialog is still open and its command never ran.
    assert CLAUDE_DIALOG in agent.screen()
    assert not marker.exists()
    assert agent.model.turn_count(BACKEND) == before
    # A human declines (Esc: "Esc to cancel"); the pane comes to rest and the worker delivers.
    agent.send_keys("Escape")
    found = agent.model.wait_user_text(BACKEND, "3141", timeout=30)
    assert len(found) == 1 and found[0].endswith("news while the dialog is open 3141")
    fleet.wait(lambda: fleet.delivery(task)[0] in ("offered", "seen"), 15, "delivered state")
    agent.wait_idle()
    assert turns(agent, "3141") == found
    assert not marker.exists()


def test_a_draft_and_a_lone_bang_are_never_merged_or_run(fleet, start_agent):
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    probe = agent.cwd / "bang-probe"

    # 1. a half-typed draft
    agent.send_keys("hello wor", literal=True)
    agent.wait_screen(lambda s: agent.input_line(s) == "hello wor", 10, "the draft")
    sent = fleet.send(member, "first news 2718")
    assert sent.lines[0] == "Message sent. Preview held: draft in the input."
    task = fleet.task_to(member, "2718")
    assert fleet.wait_attempts(task, 3)[:2] == ("held", "draft")
    assert agent.input_line() == "hello wor"
    assert turns(agent, "2718") == [] and turns(agent, "hello wor") == []
    agent.send_keys(*["BSpace"] * len("hello wor"))  # the human clears the draft
    found = agent.model.wait_user_text(BACKEND, "2718")
    assert len(found) == 1 and "hello wor" not in found[0]
    agent.wait_idle()

    # 2. a lone "!" (Claude's shell mode): the body is a command that must never run
    agent.send_keys("!", literal=True)
    agent.wait_text("! for shell mode", 10)
    sent = fleet.send(member, f"touch {probe}")
    assert sent.lines[0].startswith("Message sent. Preview held: ")
    task = fleet.task_to(member, "bang-probe")
    assert fleet.wait_attempts(task, 3)[0] == "held"
    assert not probe.exists() and turns(agent, "bang-probe") == []
    agent.send_keys("BSpace")
    found = agent.model.wait_user_text(BACKEND, "bang-probe")
    assert len(found) == 1 and found[0].startswith("[cafleet msg ")
    agent.wait_idle()
    assert not probe.exists()
    assert turns(agent, "hello wor") == []


def test_copy_mode_is_left_and_the_message_arrives(fleet, start_agent, tmux_server):
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    tmux_server.run("copy-mode", "-t", agent.pane)
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "1"
    sent = fleet.send(member, "news in copy mode 1618")
    assert sent.lines[0] == "Message sent. Preview delivered."
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "0"
    found = agent.model.wait_user_text(BACKEND, "1618")
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, "1618") == found


def test_a_busy_claude_queues_the_message_and_sends_it_next(fleet, start_agent):
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    agent.model.busy(BACKEND, 5, text="long work finished")
    agent.submit("start the long work")
    agent.wait_text("esc to interrupt")
    sent = fleet.send(member, "news while busy 1414")
    assert sent.lines[0] == "Message sent. Preview delivered."
    agent.wait_text("long work finished", 30)
    found = agent.model.wait_user_text(BACKEND, "1414")
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, "1414") == found
    assert agent.model.turn_count(BACKEND) == 2  # the busy turn, then the message's own


def test_a_client_stopped_around_the_keystrokes_gets_the_message_exactly_once(fleet, start_agent):
    agent = start_agent("claude", wrap=True)
    member = fleet.add_member("claudia", agent.pane, "claude")
    pid = agent.client_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        # The whole send (gate, paste, Enter, verify) runs while the client cannot read.
        sent = fleet.send(member, "news to a stopped client 1732")
        time.sleep(0.3)
        state = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[0]
        assert state == "T"  # still stopped: nothing continued it behind our back
    finally:
        os.kill(pid, signal.SIGCONT)
    assert sent.lines[0] == "Message sent. Preview delivered."
    found = agent.model.wait_user_text(BACKEND, "1732")
    agent.wait_idle()
    assert alive(pid)
    assert len(found) == 1 and turns(agent, "1732") == found
    assert agent.model.turn_count(BACKEND) == 1


def test_fifty_previews_make_fifty_user_turns(fleet, start_agent):
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    count = 50
    for i in range(count):
        sent = fleet.send(member, f"loop message {i:03d}-claude")
        assert sent.lines[0] == "Message sent. Preview delivered.", (i, sent.out)
        agent.model.wait_turns(BACKEND, i + 1, timeout=30)
        agent.wait_idle(timeout=30)
    agent.model.wait_turns(BACKEND, count)
    got = {i: turns(agent, f"loop message {i:03d}-claude") for i in range(count)}
    once = [i for i, found in got.items() if len(found) == 1]
    print(f"claude loop: {len(once)} of {count} previews submitted as one user turn each")
    assert len(once) == count, {i: f for i, f in got.items() if len(f) != 1}
    assert agent.model.turn_count(BACKEND) == count


def test_a_dialog_held_past_the_timeout_is_escalated_once_and_never_answered(
    fresh_db, tmux_server, start_agent
):
    fleet = RealFleet(fresh_db, tmux_server, CAFLEET_DELIVERY_HOLD_TIMEOUT="3")
    agent = start_agent("claude")
    member = fleet.add_member("claudia", agent.pane, "claude")
    marker = agent.cwd / "escalation-marker"
    open_dialog(agent, marker)
    dialog_screen = dialog_part(agent.screen())
    before = agent.model.turn_count(BACKEND)
    fleet.send(member, "news for a member stuck on a dialog 4669")
    task = fleet.task_to(member, "4669")
    notes = fleet.wait(fleet.admin_notes, 30, "an escalation")
    # More passes after the escalation: still exactly one, and the dialog untouched.
    first = int(fleet.delivery(task)[2])
    fleet.wait_attempts(task, first + 6)
    notes = fleet.admin_notes()
    assert len(notes) == 1, notes
    ((to, text),) = notes
    assert to == fleet.director
    assert "claudia" in text and "waiting for permission" in text
    state, reason, _attempts, escalated = fleet.delivery(task)
    assert (state, reason) == ("held", "permission_dialog") and escalated
    # No keystroke reached the member's pane: the dialog reads as it did (the logo above
    # it animates, so only the dialog is compared).
    assert dialog_part(agent.screen()) == dialog_screen
    assert not marker.exists()
    assert agent.model.turn_count(BACKEND) == before
    agent.send_keys("Escape")  # the human answers at last: the member gets its message
    agent.model.wait_user_text(BACKEND, "4669")
