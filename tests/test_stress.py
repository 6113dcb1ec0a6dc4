"""Load: 8 writer, 4 poller and 4 acker processes on one database for a bounded time.

Nothing lost, nothing duplicated, nothing acknowledged twice, no "database is locked",
``PRAGMA integrity_check`` ok. The harness lives in ``bench/bench_throughput.py`` (which
also publishes the throughput figures in ``docs/benchmarks.md``).

Profiles (environment ``CAFLEET_TEST_PROFILE``): ``short`` (default, CI) runs the load for
6 seconds; ``long`` runs it for 60 seconds and then a second round with twice the writers.
"""

import os

import pytest

from bench.bench_throughput import run_load, seed, summarise, verify

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LONG = os.environ.get("CAFLEET_TEST_PROFILE", "short") == "long"
SECONDS = 60.0 if LONG else 6.0


def _run(db, *, seconds, writers, pollers, ackers):
    ids = seed(db.env, senders=writers, recipients=4)
    load = run_load(db.env, ids, seconds=seconds, writers=writers, pollers=pollers, ackers=ackers)
    problems = verify(db.url, load)
    summary = summarise(load)
    print(f"\nload {writers}w/{pollers}p/{ackers}a for {seconds}s: {summary}")
    return problems, summary


@pytest.mark.both_backends
def test_writers_pollers_ackers_lose_nothing(fresh_db):
    problems, summary = _run(fresh_db, seconds=SECONDS, writers=8, pollers=4, ackers=4)
    assert problems == []
    # the run did real work in every role
    assert summary["sent"] >= 8
    assert summary["acked"] >= 1
    assert summary["polls"] >= 4


@pytest.mark.skipif(not LONG, reason="long profile only (CAFLEET_TEST_PROFILE=long)")
def test_sixteen_writers_long(fresh_db):
    problems, summary = _run(fresh_db, seconds=SECONDS, writers=16, pollers=4, ackers=4)
    assert problems == []
    assert summary["sent"] >= 16
