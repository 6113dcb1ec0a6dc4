"""``message poll --wait`` (acceptance 145–148): returns soon after a message is committed,
returns empty at the deadline, and sleeps instead of spinning."""

import json
import os
import subprocess
import time

import pytest

from tests.cli_helpers import as_agent, register_argv, send_argv
from tests.conftest import CAFLEET, seed_session

pytestmark = pytest.mark.e2e


@pytest.mark.both_backends
def test_145_wait_returns_soon_after_a_send(fresh_db):
    fleet = seed_session(fresh_db)
    bob = fresh_db.run("--json", *register_argv(fleet, "bob")).json["agent_id"]
    waiter = subprocess.Popen(
        [CAFLEET, "--json", *as_agent(fleet, bob, "message poll", "--wait", "30")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=fresh_db.env,
    )
    time.sleep(2.0)  # the waiter is up and sleeping on an empty inbox
    assert waiter.poll() is None
    sent = fresh_db.run(*send_argv(fleet, bob, "wake up", "--quiet"))
    sent_at = time.monotonic()
    out, err = waiter.communicate(timeout=30)
    latency = time.monotonic() - sent_at
    assert waiter.returncode == 0, err
    items = json.loads(out)
    assert [i["id"] for i in items] == [sent.out.strip()]
    assert latency < 3.0  # re-checks every 0.5 s; generous for a loaded 2-core machine


@pytest.mark.both_backends
def test_146_148_wait_times_out_empty_and_sleeps(fresh_db):
    fleet = seed_session(fresh_db)
    start = time.monotonic()
    proc = subprocess.Popen(
        [CAFLEET, *as_agent(fleet, fleet.director, "message poll", "--wait", "2")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=fresh_db.env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    out = proc.stdout.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == "No messages found.\n"
    assert elapsed >= 2.0
    cpu = usage.ru_utime + usage.ru_stime
    # A busy loop would burn ~2 s of CPU; sleeping costs only start-up and a few queries.
    assert cpu < 0.5 * elapsed, (cpu, elapsed)


@pytest.mark.parametrize("value, shown", [("0", "0.0"), ("-1", "-1.0"), ("3601", "3601.0")])
def test_147_wait_out_of_range(fresh_db, value, shown):
    r = fresh_db.run("--session-id", "s", "message", "poll", "--agent-id", "a", "--wait", value)
    assert r.code == 2
    assert r.err.endswith(
        f"Error: Invalid value for '--wait': {shown} is not in the range 0<x<=3600.\n"
    )
