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

from tests.plugins.tmux_server import TmuxTestServer  # noqa: E402
from tests.realagent.fleet import RealFleet  # noqa: E402
from tests.realagent.harness import (  # noqa: E402
    CLAUDE_DIALOG,
    CODEX_DIALOG,
    RealAgent,
    client_path,
)
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
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise SystemExit("bench: condition not reached")
        time.sleep(0.01)


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
    sockdir = Path(tempfile.mkdtemp(prefix="cfb-"))
    import os

    base_env = dict(os.environ)
    for key in list(base_env):
        if key in ("TMUX", "TMUX_PANE", "CAFLEET_DATABASE_URL") or key.startswith("STANDIN_"):
            del base_env[key]
    base_env["PATH"] = f"{REPO / 'tests' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    base_env["SHELL"] = "/bin/sh"
    server = TmuxTestServer(sockdir / "sock", base_env)
    model = MockModel().start()
    agent = None
    try:
        server.start()
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
        dialog = CLAUDE_DIALOG if args.client == "claude" else CODEX_DIALOG
        decline = ("Escape",) if args.client == "claude" else ("n",)
        for i in range(args.held):
            model.bash(backend, f"touch {tmp}/held-{i}", "A command to hold the pane")
            agent.submit(f"open a dialog {i}")
            agent.wait_text(dialog)
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
    finally:
        if agent is not None:
            agent.stop()
        model.stop()
        server.kill()
        shutil.rmtree(sockdir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

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
