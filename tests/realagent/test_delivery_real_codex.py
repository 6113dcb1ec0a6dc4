"""Issue 9 acceptance on the real Codex 0.169.0: shell pane, permission dialog, draft and
lone ``!``, busy agent (held, then delivered after the turn) and the 50-preview loop,
driven through ``cafleet message send`` as a subprocess (see test_delivery_real_claude.py).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.realagent.fleet import RealFleet
from tests.realagent.harness import CODEX_DIALOG, descendants, proc_stat

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]

BACKEND = "openai"


@pytest.fixture
def fleet(fresh_db, tmux_server):
    return RealFleet(fresh_db, tmux_server)


def turns(agent, needle: str) -> list[str]:
    return agent.model.user_turns_containing(agent.backend, needle)


def test_a_shell_pane_never_runs_the_body_and_the_message_stays_held(fleet, tmux_server, tmp_path):
    window, pane = tmux_server.new_window("/bin/sh")
    member = fleet.add_member("shelly", pane, "codex")
    probe = tmp_path / "x"
    sent = fleet.send(member, f"touch {probe}")
    assert sent.lines[0] == "Message sent. Preview held: agent not running."
    task = fleet.task_to(member, "touch")
    assert fleet.wait_attempts(task, 3)[:2] == ("held", "agent_not_running")
    assert not probe.exists()
    assert "touch" not in tmux_server.capture(pane)


def test_an_open_dialog_is_never_answered_and_the_message_arrives_after_it(fleet, start_agent):
    agent = start_agent("codex")
    member = fleet.add_member("cody", agent.pane, "codex")
    marker = agent.cwd / "dialog-marker"
    agent.model.bash(BACKEND, f"touch {marker}", "Create the marker")
    agent.submit("please create the marker")
    agent.wait_text(CODEX_DIALOG)
    before = agent.model.turn_count(BACKEND)
    # "y" would approve a Codex dialog at once: a body full of them must change nothing.
    sent = fleet.send(member, "yes yes y 2.71 proceed")
    assert sent.lines[0] == "Message sent. Preview held: waiting for permission."
    task = fleet.task_to(member, "2.71 proceed")
    assert fleet.wait_attempts(task, 4)[:2] == ("held", "permission_dialog")
    assert CODEX_DIALOG in agent.screen()
    assert not marker.exists()
    assert agent.model.turn_count(BACKEND) == before
    agent.send_keys("n", literal=True)  # a human declines ("n": No)
    found = agent.model.wait_user_text(BACKEND, "2.71 proceed", timeout=30)
    assert len(found) == 1 and found[0].startswith("[cafleet msg ")
    fleet.wait(lambda: fleet.delivery(task)[0] in ("offered", "seen"), 15, "delivered state")
    agent.wait_idle()
    assert turns(agent, "2.71 proceed") == found
    assert not marker.exists()


def test_a_draft_and_a_lone_bang_are_never_merged_or_run(fleet, start_agent):
    agent = start_agent("codex")
    member = fleet.add_member("cody", agent.pane, "codex")
    probe = agent.cwd / "bang-probe"

    agent.send_keys("hello wor", literal=True)
    agent.wait_screen(lambda s: agent.input_line(s) == "hello wor", 10, "the draft")
    sent = fleet.send(member, "first news 2718")
    assert sent.lines[0] == "Message sent. Preview held: draft in the input."
    task = fleet.task_to(member, "2718")
    assert fleet.wait_attempts(task, 3)[:2] == ("held", "draft")
    assert agent.input_line() == "hello wor"
    assert turns(agent, "2718") == []
    agent.send_keys(*["BSpace"] * len("hello wor"))
    found = agent.model.wait_user_text(BACKEND, "2718")
    assert len(found) == 1 and "hello wor" not in found[0]
    agent.wait_idle()

    agent.send_keys("!", literal=True)
    agent.wait_text("Shell mode", 10)
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


def test_a_busy_codex_is_held_and_gets_the_message_after_its_turn(fleet, start_agent):
    agent = start_agent("codex")
    member = fleet.add_member("cody", agent.pane, "codex")
    agent.model.busy(BACKEND, 5, text="long work finished")
    agent.submit("start the long work")
    agent.wait_text("esc to interrupt")
    sent = fleet.send(member, "news while busy 1414")
    assert sent.lines[0] == "Message sent. Preview held: agent busy."
    # Not a steer: the running answer is completed, then the message goes as its own turn.
    agent.wait_text("long work finished", 30)
    found = agent.model.wait_user_text(BACKEND, "1414")
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, "1414") == found
    assert agent.model.turn_count(BACKEND) == 2
    assert "long work finished" in agent.screen()


def test_fifty_previews_make_fifty_user_turns(fleet, start_agent):
    agent = start_agent("codex")
    member = fleet.add_member("cody", agent.pane, "codex")
    count = 50
    for i in range(count):
        sent = fleet.send(member, f"loop message {i:03d}-codex")
        assert sent.lines[0] == "Message sent. Preview delivered.", (i, sent.out)
        agent.model.wait_turns(BACKEND, i + 1, timeout=30)
        agent.wait_idle(timeout=30)
    got = {i: turns(agent, f"loop message {i:03d}-codex") for i in range(count)}
    once = [i for i, found in got.items() if len(found) == 1]
    print(f"codex loop: {len(once)} of {count} previews submitted as one user turn each")
    assert len(once) == count, {i: f for i, f in got.items() if len(f) != 1}
    assert agent.model.turn_count(BACKEND) == count


def test_copy_mode_is_left_and_the_message_arrives(fleet, start_agent, tmux_server):
    agent = start_agent("codex")
    member = fleet.add_member("cody", agent.pane, "codex")
    tmux_server.run("copy-mode", "-t", agent.pane)
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "1"
    sent = fleet.send(member, "news in copy mode 1618")
    assert sent.lines[0] == "Message sent. Preview delivered."
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "0"
    found = agent.model.wait_user_text(BACKEND, "1618")
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, "1618") == found


def test_a_client_stopped_around_the_keystrokes_gets_the_message_exactly_once(fleet, start_agent):
    agent = start_agent("codex", wrap=True)
    member = fleet.add_member("cody", agent.pane, "codex")
    # The JS wrapper (node) and the native codex that reads the terminal run below the
    # wrapper shell. Each is stopped by pid, the shell is not: when tmux sees its direct child
    # stop, it continues that child's whole process group.
    pgid = agent.foreground_pgid()
    readers = [p for p in descendants(agent.pane_pid) if os.getpgid(p) == pgid]
    assert len(readers) >= 2, readers
    for pid in readers:
        os.kill(pid, signal.SIGSTOP)
    try:
        sent = fleet.send(member, "news to a stopped client 1732")
        time.sleep(0.3)
        assert all(proc_stat(p) is not None for p in readers)
        states = [open(f"/proc/{p}/stat").read().rpartition(")")[2].split()[0] for p in readers]
        assert set(states) == {"T"}, states
    finally:
        for pid in readers:
            os.kill(pid, signal.SIGCONT)
    assert sent.lines[0] == "Message sent. Preview delivered."
    found = agent.model.wait_user_text(BACKEND, "1732")
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, "1732") == found
    assert agent.model.turn_count(BACKEND) == 1
