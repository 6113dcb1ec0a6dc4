"""The stand-in agents (tests/bin/claude, tests/bin/codex) show the real clients' markers.

The same classifier that reads the real screens (tests/test_agent_screens.py) must read the
same state from a stand-in, and the stand-ins must behave as the real clients were measured
to (screens.md): bracketed paste + Enter is one line, a dialog ignores typed and pasted text,
Enter/a digit answers it, input typed while busy is queued (Codex: Tab queues, Enter
steers).
"""

import subprocess
import time

import pytest

from tests.plugins.tmux_server import STANDIN_READY, read_log, received_lines, wait_log
from tests.realagent.harness import classify, input_line

pytestmark = pytest.mark.tmux

CLIENTS = ["claude", "codex"]
DIALOG = {
    "claude": "Do you want to proceed?",
    "codex": "Would you like to run the following command?",
}


def submitted(log) -> list[str]:
    return [e["input"] for e in read_log(log) if e["event"] == "submit"]


class Standin:
    def __init__(self, server, log, client: str, **env):
        self.server, self.log, self.client = server, log, client
        self.pane = server.spawn(client, "--name", "s", env={"STANDIN_LOG": str(log), **env})
        wait_log(log, lambda ev: any(e["event"] == "start" for e in ev), 15)

    def screen(self) -> str:
        return self.server.run("capture-pane", "-p", "-t", self.pane)

    def state(self) -> str:
        return classify(self.client, self.screen())

    def wait_state(self, state: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if classify(self.client, screen) == state:
                return screen
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.client} stand-in not {state!r} within {timeout}s; screen:\n{screen}"
                )
            time.sleep(0.05)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.server.run("send-keys", "-t", self.pane, *(["-l"] if literal else []), *keys)

    def line(self, text: str) -> None:
        self.keys(text, literal=True)
        self.keys("Enter")

    def paste(self, text: str, buffer: str = "standin-test") -> None:
        subprocess.run(
            ["tmux", "-S", str(self.server.socket), "load-buffer", "-b", buffer, "-"],
            input=text.encode(),
            check=True,
            timeout=10,
            env=self.server.base_env,
        )
        self.server.run("paste-buffer", "-p", "-d", "-b", buffer, "-t", self.pane)

    def events(self, kind: str) -> list[dict]:
        return [e for e in read_log(self.log) if e["event"] == kind]

    def open_dialog(self, command: str) -> str:
        """``/dialog <command>``; the screen once the dialog shows."""
        self.line(f"/dialog {command}")
        return self.wait_state("dialog")

    def busy_with_draft(self, seconds: int, text: str) -> str:
        """A busy turn of ``seconds`` with ``text`` typed into it; the screen with that draft."""
        self.line(f"/busy {seconds}")
        self.wait_state("busy")
        self.keys(text, literal=True)
        return self.wait_state("busy-draft")


@pytest.fixture
def spawn(tmux_server, standin_log):
    """Start a stand-in of ``client`` and wait until it shows ``state``."""

    def start(client: str, state: str = "idle", **env) -> Standin:
        agent = Standin(tmux_server, standin_log, client, **env)
        agent.wait_state(state)
        return agent

    return start


@pytest.fixture(params=CLIENTS)
def standin(request, spawn):
    return spawn(request.param)


def test_idle_screen_shows_the_real_markers(standin):
    screen = standin.wait_state("idle")
    assert STANDIN_READY in screen.rstrip().splitlines()[-1]
    assert input_line(standin.client, screen) in ("", "Ask Codex to do anything")


def test_a_typed_draft_shows_on_the_input_line(standin):
    standin.keys("hello wor", literal=True)
    screen = standin.wait_state("draft")
    assert input_line(standin.client, screen) == "hello wor"
    assert STANDIN_READY not in screen
    standin.keys("C-u")
    standin.wait_state("idle")
    assert received_lines(standin.log) == []


def test_a_lone_bang_is_shell_mode(standin):
    standin.keys("!", literal=True)
    screen = standin.wait_state("draft")
    assert ("! for shell mode" if standin.client == "claude" else "Shell mode") in screen
    standin.keys("BSpace")
    standin.wait_state("idle")


def test_bracketed_paste_then_enter_is_one_line(standin):
    standin.paste("first line\nsecond line")
    screen = standin.wait_state("draft")
    assert "second line" in screen
    standin.keys("Enter")
    wait_log(standin.log, lambda ev: any(e["event"] == "line" for e in ev))
    standin.wait_state("idle")
    assert submitted(standin.log) == ["first line\nsecond line"]  # one submission (one turn)
    assert received_lines(standin.log) == ["first line", "second line"]


def test_an_empty_enter_submits_nothing(standin):
    standin.keys("Enter")
    wait_log(standin.log, lambda ev: any(e["event"] == "empty-enter" for e in ev))
    assert submitted(standin.log) == []


def test_typed_lines_are_submitted_one_by_one(standin):
    """Kept from the line-mode stand-in: a typed line feed submits (the real clients would
    insert a newline; only a paste is one block)."""
    standin.keys("one\ntwo", literal=True)
    standin.keys("Enter")
    wait_log(standin.log, lambda ev: len([e for e in ev if e["event"] == "submit"]) >= 2)
    assert submitted(standin.log) == ["one", "two"]


def test_a_dialog_ignores_text_and_pastes_and_enter_approves(standin, tmp_path):
    marker = tmp_path / "approved"
    screen = standin.open_dialog(f"touch {marker}")
    assert DIALOG[standin.client] in screen
    assert input_line(standin.client, screen) != ""
    standin.keys("hello there", literal=True)
    standin.paste("pasted\ntext")
    time.sleep(0.3)
    assert standin.state() == "dialog"
    assert not marker.exists()
    standin.keys("Enter")
    standin.wait_state("idle")
    wait_log(standin.log, lambda ev: any(e["event"] == "exec" for e in ev))
    assert marker.exists()
    assert [(e["answer"], e["option"]) for e in standin.events("permission")] == [("yes", "1")]
    assert received_lines(standin.log) == [f"/dialog touch {marker}"]


#: A single key answers each client's dialog: key -> the answer it gives.
DIALOG_KEYS = {
    "claude": {"2": "yes", "4": "no", "Escape": "no"},
    "codex": {"y": "yes", "p": "yes", "n": "no", "Escape": "no"},
}


@pytest.mark.parametrize(
    "client, key, answer",
    [(client, key, answer) for client, keys in DIALOG_KEYS.items() for key, answer in keys.items()],
)
def test_dialog_single_keys(spawn, standin_log, tmp_path, client, key, answer):
    agent = spawn(client)
    marker = tmp_path / "approved"
    agent.open_dialog(f"touch {marker}")
    agent.keys(key)
    agent.wait_state("idle")
    wait_log(standin_log, lambda ev: any(e["event"] == "permission" for e in ev))
    assert [e["answer"] for e in agent.events("permission")] == [answer]
    if answer == "yes":
        wait_log(standin_log, lambda ev: any(e["event"] == "exec" for e in ev))
    else:
        time.sleep(0.3)
    assert marker.exists() is (answer == "yes")


def test_a_dialog_can_be_open_at_start(spawn, tmp_path):
    agent = spawn("claude", "dialog", STANDIN_DIALOG=f"touch {tmp_path}/x")
    assert agent.state() == "dialog"


def test_busy_then_idle(standin):
    standin.line("/busy 1")
    screen = standin.wait_state("busy")
    assert "esc to interrupt" in screen
    standin.wait_state("idle", 10)


def test_claude_queues_input_while_busy(spawn, standin_log):
    agent = spawn("claude")
    screen = agent.busy_with_draft(3, "note")
    assert "esc to interrupt" not in screen  # as the real one: the spinner line is left
    agent.keys("Enter")
    screen = agent.wait_state("busy")
    assert "Queued · ctrl+x ctrl+s to send now" in screen
    assert input_line("claude", screen) == "Press up to edit queued messages"
    assert received_lines(standin_log) == ["/busy 3"]
    wait_log(standin_log, lambda ev: any(e.get("text") == "note" for e in ev), 10)
    agent.wait_state("idle")
    assert received_lines(standin_log) == ["/busy 3", "note"]


def test_codex_tab_queues_and_enter_steers(spawn, standin_log):
    agent = spawn("codex")
    screen = agent.busy_with_draft(30, "later")
    assert "tab to queue message" in screen
    agent.keys("Tab")
    screen = agent.wait_state("busy")
    assert "Queued follow-up inputs" in screen and "↳ later" in screen
    agent.line("now")  # Enter while busy: the busy turn ends, the text goes at once
    wait_log(
        standin_log,
        lambda ev: (
            [e.get("text") for e in ev if e["event"] == "line"] == ["/busy 30", "now", "later"]
        ),
        10,
    )
    agent.wait_state("idle")
    assert [e["input"] for e in agent.events("steer")] == ["now"]


def test_keys_typed_during_a_bang_command_wait_for_it(spawn, standin_log, tmp_path):
    agent = spawn("claude")
    done = tmp_path / "done"
    agent.line(f"! sleep 1.5; touch {done}")
    agent.wait_state("busy")
    agent.line("after the command")
    wait_log(standin_log, lambda ev: any(e.get("text") == "after the command" for e in ev), 10)
    assert done.exists()
    assert received_lines(standin_log) == [f"! sleep 1.5; touch {done}", "after the command"]


def test_foreground_process_is_the_python_standin(standin):
    """The gate's process check sees an interpreter running tests/bin/<client> (as Codex
    shows `node …/bin/codex`): pane_current_command is python3, argv[1] is the script."""
    info = standin.server.display(standin.pane, "#{pane_current_command} #{pane_pid}")
    command, pid = info.split()
    assert command.startswith("python")
    with open(f"/proc/{pid}/stat") as fh:
        tpgid = int(fh.read().rpartition(")")[2].split()[5])
    with open(f"/proc/{tpgid}/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")
    assert argv[1].decode().endswith(f"tests/bin/{standin.client}")
