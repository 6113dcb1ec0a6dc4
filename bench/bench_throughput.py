"""End-to-end throughput under load: writers, pollers and ackers on one SQLite file.

    .venv/bin/python bench/bench_throughput.py [--seconds 20] [--writers 8] [--pollers 4]
                                               [--ackers 4] [--json]

Every worker is a separate Python process that runs the real entry point
(``cafleet_project.cli.main``) in a loop, so each operation goes through parsing, database
readiness, id resolution and the IMMEDIATE write transaction exactly as a ``cafleet`` call
does, without paying interpreter start-up per call (that cost is measured by
``bench_cli.py``).

Roles (all against one session of one database):

* writer *w* sends ``w<w>-<i>`` messages round-robin to the recipients, as its own sender
  agent, and records each task id it was given;
* poller *p* polls the recipients' unread inboxes (read-only) and checks every row it sees;
* acker *k* polls a recipient's inbox and acknowledges what it finds; the ackers walk the
  recipients from different offsets, so two ackers regularly race for the same task.

``run_load`` returns the raw records; ``verify`` checks them against the database (nothing
lost, nothing duplicated, nothing acknowledged twice, no "database is locked", integrity
check ok) and ``summarise`` turns them into figures. ``tests/test_stress.py`` uses the
same three functions with a shorter window.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CAFLEET = str(BIN / "cafleet")


# ------------------------------------------------------------------------------ databases
def db_env(db_path: Path, base: dict | None = None) -> dict:
    """Environment for cafleet subprocesses on ``db_path`` that can reach no tmux server."""
    env = {
        k: v
        for k, v in (base or os.environ).items()
        if not k.startswith(("TMUX", "CAFLEET_", "DJANGO_", "STANDIN_"))
    }
    env["CAFLEET_DATABASE_URL"] = f"sqlite:///{db_path}"
    env["TMUX_TMPDIR"] = str(db_path.parent)  # a private, empty tmux socket directory
    return env


def python_out(*argv: str, env: dict | None = None) -> str:
    """Stdout of ``python <argv>`` (this interpreter, run in the repository; must succeed)."""
    return subprocess.run(
        [sys.executable, *argv],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def init_db(env: dict) -> None:
    subprocess.run([CAFLEET, "db", "init"], env=env, check=True, capture_output=True)


SEED = r"""
import json, sys
from cafleet_project.cli import setup_django
setup_django(("session", "create"))
from broker.services import agent_register, session_create
spec = json.loads(sys.argv[1])
s, d, a, _ = session_create(label=spec.get("label", "load"), coding_agent="claude",
                            caller=("bench", "@1", "%999999"))
def reg(name):
    return agent_register(session_id=s.session_id, name=name, description="load agent",
                          skills_json=None).agent_id
print(json.dumps({"sid": s.session_id, "director": d.agent_id, "admin": a.agent_id,
                  "senders": [reg(f"sender-{i}") for i in range(spec["senders"])],
                  "recipients": [reg(f"recipient-{i}") for i in range(spec["recipients"])]}))
"""


def seed(env: dict, *, senders: int, recipients: int, label: str = "load") -> dict:
    """A session with ``senders`` + ``recipients`` plain agents, through the service layer."""
    spec = json.dumps({"senders": senders, "recipients": recipients, "label": label})
    return json.loads(python_out("-c", SEED, spec, env=env))


# ------------------------------------------------------------------------------ workers
WORKER = r"""
import contextlib, io, json, sys, time
from cafleet_project.cli import main

def call(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()

spec = json.loads(sys.argv[1])
sid, role, me = spec["sid"], spec["role"], spec["index"]
recipients = spec["recipients"]
S = ["--session-id", sid]
rec = {"role": role, "index": me, "fail": [], "locked": 0}

def note(code, out, err, ok_errors=()):
    if "locked" in err:
        rec["locked"] += 1
    if code != 0 and err not in ok_errors:
        rec["fail"].append([code, out[-300:], err[-300:]])
        return False
    return code == 0

def poll(agent, page):
    code, out, err = call(["--json", *S, "message", "poll", "--agent-id", agent,
                           "--page-size", str(page), "--full"])
    if not note(code, out, err):
        return None
    return json.loads(out)

# warm up (imports, Django set-up, first connection) before the common start
note(*call([*S, "message", "poll", "--agent-id", recipients[0], "--page-size", "1"]))
print("ready", flush=True)
window = json.loads(sys.stdin.readline())
while time.time() < window["start_at"]:
    time.sleep(0.002)
end_at = window["end_at"]
i = 0
if role == "writer":
    rec["sent"] = []
    sender = spec["sender"]
    while time.time() < end_at:
        to = recipients[(me + i) % len(recipients)]
        text = f"w{me}-{i}"
        t0 = time.time()
        code, out, err = call(["--json", *S, "message", "send", "--agent-id", sender,
                               "--to", to, "--full", "--text", text])
        t1 = time.time()
        if note(code, out, err):
            task = json.loads(out)["task"]
            rec["sent"].append([task["task_id"], task["text"], task["context_id"], t0, t1])
        i += 1
elif role == "poller":
    rec.update(polls=0, rows=0, seen=set(), dups=[], bad=[])
    while time.time() < end_at:
        agent = recipients[(me + i) % len(recipients)]
        rows = poll(agent, 50)
        i += 1
        if rows is None:
            continue
        rec["polls"] += 1
        rec["rows"] += len(rows)
        ids = [r["task_id"] for r in rows]
        if len(ids) != len(set(ids)):
            rec["dups"].append(ids)
        for r in rows:
            if (r["context_id"] != agent or r["to_agent_id"] != agent
                    or r["status_state"] != "input_required" or r["type"] != "unicast"):
                rec["bad"].append(r)
        rec["seen"].update(ids)
    rec["seen"] = sorted(rec["seen"])
else:  # acker
    rec.update(polls=0, acked=[], races=0)
    lost = "Error: Cannot ACK task in state completed\n"
    while time.time() < end_at:
        agent = recipients[(me + i) % len(recipients)]
        i += 1
        rows = poll(agent, 10)
        if rows is None:
            continue
        rec["polls"] += 1
        if not rows:
            time.sleep(0.01)
        for r in rows:
            if time.time() >= end_at:
                break
            code, out, err = call([*S, "message", "ack", "--agent-id", agent, "--task-id",
                                   r["task_id"], "--quiet"])
            t = time.time()
            if note(code, out, err, ok_errors=(lost,)):
                rec["acked"].append([r["task_id"], t, out.strip()])
            elif err == lost:
                rec["races"] += 1
print(json.dumps(rec), flush=True)
"""


def run_load(
    env: dict,
    ids: dict,
    *,
    seconds: float,
    writers: int = 8,
    pollers: int = 4,
    ackers: int = 4,
    timeout: float = 600,
) -> dict:
    """Start every worker, release them together for ``seconds``; collect their records."""
    base = {"sid": ids["sid"], "recipients": ids["recipients"]}
    specs = [
        {**base, "role": "writer", "index": w, "sender": ids["senders"][w]} for w in range(writers)
    ]
    specs += [{**base, "role": "poller", "index": p} for p in range(pollers)]
    specs += [{**base, "role": "acker", "index": k} for k in range(ackers)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(spec)],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    try:
        for proc in procs:  # barrier: every worker has Django up and one query done
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"worker failed to start: {line!r} {proc.stderr.read()}")
        start_at = time.time() + 0.3
        window = json.dumps({"start_at": start_at, "end_at": start_at + seconds})
        for proc in procs:
            proc.stdin.write(window + "\n")
            proc.stdin.flush()
        records = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"worker exited {proc.returncode}: {err[-2000:]}")
            records.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()  # only the workers started above, by their handles
                proc.wait()
    return {
        "start_at": start_at,
        "seconds": seconds,
        "records": records,
        "writers": writers,
        "pollers": pollers,
        "ackers": ackers,
    }


# ------------------------------------------------------------------------------ checks
_TEXT = re.compile(r"w(\d+)-(\d+)")


def verify(db_path, load: dict) -> list[str]:
    """Problems found (an empty list means every guarantee held). ``db_path`` is a SQLite
    file or a database URL of either backend."""
    problems: list[str] = []
    recs = load["records"]
    by_role = {
        role: [r for r in recs if r["role"] == role] for role in ("writer", "poller", "acker")
    }
    for r in recs:
        if r["fail"]:
            problems.append(
                f"{r['role']} {r['index']} had {len(r['fail'])} failed calls, first: {r['fail'][0]}"
            )
        if r["locked"]:
            problems.append(f"{r['role']} {r['index']} saw 'locked' {r['locked']} times")

    sent = [s for w in by_role["writer"] for s in w["sent"]]
    sent_ids = [s[0] for s in sent]
    if len(sent_ids) != len(set(sent_ids)):
        problems.append("a task id was handed out twice")
    for w in by_role["writer"]:
        numbers = [int(_TEXT.fullmatch(s[1]).group(2)) for s in w["sent"]]
        if numbers != sorted(set(numbers)):
            problems.append(f"writer {w['index']}: texts out of order or repeated")

    from bench.dbquery import integrity_problems
    from bench.dbquery import rows as query

    rows = {
        tid: (text, ctx, state)
        for tid, text, ctx, state in query(
            db_path, "SELECT task_id, text, context_id, status_state FROM tasks"
        )
    }
    problems.extend(integrity_problems(db_path))

    lost = [s for s in sent if s[0] not in rows]
    if lost:
        problems.append(f"{len(lost)} reported sends are not stored, e.g. {lost[0]}")
    extra = set(rows) - set(sent_ids)
    if extra:
        problems.append(f"{len(extra)} stored tasks were never reported as sent")
    for tid, text, ctx, _t0, _t1 in sent:
        if tid in rows and rows[tid][:2] != (text, ctx):
            problems.append(f"task {tid} stored as {rows[tid][:2]}, sent as {(text, ctx)}")
    texts = [v[0] for v in rows.values()]
    if len(texts) != len(set(texts)):
        problems.append("a message text is stored twice (duplicate delivery)")

    acked = [a[0] for k in by_role["acker"] for a in k["acked"]]
    if len(acked) != len(set(acked)):
        problems.append(f"{len(acked) - len(set(acked))} tasks were acknowledged twice")
    completed = {tid for tid, v in rows.items() if v[2] == "completed"}
    if set(acked) != completed:
        problems.append(f"acked {len(set(acked))} tasks but {len(completed)} are completed")
    for k in by_role["acker"]:
        for tid, _t, printed in k["acked"]:
            if printed != tid[:8]:
                problems.append(f"ack of {tid} printed {printed!r}")
                break

    for p in by_role["poller"]:
        if p["dups"]:
            problems.append(f"poller {p['index']} saw one task twice in a page")
        if p["bad"]:
            problems.append(f"poller {p['index']} saw a foreign or non-unread row: {p['bad'][0]}")
        phantom = set(p["seen"]) - set(rows)
        if phantom:
            problems.append(f"poller {p['index']} saw {len(phantom)} tasks that do not exist")
    return problems


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(load: dict) -> dict:
    recs = load["records"]
    start, seconds = load["start_at"], load["seconds"]
    sent = [s for r in recs if r["role"] == "writer" for s in r["sent"]]
    sent_at = {s[0]: s[4] for s in sent}
    acks = [a for r in recs if r["role"] == "acker" for a in r["acked"]]
    polls = sum(r["polls"] for r in recs if r["role"] in ("poller", "acker"))
    finish = max([s[4] for s in sent] + [a[1] for a in acks] + [start + seconds])
    elapsed = finish - start
    send_ms = [(s[4] - s[3]) * 1000 for s in sent]
    e2e_ms = [(t - sent_at[tid]) * 1000 for tid, t, _ in acks if tid in sent_at]
    return {
        "workers": {
            "writers": load["writers"],
            "pollers": load["pollers"],
            "ackers": load["ackers"],
        },
        "window_s": round(elapsed, 2),
        "sent": len(sent),
        "acked": len(acks),
        "ack_races_lost": sum(r["races"] for r in recs if r["role"] == "acker"),
        "polls": polls,
        "send_per_s": round(len(sent) / elapsed, 1),
        "e2e_per_s": round(len(acks) / elapsed, 1),
        "polls_per_s": round(polls / elapsed, 1),
        "send_ms_median": round(statistics.median(send_ms), 1) if send_ms else None,
        "send_ms_p95": round(_pct(send_ms, 0.95), 1) if send_ms else None,
        "send_to_ack_ms_median": round(statistics.median(e2e_ms), 1) if e2e_ms else None,
        "send_to_ack_ms_p95": round(_pct(e2e_ms, 0.95), 1) if e2e_ms else None,
    }


def measure(seconds: float, writers: int = 8, pollers: int = 4, ackers: int = 4) -> dict:
    """Fresh database, one load run; the summary plus the verification result."""
    with tempfile.TemporaryDirectory(prefix="cafleet-load-") as tmp:
        db_path = Path(tmp) / "load.db"
        env = db_env(db_path)
        init_db(env)
        ids = seed(env, senders=writers, recipients=4)
        load = run_load(env, ids, seconds=seconds, writers=writers, pollers=pollers, ackers=ackers)
        problems = verify(db_path, load)
    return {**summarise(load), "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--ackers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    result = measure(args.seconds, args.writers, args.pollers, args.ackers)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<24} {value}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
