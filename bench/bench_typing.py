"""Safe typing latency: ``broker.tmux.deliver_preview`` from call to verified submit.

    .venv/bin/python bench/bench_typing.py [--runs 21] [--backend claude|codex]
                                           [--command "<program and arguments>"] [--json]

An isolated tmux server (its own socket) runs the agent in a pane: by default the stand-in
of ``tests/bin``; ``--command`` starts anything else instead, e.g. a wrapper script that
runs the real Claude Code or Codex against a mock model server. Each round waits until the
pane gate passes (the agent is idle again), then times one ``deliver_preview`` call: gate,
bracketed paste, Enter and verification (the text seen leaving the input box). Reported:
median, 90th percentile and maximum in ms, how many submits were verified, and how many
Enters were needed. Nothing here is a test: targets are read by people (docs/delivery.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from broker import tmux  # noqa: E402


def start_server(sockdir: Path, command: list[str]) -> tuple[str, str]:
    """An isolated server running ``command`` in its first pane; ``(TMUX value, pane)``."""
    env = dict(os.environ)
    env["PATH"] = f"{REPO / 'tests' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for key in ("TMUX", "TMUX_PANE"):
        env.pop(key, None)
    sock = str(sockdir / "sock")
    base = ["tmux", "-S", sock, "-f", "/dev/null"]
    subprocess.run(
        [*base, "new-session", "-d", "-s", "bench", "-x", "160", "-y", "45", *command],
        env=env,
        check=True,
    )
    out = subprocess.run(
        [*base, "display-message", "-p", "-t", "bench", "#{pid} #{pane_id}"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return f"{sock},{out[0]},0", out[1]


def wait_ready(pane: str, backend: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while tmux.pane_gate(pane, backend).status != "delivered":
        if time.monotonic() > deadline:
            raise SystemExit(f"pane {pane} never came to rest: {tmux.pane_gate(pane, backend)}")
        time.sleep(0.05)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--backend", choices=("claude", "codex"), default="claude")
    parser.add_argument("--command", help="program to run in the pane (default: the stand-in)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    command = shlex.split(args.command) if args.command else [args.backend]
    sockdir = Path(tempfile.mkdtemp(prefix="cfbt-"))
    os.environ["TMUX"], pane = start_server(sockdir, command)
    enters: list[int] = []
    real_run = tmux.run

    def counting_run(call, **kw):
        if call[:1] == ["send-keys"] and call[-1] == "Enter":
            enters[-1] += 1
        return real_run(call, **kw)

    tmux.run = counting_run
    times, verified = [], 0
    try:
        wait_ready(pane, args.backend)
        for i in range(args.runs):
            wait_ready(pane, args.backend)
            enters.append(0)
            text = f"[cafleet msg {i:08d} from benchmark T]\nbench round {i}, please ignore"
            start = time.perf_counter()
            result = tmux.deliver_preview(pane, text, coding_agent=args.backend)
            times.append((time.perf_counter() - start) * 1000)
            verified += int(result.verified)
            if result.status != "delivered":
                print(f"round {i}: {result}", file=sys.stderr)
    finally:
        tmux.run = real_run
        subprocess.run(["tmux", "-S", str(sockdir / "sock"), "kill-server"], check=False)
    times.sort()
    report = {
        "command": command,
        "runs": args.runs,
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
        "verified": verified,
        "enters": dict(sorted({n: enters.count(n) for n in set(enters)}.items())),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{' '.join(command)}: median {report['median_ms']} ms, p90 {report['p90_ms']} ms, "
            f"max {report['max_ms']} ms; verified {verified}/{args.runs}; "
            f"Enters per round {report['enters']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
