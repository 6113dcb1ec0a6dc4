"""SQLite and PostgreSQL side by side, on the same run (issue 13).

    .venv/bin/python bench/bench_backends.py [--runs 21] [--seconds 10] [--wakes 15] [--json]

For each backend (a SQLite file; a database on a throwaway PostgreSQL cluster made like the
tests' one: unix socket only, started and removed here):

1. ``message send`` and ``message poll`` latency: wall time of whole ``cafleet`` processes;
2. throughput: 8 writer, 4 poller and 4 acker processes for ``--seconds``
   (``bench_throughput.run_load``), checked for lost or duplicated messages;
3. ``message poll --wait`` wake-up: a poller waits, a sender commits a message; the figure
   is the time from the sender's commit (the moment ``message_send`` returned in the
   sender, taken in the same clock) to the moment the waiting poller's JSON line was read.
   PostgreSQL wakes on the NOTIFY sent with the commit; SQLite re-queries every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_throughput import CAFLEET, REPO, run_load, seed, summarise, verify

SENDER = r"""
import json, sys, time
from cafleet_project.cli import setup_django
setup_django(("message", "send"))
from broker.services import message_send
spec = json.loads(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    task, _ = message_send(session_id=spec["sid"], agent_ref=spec["sender"],
                           to_ref=spec["to"], text=line.strip(), limit=200)
    print(json.dumps({"committed": time.time(), "task": task.task_id}), flush=True)
"""


def env_for(url: str, tmpdir: Path) -> dict:
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TMUX", "CAFLEET_", "DJANGO_", "STANDIN_"))
    }
    env["CAFLEET_DATABASE_URL"] = url
    env["TMUX_TMPDIR"] = str(tmpdir)  # no tmux server to reach
    # On PostgreSQL the admin's key lives in the user's data directory: keep it in the run's.
    env["HOME"] = str(tmpdir)
    env.pop("XDG_DATA_HOME", None)
    env["CAFLEET_DELIVERY_AUTOSTART"] = "0"
    return env


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([CAFLEET, *argv], env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv}: {proc.stderr.decode()}")
    return elapsed * 1000


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "min_ms": round(ordered[0], 1),
        "n": len(ordered),
    }


def latency(env: dict, runs: int) -> dict:
    ids = seed(env, senders=1, recipients=1, label="latency")
    s = ["--session-id", ids["sid"]]
    send = [*s, "message", "send", "--agent-id", ids["senders"][0], "--to",
            ids["recipients"][0], "--quiet", "--text", "latency probe"]  # fmt: skip
    poll = [*s, "message", "poll", "--agent-id", ids["recipients"][0], "--page-size", "10"]
    timed(send, env)
    timed(poll, env)  # warm caches
    return {
        "send": stats([timed(send, env) for _ in range(runs)]),
        "poll": stats([timed(poll, env) for _ in range(runs)]),
    }


def wakeups(env: dict, rounds: int) -> dict:
    ids = seed(env, senders=1, recipients=1, label="wake")
    spec = {"sid": ids["sid"], "sender": ids["senders"][0], "to": ids["recipients"][0]}
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, json.dumps(spec)],
        env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    waits = []
    try:
        assert sender.stdout.readline().strip() == "ready"
        for i in range(rounds):
            poller = subprocess.Popen(
                [CAFLEET, "--json", "--session-id", ids["sid"], "message", "poll",
                 "--agent-id", ids["recipients"][0], "--wait", "10"],
                env=env, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(1.2)  # the poller is up and waiting
            sender.stdin.write(f"wake {i}\n")
            sender.stdin.flush()
            committed = json.loads(sender.stdout.readline())["committed"]
            line = poller.stdout.readline()
            woke = time.time()
            poller.wait(timeout=30)
            got = json.loads(line)
            assert len(got) == 1, got
            waits.append((woke - committed) * 1000)
            ack = [
                "--session-id", ids["sid"], "message", "ack", "--agent-id",
                ids["recipients"][0], "--task-id", got[0]["id"],
            ]  # fmt: skip
            timed(ack, env)
    finally:
        sender.stdin.close()
        sender.wait(timeout=30)
    return stats(waits)


def throughput(env: dict, url: str, seconds: float) -> dict:
    ids = seed(env, senders=8, recipients=4)
    load = run_load(env, ids, seconds=seconds, writers=8, pollers=4, ackers=4)
    summary = summarise(load)
    summary["problems"] = verify(url, load)
    return summary


def measure_backend(name: str, url: str, tmpdir: Path, args) -> dict:
    env = env_for(url, tmpdir)
    if name == "sqlite":
        subprocess.run([CAFLEET, "db", "init"], env=env, check=True, capture_output=True)
    # Throughput first, on the empty database: its check counts every stored task.
    load = throughput(env, url, args.seconds)
    return {
        "throughput": load,
        "latency": latency(env, args.runs),
        "poll_wait_wake": wakeups(env, args.wakes),
    }


def measure(runs: int = 21, seconds: float = 10.0, wakes: int = 15) -> dict:
    """Both backends, one after the other, on a fresh SQLite file and a fresh cluster."""
    from tests.plugins.postgres_server import start_cluster

    args = argparse.Namespace(runs=runs, seconds=seconds, wakes=wakes)
    report = {"runs": runs, "seconds": seconds, "wakes": wakes}
    with tempfile.TemporaryDirectory(prefix="cafleet-bench-backends-") as tmp:
        tmpdir = Path(tmp)
        cluster = start_cluster()
        try:
            version = subprocess.run(
                [str(cluster.bindir / "postgres"), "--version"], capture_output=True, text=True
            ).stdout.strip()
            report["postgres_version"] = version
            pg_url = cluster.url(cluster.new_database(initialised=True))
            sqlite_url = f"sqlite:///{tmpdir / 'data' / 'registry.db'}"
            for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
                report[name] = measure_backend(name, url, tmpdir, args)
        finally:
            cluster.stop()
    return report


def markdown(report: dict) -> str:
    """The ``docs/benchmarks.md`` section for this stage."""
    sq, pg = report["sqlite"], report["postgresql"]

    def row(label, key_path):
        a, b = sq, pg
        for k in key_path:
            a, b = a[k], b[k]
        return [label, a, b]

    lines = [
        "## 5. SQLite and PostgreSQL\n",
        "`bench/bench_backends.py`, both backends on the same run: a SQLite file and a "
        f"database on a throwaway local cluster ({report.get('postgres_version', 'PostgreSQL')}"
        ", unix socket, `fsync` off as in the tests). Latencies are wall times of whole "
        f"`cafleet` processes ({report['runs']} runs each); throughput is section 2's load "
        f"(8 writers, 4 pollers, 4 ackers) for {report['seconds']:g} s, checked for lost or "
        "duplicated messages; the wake-up is the time from the sender's commit to the "
        f"waiting `message poll --wait` printing the message ({report['wakes']} rounds).\n",
        "| figure | SQLite | PostgreSQL |",
        "| --- | ---: | ---: |",
    ]
    table = [
        row("`message send` median ms", ("latency", "send", "median_ms")),
        row("`message send` p95 ms", ("latency", "send", "p95_ms")),
        row("`message poll` median ms", ("latency", "poll", "median_ms")),
        row("`message poll` p95 ms", ("latency", "poll", "p95_ms")),
        row("load: sends/s", ("throughput", "send_per_s")),
        row("load: polls/s", ("throughput", "polls_per_s")),
        row("load: send median ms", ("throughput", "send_ms_median")),
        row("load: send p95 ms", ("throughput", "send_ms_p95")),
        row("load: end-to-end (send→poll→ack) per s", ("throughput", "e2e_per_s")),
        ["load: problems found", len(sq["throughput"]["problems"]),
         len(pg["throughput"]["problems"])],
        row("`poll --wait` wake-up median ms", ("poll_wait_wake", "median_ms")),
        row("`poll --wait` wake-up p95 ms", ("poll_wait_wake", "p95_ms")),
        row("`poll --wait` wake-up min ms", ("poll_wait_wake", "min_ms")),
    ]  # fmt: skip
    lines += [f"| {a} | {b} | {c} |" for a, b, c in table]
    lines.append("")
    lines.append(
        "PostgreSQL wakes a waiting poll through the NOTIFY that the sender's commit sends "
        "(target: 50 ms after the commit); SQLite re-queries every 0.5 s. A PostgreSQL "
        "command pays for importing the psycopg driver (0.1-0.25 s of import time in "
        "`python -X importtime` on this machine) and for a server connection, where SQLite "
        "opens a file; under heavy load the process start-up dominates both. In return "
        "many hosts share one registry (docs/deployment.md).\n"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wakes", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print the docs section")
    args = parser.parse_args()
    report = measure(args.runs, args.seconds, args.wakes)
    if args.markdown:
        print(markdown(report))
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name in ("sqlite", "postgresql"):
        r = report[name]
        t = r["throughput"]
        print(
            f"{name:10} send {r['latency']['send']['median_ms']} ms "
            f"(p95 {r['latency']['send']['p95_ms']}), poll {r['latency']['poll']['median_ms']} ms"
            f" (p95 {r['latency']['poll']['p95_ms']}); 8w/4p/4a: {t['send_per_s']} sends/s, "
            f"{t['polls_per_s']} polls/s, send p95 {t['send_ms_p95']} ms, problems "
            f"{len(t['problems'])}; poll --wait wake {r['poll_wait_wake']['median_ms']} ms "
            f"(p95 {r['poll_wait_wake']['p95_ms']}, max from {r['poll_wait_wake']['n']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
