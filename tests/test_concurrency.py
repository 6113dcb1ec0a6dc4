"""Many writers on one database: nothing lost, no "database is locked", one race winner.

Both backends: a SQLite file and a PostgreSQL database (``both_backends``).

Workers are separate Python processes that run the real entry point (``main([...])``) in a
loop, so every message goes through parsing, readiness, resolution and the IMMEDIATE write
transaction exactly as a ``cafleet`` call does, without paying interpreter start-up 400 times.
"""

import json
import subprocess
import sys
import time

import pytest

from tests.cli_helpers import as_agent, send_argv
from tests.conftest import seed_session

pytestmark = [pytest.mark.e2e, pytest.mark.both_backends]

WORKER = r"""
import json, sys, time, io, contextlib
from cafleet_project.cli import main
spec = json.loads(sys.argv[1])
while time.time() < spec["start_at"]:
    time.sleep(0.005)
results = []
for argv in spec["calls"]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def run_workers(db, specs):
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps({**spec, "start_at": start_at})],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=db.env,
        )
        for spec in specs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


def test_eight_senders_fifty_messages_each(fresh_db):
    fleet = seed_session(fresh_db)
    specs = []
    for w in range(8):
        calls = [send_argv(fleet, fleet.admin, f"w{w}-m{i}", "--quiet") for i in range(50)]
        specs.append({"calls": calls})
    results = run_workers(fresh_db, specs)
    flat = [r for worker in results for r in worker]
    assert len(flat) == 400
    errors = [r for r in flat if r[0] != 0]
    assert errors == []
    assert not any("locked" in r[2] for r in flat)
    from bench.dbquery import integrity_problems

    texts = [r[0] for r in fresh_db.rows("SELECT text FROM tasks")]
    assert sorted(texts) == sorted(f"w{w}-m{i}" for w in range(8) for i in range(50))
    assert len({r[1].strip() for r in flat}) == 400  # every printed id is distinct
    assert integrity_problems(fresh_db.url) == []


def test_ack_and_cancel_race_has_exactly_one_winner(fresh_db):
    fleet = seed_session(fresh_db)
    # Create the tasks in one process to keep the test short.
    create = {"calls": [send_argv(fleet, fleet.admin, f"t{i}", "--quiet") for i in range(40)]}
    (created,) = run_workers(fresh_db, [create])
    ids = [r[1].strip() for r in created]
    ackers = {"calls": [as_agent(fleet, fleet.admin, "message ack", "--task-id", t) for t in ids]}
    cancelers = {
        "calls": [as_agent(fleet, fleet.director, "message cancel", "--task-id", t) for t in ids]
    }
    acks, cancels = run_workers(fresh_db, [ackers, cancelers])
    for tid, ack, cancel in zip(ids, acks, cancels, strict=True):
        codes = sorted([ack[0], cancel[0]])
        assert codes == [0, 1], (tid, ack, cancel)
        state = fresh_db.rows("SELECT status_state FROM tasks WHERE task_id LIKE ?", tid + "%")[0][
            0
        ]
        if ack[0] == 0:
            assert state == "completed"
            assert cancel[2] == "Error: Cannot cancel task in state completed\n"
        else:
            assert state == "canceled"
            assert ack[2] == "Error: Cannot ACK task in state canceled\n"
