"""Issue 9 acceptance on the real Claude Code 2.1.328 and Codex 0.169.0: what ``cafleet message
send`` does to a member pane in every state the pane gate knows (shell, dialog, draft, lone
``!``, copy-mode, busy, a stopped client) and the 50-preview loop, each test run against both
clients. Where the two clients measurably differ, the difference is a field of :class:`Client`
(named, with what was measured); the escalation path (both clients) is in
test_delivery_real_escalation.py.

Each test drives cafleet as a user does (``message send`` as a subprocess, the background
delivery worker started on its own) and checks the result where it lands: in the mock
model's recorded requests, on the pane's screen and in the files a command would create.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.realagent.harness import DIALOG_OF, RealAgent, alive, descendants, proc_stat

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]


def claude_readers(agent: RealAgent) -> list[int]:
    """Claude reads the terminal in its one process (started under the wrapper shell)."""
    return [agent.client_pid()]


def codex_readers(agent: RealAgent) -> list[int]:
    """The JS wrapper (node) and the native codex that reads the terminal run below the
    wrapper shell. Each is stopped by pid, the shell is not: when tmux sees its direct child
    stop, it continues that child's whole process group."""
    pgid = agent.foreground_pgid()
    readers = [p for p in descendants(agent.pane_pid) if os.getpgid(p) == pgid]
    assert len(readers) >= 2, readers
    return readers


@dataclass(frozen=True)
class Client:
    name: str  # the installed client, also the member's ``coding_agent``
    member: str  # the member's name in the fleet
    # The message sent while a dialog is open. Codex approves a dialog on a bare "y", so its
    # body is full of them: it must change nothing.
    dialog_body: str
    dialog_needle: str
    decline: str  # the key a human declines the dialog with ("Esc to cancel" / "n": No)
    # What the client puts before the message in the user turn that follows the declined
    # dialog (Claude notes the interrupted tool call there).
    declined_note: str
    shell_mode: str  # what a lone "!" in the input shows
    # The first line of ``message send`` to a busy member: Claude queues typed input and sends
    # it as the next turn (delivered); on Codex, Enter would steer and drop the running
    # answer, so the gate holds the message until the turn ends.
    busy_sent: str
    readers: Callable[[RealAgent], list[int]]  # the processes that read the pane's terminal


# One row a client, in the order of the fields above.
CLAUDE = Client("claude", "claudia", "news while the dialog is open 3141", "3141", "Escape",
                "[Request interrupted by user for tool use]\n\n", "! for shell mode",
                "Message sent. Preview delivered.", claude_readers)  # fmt: skip
CODEX = Client("codex", "cody", "yes yes y 2.71 proceed", "2.71 proceed", "n", "",
               "Shell mode", "Message sent. Preview held: agent busy.", codex_readers)  # fmt: skip
CLIENTS = pytest.mark.parametrize("client", [CLAUDE, CODEX], ids=lambda c: c.name)


def turns(agent, needle: str) -> list[str]:
    return agent.model.user_turns_containing(agent.backend, needle)


def one_user_turn(agent, needle: str, timeout: float = 30.0) -> list[str]:
    """Wait for the turn carrying ``needle`` and the idle prompt; exactly one turn has it."""
    found = agent.model.wait_user_text(agent.backend, needle, timeout=timeout)
    agent.wait_idle()
    assert len(found) == 1 and turns(agent, needle) == found, found
    return found


def member_agent(fleet, start_agent, client: Client, **options):
    agent = start_agent(client.name, **options)
    return agent, fleet.add_member(client.member, agent.pane, client.name)


@CLIENTS
def test_a_shell_pane_never_runs_the_body_and_the_message_stays_held(
    fleet, tmux_server, tmp_path, client
):
    window, pane = tmux_server.new_window("/bin/sh")
    member = fleet.add_member("shelly", pane, client.name)
    probe = tmp_path / "x"
    sent = fleet.send(member, f"touch {probe}")
    assert sent.lines[0] == "Message sent. Preview held: agent not running."
    task = fleet.task_to(member, "touch")
    assert fleet.wait_attempts(task, 3)[:2] == ("held", "agent_not_running")
    assert not probe.exists()
    assert "touch" not in tmux_server.capture(pane)


@CLIENTS
def test_an_open_dialog_is_never_answered_and_the_message_arrives_after_it(
    fleet, start_agent, client
):
    agent, member = member_agent(fleet, start_agent, client)
    marker = agent.cwd / "dialog-marker"
    agent.open_dialog(marker)
    before = agent.model.turn_count(agent.backend)
    sent = fleet.send(member, client.dialog_body)
    assert sent.lines[0] == "Message sent. Preview held: waiting for permission."
    task = fleet.task_to(member, client.dialog_needle)
    assert fleet.wait_attempts(task, 4)[:2] == ("held", "permission_dialog")
    # The worker kept trying; the dialog is still open and its command never ran.
    assert DIALOG_OF[client.name] in agent.screen()
    assert not marker.exists()
    assert agent.model.turn_count(agent.backend) == before
    # A human declines; the pane comes to rest and the worker delivers.
    agent.send_keys(client.decline)
    found = one_user_turn(agent, client.dialog_needle)
    assert found[0].startswith(client.declined_note + "[cafleet msg ")
    assert found[0].endswith(client.dialog_body)
    fleet.wait(lambda: fleet.delivery(task)[0] in ("offered", "seen"), 15, "delivered state")
    assert not marker.exists()


@CLIENTS
def test_a_draft_and_a_lone_bang_are_never_merged_or_run(fleet, start_agent, client):
    agent, member = member_agent(fleet, start_agent, client)
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
    found = agent.model.wait_user_text(agent.backend, "2718")
    assert len(found) == 1 and "hello wor" not in found[0]
    agent.wait_idle()

    # 2. a lone "!" (shell mode): the body is a command that must never run
    agent.send_keys("!", literal=True)
    agent.wait_text(client.shell_mode, 10)
    sent = fleet.send(member, f"touch {probe}")
    assert sent.lines[0].startswith("Message sent. Preview held: ")
    task = fleet.task_to(member, "bang-probe")
    assert fleet.wait_attempts(task, 3)[0] == "held"
    assert not probe.exists() and turns(agent, "bang-probe") == []
    agent.send_keys("BSpace")
    found = agent.model.wait_user_text(agent.backend, "bang-probe")
    assert len(found) == 1 and found[0].startswith("[cafleet msg ")
    agent.wait_idle()
    assert not probe.exists()
    assert turns(agent, "hello wor") == []


@CLIENTS
def test_copy_mode_is_left_and_the_message_arrives(fleet, start_agent, tmux_server, client):
    agent, member = member_agent(fleet, start_agent, client)
    tmux_server.run("copy-mode", "-t", agent.pane)
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "1"
    sent = fleet.send(member, "news in copy mode 1618")
    assert sent.lines[0] == "Message sent. Preview delivered."
    assert tmux_server.display(agent.pane, "#{pane_in_mode}") == "0"
    one_user_turn(agent, "1618")


@CLIENTS
def test_a_busy_member_gets_the_message_as_its_own_turn_after_the_running_one(
    fleet, start_agent, client
):
    agent, member = member_agent(fleet, start_agent, client)
    agent.model.busy(agent.backend, 5, text="long work finished")
    agent.submit("start the long work")
    agent.wait_text("esc to interrupt")
    sent = fleet.send(member, "news while busy 1414")
    assert sent.lines[0] == client.busy_sent
    # Not a steer: the running answer is completed, then the message goes as its own turn.
    agent.wait_text("long work finished", 30)
    one_user_turn(agent, "1414")
    assert agent.model.turn_count(agent.backend) == 2  # the busy turn, then the message's own
    assert "long work finished" in agent.screen()


@CLIENTS
def test_a_client_stopped_around_the_keystrokes_gets_the_message_exactly_once(
    fleet, start_agent, client
):
    agent, member = member_agent(fleet, start_agent, client, wrap=True)
    readers = client.readers(agent)
    for pid in readers:
        os.kill(pid, signal.SIGSTOP)
    try:
        # The whole send (gate, paste, Enter, verify) runs while the client cannot read.
        sent = fleet.send(member, "news to a stopped client 1732")
        time.sleep(0.3)
        assert all(proc_stat(p) is not None for p in readers)
        states = [open(f"/proc/{p}/stat").read().rpartition(")")[2].split()[0] for p in readers]
        assert set(states) == {"T"}, states  # still stopped: nothing continued them
    finally:
        for pid in readers:
            os.kill(pid, signal.SIGCONT)
    assert sent.lines[0] == "Message sent. Preview delivered."
    one_user_turn(agent, "1732")
    assert all(alive(p) for p in readers)
    assert agent.model.turn_count(agent.backend) == 1


@CLIENTS
def test_fifty_previews_make_fifty_user_turns(fleet, start_agent, client):
    agent, member = member_agent(fleet, start_agent, client)
    count = 50
    for i in range(count):
        sent = fleet.send(member, f"loop message {i:03d}-{client.name}")
        assert sent.lines[0] == "Message sent. Preview delivered.", (i, sent.out)
        agent.model.wait_turns(agent.backend, i + 1, timeout=30)
        agent.wait_idle(timeout=30)
    agent.model.wait_turns(agent.backend, count)
    got = {i: turns(agent, f"loop message {i:03d}-{client.name}") for i in range(count)}
    once = [i for i, found in got.items() if len(found) == 1]
    print(f"{client.name} loop: {len(once)} of {count} previews submitted as one user turn each")
    assert len(once) == count, {i: f for i, f in got.items() if len(f) != 1}
    assert agent.model.turn_count(agent.backend) == count
