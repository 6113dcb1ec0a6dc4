"""Delivery benchmarks (issue 9 point 6): broadcast fan-out, held → delivered, send/poll cost.

    .venv/bin/python bench/bench_delivery.py [--members 50] [--rounds 5] [--runs 15] [--json]

Everything runs against a private tmux server (its own socket) and temporary databases.

* **broadcast**: ``cafleet message broadcast`` to N members whose panes run the idle
  stand-in claude (``tests/bin/claude``); wall time of the command, previews reported
  delivered, and previews that arrived (the stand-in's log), per round. Target: ≤ 1 s for 50.
* **held → delivered**: a member's pane runs a plain shell, so the pane gate holds the preview
  (agent not running) and a background delivery worker starts. After a second the bench
  starts the stand-in in that pane (``exec`` in the shell: the bench's own keystrokes, not
  cafleet's). Latency = the stand-in received the preview − the stand-in started (its pane came
  to rest). Target: ≤ 2 s.
* **send / poll vs the floor**: bench/bench_cli.py's interleaved rounds (a bare ``python -c``
  sqlite3 query is the floor), with the delivery rows in place. Target: ≤ 8x.

Nothing here is a test: the figures are read by people (docs/delivery-states.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_cli
    from bench_scale import Tmux, seed_scale, timed_broadcast
    from bench_throughput import CAFLEET, REPO, db_env, init_db
else:
    from bench import bench_cli
    from bench.bench_scale import Tmux, seed_scale, timed_broadcast
    from bench.bench_throughput import CAFLEET, REPO, db_env, init_db

STANDIN_BIN = REPO / "tests" / "bin"
CLAUDE = str(STANDIN_BIN / "claude")


def events(log: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def wait_until(predicate, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def stop_worker(db_path: Path) -> None:
    """End a background delivery worker the bench caused (by the pid in its lease row)."""
    import os
    import signal

    try:
        con = sqlite3.connect(db_path)
        rows = con.execute("SELECT pid FROM delivery_workers").fetchall()
        con.close()
    except sqlite3.Error:
        return
    for (pid,) in rows:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except (ValueError, OSError):
            pass


@contextlib.contextmanager
def stage(work: Path, name: str, commands: list[str], starts: int, timeout: float, **env):
    """A private tmux server (stand-ins of tests/bin on PATH, logging to ``<name>-standin.log``)
    with the stand-in Director and one pane a command, waited for until ``starts`` stand-ins
    have started; a new database ``<name>.db`` with one member a pane. Yields a namespace:
    ``tmux``, ``log``, ``db_path``, ``panes``, ``ids`` and ``env`` (the Director's, plus
    ``env``). The delivery worker and the tmux server are stopped on exit."""
    log = work / f"{name}-standin.log"
    tmux = Tmux(work, path_prefix=str(STANDIN_BIN))
    db_path = work / f"{name}.db"
    try:
        tmux.run("set-environment", "-g", "STANDIN_LOG", str(log))
        director = tmux.new_pane(CLAUDE)
        panes = [tmux.new_pane(command) for command in commands]
        started = wait_until(
            lambda: sum(e["event"] == "start" for e in events(log)) >= starts, timeout
        )
        if not started:
            raise RuntimeError("the stand-ins did not start")
        base = db_env(db_path)
        init_db(base)
        ids = seed_scale(base, members=len(panes), busy=0, empty=False, panes=panes,
                         director_pane=director)  # fmt: skip
        yield SimpleNamespace(
            tmux=tmux, log=log, db_path=db_path, panes=panes, ids=ids,
            env={**base, "TMUX": tmux.tmux_var, "TMUX_PANE": director, **env},
        )  # fmt: skip
    finally:
        stop_worker(db_path)
        tmux.close()


# ------------------------------------------------------------------------------ broadcast
def broadcast_bench(work: Path, members: int, rounds: int) -> dict:
    with stage(work, "broadcast", [CLAUDE] * members, members + 1, 60) as st:
        log, ids, env = st.log, st.ids, st.env
        results = []
        for i in range(rounds):
            body = f"bench broadcast round {i}"
            wall, recipients, delivered = timed_broadcast(ids, env, body)

            def arrived(body=body):
                return sum(
                    1 for e in events(log) if e["event"] == "line" and body in e.get("text", "")
                )

            wait_until(lambda want=delivered: arrived() >= want, 10)
            results.append(
                {
                    "wall_s": round(wall, 3),
                    "recipients": recipients,
                    "delivered": delivered,
                    "arrived": arrived(),
                }
            )
            time.sleep(0.5)
        walls = [r["wall_s"] for r in results]
        return {
            "members": members,
            "rounds": results,
            "median_wall_s": round(statistics.median(walls), 3),
            "max_wall_s": max(walls),
        }


# ------------------------------------------------------------------------------ held
def held_bench(work: Path, rounds: int) -> dict:
    # The member panes are plain shells: only the Director's stand-in starts.
    with stage(work, "held", ["/bin/sh"] * rounds, 1, 30, CAFLEET_DELIVERY_IDLE_EXIT="5") as st:
        tmux, log, db_path, shells, ids, env = (
            st.tmux,
            st.log,
            st.db_path,
            st.panes,
            st.ids,
            st.env,
        )
        results = []
        for i, (pane, member) in enumerate(zip(shells, ids["members"], strict=True)):
            body = f"bench held round {i}"
            sent = subprocess.run(
                [CAFLEET, "--session-id", ids["sid"], "message", "send", "--agent-id",
                 ids["director"], "--to", member, "--text", body],
                env=env, check=True, capture_output=True, text=True,
            ).stdout.splitlines()[0]  # fmt: skip
            if "Preview held" not in sent:
                results.append({"round": i, "send": sent, "held": False})
                continue
            time.sleep(1.0)  # the worker is retrying; the pane is still a shell
            before = len(events(log))
            tmux.run("send-keys", "-t", pane, "-l", f"exec {CLAUDE}")
            tmux.run("send-keys", "-t", pane, "Enter")

            def landed(body=body, before=before):
                new = events(log)[before:]
                start = next((e["t"] for e in new if e["event"] == "start"), None)
                got = next(
                    (e["t"] for e in new if e["event"] == "line" and body in e.get("text", "")),
                    None,
                )
                return (start, got) if start is not None and got is not None else None

            found = wait_until(landed, 15)
            if not found:
                con = sqlite3.connect(db_path)
                state = con.execute(
                    "SELECT d.state, d.reason, d.attempts FROM task_deliveries d "
                    "JOIN tasks t ON t.task_id = d.task_id WHERE t.text = ?",
                    (body,),
                ).fetchall()
                con.close()
                results.append(
                    {"round": i, "send": sent, "held": True, "latency_s": None,
                     "delivery": state, "pane": tmux.capture(pane)[-300:]}
                )  # fmt: skip
                continue
            rest, got = found
            results.append(
                {"round": i, "send": sent, "held": True, "latency_s": round(got - rest, 3)}
            )
        lat = [r["latency_s"] for r in results if r.get("latency_s") is not None]
        return {
            "rounds": results,
            "median_s": round(statistics.median(lat), 3) if lat else None,
            "max_s": max(lat) if lat else None,
        }


# ------------------------------------------------------------------------------ floor
def floor_bench(work: Path, runs: int) -> dict:
    db_path = work / "floor.db"
    env, ids = bench_cli.prepare(db_path)
    times = bench_cli.measure(bench_cli.commands(db_path, ids), env, runs)
    floor = statistics.median(times["floor"])
    return {
        name: {
            "median_ms": round(statistics.median(t) * 1000, 1),
            "ratio": round(statistics.median(t) / floor, 2),
        }
        for name, t in times.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", choices=("broadcast", "held", "floor"), default=None)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="cafleet-delivery-") as tmp:
        work = Path(tmp)
        if args.only in (None, "broadcast"):
            result["broadcast"] = broadcast_bench(work, args.members, args.rounds)
        if args.only in (None, "held"):
            result["held"] = held_bench(work, args.rounds)
        if args.only in (None, "floor"):
            result["floor"] = floor_bench(work, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    headlines = {
        "broadcast": lambda b: (
            f"broadcast to {b['members']} idle stand-in panes: median "
            f"{b['median_wall_s']} s, max {b['max_wall_s']} s (target ≤ 1 s)"
        ),
        "held": lambda h: (
            "held → delivered after the pane came to rest: median "
            f"{h['median_s']} s, max {h['max_s']} s (target ≤ 2 s)"
        ),
    }
    for stage, headline in headlines.items():
        if stage in result:
            print(headline(result[stage]))
            for r in result[stage]["rounds"]:
                print(f"  {r}")
    if "floor" in result:
        for name, row in result["floor"].items():
            print(f"{name:<14} {row['median_ms']:>8} ms  x{row['ratio']} floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
