"""Facts about the real clients that cafleet's delivery relies on (screens.md).

Each test starts the pinned real client (Claude Code 2.1.328 / Codex 0.169.0) in an isolated
tmux server against the scripted mock model and checks one behaviour, with polling waits.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.realagent.harness import DIALOG_OF, IDLE_FOOTER, classify, stopped_group

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]

CLIENTS = ["claude", "codex"]


def start_busy(start_agent, name: str, seconds: int):
    """Start ``name`` and a model answer that streams for ``seconds`` ("long work finished")."""
    agent = start_agent(name)
    agent.model.busy(agent.backend, seconds, text="long work finished")
    agent.submit("start the long work")
    agent.wait_text("esc to interrupt")
    return agent


def sent_once_as_second_turn(agent, text: str, needle: str) -> None:
    """``text`` arrives as the one user turn with ``needle``, the one after the busy turn."""
    agent.model.wait_user_text(agent.backend, needle)
    agent.wait_idle()
    assert agent.model.user_turns_containing(agent.backend, needle) == [text]
    assert agent.model.turn_count(agent.backend) == 2


@pytest.mark.parametrize("name", CLIENTS)
def test_mock_answer_reaches_the_screen(start_agent, mock_model, name):
    agent = start_agent(name)
    mock_model.reply(agent.backend, "pong from the mock 4711")
    agent.submit("ping 4711")
    agent.wait_text("pong from the mock 4711")
    agent.wait_idle()
    assert mock_model.user_turns_containing(agent.backend, "ping 4711") == ["ping 4711"]


@pytest.mark.parametrize("name", CLIENTS)
def test_bash_tool_call_opens_a_dialog_that_enter_approves(start_agent, mock_model, name):
    agent = start_agent(name)
    marker = agent.cwd / "approved-marker"
    screen = agent.open_dialog(marker)
    # The dialog replaces the input box and its idle footer.
    assert classify(name, screen) == "dialog"
    agent.wait_screen(lambda s: IDLE_FOOTER not in s, 10, "no idle footer")
    assert not marker.exists()
    # Typed text is ignored by the dialog ...
    agent.send_keys("zz", literal=True)
    time.sleep(0.5)
    screen = agent.screen()
    assert DIALOG_OF[name] in screen, screen
    assert not marker.exists(), screen
    # ... and a bare Enter approves the highlighted "1. Yes": the tool call runs.
    agent.send_keys("Enter")
    agent.wait_idle()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), agent.screen()
    assert mock_model.user_turns_containing(agent.backend, "zz") == [], agent.screen()


@pytest.mark.parametrize("name", CLIENTS)
def test_bracketed_paste_then_enter_submits_one_turn_with_client_stopped(
    start_agent, mock_model, tmux_server, name
):
    agent = start_agent(name)
    text = "first line of the message 8812\nsecond line of the message 8812"
    pgid = agent.foreground_pgid()
    proc_input = text.encode()
    with stopped_group(pgid):
        # All keystrokes land while the client cannot read: one read gets them all.
        subprocess.run(
            ["tmux", "-S", str(tmux_server.socket), "load-buffer", "-b", "cafleet-t1", "-"],
            input=proc_input,
            check=True,
            timeout=10,
            env=tmux_server.base_env,
        )
        tmux_server.run("paste-buffer", "-p", "-d", "-b", "cafleet-t1", "-t", agent.pane)
        tmux_server.run("send-keys", "-t", agent.pane, "Enter")
        time.sleep(0.3)
    found = mock_model.wait_user_text(agent.backend, "8812")
    assert found == [text]
    agent.wait_idle()
    # Exactly one user turn carries it, and the named buffer is gone (-d).
    assert mock_model.user_turns_containing(agent.backend, "8812") == [text]
    assert "cafleet-t1" not in tmux_server.run("list-buffers", "-F", "#{buffer_name}")


def test_claude_queues_input_typed_while_busy_and_sends_it_next(start_agent):
    agent = start_busy(start_agent, "claude", 6)
    agent.submit("note while busy 5150")
    screen = agent.wait_text("Queued")
    assert "note while busy 5150" in screen
    agent.wait_text("long work finished")
    # Sent as its own turn after the busy one, exactly once.
    sent_once_as_second_turn(agent, "note while busy 5150", "5150")


def test_codex_enter_while_busy_steers_and_discards_the_running_answer(start_agent):
    agent = start_busy(start_agent, "codex", 8)
    agent.submit("note while busy 6160")
    # The message is not lost: it goes at once in a new request (a steer) ...
    sent_once_as_second_turn(agent, "note while busy 6160", "6160")
    # ... and the answer that was still streaming is dropped.
    assert "long work finished" not in tmux_capture(agent)


def test_codex_tab_while_busy_queues_until_the_turn_ends(start_agent):
    agent = start_busy(start_agent, "codex", 5)
    agent.paste("note while busy 7170")
    time.sleep(0.2)
    agent.send_keys("Tab")
    agent.wait_text("Queued follow-up inputs")
    agent.wait_text("long work finished")
    sent_once_as_second_turn(agent, "note while busy 7170", "7170")


@pytest.mark.parametrize("name", CLIENTS)
def test_a_draft_in_the_input_is_merged_with_a_pasted_message(start_agent, mock_model, name):
    """Why the gate must refuse a pane with a draft: paste + Enter submits draft + text."""
    agent = start_agent(name)
    agent.send_keys("hello wor", literal=True)
    agent.wait_screen(lambda s: agent.input_line(s) == "hello wor", 10, "the draft")
    agent.submit("message 9290")
    found = mock_model.wait_user_text(agent.backend, "9290")
    assert found == ["hello wormessage 9290"]


def tmux_capture(agent) -> str:
    return agent.server.capture(agent.pane)
