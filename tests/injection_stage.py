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
from tests.plugins.tmux_server import BIN_DIR, TmuxTestServer, read_log
from tests.tmux_support import TmuxFleet

SETTLE = 0.3  # anything else a vector could cause would show within this time


class Stage(TmuxFleet):
    def __init__(self, root: Path):
        self.root = root
        path = root / "data" / "registry.db"
        url = f"sqlite:///{path}"
        db = FileDB(path, url, subprocess_env(url))
        assert db.run("db", "init").code == 0
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
        server = TmuxTestServer(sockdir / "sock", base_env)
        server.start()
        self.log = root / "standin.log"
        super().__init__(db, server, "--label", "injection")
        self.mid, self.pane = self.spawn_ready("target", self.log, timeout=20)
        self.server.run("set-environment", "-gu", "STANDIN_LOG")

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
