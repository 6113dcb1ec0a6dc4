"""Scale: latency against database size, a 50-member broadcast, a 50-member activity list.

    .venv/bin/python bench/bench_scale.py [--runs 15] [--sizes 0,1000,10000,100000] [--json]

1. **Latency against database size.** For each size N a database holds one session with
   the root Director, the Administrator, an agent whose inbox is empty, 20 busy agents and
   50 members, plus N tasks exchanged among the busy agents (half of them acknowledged).
   Measured, interleaved round by round so machine noise hits every size alike:
   ``message poll`` for the empty inbox and ``message send`` to it as real ``cafleet``
   subprocesses (median wall time), and the same poll called in-process 200 times
   (``cafleet_project.cli.main`` in a warm interpreter: the database work alone).
2. **Broadcast to 50 members with panes.** An isolated tmux server (its own socket) runs
   50 panes; 50 members' placements name them. The Director broadcasts; reported: wall
   time, ``recipients=``/``delivered=`` as printed, and how many panes really show the
   preview header. Then 10 panes are killed and the broadcast repeated: ``delivered=`` must
   drop to what really arrived.
3. **member list --activity with 50 members**, on the smallest and the largest database.

Nothing here is a test; the figures go to ``docs/benchmarks.md`` (``bench/run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_throughput import CAFLEET, db_env, init_db, python_out
else:
    from bench.bench_throughput import CAFLEET, db_env, init_db, python_out

MEMBERS = 50
BUSY = 20

SEED = r"""
import json, sys
from cafleet_project.cli import setup_django
setup_django(("session", "create"))
from django.db import transaction
from broker.models import Placement
from broker.services import agent_register, session_create
spec = json.loads(sys.argv[1])
s, d, a, _ = session_create(label="scale", coding_agent="claude",
                            caller=("bench", "@1", spec.get("director_pane", "%999999")))
def reg(name):
    return agent_register(session_id=s.session_id, name=name, description="scale agent",
                          skills_json=None)
empty = reg("empty-inbox").agent_id if spec["empty"] else None
busy = [reg(f"busy-{i}").agent_id for i in range(spec["busy"])]
members = []
panes = spec.get("panes") or [f"%{900000 + i}" for i in range(spec["members"])]
with transaction.atomic():
    for i in range(spec["members"]):
        m = reg(f"member-{i}")
        Placement.objects.create(agent=m, director_agent=d, tmux_session="bench",
                                 tmux_window_id="@1", tmux_pane_id=panes[i],
                                 coding_agent="claude", created_at=m.registered_at)
        members.append(m.agent_id)
print(json.dumps({"sid": s.session_id, "director": d.agent_id, "admin": a.agent_id,
                  "empty": empty, "busy": busy, "members": members}))
"""


def seed_scale(
    env: dict,
    *,
    members: int = MEMBERS,
    busy: int = BUSY,
    empty: bool = True,
    panes: list[str] | None = None,
    director_pane: str = "%999999",
) -> dict:
    spec = json.dumps(
        {
            "members": members,
            "busy": busy,
            "panes": panes,
            "empty": empty,
            "director_pane": director_pane,
        }
    )
    return json.loads(python_out("-c", SEED, spec, env=env))


def _stamp(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


def add_tasks(db_path: Path, agents: list[str], n: int, seed: int = 7) -> None:
    """``n`` unicast tasks among ``agents``; every other one acknowledged."""
    if n <= 0:
        return
    rnd = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=29) / n
    con = sqlite3.connect(db_path)
    try:
        rows = []
        for i in range(n):
            sender, recipient = rnd.sample(agents, 2)
            created = _stamp(start + step * i)
            state = "completed" if i % 2 else "input_required"
            rows.append(
                (
                    str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                    recipient,
                    sender,
                    recipient,
                    "unicast",
                    created,
                    state,
                    created,
                    None,
                    f"load message {i} " + "x" * rnd.randint(0, 300),
                )
            )
        with con:
            con.executemany(
                "INSERT INTO tasks (task_id, context_id, from_agent_id, to_agent_id, type, "
                "created_at, status_state, status_timestamp, origin_task_id, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


INPROC = r"""
import contextlib, io, json, sys, time
from cafleet_project.cli import main
argv, n = json.loads(sys.argv[1]), int(sys.argv[2])
def once():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"exit {code}: {out.getvalue()}")
once()
times = []
for _ in range(n):
    t = time.perf_counter()
    once()
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def in_process(env: dict, argv: list[str], n: int = 200) -> list[float]:
    return json.loads(python_out("-c", INPROC, json.dumps(argv), str(n), env=env))


def wall(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# ------------------------------------------------------------------------------ 1. size sweep
def size_sweep(sizes: list[int], runs: int, workdir: Path) -> dict:
    base = workdir / "base.db"
    env0 = db_env(base)
    init_db(env0)
    ids = seed_scale(env0)
    dbs = {}
    for n in sizes:
        path = workdir / f"size-{n}.db"
        shutil.copyfile(base, path)
        add_tasks(path, ids["busy"], n)
        dbs[n] = (path, db_env(path))
    s = ["--session-id", ids["sid"]]
    poll = [CAFLEET, *s, "message", "poll", "--agent-id", ids["empty"]]
    send = [
        CAFLEET,
        *s,
        "message",
        "send",
        "--agent-id",
        ids["busy"][0],
        "--to",
        ids["empty"],
        "--quiet",
        "--text",
        "scale probe",
    ]
    activity = [CAFLEET, *s, "member", "list", "--agent-id", ids["director"], "--activity"]
    times: dict[int, dict[str, list[float]]] = {
        n: {"poll": [], "send": [], "activity": []} for n in sizes
    }
    for n in sizes:  # warm the page cache
        for argv in (poll, activity):
            wall(argv, dbs[n][1])
    for _ in range(runs):
        for n in sizes:
            env = dbs[n][1]
            times[n]["poll"].append(wall(poll, env))
            times[n]["activity"].append(wall(activity, env))
            times[n]["send"].append(wall(send, env))
            _drop_probes(dbs[n][0])  # keep the probed inbox empty for the next poll
    inproc = {n: in_process(dbs[n][1], poll[1:]) for n in sizes}
    inproc_activity = {n: in_process(dbs[n][1], activity[1:], 50) for n in (sizes[0], sizes[-1])}
    plan = _poll_plan(dbs[sizes[-1]][1], ids["empty"])
    rows = []
    for n in sizes:
        rows.append(
            {
                "tasks": n,
                "db_mb": round(dbs[n][0].stat().st_size / 1e6, 1),
                "poll_ms": ms(statistics.median(times[n]["poll"])),
                "send_ms": ms(statistics.median(times[n]["send"])),
                "activity_ms": ms(statistics.median(times[n]["activity"])),
                "poll_inproc_ms": ms(statistics.median(inproc[n])),
            }
        )
    first, last = rows[0], rows[-1]
    return {
        "runs": runs,
        "rows": rows,
        "poll_ratio_largest_vs_empty": round(last["poll_ms"] / first["poll_ms"], 3),
        "poll_inproc_ratio_largest_vs_empty": round(
            last["poll_inproc_ms"] / first["poll_inproc_ms"], 3
        ),
        "activity_inproc_ms": {
            str(n): ms(statistics.median(v)) for n, v in inproc_activity.items()
        },
        "poll_query_plan": plan,
        "members": MEMBERS,
    }


def _drop_probes(db_path: Path) -> None:
    con = sqlite3.connect(db_path)
    try:
        with con:
            con.execute("DELETE FROM tasks WHERE text = 'scale probe'")
    finally:
        con.close()


PLAN = r"""
import sys
from cafleet_project.cli import setup_django
setup_django(("message", "poll"))
from broker.models import Task
print(Task.objects.inbox(sys.argv[1]).unread().newest_first().explain())
"""


def _poll_plan(env: dict, agent: str) -> list[str]:
    """SQLite's plan for the exact query ``message poll`` runs (Django's ``explain()``)."""
    out = python_out("-c", PLAN, agent, env=env)
    return [line.strip() for line in out.splitlines() if line.strip()]


# ------------------------------------------------------------------------------ 2. broadcast
class Tmux:
    """A private tmux server on its own socket (never the user's)."""

    def __init__(self, workdir: Path, path_prefix: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="cfb-"))  # short: socket paths are limited
        self.socket = self.dir / "sock"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TMUX", "CAFLEET_", "STANDIN_"))
        }
        if path_prefix:  # panes take PATH from the calling client's environment
            self.env["PATH"] = f"{path_prefix}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["SHELL"] = "/bin/sh"
        self.env.setdefault("LANG", "C.UTF-8")
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "bench", "-x", "200", "-y", "50")
        self.run("set-option", "-g", "default-size", "200x50")
        self.run("set-option", "-g", "history-limit", "200")
        pid, self.first_pane = self.run(
            "display-message", "-p", "-t", "bench", "#{pid} #{pane_id}"
        ).split()
        self.pid = int(pid)

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    @property
    def tmux_var(self) -> str:
        return f"{self.socket},{self.pid},0"

    def new_pane(self, *argv: str) -> str:
        return self.run("new-window", "-d", "-t", "bench", "-P", "-F", "#{pane_id}", *argv).strip()

    def capture(self, pane: str) -> str:
        return self.run("capture-pane", "-p", "-J", "-t", pane, "-S", "-")

    def close(self) -> None:
        try:
            self.run("kill-server")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


_ECHO = re.compile(r"broadcast id=(\w+) recipients=(\d+) delivered=(\d+)")


def timed_broadcast(ids: dict, env: dict, body: str) -> tuple[float, int, int]:
    """``message broadcast`` of ``body`` from the Director of ``ids`` once: its wall time (s)
    and the recipients and delivered counts it reported."""
    argv = [CAFLEET, "--session-id", ids["sid"], "message", "broadcast",
            "--agent-id", ids["director"], "--text", body]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - start
    _sid, recipients, delivered = _ECHO.fullmatch(out.strip()).groups()
    return elapsed, int(recipients), int(delivered)


def broadcast_bench(workdir: Path) -> dict:
    """Broadcast to MEMBERS stand-in agents (tests/bin/claude, which draw the real client's
    idle screen, so the pane gate lets the preview in), then again with ten panes killed.
    ``arrived`` counts the previews the stand-ins logged as submitted lines."""
    if __package__ in (None, ""):
        from bench_delivery import CLAUDE, events, stage, wait_until
    else:
        from bench.bench_delivery import CLAUDE, events, stage, wait_until

    with stage(workdir, "scale-broadcast", [CLAUDE] * MEMBERS, MEMBERS + 1, 120) as st:

        def once(label: str) -> dict:
            body = f"scale broadcast {label}"
            elapsed, recipients, delivered = timed_broadcast(st.ids, st.env, body)

            def arrived() -> int:
                return sum(
                    1 for e in events(st.log) if e["event"] == "line" and body in e.get("text", "")
                )

            wait_until(lambda: arrived() >= delivered, 10)
            time.sleep(0.5)  # a late arrival beyond ``delivered`` would show here
            return {
                "wall_s": round(elapsed, 2),
                "recipients": recipients,
                "delivered": delivered,
                "arrived": arrived(),
                "per_recipient_ms": round(elapsed * 1000 / max(1, recipients), 1),
                "honest": delivered == arrived(),
            }

        first = once("all-alive")
        for pane in st.panes[:10]:
            st.tmux.run("kill-pane", "-t", pane)
        second = once("ten-dead")
        return {"members": MEMBERS, "all_alive": first, "ten_killed": second}


# ------------------------------------------------------------------------------ main
def measure(sizes: list[int], runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cafleet-scale-") as tmp:
        work = Path(tmp)
        sweep = size_sweep(sizes, runs, work)
        broadcast = broadcast_bench(work)
    return {"size_sweep": sweep, "broadcast": broadcast}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="0,1000,10000,100000")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    result = measure([int(s) for s in args.sizes.split(",")], args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    sweep = result["size_sweep"]
    print(
        f"{'tasks':>8} {'MB':>6} {'poll ms':>8} {'send ms':>8} {'activity ms':>12} "
        f"{'poll in-proc ms':>16}"
    )
    for r in sweep["rows"]:
        print(
            f"{r['tasks']:>8} {r['db_mb']:>6} {r['poll_ms']:>8} {r['send_ms']:>8} "
            f"{r['activity_ms']:>12} {r['poll_inproc_ms']:>16}"
        )
    print(
        f"poll, largest vs empty: x{sweep['poll_ratio_largest_vs_empty']} (subprocess), "
        f"x{sweep['poll_inproc_ratio_largest_vs_empty']} (in-process)"
    )
    print(f"broadcast: {json.dumps(result['broadcast'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
