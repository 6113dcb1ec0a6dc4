"""``cafleet hook`` latency against the floor (docs/hooks.md).

    .venv/bin/python bench/bench_hook.py [--runs 31] [--json]

Measured as real subprocesses of the installed console script, interleaved in every round:

* ``floor``: the same Python opening the database with sqlite3 and running one query;
* ``hook, nothing owed``: ``cafleet hook PreToolUse`` with the member's environment and a
  hook JSON on stdin (the state was recorded just before, so nothing is written);
* ``hook, with mail``: ``cafleet hook PostToolUse`` after one message was queued for the
  member (outside the timing): it claims it and prints the additionalContext;
* ``message poll``: the reference for the mail path.

Reported: median wall time (ms) and the ratio to the floor's median (target for the
nothing-owed hook: at most 3x). Nothing here is a test: targets are read by people.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_cli
from bench.bench_cli import CAFLEET
from bench.timing import timed

PAYLOAD = json.dumps({"session_id": "bench", "hook_event_name": "PreToolUse",
                      "tool_name": "Bash", "tool_input": {"command": "ls"}}).encode()  # fmt: skip


def prepare(db_path: Path) -> tuple[dict, dict]:
    """bench_cli's session (no messages, no background worker); the member's hook env."""
    env, ids = bench_cli.prepare(db_path, messages=0, CAFLEET_DELIVERY_AUTOSTART="0")
    hook_env = {**env, "CAFLEET_AGENT_ID": ids["agent"], "CAFLEET_SESSION_ID": ids["sid"]}
    return hook_env, ids


def queue_mail(db_path: Path, ids: dict) -> None:
    """One owed delivery for the member, written directly (outside the timing)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    tid = str(uuid.uuid4())
    con = sqlite3.connect(db_path)
    with con:
        con.execute(
            "INSERT INTO tasks (task_id, context_id, from_agent_id, to_agent_id, type, "
            "created_at, status_state, status_timestamp, origin_task_id, text) VALUES "
            "(?, ?, ?, ?, 'unicast', ?, 'input_required', ?, NULL, ?)",
            (tid, ids["agent"], ids["director"], ids["agent"], stamp, stamp, "bench mail body"),
        )
        con.execute(
            "INSERT INTO task_deliveries (task_id, state, attempts, updated_at) "
            "VALUES (?, 'owed', '0', ?)",
            (tid, stamp),
        )
    con.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cafleet-bench-hook-") as tmp:
        db_path = Path(tmp) / "registry.db"
        env, ids = prepare(db_path)
        floor = [sys.executable, "-c",
                 f"import sqlite3;c=sqlite3.connect('file:{db_path}?mode=ro',uri=True);"
                 "c.execute('select count(*) from tasks').fetchall()"]  # fmt: skip
        hook_idle = [CAFLEET, "hook", "PreToolUse"]
        hook_mail = [CAFLEET, "hook", "PostToolUse"]
        poll = [CAFLEET, "--session-id", ids["sid"], "message", "poll", "--agent-id",
                ids["agent"]]  # fmt: skip
        subprocess.run(hook_idle, env=env, input=PAYLOAD, check=True)  # records the state
        times: dict[str, list[float]] = {k: [] for k in ("floor", "idle", "mail", "poll")}
        for _ in range(args.runs):
            times["floor"].append(timed(floor, env)[0])
            ms, out = timed(hook_idle, env, PAYLOAD)
            assert out == b"", out
            times["idle"].append(ms)
            queue_mail(db_path, ids)
            ms, out = timed(hook_mail, env, PAYLOAD)
            assert b"bench mail body" in out, out
            times["mail"].append(ms)
            queue_mail(db_path, ids)
            times["poll"].append(timed(poll, env)[0])
        med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "runs": args.runs,
        "median_ms": {k: round(v, 1) for k, v in med.items()},
        "ratio_to_floor": {k: round(v / med["floor"], 2) for k, v in med.items()},
    }
    if args.json:
        print(json.dumps(result))
        return 0
    names = {"floor": "floor (python + sqlite3 + 1 query)", "idle": "hook, nothing owed",
             "mail": "hook, with mail", "poll": "message poll"}  # fmt: skip
    for key, label in names.items():
        print(f"{label:36s} {med[key]:7.1f} ms  {med[key] / med['floor']:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
