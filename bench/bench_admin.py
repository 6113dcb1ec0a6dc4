"""Admin page render times with 10,000 messages in the database.

    .venv/bin/python bench/bench_admin.py [--messages 10000] [--runs 7] [--no-http] [--json]

Builds a fresh database in a temporary directory (``db init``), one session with a Director,
an Administrator and 8 agents, and ``--messages`` task rows over the past 10 days: mostly
unicasts (about a third acknowledged, a few canceled) and some broadcasts (deliveries plus
summary, counted in the total). Every row is in the one session, so the timeline page has
the whole load behind it.

Then it times the pages two ways, after one warm-up request each:

* ``client``: Django's test client in this process (full middleware and template rendering,
  no network), with the SQL query count of one request;
* ``http``: a real ``cafleet server`` subprocess (waitress) on a free loopback port, logged
  in with its one-time link (skip with ``--no-http``).

Reported per page: median / min / max wall time in ms. The target is under 1000 ms for
the messages list and the timeline. Nothing here is a test: figures are read by people.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
CAFLEET = str(BIN / "cafleet")
TARGET_MS = 1000.0
AGENTS = 8


def setup(db_path: Path) -> None:
    os.environ["CAFLEET_DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "cafleet_project.settings"
    for var in ("TMUX", "TMUX_PANE"):
        os.environ.pop(var, None)
    import django

    django.setup()
    from broker.database import db_init

    db_init()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def seed(total: int, rng: random.Random) -> dict:
    """One session, ``total`` task rows; returns ids for the page URLs."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from broker.clock import new_id
    from broker.models import Task, TaskState, TaskType
    from broker.services import agent_register, session_create

    session, director, admin, _ = session_create(
        label="bench", coding_agent="claude", caller=("bench", "@1", "%999999")
    )
    agents = [director.agent_id] + [
        agent_register(
            session_id=session.session_id,
            name=f"agent-{i}",
            description="bench agent",
            skills_json=None,
        ).agent_id
        for i in range(AGENTS)
    ]
    senders = [*agents, admin.agent_id]
    words = (
        "build",
        "test",
        "review",
        "deploy",
        "rebase",
        "merge",
        "report",
        "status",
        "please",
        "done",
        "failing",
        "green",
        "check",
        "the",
        "branch",
        "now",
    )
    start = datetime.now(UTC) - timedelta(days=10)
    step = timedelta(days=10) / total
    rows: list[Task] = []

    def task(*, to: str, **fields) -> Task:
        """A unicast row to ``to`` (its inbox); ``fields`` set the rest or override."""
        unicast = {"task_id": new_id(), "context_id": to, "type": TaskType.UNICAST,
                   "status_timestamp": fields["created_at"], "origin_task_id": None}  # fmt: skip
        return Task(to_agent_id=to, **{**unicast, **fields})

    moment = start
    broadcast_id = None
    while len(rows) < total:
        moment += step
        created = stamp(moment)
        sender = rng.choice(senders)
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 80)))
        if rng.random() < 0.03 and total - len(rows) > AGENTS + 1:
            summary_id = new_id()
            recipients = [a for a in agents if a != sender]
            for rid in recipients:
                state = TaskState.COMPLETED if rng.random() < 0.5 else TaskState.INPUT_REQUIRED
                rows.append(
                    task(to=rid, from_agent_id=sender, created_at=created, status_state=state,
                         origin_task_id=summary_id, text=text)
                )  # fmt: skip
            rows.append(
                task(to="", task_id=summary_id, context_id=sender, from_agent_id=sender,
                     type=TaskType.BROADCAST_SUMMARY, created_at=created,
                     status_state=TaskState.COMPLETED, origin_task_id=summary_id,
                     text=f"Broadcast sent to {len(recipients)} recipients")
            )  # fmt: skip
            broadcast_id = summary_id
            continue
        to = rng.choice([a for a in agents if a != sender])
        roll = rng.random()
        state = (
            TaskState.COMPLETED
            if roll < 0.35
            else TaskState.CANCELED
            if roll < 0.40
            else TaskState.INPUT_REQUIRED
        )
        changed = (
            stamp(moment + timedelta(seconds=rng.randint(1, 600)))
            if state != TaskState.INPUT_REQUIRED
            else created
        )
        rows.append(
            task(to=to, from_agent_id=sender, created_at=created, status_state=state,
                 status_timestamp=changed, text=text)
        )  # fmt: skip
    with transaction.atomic():
        Task.objects.bulk_create(rows, batch_size=500)
    user = get_user_model().objects.create_superuser("bench", email="", password=None)
    delivery = Task.objects.filter(origin_task_id=broadcast_id, type=TaskType.UNICAST).first()
    return {
        "session": session.session_id,
        "agent": agents[1],
        "user": user,
        "broadcast_row": delivery.task_id if delivery else rows[0].task_id,
        "rows": Task.objects.count(),
    }


def pages(ids: dict) -> list[tuple[str, str]]:
    sid = ids["session"]
    return [
        ("messages list", "/admin/cafleet/task/"),
        ("messages list, unread", "/admin/cafleet/task/?state=input_required"),
        ("messages list, search", "/admin/cafleet/task/?q=rebase+merge"),
        ("messages list, today", "/admin/cafleet/task/?age=today"),
        ("messages list, inbox", f"/admin/cafleet/task/?inbox={ids['agent']}"),
        ("timeline", f"/admin/cafleet/session/{sid}/timeline/"),
        ("timeline refresh", f"/admin/cafleet/session/{sid}/timeline/?fragment=1"),
        ("message detail (broadcast)", f"/admin/cafleet/task/{ids['broadcast_row']}/change/"),
        ("sessions list", "/admin/cafleet/session/"),
        ("session detail", f"/admin/cafleet/session/{sid}/change/"),
        ("agents list", "/admin/cafleet/agent/"),
    ]


def summarise(samples: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
    }


def time_client(ids: dict, runs: int) -> dict:
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(ids["user"])
    results = {}
    for name, url in pages(ids):
        queries = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)  # warm-up, and the query count
        assert response.status_code == 200, (url, response.status_code)
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        results[name] = {
            **summarise(samples),
            "queries": len(queries),
            "bytes": len(response.content),
        }
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_http(ids: dict, db_path: Path, runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CAFLEET_", "DJANGO_"))}
    env["CAFLEET_DATABASE_URL"] = f"sqlite:///{db_path}"
    port = free_port()
    proc = subprocess.Popen(
        [CAFLEET, "server", "--port", str(port)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdout.readline()
        link = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        path = "/" + link.split("/", 3)[3]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        cookie = re.search(
            r"(?<![\w])cafleet_sessionid=[^;]+", response.getheader("Set-Cookie", "")
        ).group(0)
        results = {}
        for name, url in pages(ids):
            samples = []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                conn.request("GET", url, headers={"Cookie": cookie})
                response = conn.getresponse()
                body = response.read()
                if i:  # the first request is the warm-up
                    samples.append((time.perf_counter() - t0) * 1000)
                assert response.status == 200, (url, response.status)
            results[name] = {**summarise(samples), "bytes": len(body)}
        conn.close()
        return results
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cafleet-bench-admin-"))
    db_path = work / "registry.db"
    t0 = time.perf_counter()
    setup(db_path)
    ids = seed(args.messages, random.Random(args.seed))
    seeded = time.perf_counter() - t0
    report = {
        "rows": ids["rows"],
        "seed_seconds": round(seeded, 1),
        "runs": args.runs,
        "client": time_client(ids, args.runs),
    }
    if not args.no_http:
        report["http"] = time_http(ids, db_path, args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['rows']} task rows in one session (seeded in {report['seed_seconds']} s); "
        f"{args.runs} timed runs per page after one warm-up. Target < {TARGET_MS:.0f} ms."
    )
    for mode in ("client", "http"):
        if mode not in report:
            continue
        print(
            f"\n{mode}: median / min / max ms"
            + ("   queries  bytes" if mode == "client" else "   bytes")
        )
        for name, r in report[mode].items():
            extra = f"{r['queries']:>9}" if mode == "client" else ""
            flag = "" if r["median_ms"] < TARGET_MS else "   OVER TARGET"
            print(
                f"  {name:<28} {r['median_ms']:>8.1f} {r['min_ms']:>8.1f} "
                f"{r['max_ms']:>8.1f}{extra} {r['bytes']:>8}{flag}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
