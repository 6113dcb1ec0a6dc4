"""Preview latency: from the start of ``cafleet message send`` to the preview in the pane.

    .venv/bin/python bench/bench_preview.py [--runs 21] [--json]

An isolated tmux server (its own socket) runs the stand-in claude (``tests/bin/claude``) in
a member's pane. Every round starts ``cafleet message send`` to that member as a real
subprocess and takes three times, all from the moment before the process is started:

* **visible**: the body first appears in the pane's output (``pipe-pane`` streams the
  pane's output to a small recorder that timestamps every chunk tmux hands it);
* **submitted**: the stand-in has read the body line (its ``STANDIN_LOG`` timestamp), i.e.
  the text was pasted (after the pane gate) and the Enter arrived;
* **command done**: the ``cafleet`` process exited.

For comparison each round also times ``message send`` to the Administrator, which has no
pane (no preview at all). Reported: medians in ms.
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

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scale import Tmux, seed_scale
    from bench_throughput import CAFLEET, REPO, db_env, init_db
    from timing import wait_until
else:
    from bench.bench_scale import Tmux, seed_scale
    from bench.bench_throughput import CAFLEET, REPO, db_env, init_db
    from bench.timing import wait_until

STANDIN_BIN = REPO / "tests" / "bin"

RECORDER = r"""
import os, sys, time
out = open(sys.argv[1], "a", buffering=1)
while True:
    data = os.read(0, 65536)
    if not data:
        break
    out.write(f"{time.time():.6f} {data.hex()}\n")
"""


def _stamps(path: Path) -> list[tuple[float, bytes]]:
    chunks = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return chunks
    for line in text.splitlines():
        t, _, data = line.partition(" ")
        try:
            chunks.append((float(t), bytes.fromhex(data)))
        except ValueError:
            continue
    return chunks


def first_seen(chunks: list[tuple[float, bytes]], needle: bytes) -> float | None:
    buffer = b""
    for t, data in chunks:
        buffer = (buffer + data)[-(len(needle) + 65536) :]
        if needle in buffer:
            return t
    return None


def _log_time(log: Path, text: str) -> float | None:
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        event = json.loads(line)
        if event.get("event") == "line" and event.get("text") == text:
            return event["t"]
    return None


def _wait(predicate, timeout: float = 15.0):
    return wait_until(predicate, timeout, "the preview", step=0.02)


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cafleet-preview-") as tmp:
        work = Path(tmp)
        tmux = Tmux(work, path_prefix=str(STANDIN_BIN))
        try:
            log, stamps = work / "standin.log", work / "stamps"
            tmux.run("set-environment", "-g", "STANDIN_LOG", str(log))
            pane = tmux.run(
                "new-window",
                "-d",
                "-t",
                "bench",
                "-P",
                "-F",
                "#{pane_id}",
                "claude",
                "--name",
                "member",
            ).strip()
            _wait(lambda: log.exists() and "start" in log.read_text())
            recorder = work / "recorder.py"
            recorder.write_text(RECORDER)
            tmux.run("pipe-pane", "-o", "-t", pane, f"exec {sys.executable} {recorder} {stamps}")
            db_path = work / "preview.db"
            env = db_env(db_path)
            init_db(env)
            ids = seed_scale(
                env, busy=0, empty=False, members=1, panes=[pane], director_pane=tmux.first_pane
            )
            env = {**env, "TMUX": tmux.tmux_var, "TMUX_PANE": tmux.first_pane}
            s = ["--session-id", ids["sid"], "message", "send", "--agent-id", ids["director"]]
            member = ids["members"][0]
            # warm up the page cache and the stand-in
            subprocess.run(
                [CAFLEET, *s, "--to", member, "--quiet", "--text", "warm-up"],
                env=env,
                check=True,
                capture_output=True,
            )
            _wait(lambda: _log_time(log, "warm-up"))
            rows = []
            for i in range(runs):
                body = f"preview-probe-{i:03d}"
                t0 = time.time()
                subprocess.run(
                    [CAFLEET, *s, "--to", member, "--quiet", "--text", body],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                done = time.time()
                submitted = _wait(lambda b=body: _log_time(log, b))
                visible = _wait(lambda b=body: first_seen(_stamps(stamps), b.encode()))
                t1 = time.time()
                subprocess.run(
                    [CAFLEET, *s, "--to", ids["admin"], "--quiet", "--text", body],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                plain = time.time() - t1
                rows.append(
                    {
                        "visible": visible - t0,
                        "submitted": submitted - t0,
                        "done": done - t0,
                        "no_pane": plain,
                    }
                )
                time.sleep(0.2)
        finally:
            tmux.close()
    med = {k: round(statistics.median(r[k] for r in rows) * 1000, 1) for k in rows[0]}
    return {
        "runs": runs,
        "median_ms": med,
        "min_ms": {k: round(min(r[k] for r in rows) * 1000, 1) for k in rows[0]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    med, low = result["median_ms"], result["min_ms"]
    print(f"preview latency over {args.runs} sends (ms from process start)")
    for key, label in (
        ("visible", "body visible in the pane"),
        ("submitted", "body line submitted (Enter)"),
        ("done", "cafleet message send exited"),
        ("no_pane", "send to an agent without a pane"),
    ):
        print(f"  {label:<34} median {med[key]:>7}  min {low[key]:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
