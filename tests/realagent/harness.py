"""Start the real Claude Code / Codex clients in panes of an isolated tmux server.

Used by ``tests/realagent/conftest.py`` and by ``tests/realagent/measure_screens.py``.
Each client gets a private HOME (Claude) or CODEX_HOME (Codex) written here, points at a
:class:`~tests.realagent.mockmodel.MockModel` on loopback, and runs in its own tmux window
(200x50) so its screen is the full size.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.realagent.mockmodel import ANTHROPIC, OPENAI

CLAUDE_VERSION = "2.1.328"
CODEX_VERSION = "0.169.0"
DUMMY_ANTHROPIC_KEY = "sk-ant-cafleet-test-0000000000000000000000"
DUMMY_OPENAI_KEY = "sk-cafleet-test-00000000000000000000"

# Screen markers measured on the pinned clients (tests/realagent/screens/, screens.md).
IDLE_FOOTER = "? for shortcuts"  # both clients, only with an empty input box
BUSY_MARK = "esc to interrupt"  # Claude footer (empty box) / Codex status line
CLAUDE_DIALOG = "Do you want to proceed?"
CODEX_DIALOG = "Would you like to run the following command?"
DIALOG_MARKS = (CLAUDE_DIALOG, CODEX_DIALOG, "Press enter to confirm")
DIALOG_OF = {"claude": CLAUDE_DIALOG, "codex": CODEX_DIALOG}  # a Bash tool call's dialog
CODEX_PLACEHOLDER = "Ask Codex to do anything"

CLAUDE_PLACEHOLDERS = ("Press up to edit queued messages",)
# Claude's spinner line while it works: a glyph, a word, an ellipsis ("✽ Nucleating…").
_CLAUDE_SPINNER = re.compile(r"^[✻✽✶✢·*✳] \S+…", re.M)
_CODEX_OPTION = re.compile(r"› \d+\. ")


def input_line(client: str, screen: str) -> str | None:
    """The text on the client's input line (Claude: the line starting ``❯`` + NO-BREAK
    SPACE; Codex: the last line starting ``› `` that is not a dialog option), trailing
    blanks cut; None when no input line is visible."""
    lines = screen.splitlines()
    if client == "claude":
        for line in reversed(lines):
            if line.startswith("❯\u00a0"):
                return line[2:].rstrip()
        return None
    for line in reversed(lines):
        if line.startswith("› ") and not _CODEX_OPTION.match(line):
            return line[2:].rstrip()
    return None


def classify(client: str, screen: str) -> str:
    """The state a screen shows (markers measured on the real clients, see screens.md):
    ``dialog``, ``busy``, ``busy-draft``, ``draft``, ``idle`` or ``unknown`` (no input
    line: a shell, a menu, nothing yet)."""
    if any(mark in screen for mark in DIALOG_MARKS):
        return "dialog"
    lines = screen.splitlines()
    if client == "claude":
        shell_mode = any(line.startswith("!\u00a0") for line in lines)
    else:
        footer = [line for line in lines if line.strip()][-2:]
        shell_mode = any(
            line.rstrip().endswith("Shell mode") or "Shell mode ·" in line for line in footer
        )
    line = input_line(client, screen)
    if line is None and not shell_mode:
        return "unknown"
    placeholders = CLAUDE_PLACEHOLDERS if client == "claude" else (CODEX_PLACEHOLDER,)
    draft = shell_mode or line not in ("", *placeholders)
    busy = BUSY_MARK in screen or (client == "claude" and bool(_CLAUDE_SPINNER.search(screen)))
    if busy:
        return "busy-draft" if draft else "busy"
    if draft:
        return "draft"
    return "idle" if IDLE_FOOTER in screen else "unknown"


BACKEND_OF = {"claude": ANTHROPIC, "codex": OPENAI}
DEFAULT_ARGS = {
    "claude": ("--name", "realagent"),
    "codex": ("--ask-for-approval", "on-request", "--sandbox", "workspace-write"),
}


def agents_dir() -> Path:
    """``$CAFLEET_AGENTS_DIR`` or ``<real home>/.cache/cafleet-agents``.

    The test run points HOME at a temporary directory, so the default is taken from the
    password database, not from HOME.
    """
    env = os.environ.get("CAFLEET_AGENTS_DIR")
    if env:
        return Path(env)
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "cafleet-agents"


def client_path(name: str) -> Path | None:
    """The installed pinned client ``name`` (``claude``/``codex``), or None."""
    path = agents_dir() / "node_modules" / ".bin" / name
    return path if path.exists() else None


def client_version(path: Path) -> str:
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error: {exc}"
    return (proc.stdout or proc.stderr).strip()


# -- private homes ---------------------------------------------------------------------------
def write_claude_home(home: Path, cwd: Path, *, mode: str = "default") -> None:
    """``.claude.json`` with every start-up dialog answered, and settings that make Bash
    ask for permission (``defaultMode``)."""
    home.mkdir(parents=True, exist_ok=True)
    state = {
        "hasCompletedOnboarding": True,
        "hasSeenAutoDefaultNudge": True,
        "hasSeenAutoDefaultNotice": True,
        "customApiKeyResponses": {"approved": [DUMMY_ANTHROPIC_KEY[-20:]], "rejected": []},
        "projects": {
            str(cwd): {
                "hasTrustDialogAccepted": True,
                "hasCompletedProjectOnboarding": True,
                "allowedTools": [],
            }
        },
    }
    (home / ".claude.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    settings_dir = home / ".claude"
    settings_dir.mkdir(exist_ok=True)
    (settings_dir / "settings.json").write_text(
        json.dumps({"permissions": {"defaultMode": mode}}, indent=2), encoding="utf-8"
    )


def write_codex_home(codex_home: Path, cwd: Path, base_url: str) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    config = f"""\
model = "gpt-5.5"
model_provider = "mock"
check_for_update_on_startup = false

[model_providers.mock]
name = "mock"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "OPENAI_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[projects."{cwd}"]
trust_level = "trusted"

[analytics]
enabled = false

[tui]
screen_reader_detection_done = true

[tui.model_availability_nux]
"gpt-6.1-sol" = 1

[notice.model_migrations]
"gpt-5.5" = "gpt-6-sol"
"""
    (codex_home / "config.toml").write_text(config, encoding="utf-8")


# -- processes --------------------------------------------------------------------------------
def proc_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode("utf-8", "replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, tpgid) of ``pid`` or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0]=state, [1]=ppid, [2]=pgrp, [3]=session, [4]=tty_nr, [5]=tpgid
    return comm, int(fields[1]), int(fields[5])


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (by parent links in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st:
            children.setdefault(st[1], []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    st = None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            st = fh.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return st != "Z"


class RealAgent:
    """One real client running in a window of ``server`` (a ``TmuxTestServer``)."""

    def __init__(self, server, name: str, model, workdir: Path, *, extra_args=(), wrap=False):
        self.server = server
        # ``wrap``: run the client under ``sh -c '"$0" "$@"; true'`` so it is a grandchild of
        # tmux (tmux sends SIGCONT to its direct child; a SIGSTOP test stops the grandchild).
        self.wrap = wrap
        self.name = name  # "claude" | "codex"
        self.backend = BACKEND_OF[name]
        self.model = model
        self.workdir = workdir
        # Two or more argv words make tmux exec the client directly (one word would run
        # it under ``sh -c``), as cafleet spawns its members.
        self.extra_args = list(extra_args) or list(DEFAULT_ARGS[name])
        self.pane = ""
        self.pane_pid = 0
        self.home = workdir / f"{name}-home"
        self.cwd = workdir / f"{name}-project"

    # -- start / stop ---------------------------------------------------------------------
    def env(self) -> dict:
        env = {
            "HOME": str(self.home),
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "ANTHROPIC_BASE_URL": self.model.url,
            "ANTHROPIC_API_KEY": DUMMY_ANTHROPIC_KEY,
            "OPENAI_API_KEY": DUMMY_OPENAI_KEY,
            "CODEX_HOME": str(self.home / ".codex"),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "NO_UPDATE_NOTIFIER": "1",
        }
        return env

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> RealAgent:
        self.cwd.mkdir(parents=True, exist_ok=True)
        cwd = self.cwd.resolve()
        if self.name == "claude":
            write_claude_home(self.home, cwd)
        else:
            write_codex_home(self.home / ".codex", cwd, self.model.url)
        path = client_path(self.name)
        assert path is not None, f"{self.name} is not installed in {agents_dir()}"
        args = [
            "new-window",
            "-d",
            "-t",
            self.server.session,
            "-c",
            str(cwd),
            "-P",
            "-F",
            "#{pane_id} #{pane_pid}",
        ]
        for key, value in self.env().items():
            args += ["-e", f"{key}={value}"]
        if self.wrap:
            args += ["sh", "-c", '"$0" "$@"; true']
        args += [str(path), *self.extra_args]
        out = self.server.run(*args).split()
        self.pane, self.pane_pid = out[0], int(out[1])
        # Keep the pane after the client exits, so its last screen can be read.
        self.server.run("set-option", "-p", "-t", self.pane, "remain-on-exit", "on", check=False)
        if wait:
            self.wait_idle(timeout=timeout)
        return self

    def pids(self) -> list[int]:
        """The pane's process and everything below it (client, app-server, tools)."""
        if not self.pane_pid:
            return []
        return [self.pane_pid, *descendants(self.pane_pid)]

    def app_server_pids(self) -> list[int]:
        """Codex's background ``codex app-server`` processes started for this client."""
        out = []
        for pid in self.pids():
            argv = proc_cmdline(pid)
            if "app-server" in argv:
                out.append(pid)
        return out

    def stop(self) -> None:
        """Kill the client, its children and Codex's app-server, by pid."""
        pids = self.pids()
        # app-server processes may have been re-parented: find them by their CODEX_HOME too.
        codex_home = str(self.home / ".codex")
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in pids:
                argv = proc_cmdline(int(entry))
                if (
                    argv
                    and "app-server" in argv
                    and (argv[0].startswith(codex_home) or _environ_has(int(entry), codex_home))
                ):
                    pids.append(int(entry))
        for sig in (signal.SIGCONT, signal.SIGTERM):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    # -- screen -------------------------------------------------------------------------------
    def screen(self) -> str:
        """``capture-pane -p`` of the visible screen (the raw fixture form)."""
        return self.server.run("capture-pane", "-p", "-t", self.pane)

    def wait_screen(self, predicate, timeout: float = 30.0, what: str = "screen") -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            try:
                text = self.screen()
            except AssertionError:
                text = ""
            if predicate(text):
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name}: {what} not seen within {timeout}s; screen:\n{text}"
                )
            time.sleep(0.1)

    def wait_text(self, text: str, timeout: float = 30.0) -> str:
        return self.wait_screen(lambda s: text in s, timeout, repr(text))

    def wait_gone_text(self, text: str, timeout: float = 30.0) -> str:
        return self.wait_screen(lambda s: text not in s, timeout, f"no {text!r}")

    def is_idle(self, screen: str) -> bool:
        """Idle with an empty input box, no dialog, not busy (markers in screens.md)."""
        if self.name == "codex" and any(raw.strip() == "loading" for raw in screen.splitlines()):
            return False
        return classify(self.name, screen) == "idle"

    def wait_idle(self, timeout: float = 60.0) -> str:
        return self.wait_screen(self.is_idle, timeout, "idle prompt")

    def input_line(self, screen: str | None = None) -> str | None:
        return input_line(self.name, self.screen() if screen is None else screen)

    # -- keys ---------------------------------------------------------------------------------
    def send_keys(self, *keys: str, literal: bool = False) -> None:
        args = ["send-keys", "-t", self.pane]
        if literal:
            args.append("-l")
        self.server.run(*args, *keys)

    def paste(self, text: str, buffer: str = "cafleet-test") -> None:
        """Bracketed paste through a named buffer (load-buffer from stdin, paste -p -d)."""
        proc = subprocess.run(
            ["tmux", "-S", str(self.server.socket), "load-buffer", "-b", buffer, "-"],
            input=text.encode(),
            capture_output=True,
            timeout=10,
            env=self.server.base_env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        self.server.run("paste-buffer", "-p", "-d", "-b", buffer, "-t", self.pane)

    def submit(self, text: str) -> None:
        """Type ``text`` as a bracketed paste, then Enter in a later tmux call."""
        self.paste(text)
        time.sleep(0.2)
        self.send_keys("Enter")

    def open_dialog(self, marker: Path) -> str:
        """Have the model ask to run ``touch marker`` and wait for the permission dialog."""
        self.model.bash(self.backend, f"touch {marker}", "Create the marker")
        self.submit("please create the marker")
        return self.wait_text(DIALOG_OF[self.name])

    def client_pid(self) -> int:
        """The client's own process: the pane's process, or its child when ``wrap``."""
        if not self.wrap:
            return self.pane_pid
        for pid in descendants(self.pane_pid):
            st = proc_stat(pid)
            if st and st[1] == self.pane_pid:
                return pid
        raise AssertionError(f"no client process under pane {self.pane}")

    def foreground_pgid(self) -> int:
        """The pane tty's foreground process group (field 8 of /proc/<pane_pid>/stat)."""
        st = proc_stat(self.pane_pid)
        assert st is not None and st[2] > 0, f"no foreground group for pane {self.pane}"
        return st[2]

    def foreground(self) -> dict:
        """What tmux and /proc say about the pane's foreground process."""
        info = self.server.run(
            "display-message", "-p", "-t", self.pane, "#{pane_current_command} #{pane_pid}"
        ).strip()
        st = proc_stat(self.pane_pid)
        tpgid = st[2] if st else 0
        return {
            "tmux": info,
            "pane_pid_cmdline": proc_cmdline(self.pane_pid),
            "pane_pid_comm": st[0] if st else None,
            "tpgid": tpgid,
            "fg_cmdline": proc_cmdline(tpgid) if tpgid > 0 else [],
            "fg_comm": (proc_stat(tpgid) or ("?",))[0] if tpgid > 0 else None,
            "tree": {p: proc_cmdline(p)[:3] for p in self.pids()},
        }


def _environ_has(pid: int, needle: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return needle.encode() in fh.read()
    except OSError:
        return False


@contextlib.contextmanager
def stopped_group(pgid: int):
    """SIGSTOP the process group ``pgid`` on entry, SIGCONT it on exit (even on error)."""
    os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pgid, signal.SIGCONT)
