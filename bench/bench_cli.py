"""CLI latency against the floor, with an import-time profile.

    .venv/bin/python bench/bench_cli.py [--runs 21] [--json]

The floor is a bare ``python -c`` (the same interpreter as the installed ``cafleet``) that
opens the database with sqlite3 and runs one query. ``message poll`` and ``message send``
run as real subprocesses of the installed console script, interleaved with the floor in
every round so that machine noise hits all three alike. Reported: median wall time (ms) and
the ratio to the floor's median. Nothing here is a test: targets are read by people.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CAFLEET = str(BIN / "cafleet")


def prepare(db_path: Path, *, messages: int = 5, **extra_env: str) -> tuple[dict, dict]:
    """Initialise a database, make a session with a plain agent and ``messages`` messages to
    it; ``extra_env`` is added to the environment the commands run with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CAFLEET_"))}
    env["CAFLEET_DATABASE_URL"] = f"sqlite:///{db_path}"
    env.update(extra_env)
    env["TMUX_TMPDIR"] = str(db_path.parent)  # no preview can reach a real tmux server
    subprocess.run([CAFLEET, "db", "init"], env=env, check=True, capture_output=True)
    code = (
        "import json;from cafleet_project.cli import setup_django;"
        "setup_django(('session','create'));"
        "from broker.services import session_create, agent_register, message_send;"
        "s,d,a,p=session_create(label='bench',coding_agent='claude',"
        "caller=('bench','@1','%999999'));"
        "b=agent_register(session_id=s.session_id,name='bench-agent',description='x',"
        "skills_json=None);"
        "[message_send(session_id=s.session_id,agent_ref=d.agent_id,to_ref=b.agent_id,"
        f"text=f'message {{i}}',limit=200) for i in range({messages})];"
        "print(json.dumps({'sid':s.session_id,'director':d.agent_id,'agent':b.agent_id}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout
    return env, json.loads(out)


def commands(db_path: Path, ids: dict) -> dict[str, list[str]]:
    s = ["--session-id", ids["sid"]]
    return {
        "floor": [
            sys.executable,
            "-c",
            f"import sqlite3;c=sqlite3.connect({str(db_path)!r});"
            "c.execute('select count(*) from tasks').fetchall()",
        ],
        "message poll": [CAFLEET, *s, "message", "poll", "--agent-id", ids["agent"]],
        "message send": [
            CAFLEET,
            *s,
            "message",
            "send",
            "--agent-id",
            ids["director"],
            "--to",
            ids["agent"],
            "--quiet",
            "--text",
            "benchmark message",
        ],
    }


def measure(cmds: dict[str, list[str]], env: dict, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():  # warm the page cache once
        subprocess.run(argv, env=env, check=True, capture_output=True)
    for _ in range(runs):
        for name, argv in cmds.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    return times


def import_profile(argv: list[str], env: dict, top: int = 12) -> dict:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or "self" in parts[0]:
            continue
        rows.append((parts[2], int(parts[0]), int(parts[1])))
    total_self = sum(r[1] for r in rows)
    top_level = [r for r in rows if not r[0].startswith("  ")]  # one leading space
    biggest = sorted(top_level, key=lambda r: r[2], reverse=True)[:top]
    return {
        "modules": len(rows),
        "total_ms": round(total_self / 1000, 1),
        "top_level": [(name.strip(), round(cum / 1000, 1)) for name, _, cum in biggest],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cafleet-bench-") as tmp:
        db_path = Path(tmp) / "bench.db"
        env, ids = prepare(db_path)
        cmds = commands(db_path, ids)
        times = measure(cmds, env, args.runs)
        profile = import_profile(cmds["message poll"], env)
    floor = statistics.median(times["floor"])
    result = {"runs": args.runs, "python": sys.version.split()[0], "rows": []}
    for name, samples in times.items():
        med = statistics.median(samples)
        result["rows"].append(
            {
                "command": name,
                "median_ms": round(med * 1000, 1),
                "ratio": round(med / floor, 2),
                "min_ms": round(min(samples) * 1000, 1),
            }
        )
    result["import_profile"] = profile
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"CLI latency, {args.runs} interleaved rounds, Python {result['python']}")
    print(f"{'command':<14} {'median ms':>10} {'min ms':>8} {'x floor':>8}")
    for row in result["rows"]:
        print(f"{row['command']:<14} {row['median_ms']:>10} {row['min_ms']:>8} {row['ratio']:>8}")
    print(
        f"\nimport profile of 'message poll': {profile['modules']} modules, "
        f"{profile['total_ms']} ms of import time; largest top-level imports:"
    )
    for name, ms in profile["top_level"]:
        print(f"  {name:<40} {ms:>7} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
