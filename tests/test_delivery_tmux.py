"""Safe delivery against a real, isolated tmux server and the stand-in agents (docs/delivery.md).

A shell pane never runs a body, a draft is never merged, two senders never interleave, and
a client stopped around the keystrokes still gets the message exactly once. CLI level:
``message send``, ``member exec`` and ``member ping`` into a pane whose agent is gone.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from broker import tmux
from tests.plugins.tmux_server import read_log, received_lines, wait_log
from tests.tmux_support import TmuxFleet, ids

pytestmark = pytest.mark.tmux

REPO = Path(__file__).resolve().parent.parent
SPAWN_WAIT = 15.0


def start_standin(server, log, backend="claude"):
    """A stand-in in a new pane (through ``sh -c``), waited for until the gate passes."""
    pane = server.spawn(backend, env={"STANDIN_LOG": str(log)})
    events = wait_log(log, lambda ev: any(e["event"] == "start" for e in ev), SPAWN_WAIT)
    server.wait_until(
        lambda: tmux.pane_gate(pane, backend).status == "delivered", SPAWN_WAIT, "agent ready"
    )
    return pane, events[0]["pid"]


def lines(log) -> list[str]:
    """Submitted text line by line (a stand-in may report a pasted block as one line)."""
    return "\n".join(received_lines(log)).split("\n") if received_lines(log) else []


def wait_lines(log, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines(log)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines(log)


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rpartition(")")[2].split()[0]


def payload(tag: str, body: str) -> str:
    return tmux.preview_payload(tag * 8, "5678ef01" * 4, "T0", body, 200)


def header(tag: str) -> str:
    return f"[cafleet msg {tag * 8} from 5678ef01 T0]"


# --- a shell never runs a body -------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_shell_pane_never_runs_a_body(tmux_env, tmp_path, shell):
    server = tmux_env
    probe = tmp_path / "x"
    pane = server.spawn(shell)
    server.wait_until(lambda: server.capture(pane).strip(), 10, "shell prompt")
    result = tmux.deliver_preview(pane, payload("a", f"touch {probe}"), coding_agent="claude")
    assert result == tmux.Delivery("held", "agent_not_running")
    assert tmux.poll_trigger(pane, "s", "m").reason == "agent_not_running"
    assert tmux.send_exec(pane, f"touch {probe}").reason == "agent_not_running"
    time.sleep(0.5)
    assert not probe.exists()
    assert "touch" not in server.capture(pane)  # not even typed


def test_other_program_in_the_foreground_is_not_the_agent(tmux_env, standin_log):
    server = tmux_env
    pane, _pid = start_standin(server, standin_log)
    assert tmux.pane_gate(pane, "codex") == tmux.Delivery("held", "agent_not_running")
    assert tmux.pane_gate(pane, "claude") == tmux.Delivery("delivered")
    cat = server.spawn("cat")
    assert tmux.pane_gate(cat, "claude").reason == "agent_not_running"


def test_agent_started_through_sh_c_counts(tmux_env, standin_log):
    """``split-window "claude"`` runs ``sh -c claude``; the agent is the shell's child."""
    server = tmux_env
    pane, _pid = start_standin(server, standin_log)  # the fixture's spawn goes through sh -c
    facts = tmux.pane_facts(pane)
    assert facts.foreground[0][:2] == ("sh", "-c") or "claude" in facts.foreground[0][-1]
    assert tmux.runs_agent(facts, "claude") is True


# --- drafts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("draft", ["hello wor", "!"])
def test_draft_is_never_merged_and_the_message_arrives_once_cleared(
    tmux_env, standin_log, tmp_path, draft
):
    server = tmux_env
    pane, _pid = start_standin(server, standin_log)
    probe = tmp_path / "x"
    server.run("send-keys", "-t", pane, "-l", draft)
    server.wait_until(lambda: tmux.pane_gate(pane, "claude").reason == "draft", 5, "draft")
    result = tmux.deliver_preview(pane, payload("b", f"touch {probe}"))
    assert result == tmux.Delivery("held", "draft")
    time.sleep(0.3)
    assert received_lines(standin_log) == []
    assert "touch" not in server.capture(pane)  # nothing was typed into the draft
    server.run("send-keys", "-t", pane, *["BSpace"] * len(draft))  # the human clears it
    server.wait_until(lambda: tmux.pane_gate(pane, "claude").status == "delivered", 5, "clear")
    result = tmux.deliver_preview(pane, payload("b", f"touch {probe}"))
    assert result == tmux.Delivery("delivered", None, True)
    wait_lines(standin_log, 2)
    time.sleep(0.3)
    assert lines(standin_log) == [header("b"), f"touch {probe}"]
    assert not any(e["event"] == "exec" for e in read_log(standin_log))
    assert not probe.exists()


# --- copy-mode ------------------------------------------------------------------------------------


def test_copy_mode_is_left_and_the_message_arrives(tmux_env, standin_log):
    server = tmux_env
    pane, _pid = start_standin(server, standin_log, "codex")
    server.run("copy-mode", "-t", pane)
    assert server.display(pane, "#{pane_in_mode}") == "1"
    assert tmux.deliver_preview(pane, payload("c", "hi"), coding_agent="codex").verified is True
    assert server.display(pane, "#{pane_in_mode}") == "0"
    assert wait_lines(standin_log, 2) == [header("c"), "hi"]


# --- one typist per pane --------------------------------------------------------------------------

SENDER = """
import sys
from broker import tmux
pane, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    text = f"[cafleet msg {tag}{i} from s T]\\nbody {tag}{i} " + tag * 60
    while True:
        result = tmux.deliver_preview(pane, text)
        if result.status == "delivered":
            break
    print(tag, i, result.verified, flush=True)
"""


def test_two_concurrent_senders_never_interleave(tmux_env, standin_log):
    server = tmux_env
    pane, _pid = start_standin(server, standin_log)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, pane, tag, "5"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("A", "B")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 5
    wait_lines(standin_log, 20, 20)
    time.sleep(0.3)
    got = lines(standin_log)
    assert len(got) == 20
    pairs = [(got[k], got[k + 1]) for k in range(0, 20, 2)]
    for head, body in pairs:
        key = head.removeprefix("[cafleet msg ").split(" ", 1)[0]
        assert body == f"body {key} " + key[0] * 60, (head, body)
    for tag in ("A", "B"):  # each sender's messages in its own order, each exactly once
        assert [h for h, _ in pairs if h.startswith(f"[cafleet msg {tag}")] == [
            f"[cafleet msg {tag}{i} from s T]" for i in range(5)
        ]


# --- a client stopped around the keystrokes -------------------------------------------------------


@pytest.mark.parametrize("backend", ["claude", "codex"])
def test_stopped_client_still_gets_the_message_exactly_once(tmux_env, standin_log, backend):
    server = tmux_env
    pane, pid = start_standin(server, standin_log, backend)
    os.kill(pid, signal.SIGSTOP)  # the stand-in this test started
    resume = threading.Timer(0.3, os.kill, (pid, signal.SIGCONT))
    resume.start()
    # tmux continues a pane's direct child at once; the stand-in runs under `sh -c`, so
    # the stop holds
    server.wait_until(lambda: process_state(pid) == "T", 0.2, "stand-in stopped")
    try:
        result = tmux.deliver_preview(pane, payload("d", "while stopped"), coding_agent=backend)
    finally:
        resume.join()
        os.kill(pid, signal.SIGCONT)
    assert result.status == "delivered"
    wait_lines(standin_log, 2)
    time.sleep(0.6)  # a duplicate would arrive now
    assert lines(standin_log) == [header("d"), "while stopped"]


# --- CLI: a member whose agent is gone ------------------------------------------------------------


@pytest.fixture
def fleet(fresh_db, tmux_server):
    return TmuxFleet(fresh_db, tmux_server)


def test_cli_never_types_into_a_member_pane_that_became_a_shell(fleet, tmp_path):
    server = fleet.server
    alice = fleet.spawn("alice", log=tmp_path / "alice.log")
    aid, pane = alice["agent_id"], alice["placement"]["tmux_pane_id"]
    server.run("respawn-pane", "-k", "-t", pane, "sh")  # same pane id, now a shell
    server.wait_until(lambda: server.capture(pane).strip(), 10, "shell prompt")
    probe = tmp_path / "x"
    sent = fleet.send(aid, f"touch {probe}")
    assert sent.code == 0, sent.err
    assert sent.json["notification_sent"] is False
    done = fleet.member("exec", *ids(fleet, aid), f"touch {probe}")
    assert (done.code, done.out, done.err) == (
        1,
        "",
        f"Error: pane {pane} is not ready: agent not running\n",
    )
    pinged = fleet.member("ping", *ids(fleet, aid))
    assert (pinged.code, pinged.err) == (1, f"Error: pane {pane} is not ready: agent not running\n")
    answered = fleet.member("send-input", *ids(fleet, aid), "--choice", "1")
    assert (answered.code, answered.err) == (
        1,
        f"Error: pane {pane} is not ready: agent not running\n",
    )
    time.sleep(0.5)
    assert not probe.exists()
    screen = server.capture(pane)
    assert "touch" not in screen and "cafleet" not in screen and "1" not in screen.strip()
