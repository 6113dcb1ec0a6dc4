"""pytest plugin: an isolated tmux server per test (never the user's server).

Fixtures
--------
``tmux_server``
    Starts ``tmux -S <short tmp dir>/sock -f /dev/null new-session -d -s cafleet-test
    -x 200 -y 50`` with ``tests/bin`` first on PATH (so ``claude``/``codex`` are the
    stand-ins) and ``SHELL=/bin/sh``; yields a :class:`TmuxTestServer`; kills the server at
    teardown. Skips the test when tmux is not installed.
``tmux_env``
    ``tmux_server`` plus ``monkeypatch``-ed ``os.environ`` (``TMUX``, ``TMUX_PANE`` = the
    first pane, ``PATH`` with ``tests/bin`` first), so code under test that calls plain
    ``tmux`` (no ``-S``) in this process reaches the isolated server. Yields the server.
``standin_log``
    A fresh path for ``STANDIN_LOG``; read it back with :func:`read_log` /
    :func:`received_lines`.

Tests using these should carry ``@pytest.mark.tmux``.
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bench.timing import wait_until

BIN_DIR = Path(__file__).resolve().parent.parent / "bin"
SESSION = "cafleet-test"
#: Shown by the stand-in agents (tests/bin) once they read keys, while their input is empty
#: and no dialog or menu is open: the idle footer of the real Claude Code and Codex.
STANDIN_READY = "? for shortcuts"


class TmuxTestServer:
    """Handle on one isolated tmux server.

    Attributes: ``socket`` (Path), ``pid`` (server pid), ``session`` (name),
    ``first_pane`` (``%N`` of the session's initial pane), ``window`` (``@N`` of its window),
    ``bin_dir`` (the stand-ins' directory), ``base_env`` (environment the server started
    with).
    """

    def __init__(self, socket: Path, base_env: dict):
        self.socket = socket
        self.base_env = base_env
        self.bin_dir = BIN_DIR
        self.session = SESSION
        self.pid: int | None = None
        self.first_pane = ""
        self.window = ""

    # -- raw access ------------------------------------------------------------------------
    def run(self, *args: str, check: bool = True, timeout: float = 10.0) -> str:
        """``tmux -S <socket> <args>`` and its stdout; raises AssertionError on failure."""
        proc = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=self.base_env,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"tmux {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc.stdout

    def start(self) -> None:
        self.run(
            "-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", "200", "-y", "50"
        )
        # New windows get the same size although no client is attached. (Do not use
        # "window-size manual" here: with no client, tmux 3.3a then segfaults in new-window.)
        self.run("set-option", "-g", "default-size", "200x50", check=False)
        info = self.run(
            "display-message", "-p", "-t", self.session, "#{pid} #{window_id} #{pane_id}"
        )
        pid, self.window, self.first_pane = info.split()
        self.pid = int(pid)

    def kill(self) -> None:
        if self.socket.exists():
            try:
                self.run("kill-server", check=False, timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if not self.pid:
            return
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not _process_alive(self.pid):
                return
            time.sleep(0.05)
        try:
            os.kill(self.pid, 15)  # the server this fixture started, by its pid
        except OSError:
            pass

    # -- environment for code under test ---------------------------------------------------
    @property
    def tmux_var(self) -> str:
        """Value for ``TMUX``: ``<socket>,<server pid>,0``."""
        return f"{self.socket},{self.pid},0"

    def env(self, pane_id: str | None = None, **extra: str) -> dict:
        """A full environment for a subprocess of the code under test.

        ``TMUX`` names this server (so plain ``tmux`` reaches it with no ``-S``),
        ``TMUX_PANE`` is ``pane_id`` (default: the first pane), PATH has ``tests/bin`` first.
        ``extra`` entries are added (``None`` values remove a variable).
        """
        env = dict(os.environ)
        env["TMUX"] = self.tmux_var
        env["TMUX_PANE"] = pane_id or self.first_pane
        env["PATH"] = self.base_env["PATH"]
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def activate(self, monkeypatch, pane_id: str | None = None) -> None:
        """Point this process's ``os.environ`` at the server (``TMUX``/``TMUX_PANE``/PATH)."""
        monkeypatch.setenv("TMUX", self.tmux_var)
        monkeypatch.setenv("TMUX_PANE", pane_id or self.first_pane)
        monkeypatch.setenv("PATH", self.base_env["PATH"])

    def set_env(self, name: str, value: str) -> None:
        """``set-environment -g``: visible to every pane spawned afterwards."""
        self.run("set-environment", "-g", name, value)

    # -- panes -----------------------------------------------------------------------------
    def spawn(self, *argv: str, target: str | None = None, env: dict | None = None) -> str:
        """Start ``argv`` in a new, unfocused pane (``split-window -d``); its pane id."""
        args = ["split-window", "-d", "-t", target or self.window, "-P", "-F", "#{pane_id}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        # tmux reads a trailing ';' as a separator; keep test argv free of that quirk.
        args += [a[:-1] + "\\;" if a.endswith(";") else a for a in argv]
        return self.run(*args).strip()

    def new_window(self, *argv: str) -> tuple[str, str]:
        """A new detached window; ``(window_id, pane_id)``."""
        out = self.run(
            "new-window", "-d", "-t", self.session, "-P", "-F", "#{window_id} #{pane_id}", *argv
        )
        window, pane = out.split()
        return window, pane

    def display(self, target: str, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", target, fmt).strip()

    def pane_ids(self) -> list[str]:
        return self.run("list-panes", "-a", "-F", "#{pane_id}").split()

    def pane_alive(self, pane: str) -> bool:
        return pane in self.pane_ids()

    def window_panes(self, window: str | None = None, fmt: str = "#{pane_id}") -> list[str]:
        out = self.run("list-panes", "-t", window or self.window, "-F", fmt)
        return [line for line in out.splitlines() if line]

    def capture(self, pane: str, *, join: bool = True, history: bool = True) -> str:
        """Plain text of ``pane`` (wrapped lines joined, whole history), trailing blanks cut."""
        args = ["capture-pane", "-p", "-t", pane]
        if join:
            args.append("-J")
        if history:
            args += ["-S", "-"]
        return self.run(*args).rstrip("\n")

    def wait_for(self, pane: str, text: str, timeout: float = 10.0, *, count: int = 1) -> str:
        """Poll until ``text`` occurs ``count`` times in the pane; returns the capture."""
        deadline = time.monotonic() + timeout
        content = ""
        while True:
            try:
                content = self.capture(pane)
            except AssertionError:
                content = ""
            if content.count(text) >= count:
                return content
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{text!r} (x{count}) not seen in pane {pane} within {timeout}s; "
                    f"pane shows:\n{content}"
                )
            time.sleep(0.05)

    def wait_until(self, predicate, timeout: float = 10.0, message: str = "condition") -> None:
        wait_until(predicate, timeout, message)

    def wait_gone(self, pane: str, timeout: float = 10.0) -> None:
        self.wait_until(lambda: not self.pane_alive(pane), timeout, f"pane {pane} gone")

    # -- libtmux view ----------------------------------------------------------------------
    @property
    def libtmux(self):
        """A ``libtmux.Server`` bound to this socket (imported lazily)."""
        import libtmux

        return libtmux.Server(socket_path=str(self.socket))

    def lib_pane(self, pane_id: str):
        """The libtmux ``Pane`` object for ``pane_id``."""
        server = self.libtmux
        for pane in server.panes:
            if pane.pane_id == pane_id:
                return pane
        raise AssertionError(f"no pane {pane_id}")


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (the server is not our child, and
    PID 1 may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def read_log(path) -> list[dict]:
    """Events written by the stand-in agent to ``STANDIN_LOG`` (missing file → [])."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def received_lines(path) -> list[str]:
    """Just the lines the stand-in received, in order."""
    return [e["text"] for e in read_log(path) if e.get("event") == "line"]


def wait_log(path, predicate, timeout: float = 10.0) -> list[dict]:
    """Poll ``read_log(path)`` until ``predicate(events)`` is true; returns the events."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_log(path)
        if predicate(events):
            return events
        if time.monotonic() >= deadline:
            raise AssertionError(f"stand-in log condition not met within {timeout}s: {events}")
        time.sleep(0.05)


def isolated_env() -> dict:
    """The environment of an isolated tmux server: this process's, without ``TMUX``,
    ``TMUX_PANE``, ``CAFLEET_DATABASE_URL`` and ``STANDIN_*`` (panes get them only through
    ``split-window -e`` or the test), the stand-ins of tests/bin first on PATH, /bin/sh."""
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TMUX", "TMUX_PANE", "CAFLEET_DATABASE_URL") and not k.startswith("STANDIN_")
    }
    base_env["PATH"] = f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    base_env["SHELL"] = "/bin/sh"
    base_env.setdefault("LANG", "C.UTF-8")
    return base_env


@contextlib.contextmanager
def isolated_server(prefix: str = "cft-"):
    """A started :class:`TmuxTestServer` with :func:`isolated_env`, its socket in a new
    short directory (AF_UNIX socket paths are limited to ~107 bytes); killed and removed on
    exit."""
    sockdir = Path(tempfile.mkdtemp(prefix=prefix))
    server = TmuxTestServer(sockdir / "sock", isolated_env())
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(sockdir, ignore_errors=True)


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")


@pytest.fixture
def tmux_server():
    require_tmux()
    with isolated_server() as server:
        yield server


@pytest.fixture
def tmux_env(tmux_server, monkeypatch):
    tmux_server.activate(monkeypatch)
    return tmux_server


@pytest.fixture
def standin_log(tmp_path):
    return tmp_path / "standin.log"
