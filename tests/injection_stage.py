"""The injection tests' stage: an isolated tmux server with a Director pane and a stand-in member.

One stage per test module (``stage`` is module-scoped): the Director's pane runs ``/bin/sh``
(where ``cafleet session create`` ran) and a stand-in claude member is spawned by
``cafleet member create``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import FileDB, subprocess_env
from tests.plugins.tmux_server import (
    BIN_DIR,
    STANDIN_READY,
    TmuxTestServer,
    read_log,
    wait_log,
)

SETTLE = 0.3  # anything else a vector could cause would show within this time


class Stage:
    def __init__(self, root: Path):
        self.root = root
        path = root / "data" / "registry.db"
        url = f"sqlite:///{path}"
        self.db = FileDB(path, url, subprocess_env(url))
        assert self.db.run("db", "init").code == 0
        sockdir = Path(tempfile.mkdtemp(prefix="cfi-"))
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TMUX", "TMUX_PANE", "CAFLEET_DATABASE_URL")
            and not k.startswith("STANDIN_")
        }
        base_env["PATH"] = f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
        base_env["SHELL"] = "/bin/sh"
        base_env.setdefault("LANG", "C.UTF-8")
        self.sockdir = sockdir
        self.server = TmuxTestServer(sockdir / "sock", base_env)
        self.server.start()
        self.log = root / "standin.log"
        created = self.run("--json", "session", "create", "--label", "injection")
        assert created.code == 0, created.err
        self.sid = created.json["session_id"]
        self.did = created.json["director"]["agent_id"]
        self.server.set_env("STANDIN_LOG", str(self.log))
        member = self.run(
            "--json",
            "--session-id",
            self.sid,
            "member",
            "create",
            "--agent-id",
            self.did,
            "--name",
            "target",
            "--description",
            "t",
        )
        assert member.code == 0, member.err
        self.mid = member.json["agent_id"]
        self.pane = member.json["placement"]["tmux_pane_id"]
        wait_log(self.log, lambda ev: any(e["event"] == "start" for e in ev), 20)
        self.server.wait_for(self.pane, STANDIN_READY, 20)
        self.server.run("set-environment", "-gu", "STANDIN_LOG")

    def env(self, **extra) -> dict:
        return self.server.env(None, CAFLEET_DATABASE_URL=self.db.url, **extra)

    def run(self, *argv, input: bytes | None = None, env: dict | None = None):
        return self.db.run(*argv, input=input, env={**self.env(), **(env or {})})

    def cafleet(self, *argv, input=None, json_mode=False):
        head = ("--json",) if json_mode else ()
        return self.run(*head, "--session-id", self.sid, *argv, input=input)

    def lines(self) -> list[str]:
        return [e["text"] for e in read_log(self.log) if e["event"] == "line"]

    def panes(self) -> dict[str, tuple]:
        """Every pane of the server with what a stray escape sequence could change."""
        out = self.server.run(
            "list-panes",
            "-a",
            "-F",
            "#{pane_id}\t#{pane_title}\t#{alternate_on}\t#{pane_in_mode}"
            "\t#{window_id}\t#{pane_dead}",
        )
        return {f[0]: tuple(f[1:]) for f in (line.split("\t") for line in out.splitlines())}

    def cursor(self, pane: str) -> tuple[int, int]:
        x, y = self.server.display(pane, "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def close(self) -> None:
        self.server.kill()
        shutil.rmtree(self.sockdir, ignore_errors=True)


@pytest.fixture(scope="module")
def stage():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    root = Path(tempfile.mkdtemp(prefix="cafleet-inject-"))
    s = Stage(root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)
