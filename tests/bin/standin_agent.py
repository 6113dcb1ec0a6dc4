"""A stand-in coding agent (claude / codex) for tests that drive real tmux panes.

Its screen (drawn by ``standin_screen.py``) copies the markers of the real clients; the
input area, busy, queue, dialog and paste behaviour are described there.

Line handling (unchanged from the line-mode stand-in): prints a banner
``standin-<backend> argv=<JSON list of its arguments>`` (and, when set,
``standin-env CAFLEET_DATABASE_URL=<value>``); echoes each submitted line as ``got: <line>``;
runs a line starting with ``!`` through the shell; exits on ``/exit`` (unless
``STANDIN_IGNORE_EXIT=1``); ``/menu`` shows the numbered menu; with ``--name <name>`` (claude)
sets the pane title to the name, like the real claude.

Options (environment; tests set them with ``tmux set-environment -g`` before the spawn, or
point ``STANDIN_CONFIG`` at a file of ``NAME=VALUE`` lines):

* ``STANDIN_LOG=<path>``: append one JSON object per event to this file:
  ``{"event": "start", "backend", "argv", "env"}``, ``{"event": "submit", "input"}`` for every
  submission (Enter; a pasted block with its newlines is one submission, as one user turn of
  the real clients), then ``{"event": "line", "text"}`` for every line of it, ``{"event": "exec", "command", "rc"}``, ``{"event": "choice", "value"}``,
  ``{"event": "freetext", "text"}``, ``{"event": "menu"}``, ``{"event": "exit", "ignored"}``,
  ``{"event": "queued", "input"}``, ``{"event": "dialog", "command"}``,
  ``{"event": "permission", "command", "answer": "yes"|"no", "option"}``,
  ``{"event": "busy", "seconds"}``, ``{"event": "idle"}``, ``{"event": "steer", "input"}``,
  ``{"event": "interrupt"}``, ``{"event": "empty-enter"}``. Only ``line`` events carry a
  ``text`` key (tests look for received text with ``e.get("text")``).
* ``STANDIN_IGNORE_EXIT=1``: ``/exit`` is acknowledged but ignored.
* ``STANDIN_MENU=1``: show an AskUserQuestion-like menu at start (also on the line
  ``/menu``). While it is up single keys are read: ``1``-``3`` choose without Enter; ``4``
  asks for a line of text ended by Enter.
* ``STANDIN_DIALOG=<command>``: open a permission dialog for ``<command>`` at start.

When its input is not a terminal it falls back to a plain line loop (``> `` prompt).
Standard library only.
"""

import codecs
import json
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
import tty

from standin_screen import MENU, PASTE_END, PASTE_START, Drawing, Screen

# CSI / SS3 / two-character escape sequences (arrow keys, focus events, ...).
_ESC_SEQ = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|O.|[^\[O])", re.S)


def _options() -> dict:
    opts = {k: v for k, v in os.environ.items() if k.startswith("STANDIN_")}
    path = os.environ.get("STANDIN_CONFIG")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                for raw in fh:
                    name, sep, value = raw.rstrip("\n").partition("=")
                    if sep and name.strip():
                        opts.setdefault(name.strip(), value)
        except OSError:
            pass
    return opts


class Agent(Drawing):
    def __init__(self, backend: str, argv: list[str]):
        self.backend = backend
        self.argv = argv
        self.opts = _options()
        self.log_path = self.opts.get("STANDIN_LOG") or None
        self.fd = sys.stdin.fileno()
        self.out = sys.stdout
        self.screen: Screen | None = None
        self.cwd = os.getcwd()
        # input state
        self.mode = "idle"  # idle | busy | dialog | menu | freetext
        self.draft = ""
        self.freetext = ""
        self.in_paste = False
        self.pending = ""
        self.queued: list[str] = []
        self.busy_until: float | None = None
        self.busy_started = 0.0
        self.busy_proc: subprocess.Popen | None = None
        self.busy_command = ""
        self.busy_output = b""
        self.dialog_command = ""
        self.done = False
        self.resize_flag = False

    # -- output ------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        if self.screen is not None:
            self.screen.emit(text)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def log(self, **event) -> None:
        if not self.log_path:
            return
        event.setdefault("t", round(time.time(), 3))
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, ensure_ascii=False) + "\n")

    # -- keys --------------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        s = self.pending + text
        self.pending = ""
        i = 0
        while i < len(s) and not self.done:
            ch = s[i]
            if ch != "\x1b":
                if self.in_paste:
                    self.paste_char(ch)
                else:
                    self.key(ch)
                i += 1
                continue
            rest = s[i:]
            if rest.startswith(PASTE_START):
                self.in_paste = True
                i += len(PASTE_START)
                continue
            if rest.startswith(PASTE_END):
                self.in_paste = False
                i += len(PASTE_END)
                continue
            if len(rest) > 1 and (PASTE_START.startswith(rest) or PASTE_END.startswith(rest)):
                self.pending = rest  # the rest of the marker comes with the next read
                break
            match = _ESC_SEQ.match(rest)
            if match is None:  # a lone Escape key
                self.key("\x1b")
                i += 1
            else:
                i += len(match.group(0))  # arrows etc.: ignored

    def paste_char(self, ch: str) -> None:
        if self.mode == "freetext":  # the free-text answer is a text input: it takes pastes
            if ch == "\t" or ch >= " ":
                self.freetext += ch
            return
        if self.mode not in ("idle", "busy"):
            return  # dialogs and menus ignore pasted text
        if ch in "\r\n":
            self.draft += "\n"
        elif ch == "\t" or ch >= " ":
            self.draft += ch

    def key(self, ch: str) -> None:
        if self.mode == "menu":
            self.menu_key(ch)
        elif self.mode == "freetext":
            self.freetext_key(ch)
        elif self.mode == "dialog":
            self.dialog_key(ch)
        elif ch in "\r\n":
            self.submit()
        elif ch in "\x7f\x08":
            self.draft = self.draft[:-1]
        elif ch == "\x15":
            self.draft = ""
        elif ch == "\x04" and not self.draft and self.mode == "idle":
            self.say("")
            self.say("standin: end of input")  # Ctrl-D on an empty line, as a line program
            self.done = True
        elif ch == "\t":
            if self.backend == "codex" and self.mode == "busy" and self.draft:
                self.queue(self.draft)
                self.draft = ""
        elif ch == "\x1b":
            if self.mode == "busy" and self.busy_proc is None:
                self.log(event="interrupt")
                self.say("standin: interrupted")
                self.end_busy()
        elif ch >= " ":
            self.draft += ch

    def submit(self) -> None:
        text, self.draft = self.draft, ""
        if text == "":
            self.log(event="empty-enter")
            return
        if self.mode == "busy":
            if self.backend == "codex" and self.busy_proc is None:
                # Codex: Enter during a model turn steers -- the turn ends, the text goes now.
                self.log(event="steer", input=text)
                self.end_busy(announce=False)
                self.handle(text)
            else:
                self.queue(text)
            return
        self.handle(text)

    def queue(self, text: str) -> None:
        self.queued.append(text)
        self.log(event="queued", input=text)

    # -- menu (AskUserQuestion-like) ---------------------------------------------------------
    def open_menu(self) -> None:
        for line in MENU:
            self.say(line)
        self.log(event="menu")
        self.mode = "menu"

    def menu_key(self, ch: str) -> None:
        if ch in "123":
            self.say(f"choice> {ch}")
            self.say(f"chose: {ch}")
            self.log(event="choice", value=ch)
            self.mode = "idle"
        elif ch == "4":
            self.say(f"choice> {ch}")
            self.freetext = ""
            self.mode = "freetext"
        # anything else is ignored while the menu is up

    def freetext_key(self, ch: str) -> None:
        if ch in "\r\n":
            text = self.freetext
            self.say(f"Type something: {text}")
            self.say(f"freetext: {text}")
            self.log(event="freetext", text=text)
            self.mode = "idle"
        elif ch in "\x7f\x08":
            self.freetext = self.freetext[:-1]
        elif ch >= " ":
            self.freetext += ch

    # -- permission dialog -------------------------------------------------------------------
    def open_dialog(self, command: str) -> None:
        self.dialog_command = command
        self.mode = "dialog"
        self.log(event="dialog", command=command)

    def dialog_key(self, ch: str) -> None:
        if self.backend == "codex":
            yes = {"\r": "1", "\n": "1", "1": "1", "y": "1", "2": "2", "p": "2"}
            no = {"3": "3", "n": "3", "\x1b": "3"}
        else:
            yes = {"\r": "1", "\n": "1", "1": "1", "2": "2", "3": "3"}
            no = {"4": "4", "\x1b": "4"}
        if ch in yes:
            self.answer_dialog(True, yes[ch])
        elif ch in no:
            self.answer_dialog(False, no[ch])

    def answer_dialog(self, approved: bool, option: str) -> None:
        command = self.dialog_command
        self.log(
            event="permission", command=command, answer="yes" if approved else "no", option=option
        )
        self.mode = "idle"
        if approved:
            self.say(f"standin: approved: {command}")
            self.start_exec(command, log_line=False)
        else:
            self.say("standin: permission denied")

    # -- busy ------------------------------------------------------------------------------
    def start_busy(self, seconds: float) -> None:
        self.mode = "busy"
        self.busy_started = time.monotonic()
        self.busy_until = self.busy_started + seconds
        self.log(event="busy", seconds=seconds)

    def start_exec(self, command: str, log_line: bool = True) -> None:
        self.busy_command = command
        self.busy_output = b""
        try:
            self.busy_proc = subprocess.Popen(
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self.say(f"standin: exec failed: {exc}")
            self.log(event="exec", command=command, rc=127)
            return
        os.set_blocking(self.busy_proc.stdout.fileno(), False)
        self.mode = "busy"
        self.busy_started = time.monotonic()
        self.busy_until = None

    def pump_exec(self) -> None:
        """Read what the running command printed; finish when it has exited."""
        proc = self.busy_proc
        assert proc is not None
        try:
            chunk = os.read(proc.stdout.fileno(), 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            self.busy_output += chunk
            *complete, self.busy_output = self.busy_output.split(b"\n")
            for line in complete:
                self.say(line.decode("utf-8", "replace"))
            return
        if chunk == b"" or proc.poll() is not None:
            rc = proc.wait()
            rest = proc.stdout.read() or b""
            tail = (self.busy_output + rest).decode("utf-8", "replace")
            for line in tail.split("\n"):
                if line:
                    self.say(line)
            proc.stdout.close()
            self.busy_proc = None
            self.say(f"standin: exec rc={rc}")
            self.log(event="exec", command=self.busy_command, rc=rc)
            self.end_busy(announce=False)

    def end_busy(self, announce: bool = True) -> None:
        if self.busy_until is not None and announce:
            self.say("standin: busy done")
        self.busy_until = None
        self.mode = "idle"
        self.log(event="idle")

    def drain_queue(self) -> None:
        while self.mode == "idle" and self.queued and not self.done:
            self.handle(self.queued.pop(0))

    # -- lines ---------------------------------------------------------------------------------
    def handle(self, line: str) -> None:
        """Handle one submission (sets ``self.done`` to end the agent).

        Logged as one ``submit`` event (the whole text: what the real client would send as
        one user turn) and one ``line`` event per line of it, each echoed as ``got: …``.
        """
        self.log(event="submit", input=line)
        for part in line.split("\n"):
            self.log(event="line", text=part)
            self.say(f"got: {part}")
        # Like the real agents, a slash command must start the line: " /exit" is plain text.
        stripped = line.rstrip()
        if stripped == "/exit":
            if self.opts.get("STANDIN_IGNORE_EXIT") == "1":
                self.say("standin: ignoring /exit")
                self.log(event="exit", ignored=True)
                return
            self.say("standin: bye")
            self.log(event="exit", ignored=False)
            self.done = True
            return
        if stripped == "/menu":
            self.open_menu()
            return
        match = re.fullmatch(r"/busy(?: +(\d+(?:\.\d+)?))?", stripped)
        if match:
            self.start_busy(float(match.group(1) or 5))
            return
        if stripped.startswith("/dialog ") and stripped[8:].strip():
            self.open_dialog(stripped[8:].strip())
            return
        if line.startswith("!"):
            self.start_exec(line[1:])

    # -- main loops ----------------------------------------------------------------------------
    def main(self) -> int:
        if not os.isatty(self.fd):
            return self.line_loop()
        saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self.screen = Screen(self.out, self.fd)
        self.screen.write("\x1b[?2004h")  # bracketed paste on, like the real clients
        # A resize wakes the event loop at once (the signal writes a byte into this pipe),
        # so the area is redrawn at the new width right away.
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGWINCH, self._on_winch)
        try:
            self.banner()
            if self.opts.get("STANDIN_MENU") == "1":
                self.open_menu()
            if self.opts.get("STANDIN_DIALOG"):
                self.open_dialog(self.opts["STANDIN_DIALOG"])
            self.render()
            return self.event_loop()
        finally:
            self.screen.write("\x1b[?2004l")
            self.screen.close()
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)

    def _on_winch(self, signum, frame) -> None:
        self.resize_flag = True

    def event_loop(self) -> int:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        last_tick = 0
        while not self.done:
            fds = [self.fd, self.wake_r]
            if self.busy_proc is not None:
                fds.append(self.busy_proc.stdout.fileno())
            timeout = 0.25 if self.mode == "busy" or self.resize_flag else 1.0
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                ready = []
            changed = False
            if self.wake_r in ready:
                try:
                    os.read(self.wake_r, 512)
                except BlockingIOError:
                    pass
            if self.resize_flag:
                self.resize_flag = False
                changed = True  # render() follows the new size
            if self.fd in ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # the pane's terminal is gone
                    return 0
                if not data:
                    self.say("")
                    self.say("standin: end of input")
                    return 0
                self.feed(decoder.decode(data))
                changed = True
            if self.busy_proc is not None and self.busy_proc.stdout.fileno() in ready:
                self.pump_exec()
                changed = True
            elif self.busy_proc is not None and self.busy_proc.poll() is not None:
                self.pump_exec()
                changed = True
            if self.busy_until is not None and time.monotonic() >= self.busy_until:
                self.end_busy()
                changed = True
            if self.mode == "idle" and self.queued:
                self.drain_queue()
                changed = True
            tick = int(time.monotonic() - self.busy_started) if self.mode == "busy" else -1
            if tick != last_tick:
                last_tick = tick
                changed = changed or self.backend == "codex"
            if changed and not self.done:
                self.render()
        return 0

    def line_loop(self) -> int:
        """Input is not a terminal: a plain line REPL (no screen, no dialogs)."""
        self.banner()
        stdin = sys.stdin.buffer
        while not self.done:
            self.out.write("> ")
            self.out.flush()
            raw = stdin.readline()
            if not raw:
                self.say("")
                self.say("standin: end of input")
                return 0
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.handle(line)
            if self.busy_proc is not None:
                rc = self.busy_proc.wait()
                out = self.busy_proc.stdout.read().decode("utf-8", "replace")
                self.busy_proc.stdout.close()
                self.busy_proc = None
                if out:
                    self.say(out.rstrip("\n"))
                self.say(f"standin: exec rc={rc}")
                self.log(event="exec", command=self.busy_command, rc=rc)
                self.mode = "idle"
        return 0


def main(backend: str) -> int:
    try:
        return Agent(backend, sys.argv[1:]).main()
    except KeyboardInterrupt:
        return 130
