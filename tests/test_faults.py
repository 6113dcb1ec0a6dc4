"""Faults: killed senders, dying or missing panes, a frozen tmux, an unwritable directory.

* A sender killed with SIGKILL anywhere in a send or broadcast leaves the database intact,
  and the message either wholly stored or absent; a broadcast is never half-delivered.
  Exact kill points are injected in a driver process (after the INSERT but before COMMIT,
  right after COMMIT, inside the preview loop); a second test kills real ``cafleet``
  processes at random moments.
* A recipient pane that dies between the placement lookup and the typing, a tmux server
  that is gone, a busy stand-in agent and a frozen tmux server all leave the message stored
  and pollable; ``notification_sent`` is false whenever a preview call failed.
* A database directory that is not writable gives a clear ``Error:`` line, never a
  traceback (``tests/test_e2e_storage.py`` already covers ``db init`` when the directory
  cannot be created).

``CAFLEET_TEST_PROFILE=long`` raises the number of random-kill rounds.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.bench_throughput import seed
from tests.conftest import CAFLEET, REPO, FileDB, seed_session, subprocess_env
from tests.plugins.tmux_server import STANDIN_READY, read_log, wait_log

pytestmark = pytest.mark.e2e

LONG = os.environ.get("CAFLEET_TEST_PROFILE", "short") == "long"
RANDOM_ROUNDS = 60 if LONG else 8
SUMMARY_TEXT = re.compile(r"Broadcast sent to (\d+) recipients")

# ------------------------------------------------------------------------------ helpers
DRIVER = r"""
import os, signal, sys
from cafleet_project import cli
cli.setup_django(("message", "send"))
from django.db.backends import utils
from django.db.backends.base import base

point = os.environ["KILL_AT"]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point.startswith("insert"):
    # insert:N = die right after the N-th INSERT INTO "tasks" statement (before COMMIT)
    wanted = int(point.partition(":")[2] or 1)
    seen = [0]
    # (Django's cursor wrapper, the same on both backends)
    original = utils.CursorWrapper.execute
    def execute(self, query, params=None):
        result = original(self, query, params)
        if query.lstrip().upper().startswith('INSERT INTO "TASKS"'):
            seen[0] += 1
            if seen[0] == wanted:
                die()
        return result
    utils.CursorWrapper.execute = execute
elif point == "commit":
    original = base.BaseDatabaseWrapper._commit
    def _commit(self):
        original(self)
        die()
    base.BaseDatabaseWrapper._commit = _commit
elif point.startswith("preview"):
    # preview:N = die when the N-th preview is about to be typed
    wanted = int(point.partition(":")[2] or 1)
    from broker import tmux
    calls = [0]
    def deliver_preview(pane, payload, **kw):
        calls[0] += 1
        if calls[0] == wanted:
            die()
        return True
    tmux.deliver_preview = deliver_preview
sys.exit(cli.main(sys.argv[1:]))
"""


def run_killed(db, kill_at, *argv):
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, argv)],
        env={**db.env, "KILL_AT": kill_at},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc


def rows(db, sql, *params):
    return db.rows(sql, *params)


def assert_intact(db):
    from bench.dbquery import integrity_problems

    assert integrity_problems(db.url) == []


def broadcast_invariants(db) -> dict:
    """Every broadcast is whole: its summary says N and exactly N delivery rows exist."""
    summaries = {
        tid: int(SUMMARY_TEXT.fullmatch(text).group(1))
        for tid, text in rows(db, "SELECT task_id, text FROM tasks WHERE type='broadcast_summary'")
    }
    deliveries: dict[str, int] = {}
    for (origin,) in rows(
        db, "SELECT origin_task_id FROM tasks WHERE type='unicast' AND origin_task_id IS NOT NULL"
    ):
        deliveries[origin] = deliveries.get(origin, 0) + 1
    assert set(deliveries) <= set(summaries), "delivery rows without their summary"
    for tid, n in summaries.items():
        assert deliveries.get(tid, 0) == n, f"broadcast {tid}: {deliveries.get(tid)} of {n}"
    return summaries


def add_fake_panes(db, director, agents):
    """Placements (with pane ids nobody owns) so that previews are attempted."""
    for i, aid in enumerate(agents):
        stamp = db.rows("SELECT registered_at FROM agents WHERE agent_id=?", aid)[0][0]
        db.execute(
            "INSERT INTO agent_placements (agent_id, director_agent_id, "
            "tmux_session, tmux_window_id, tmux_pane_id, coding_agent, created_at)"
            " VALUES (?, ?, 'fault', '@1', ?, 'claude', ?)",
            aid,
            director,
            f"%{880000 + i}",
            stamp,
        )


def still_usable(db, fleet_ids):
    """A normal send right after the kill: no lock left behind, no recovery error."""
    r = db.run(
        "--session-id",
        fleet_ids["sid"],
        "message",
        "send",
        "--agent-id",
        fleet_ids["director"],
        "--to",
        fleet_ids["admin"],
        "--quiet",
        "--text",
        "after the kill",
    )
    assert (r.code, r.err) == (0, ""), r.err
    assert "locked" not in r.err


# ------------------------------------------------------------------------------ SIGKILL, exact points
@pytest.mark.both_backends
@pytest.mark.parametrize(
    "kill_at, stored", [("insert", False), ("commit", True), ("preview", True)]
)
def test_send_killed_is_whole_or_absent(fresh_db, kill_at, stored):
    ids = seed(fresh_db.env, senders=1, recipients=1)
    add_fake_panes(fresh_db, ids["director"], ids["recipients"])
    body = "one whole message\nwith two lines " + "x" * 5000
    proc = run_killed(
        fresh_db,
        kill_at,
        "--session-id",
        ids["sid"],
        "message",
        "send",
        "--agent-id",
        ids["senders"][0],
        "--to",
        ids["recipients"][0],
        "--text",
        body,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_intact(fresh_db)
    found = rows(fresh_db, "SELECT text, status_state FROM tasks")
    assert found == ([(body, "input_required")] if stored else [])
    still_usable(fresh_db, ids)
    poll = fresh_db.run(
        "--json",
        "--session-id",
        ids["sid"],
        "message",
        "poll",
        "--agent-id",
        ids["recipients"][0],
        "--full",
    )
    assert [t["text"] for t in poll.json] == ([body] if stored else [])


@pytest.mark.both_backends
@pytest.mark.parametrize(
    "kill_at, stored", [("insert:1", False), ("commit", True), ("preview:2", True)]
)
def test_broadcast_killed_is_never_half_delivered(fresh_db, kill_at, stored):
    # 120 recipients: on SQLite Django writes the rows in two INSERT statements (999-parameter
    # batches), so "insert:1" dies with half of the broadcast written but not committed; on
    # PostgreSQL it dies after the one INSERT, before the commit.
    ids = seed(fresh_db.env, senders=1, recipients=120)
    add_fake_panes(fresh_db, ids["director"], ids["recipients"][:5])
    proc = run_killed(
        fresh_db,
        kill_at,
        "--session-id",
        ids["sid"],
        "message",
        "broadcast",
        "--agent-id",
        ids["senders"][0],
        "--text",
        "to everyone",
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_intact(fresh_db)
    summaries = broadcast_invariants(fresh_db)
    # recipients: 120 + the root Director (the sender and the Administrator are excluded)
    assert list(summaries.values()) == ([121] if stored else [])
    count = rows(fresh_db, "SELECT count(*) FROM tasks")[0][0]
    assert count == (122 if stored else 0)
    still_usable(fresh_db, ids)


def test_broadcast_insert_really_takes_two_statements(fresh_db):
    """Control for the test above: with 120 recipients a second INSERT exists to die at."""
    ids = seed(fresh_db.env, senders=1, recipients=120)
    proc = run_killed(
        fresh_db,
        "insert:2",
        "--session-id",
        ids["sid"],
        "message",
        "broadcast",
        "--agent-id",
        ids["senders"][0],
        "--text",
        "to everyone",
    )
    assert proc.returncode == -signal.SIGKILL, "only one INSERT: the half-way kill is moot"
    assert rows(fresh_db, "SELECT count(*) FROM tasks") == [(0,)]


# ------------------------------------------------------------------------------ SIGKILL, random moments
def _timed(db, argv) -> float:
    start = time.perf_counter()
    r = db.run(*argv)
    assert r.code == 0, r.err
    return time.perf_counter() - start


@pytest.mark.both_backends
def test_random_sigkill_of_real_senders(fresh_db):
    """Real ``cafleet`` processes killed at random moments around their write."""
    ids = seed(fresh_db.env, senders=1, recipients=30)
    s = ["--session-id", ids["sid"]]
    sender = ids["senders"][0]
    rnd = random.Random(20260505)
    outcomes = {"stored": 0, "absent": 0, "finished": 0}
    sends: list[str] = []
    typical = {
        "broadcast": _timed(
            fresh_db, [*s, "message", "broadcast", "--agent-id", sender, "--text", "warm-up"]
        ),
        "send": _timed(
            fresh_db,
            [
                *s,
                "message",
                "send",
                "--agent-id",
                sender,
                "--to",
                ids["recipients"][0],
                "--text",
                "warm-up",
            ],
        ),
    }
    base_rows = rows(fresh_db, "SELECT count(*) FROM tasks")[0][0]
    for round_no in range(RANDOM_ROUNDS):
        for kind in ("broadcast", "send"):
            body = f"{kind} round {round_no} " + "y" * rnd.randint(0, 20000)
            to = ["--to", ids["recipients"][round_no % 30]] if kind == "send" else []
            argv = [*s, "message", kind, "--agent-id", sender, *to, "--text", body]
            if kind == "send":
                sends.append(body)
            before = rows(fresh_db, "SELECT count(*) FROM tasks")[0][0]
            proc = subprocess.Popen(
                [CAFLEET, *argv],
                env=fresh_db.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(rnd.uniform(0.4, 1.1) * typical[kind])
            proc.send_signal(signal.SIGKILL)  # the process started just above
            _, err = proc.communicate(timeout=60)
            assert b"Traceback" not in err
            after = rows(fresh_db, "SELECT count(*) FROM tasks")[0][0]
            if proc.returncode == 0:
                outcomes["finished"] += 1
            else:
                outcomes["stored" if after > before else "absent"] += 1
            assert after - before in (0, 1 if kind == "send" else 32)
            assert_intact(fresh_db)
    print(f"\nrandom SIGKILL outcomes over {RANDOM_ROUNDS * 2} runs: {outcomes}")
    broadcast_invariants(fresh_db)
    stored_sends = [
        t
        for (t,) in rows(
            fresh_db, "SELECT text FROM tasks WHERE type='unicast' AND origin_task_id IS NULL"
        )
    ]
    assert set(stored_sends) - {"warm-up"} <= set(sends)  # whole bodies only
    assert rows(fresh_db, "SELECT count(*) FROM tasks")[0][0] >= base_rows
    still_usable(fresh_db, ids)


# ------------------------------------------------------------------------------ tmux faults
class PaneFleet:
    """A session made by ``cafleet session create`` in the server's first pane, with one
    stand-in member spawned by ``cafleet member create``."""

    def __init__(self, db, server, log):
        self.db, self.server, self.log = db, server, log
        created = self.run("--json", "session", "create")
        assert created.code == 0, created.err
        self.sid = created.json["session_id"]
        self.did = created.json["director"]["agent_id"]
        server.set_env("STANDIN_LOG", str(log))
        member = self.run(
            "--json",
            "--session-id",
            self.sid,
            "member",
            "create",
            "--agent-id",
            self.did,
            "--name",
            "worker",
            "--description",
            "w",
        )
        assert member.code == 0, member.err
        self.mid = member.json["agent_id"]
        self.pane = member.json["placement"]["tmux_pane_id"]
        wait_log(log, lambda ev: any(e["event"] == "start" for e in ev), 15)
        server.wait_for(self.pane, STANDIN_READY, 15)

    def env(self, **extra):
        return self.server.env(None, CAFLEET_DATABASE_URL=self.db.url, **extra)

    def run(self, *argv, env=None, timeout=60):
        return self.db.run(*argv, env={**self.env(), **(env or {})}, timeout=timeout)

    def send(self, text, env=None):
        return self.run(
            "--json",
            "--session-id",
            self.sid,
            "message",
            "send",
            "--agent-id",
            self.did,
            "--to",
            self.mid,
            "--full",
            "--text",
            text,
            env=env,
        )

    def assert_pollable(self, task_id, text):
        poll = self.run(
            "--json", "--session-id", self.sid, "message", "poll", "--agent-id", self.mid, "--full"
        )
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
    r = fleet.send("are you there?", env=env)
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
    r = fleet.db.run(
        "--json",
        "--session-id",
        fleet.sid,
        "message",
        "send",
        "--agent-id",
        fleet.did,
        "--to",
        fleet.mid,
        "--full",
        "--text",
        "anyone?",
        env=env,
    )
    assert r.code == 0, r.err
    assert r.json["notification_sent"] is False
    poll = fleet.db.run(
        "--json", "--session-id", fleet.sid, "message", "poll", "--agent-id", fleet.mid, env=env
    )
    assert [t["text"] for t in poll.json] == ["anyone?"]
    # without TMUX at all the default server is looked for, and there is none either
    r = fleet.db.run(
        "--json",
        "--session-id",
        fleet.sid,
        "message",
        "broadcast",
        "--agent-id",
        fleet.did,
        "--text",
        "all?",
        env={**env, "TMUX": None},
    )
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
    r = fleet.send("while you were busy")
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
        r = fleet.send("hello, frozen")
        elapsed = time.monotonic() - start
    assert r.code == 0, r.err
    assert r.json["notification_sent"] is False
    assert 5.0 <= elapsed < 12.0  # one 5 s preview timeout, then give up
    fleet.assert_pollable(r.json["task"]["task_id"], "hello, frozen")
    assert not any(
        e.get("text") == "hello, frozen" for e in read_log(fleet.log) if e["event"] == "line"
    )


# ------------------------------------------------------------------------------ unwritable directory
@contextmanager
def unwritable(path: Path):
    """Make ``path`` unwritable for this process: immutable for root, mode 0500 otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a directory unwritable")
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i not supported here: {proc.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


def test_unwritable_directory_of_an_existing_database(fresh_db):
    fleet = seed_session(fresh_db)
    s = ["--session-id", fleet.sid]
    before = _snapshot(fresh_db.path)
    with unwritable(fresh_db.path.parent):
        for argv in (
            [
                *s,
                "message",
                "send",
                "--agent-id",
                fleet.director,
                "--to",
                fleet.admin,
                "--text",
                "hi",
            ],
            [*s, "message", "poll", "--agent-id", fleet.admin],
            ["session", "list"],
        ):
            r = fresh_db.run(*argv)
            assert (r.code, r.out) == (1, ""), (argv, r.out)
            assert r.err.startswith("Error: ") and r.err.count("\n") == 1, r.err
            assert "Traceback" not in r.err
            assert str(fresh_db.path) in r.err, r.err
            j = fresh_db.run("--json", *argv)
            assert j.code == 1 and json.loads(j.err)["exit_code"] == 1
    assert _snapshot(fresh_db.path) == before


def test_db_init_in_unwritable_directory_names_the_file(fresh_db):
    with unwritable(fresh_db.path.parent):
        r = fresh_db.run("db", "init")
    assert (r.code, r.out) == (1, "")
    assert "Traceback" not in r.err
    assert str(fresh_db.path) in r.err, r.err


def test_db_init_cannot_create_the_file(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    url = f"sqlite:///{directory}/registry.db"
    db = FileDB(directory / "registry.db", url, subprocess_env(url))
    with unwritable(directory):
        r = db.run("db", "init")
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith(f"Error: cannot create database {db.path}: "), r.err
    assert not db.path.exists()


def test_read_only_database_file(fresh_db):
    fleet = seed_session(fresh_db)
    before = _snapshot(fresh_db.path)
    with unwritable(fresh_db.path):
        r = fresh_db.run(
            "--session-id",
            fleet.sid,
            "message",
            "send",
            "--agent-id",
            fleet.director,
            "--to",
            fleet.admin,
            "--text",
            "hi",
        )
        assert (r.code, r.out) == (1, "")
        assert r.err.startswith("Error: ") and "Traceback" not in r.err, r.err
        r = fresh_db.run("--session-id", fleet.sid, "message", "poll", "--agent-id", fleet.admin)
        # reading may still work (it does for root with an immutable file); if not, cleanly
        assert (r.code, r.out) == (0, "No messages found.\n") or (
            r.code == 1 and r.err.startswith("Error: ") and "Traceback" not in r.err
        ), r.err
    assert _snapshot(fresh_db.path) == before


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
    r = fresh_db.run(
        "--session-id",
        ids["sid"],
        "message",
        "broadcast",
        "--agent-id",
        ids["director"],
        "--text",
        body,
        env=server.env(CAFLEET_DATABASE_URL=fresh_db.url),
    )
    assert r.code == 0, r.err
    assert re.fullmatch(r"broadcast id=[0-9a-f]{8} recipients=6 delivered=4\n", r.out), r.out
    for pane in panes[2:]:
        server.wait_for(pane, body)
    deliveries = rows(
        fresh_db,
        "SELECT count(*) FROM tasks WHERE type='unicast' AND "
        "status_state='input_required' AND text=?",
        body,
    )
    assert deliveries == [(6,)]  # every recipient has its row, preview or not
