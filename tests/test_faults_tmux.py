"""Faults around tmux: dying or missing panes, a busy stand-in, a frozen tmux server.

A recipient pane that dies between the placement lookup and the typing, a tmux server that
is gone, a busy stand-in agent and a frozen tmux server all leave the message stored and
pollable; ``notification_sent`` is false whenever a preview call failed. A broadcast's
``delivered=`` count is exactly the previews that reached a pane.
"""

import os
import re
import shutil
import signal
import time
from contextlib import contextmanager

import pytest

from tests.plugins.tmux_server import STANDIN_READY, read_log, wait_log
from tests.tmux_support import TmuxFleet, in_session

pytestmark = pytest.mark.e2e


# ------------------------------------------------------------------------------ tmux faults
class PaneFleet(TmuxFleet):
    """A session made by ``cafleet session create`` in the server's first pane, with one
    stand-in member spawned by ``cafleet member create``."""

    def __init__(self, db, server, log):
        super().__init__(db, server)
        self.log = log
        self.mid, self.pane = self.spawn_ready("worker", log)

    def assert_pollable(self, task_id, text):
        poll = self.cafleet("message", "poll", "--agent-id", self.mid, "--full", json_mode=True)
        assert poll.code == 0, poll.err
        assert [(t["task_id"], t["text"], t["status_state"]) for t in poll.json] == [
            (task_id, text, "input_required")
        ]


@pytest.fixture
def pane_fleet(fresh_db, tmux_server, tmp_path):
    return PaneFleet(fresh_db, tmux_server, tmp_path / "standin.log")


KILLER = """#!/bin/sh
# Stand-in tmux: on the first call of step $KILL_STEP, kill $KILL_PANE, then run the call.
step=other
case "$1" in
  display-message) step=display ;;
  capture-pane) step=capture ;;
  load-buffer|paste-buffer) step=paste ;;
  send-keys) step=enter ;;
esac
if [ "$step" = "$KILL_STEP" ] && [ ! -e "$KILL_MARK" ]; then
  : > "$KILL_MARK"
  "$REAL_TMUX" kill-pane -t "$KILL_PANE"
fi
exec "$REAL_TMUX" "$@"
"""


@pytest.mark.tmux
@pytest.mark.parametrize("step", ["display", "capture", "paste", "enter"])
def test_pane_killed_between_lookup_and_typing(pane_fleet, tmp_path, step):
    fleet = pane_fleet
    bindir = tmp_path / "killer-bin"
    bindir.mkdir()
    (bindir / "tmux").write_text(KILLER)
    (bindir / "tmux").chmod(0o755)
    env = {
        "PATH": f"{bindir}{os.pathsep}{fleet.server.base_env['PATH']}",
        "REAL_TMUX": shutil.which("tmux"),
        "KILL_STEP": step,
        "KILL_PANE": fleet.pane,
        "KILL_MARK": str(tmp_path / "killed"),
    }
    r = fleet.send(fleet.mid, "are you there?", "--full", env=env)
    assert r.code == 0, r.err
    assert (tmp_path / "killed").exists()  # the pane really died mid-preview
    assert not fleet.server.pane_alive(fleet.pane)
    assert r.json["notification_sent"] is False
    fleet.assert_pollable(r.json["task"]["task_id"], "are you there?")


@pytest.mark.tmux
def test_tmux_server_gone(pane_fleet):
    fleet = pane_fleet
    env = fleet.env()  # TMUX still names the (now dead) server's socket
    fleet.server.kill()
    r = fleet.send(fleet.mid, "anyone?", "--full", env=env)
    assert r.code == 0, r.err
    assert r.json["notification_sent"] is False
    poll = fleet.cafleet("message", "poll", "--agent-id", fleet.mid, json_mode=True, env=env)
    assert [t["text"] for t in poll.json] == ["anyone?"]
    # without TMUX at all the default server is looked for, and there is none either
    r = fleet.cafleet(
        "message", "broadcast", "--agent-id", fleet.did, "--text", "all?",
        json_mode=True, env={**env, "TMUX": None},
    )  # fmt: skip
    assert r.code == 0, r.err
    assert r.json[0]["notifications_sent_count"] == 0


@pytest.mark.tmux
def test_busy_standin_keeps_the_message(pane_fleet, tmp_path):
    """A stand-in busy running a command shows Claude Code's busy screen (input box,
    ``esc to interrupt``): busy is no reason to hold for Claude Code (it queues input,
    docs/delivery.md), so the preview is typed at once, the send does not wait, the message is
    stored and pollable, and the stand-in handles the queued preview once the command is
    done, exactly once."""
    fleet = pane_fleet
    done = tmp_path / "done"
    fleet.server.run("send-keys", "-t", fleet.pane, "-l", f"! sleep 4; touch {done}")
    fleet.server.run("send-keys", "-t", fleet.pane, "Enter")
    wait_log(fleet.log, lambda ev: any(e.get("text", "").startswith("! sleep") for e in ev), 10)
    fleet.server.wait_for(fleet.pane, "esc to interrupt", 10)
    start = time.monotonic()
    r = fleet.send(fleet.mid, "while you were busy", "--full")
    assert r.code == 0, r.err
    assert not done.exists(), "the agent was not busy during the send"
    assert time.monotonic() - start < 3.5  # the send did not wait for the agent
    assert r.json["notification_sent"] is True  # typed into the busy agent's queue
    fleet.assert_pollable(r.json["task"]["task_id"], "while you were busy")
    events = wait_log(
        fleet.log, lambda ev: any(e.get("text") == "while you were busy" for e in ev), 15
    )
    assert done.exists()
    kinds = [e["event"] for e in events]
    queued = [e["input"] for e in events if e["event"] == "queued"]
    assert len(queued) == 1 and queued[0].endswith("\nwhile you were busy")
    assert kinds.index("queued") < kinds.index("exec")  # queued while the command ran
    time.sleep(0.3)
    submits = [e["input"] for e in read_log(fleet.log) if e["event"] == "submit"]
    assert submits[1:] == queued  # handled after the command, exactly once


@contextmanager
def frozen(pid):
    os.kill(pid, signal.SIGSTOP)  # the isolated server this test's fixture started
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.tmux
def test_frozen_tmux_server_times_out_and_keeps_the_message(pane_fleet):
    fleet = pane_fleet
    with frozen(fleet.server.pid):
        start = time.monotonic()
        r = fleet.send(fleet.mid, "hello, frozen", "--full")
        elapsed = time.monotonic() - start
    assert r.code == 0, r.err
    assert r.json["notification_sent"] is False
    assert 5.0 <= elapsed < 12.0  # one 5 s preview timeout, then give up
    fleet.assert_pollable(r.json["task"]["task_id"], "hello, frozen")
    assert not any(
        e.get("text") == "hello, frozen" for e in read_log(fleet.log) if e["event"] == "line"
    )


@pytest.mark.tmux
def test_broadcast_delivered_count_is_honest(fresh_db, tmux_server):
    """``delivered=`` counts exactly the previews that reached a pane (some panes dead)."""
    from bench.bench_scale import seed_scale

    server = tmux_server
    panes = [server.new_window("claude")[1] for _ in range(6)]  # stand-ins
    for pane in panes:
        server.wait_for(pane, STANDIN_READY, 15)
    ids = seed_scale(
        fresh_db.env, members=6, busy=0, empty=False, panes=panes, director_pane=server.first_pane
    )
    for pane in panes[:2]:
        server.run("kill-pane", "-t", pane)
    body = "count me if I arrive"
    director = ("--agent-id", ids["director"])
    r = in_session(fresh_db, server, ids["sid"], "message", "broadcast", *director, "--text", body)
    assert r.code == 0, r.err
    assert re.fullmatch(r"broadcast id=[0-9a-f]{8} recipients=6 delivered=4\n", r.out), r.out
    for pane in panes[2:]:
        server.wait_for(pane, body)
    deliveries = fresh_db.rows(
        "SELECT count(*) FROM tasks WHERE type='unicast' AND "
        "status_state='input_required' AND text=?",
        body,
    )
    assert deliveries == [(6,)]  # every recipient has its row, preview or not
