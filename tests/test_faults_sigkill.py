"""Faults: a sender killed with SIGKILL anywhere in a send or broadcast.

The database stays intact, and the message is either wholly stored or absent; a broadcast
is never half-delivered. Exact kill points are injected in a driver process (after the
INSERT but before COMMIT, right after COMMIT, inside the preview loop); a second test kills
real ``cafleet`` processes at random moments.

``CAFLEET_TEST_PROFILE=long`` raises the number of random-kill rounds.
"""

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from bench.bench_throughput import seed
from tests.cli_helpers import as_agent, send_argv
from tests.conftest import CAFLEET, REPO, Fleet

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


def fleet_of(ids) -> Fleet:
    """The session that ``bench.bench_throughput.seed`` made, for the argv builders."""
    return Fleet(ids["sid"], ids["director"], ids["admin"])


def broadcast_argv(ids, text):
    """``message broadcast`` from the first seeded sender."""
    return as_agent(fleet_of(ids), ids["senders"][0], "message broadcast", "--text", text)


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
    r = db.run(*send_argv(fleet_of(fleet_ids), fleet_ids["admin"], "after the kill", "--quiet"))
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
    fleet, to = fleet_of(ids), ids["recipients"][0]
    proc = run_killed(fresh_db, kill_at, *send_argv(fleet, to, body, sender=ids["senders"][0]))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_intact(fresh_db)
    found = rows(fresh_db, "SELECT text, status_state FROM tasks")
    assert found == ([(body, "input_required")] if stored else [])
    still_usable(fresh_db, ids)
    poll = fresh_db.run("--json", *as_agent(fleet, to, "message poll", "--full"))
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
    proc = run_killed(fresh_db, kill_at, *broadcast_argv(ids, "to everyone"))
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
    proc = run_killed(fresh_db, "insert:2", *broadcast_argv(ids, "to everyone"))
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
    fleet, sender = fleet_of(ids), ids["senders"][0]
    rnd = random.Random(20260505)
    outcomes = {"stored": 0, "absent": 0, "finished": 0}
    sends: list[str] = []
    typical = {
        "broadcast": _timed(fresh_db, broadcast_argv(ids, "warm-up")),
        "send": _timed(fresh_db, send_argv(fleet, ids["recipients"][0], "warm-up", sender=sender)),
    }
    base_rows = rows(fresh_db, "SELECT count(*) FROM tasks")[0][0]
    for round_no in range(RANDOM_ROUNDS):
        for kind in ("broadcast", "send"):
            body = f"{kind} round {round_no} " + "y" * rnd.randint(0, 20000)
            to = ["--to", ids["recipients"][round_no % 30]] if kind == "send" else []
            argv = as_agent(fleet, sender, f"message {kind}", *to, "--text", body)
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
