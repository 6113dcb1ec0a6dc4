"""Preview latency on the REAL Claude Code (issue 9 point 6), against the mock model.

    .venv/bin/python bench/bench_preview_real.py [--client claude|codex] [--runs 15]
        [--held 5] [--json]

A private tmux server runs the pinned real client (tests/realagent/harness.py) in a member's
pane of a temporary cafleet database; the Director is the stand-in claude. Times, per round:

* **send**: ``cafleet message send`` wall time (gate, paste, Enter and verify included);
* **submitted**: the mock model received the turn request carrying the preview, from the
  moment before ``message send`` started; **after return**: the same, minus the send time
  (negative: the client had submitted before the command returned). Target: ≤ 0.5 s.
* **held → delivered** (``--held`` rounds): a permission dialog holds the preview; the bench
  declines the dialog (Escape, as a human would), polls the screen until the client is idle
  again (the pane came to rest), and times until the model receives the preview, which only
  the background delivery worker can have typed. Target: ≤ 2 s.

Needs the real clients (scripts/install-agents). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.timing import wait_until  # noqa: E402
from tests.plugins.tmux_server import isolated_server  # noqa: E402
from tests.realagent.fleet import RealFleet  # noqa: E402
from tests.realagent.harness import RealAgent, client_path  # noqa: E402
from tests.realagent.mockmodel import MockModel  # noqa: E402

CAFLEET = REPO / ".venv" / "bin" / "cafleet"


class BenchDB:
    """What RealFleet needs of a database: ``path``, ``url`` and ``run``."""

    def __init__(self, path: Path):
        import os
        import subprocess

        self._subprocess = subprocess
        self.path = path
        self.url = f"sqlite:///{path}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CAFLEET_"))}
        self.env["CAFLEET_DATABASE_URL"] = self.url
        self.env["CAFLEET_DELIVERY_AUTOSTART"] = "0"

    def run(self, *argv, env=None, timeout=60):
        from types import SimpleNamespace

        merged = {**self.env, **(env or {})}
        proc = self._subprocess.run(
            [str(CAFLEET), *map(str, argv)], capture_output=True, env=merged, timeout=timeout
        )
        out = proc.stdout.decode()
        result = SimpleNamespace(code=proc.returncode, out=out, err=proc.stderr.decode())
        result.lines = out.splitlines()
        result.json = json.loads(out) if argv and argv[0] == "--json" and out else None
        return result


def first_request_time(model: MockModel, backend: str, needle: str) -> float | None:
    from tests.realagent.mockmodel import user_messages

    for rec in model.requests(backend):
        if any(needle in text for text in user_messages(backend, rec.body)):
            return rec.time
    return None


def wait(predicate, timeout: float = 30.0):
    return wait_until(predicate, timeout, "bench: the preview's model request", step=0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default="claude", choices=("claude", "codex"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--held", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if client_path(args.client) is None:
        print(f"bench: the real {args.client} is not installed", file=sys.stderr)
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="cafleet-bench-real-", dir="/var/tmp"))
    model = MockModel().start()
    agent = None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        cleanup.callback(model.stop)
        server = cleanup.enter_context(isolated_server("cfb-"))
        cleanup.callback(lambda: agent is not None and agent.stop())
        (tmp / "data").mkdir(mode=0o700)
        db = BenchDB(tmp / "data" / "registry.db")
        assert db.run("db", "init").code == 0
        fleet = RealFleet(db, server, CAFLEET_DELIVERY_IDLE_EXIT="30")
        agent = RealAgent(server, args.client, model, tmp / "agent").start(timeout=60)
        member = fleet.add_member("bench", agent.pane, args.client)
        backend = agent.backend

        send, submitted, after = [], [], []
        for i in range(args.runs):
            agent.wait_idle()
            token = f"bench preview {i:03d}"
            t0 = time.time()
            sent = fleet.send(member, token)
            t1 = time.time()
            assert "Preview delivered" in sent.out, sent.out
            t2 = wait(lambda: first_request_time(model, backend, token))  # noqa: B023
            send.append(t1 - t0)
            submitted.append(t2 - t0)
            after.append(t2 - t1)
        agent.wait_idle()

        held = []
        decline = ("Escape",) if args.client == "claude" else ("n",)
        for i in range(args.held):
            agent.open_dialog(tmp / f"held-{i}")  # a command to hold the pane
            token = f"bench held {i:03d}"
            sent = fleet.send(member, token)
            assert "Preview held" in sent.out, sent.out
            agent.send_keys(*decline)
            t_rest = None
            while t_rest is None:
                if agent.is_idle(agent.screen()):
                    t_rest = time.time()
                elif first_request_time(model, backend, token):
                    t_rest = time.time()  # delivered before an idle screen was caught
                else:
                    time.sleep(0.01)
            t_del = wait(lambda: first_request_time(model, backend, token))  # noqa: B023
            held.append(t_del - t_rest)
            agent.wait_idle()

    def ms(values):
        return round(statistics.median(values) * 1000) if values else None

    figures = {
        "client": args.client,
        "runs": args.runs,
        "send_ms": ms(send),
        "submitted_from_start_ms": ms(submitted),
        "submitted_after_return_ms": ms(after),
        "submitted_after_return_max_ms": round(max(after) * 1000) if after else None,
        "held_rounds": args.held,
        "held_to_delivered_ms": ms(held),
        "held_to_delivered_max_ms": round(max(held) * 1000) if held else None,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
