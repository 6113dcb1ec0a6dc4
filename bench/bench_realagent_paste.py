"""Bracketed paste + Enter into the REAL Claude Code / Codex: N previews, counted.

    .venv/bin/python bench/bench_realagent_paste.py [--runs 50] [--clients claude,codex]
                                                   [--stop 0.0] [--json]

Needs the pinned clients (``scripts/install-agents``) and tmux. Each client runs in an
isolated tmux server against the scripted mock model (tests/realagent). Every round waits
for the idle prompt, then types a two-line preview the way the new delivery does --
``load-buffer -b <name> -`` + ``paste-buffer -p -d -b <name>`` + ``send-keys Enter`` (three
tmux calls) -- optionally with the client's foreground process group stopped (SIGSTOP) for
``--stop`` seconds around the keystrokes. Reported per client: how many previews reached the
model as exactly one user turn holding both lines, and the median/max time from the first
keystroke to the model request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.plugins.tmux_server import isolated_server  # noqa: E402
from tests.realagent.harness import RealAgent, client_path, stopped_group  # noqa: E402
from tests.realagent.mockmodel import MockModel  # noqa: E402


def _type(server, agent: RealAgent, text: str, stop: float) -> None:
    def keys():
        subprocess.run(
            ["tmux", "-S", str(server.socket), "load-buffer", "-b", "bench-p", "-"],
            input=text.encode(),
            check=True,
            timeout=10,
            env=server.base_env,
        )
        server.run("paste-buffer", "-p", "-d", "-b", "bench-p", "-t", agent.pane)
        server.run("send-keys", "-t", agent.pane, "Enter")

    if stop > 0:
        with stopped_group(agent.foreground_pgid()):
            keys()
            time.sleep(stop)
    else:
        keys()


def run_client(name: str, runs: int, stop: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="cafleet-bench-", dir="/var/tmp"))
    ok, lost, merged, latencies = 0, [], [], []
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        server = cleanup.enter_context(isolated_server("cfb-"))
        model = MockModel().start()
        cleanup.callback(model.stop)
        agent = RealAgent(server, name, model, workdir)
        cleanup.callback(agent.stop)
        agent.start()
        for i in range(runs):
            agent.wait_idle(60)
            tag = f"probe-{i:03d}-{os.getpid()}"
            text = f"[cafleet msg {i:08x} from bench T{i}]\nbody of {tag}"
            t0 = time.monotonic()
            _type(server, agent, text, stop)
            try:
                model.wait_user_text(agent.backend, tag, timeout=30)
                latencies.append(time.monotonic() - t0)
            except AssertionError:
                lost.append(i)
                agent.send_keys("C-u")  # clear what was left for the next round
                continue
            found = model.user_turns_containing(agent.backend, tag)
            if found == [text]:
                ok += 1
            else:
                merged.append((i, found))
        agent.wait_idle(60)
        turns = model.turn_count(agent.backend)
    return {
        "client": name,
        "runs": runs,
        "stop_s": stop,
        "one_turn_each": ok,
        "lost": lost,
        "wrong": merged,
        "turn_requests": turns,
        "median_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clients", default="claude,codex")
    parser.add_argument(
        "--stop",
        type=float,
        default=0.0,
        help="seconds the client is stopped around the keystrokes",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for name in args.clients.split(","):
        if client_path(name) is None:
            print(f"Error: {name} is not installed (run scripts/install-agents)", file=sys.stderr)
            return 1
        results.append(run_client(name, args.runs, args.stop))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(
            f"{r['client']}: {r['one_turn_each']}/{r['runs']} previews = one user turn "
            f"each (stopped {r['stop_s']} s; lost {len(r['lost'])}, wrong "
            f"{len(r['wrong'])}; {r['turn_requests']} turn requests); keystroke -> model "
            f"request median {r['median_ms']} ms, max {r['max_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
