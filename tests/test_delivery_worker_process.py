"""The delivery worker as real processes on a file database: one lease holder, takeover of a
dead holder's lease, background start by `ensure_worker`, idle exit, 0600 log."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from bench.timing import wait_until
from tests.conftest import CAFLEET, REPO

pytestmark = pytest.mark.e2e  # runs cafleet or scripts in subprocesses

WORKER = [CAFLEET, "deliver"]


def lease(db) -> list[tuple]:
    con = sqlite3.connect(db.path)
    try:
        return con.execute(
            "SELECT key, pid, started_at, heartbeat_at FROM delivery_workers"
        ).fetchall()
    finally:
        con.close()


def wait_for(predicate, timeout: float = 15.0):
    return wait_until(predicate, timeout, "the worker's condition")


def start(db, log, **env):
    return subprocess.Popen(
        WORKER,
        cwd=REPO,
        env={**db.env, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_workers_one_lease_holder(fresh_db, tmp_path, procs):
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    with open(log_a, "w") as fa:
        a = start(fresh_db, fa, CAFLEET_DELIVERY_IDLE_EXIT="60")
    procs.append(a)
    rows = wait_for(lambda: lease(fresh_db))
    assert len(rows) == 1 and rows[0][1] == str(a.pid)
    assert rows[0][0].endswith(":" + str(fresh_db.path))
    with open(log_b, "w") as fb:
        b = start(fresh_db, fb, CAFLEET_DELIVERY_IDLE_EXIT="60")
    procs.append(b)
    assert b.wait(timeout=20) == 1
    assert (
        log_b.read_text()
        .rstrip()
        .endswith(f"Error: a delivery worker is already running for this database (pid {a.pid}).")
    )
    assert a.poll() is None and lease(fresh_db)[0][1] == str(a.pid)
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=20) == 0
    assert lease(fresh_db) == []  # released on the way out
    assert f"worker pid {a.pid} holds the lease" in log_a.read_text()


def test_a_dead_holders_lease_is_taken_over_and_idle_exit(fresh_db, tmp_path, procs):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    con = sqlite3.connect(fresh_db.path)
    with con:
        con.execute(
            "INSERT INTO delivery_workers (key, pid, started_at, heartbeat_at) VALUES (?,?,?,?)",
            (
                f"{os.uname().nodename}:{fresh_db.path}",
                str(gone.pid),
                "2026-01-01T00:00:00.000000+00:00",
                "2026-01-01T00:00:00.000000+00:00",
            ),
        )
    con.close()
    log = tmp_path / "w.log"
    with open(log, "w") as fh:
        w = start(fresh_db, fh, CAFLEET_DELIVERY_IDLE_EXIT="1")
    procs.append(w)
    assert w.wait(timeout=30) == 0  # took the lease, found nothing held, left after 1 s
    text = log.read_text()
    assert f"worker pid {w.pid} holds the lease" in text
    assert "nothing held for 1 s; exiting" in text
    assert lease(fresh_db) == []


def test_ensure_worker_starts_one_background_worker(fresh_db, procs):
    code = (
        "from cafleet_project.cli import setup_django;setup_django(('deliver',));"
        "from broker.delivery_worker import ensure_worker;"
        "print(ensure_worker())"
    )

    def ensure() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={
                **fresh_db.env,
                "CAFLEET_DELIVERY_IDLE_EXIT": "3",
                "CAFLEET_DELIVERY_AUTOSTART": "1",
            },
            capture_output=True,
            timeout=30,
            check=True,
        )
        return proc.stdout.decode().strip()

    assert ensure() == "True"
    rows = wait_for(lambda: lease(fresh_db))
    pid = int(rows[0][1])
    log = fresh_db.path.parent / "delivery-worker.log"
    assert os.stat(log).st_mode & 0o777 == 0o600
    assert ensure() == "False"  # a live worker holds the lease: no second one
    # detached: its own session, not a child of the command that started it
    assert os.getsid(pid) == pid
    wait_for(lambda: not lease(fresh_db), timeout=30)  # idle exit releases the lease
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=10)
    assert "nothing held for 3 s; exiting" in log.read_text()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_worker_exits_when_its_database_is_removed(fresh_db, tmp_path, procs):
    log = tmp_path / "w.log"
    with open(log, "w") as fh:
        w = start(fresh_db, fh, CAFLEET_DELIVERY_IDLE_EXIT="600")
    procs.append(w)
    wait_for(lambda: lease(fresh_db))
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(f"{fresh_db.path}{suffix}")
        except FileNotFoundError:
            pass
    assert w.wait(timeout=20) == 0
    assert f"database {fresh_db.path} is gone; exiting" in log.read_text()


def test_cafleet_deliver_background_starts_one_worker(fresh_db):
    env = {"CAFLEET_DELIVERY_IDLE_EXIT": "30"}
    first = fresh_db.run("deliver", "--background", env=env)
    assert first.code == 0, first.err
    log = fresh_db.path.parent / "delivery-worker.log"
    pid = int(first.out.split("(pid ")[1].split(")")[0])
    assert first.out == (f"Delivery worker started in the background (pid {pid}); log: {log}\n")
    try:
        wait_for(lambda: lease(fresh_db) and lease(fresh_db)[0][1] == str(pid))
        again = fresh_db.run("--json", "deliver", "--background", env=env)
        assert again.json == {"started": False, "pid": pid, "log": str(log)}
        assert os.stat(log).st_mode & 0o777 == 0o600
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not lease(fresh_db))  # SIGTERM: clean stop, lease released
    assert log.read_text().rstrip().endswith(" stopped")


def test_cafleet_deliver_checks_its_settings_then_the_database(file_db):
    bad = file_db.run("deliver", env={"CAFLEET_DELIVERY_HOLD_TIMEOUT": "soon"})
    assert (bad.code, bad.out) == (1, "")
    assert bad.err == (
        "Error: invalid value for CAFLEET_DELIVERY_HOLD_TIMEOUT: 'soon' (expected a positive "
        "number).\n"
    )
    missing = file_db.run("deliver")
    assert missing.code == 1
    assert missing.err == (
        f"Error: database {file_db.path} is not initialised. Run 'cafleet db init'.\n"
    )
    assert not file_db.path.exists()


def test_cafleet_deliver_foreground_json_lines(fresh_db):
    r = fresh_db.run("--json", "deliver", env={"CAFLEET_DELIVERY_IDLE_EXIT": "0.5"})
    assert r.code == 0, r.err
    events = [json.loads(line) for line in r.out.splitlines()]
    assert [list(e) for e in events] == [["ts", "message"]] * len(events)
    assert events[0]["message"].startswith("worker pid ")
    assert events[-1]["message"] == "nothing held for 0.5 s; exiting"
    assert all(len(e["ts"]) == 32 for e in events)
