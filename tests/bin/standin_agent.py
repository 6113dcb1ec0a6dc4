"""A stand-in coding agent (claude / codex) for tests that drive real tmux panes.

Its screen copies the markers of the real clients (Claude Code 2.1.328, Codex 0.169.0; the
real screens are in ``tests/realagent/screens/``), so code that reads a pane to decide whether
an agent is ready sees the same text on the fast tier:

* Below the history (``got: …`` lines) is the client's input area, redrawn in place.
  Claude: a ``─`` rule, the input line ``❯`` + NO-BREAK
  SPACE + draft, a rule, then the footer ``  ? for shortcuts`` (empty input),
  ``  ! for shell mode`` (draft starting with ``!``; the ``❯`` becomes ``!``), or nothing
  (other drafts). Codex: ``› `` + draft (empty: the dim placeholder
  ``Ask Codex to do anything``), a blank line, ``  standin · <cwd>``, then
  ``  ? for shortcuts`` (empty input) / ``  tab to queue message`` (draft while busy) /
  ``  Shell mode`` (draft starting with ``!``).
* Busy (a ``! command`` running, or ``/busy <seconds>``): Claude shows the spinner line
  ``✻ Working…`` above the rule and ``  esc to interrupt`` as footer (only while the input is
  empty, as the real one); Codex shows ``• Working (<n>s • esc to interrupt)``. Keys typed
  while busy edit the draft. Enter while busy queues the draft (Claude: ``❯ <text>`` +
  ``  ⎿  Queued · ctrl+x ctrl+s to send now`` above the box and the dim placeholder
  ``Press up to edit queued messages``; Codex: Tab queues -- ``• Queued follow-up inputs`` /
  ``  ↳ <text>`` -- and Enter during ``/busy`` steers: the busy turn ends and the text is
  handled at once). Queued lines are handled, in order, when the agent is free.
* ``/dialog <command>`` opens a permission dialog for ``<command>`` (Claude:
  ``Do you want to proceed?`` with ``❯ 1. Yes`` … ``4. No``; Codex:
  ``Would you like to run the following command?`` with ``› 1. Yes, proceed (y)`` …). While
  it is open, typed text and pastes are ignored; Enter picks the highlighted ``1`` (yes),
  a digit picks that option at once (Claude ``1``-``4``; Codex ``1``-``3``), Codex also takes
  ``y``/``p`` (yes) and ``n`` (no); Escape answers no. Yes runs ``<command>`` like ``!``.
* Bracketed paste is switched on (``ESC[?2004h``): a pasted text, newlines included, goes into
  the draft as one block; only an Enter outside the paste submits it (one ``submit`` event,
  then a ``line`` event per line). Unlike the real clients, a line feed typed outside a paste
  (``send-keys -l "a\\nb"``) submits like Enter, as a line-mode program would.
* Empty Enter does nothing (as in the real clients).

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
import unicodedata

MENU = (
    "Which option do you prefer?",
    "1. Alpha",
    "2. Beta",
    "3. Gamma",
    "4. Type something",
)

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"
NBSP = "\u00a0"
DIM, RESET = "\x1b[2m", "\x1b[0m"
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


def _width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters count 2)."""
    cols = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        cols += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return cols


def _strip_sgr(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class Screen:
    """History lines, then the input area drawn right below them (as the real clients do).

    The area is redrawn in place with relative cursor moves only: erase from its first row
    to the end of the screen, write it again, put the cursor on the input line. Its rows are
    counted at the current pane width, which matches tmux's reflow of the same lines after a
    resize, so a redraw after a resize still starts at the area's first row.
    """

    def __init__(self, out, fd: int):
        self.out = out
        self.fd = fd
        self.cols, self.rows = self._size()
        self.area: list[str] = []
        self.cursor = (0, 0)  # (line of the area, column) where the terminal cursor rests

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.fd)
            return max(size.columns, 10), max(size.lines, 3)
        except OSError:
            return 80, 24

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def sync(self) -> None:
        """Take the pane's current size (tmux has already reflowed the drawn lines)."""
        self.cols, self.rows = self._size()

    def _rows_of(self, line: str) -> int:
        return max(1, -(-_width(_strip_sgr(line)) // self.cols))

    def _cursor_row(self) -> int:
        row, col = self.cursor
        return sum(self._rows_of(line) for line in self.area[:row]) + col // self.cols

    def _erase(self) -> str:
        if not self.area:
            return ""
        up = self._cursor_row()
        return "\r" + (f"\x1b[{up}A" if up else "") + "\x1b[J"

    def _draw(self) -> str:
        if not self.area:
            return ""
        last = sum(self._rows_of(line) for line in self.area) - 1
        row, col = self.cursor
        up = last - self._cursor_row()
        right = col % self.cols
        return (
            "\r\n".join(self.area)
            + "\r"
            + (f"\x1b[{up}A" if up else "")
            + (f"\x1b[{right}C" if right else "")
        )

    def _fit(self, lines: list[str]) -> list[str]:
        # keep at least one row of history visible above the area
        return lines[-(self.rows - 1) :] if len(lines) > self.rows - 1 else lines

    def set_area(self, lines: list[str], cursor: tuple[int, int]) -> None:
        self.sync()
        fitted = self._fit(lines)
        row, col = cursor
        row = min(max(row - (len(lines) - len(fitted)), 0), max(len(fitted) - 1, 0))
        buf = self._erase()
        self.area, self.cursor = fitted, (row, col)
        self.write(buf + self._draw())

    def emit(self, text: str) -> None:
        """Print history lines; the area is drawn again below them."""
        self.sync()
        self.write(self._erase() + text.replace("\n", "\r\n") + "\r\n" + self._draw())

    def close(self) -> None:
        """Leave the area as it is, cursor on the line below it."""
        if self.area:
            down = sum(self._rows_of(line) for line in self.area) - 1 - self._cursor_row()
            self.write("\r" + (f"\x1b[{down}B" if down else "") + "\r\n")


class Agent:
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

    # -- startup -----------------------------------------------------------------------------
    def banner(self) -> None:
        name = None
        if "--name" in self.argv:
            i = self.argv.index("--name")
            if i + 1 < len(self.argv):
                name = self.argv[i + 1]
        if name is not None:
            # OSC 2 sets the pane title, as the real claude shows its --name there.
            self.out.write(f"\x1b]2;{name}\x1b\\")
            self.out.flush()
        self.say(f"standin-{self.backend} argv={json.dumps(self.argv)}")
        db = os.environ.get("CAFLEET_DATABASE_URL")
        if db is not None:
            self.say(f"standin-env CAFLEET_DATABASE_URL={db}")
        self.log(
            event="start",
            backend=self.backend,
            argv=self.argv,
            env={"CAFLEET_DATABASE_URL": db},
            pid=os.getpid(),
        )

    # -- the input area ----------------------------------------------------------------------
    def render(self) -> None:
        if self.screen is None:
            return
        self.screen.sync()  # the area's rules are as wide as the pane
        if self.backend == "codex":
            lines, cursor = self._codex_area()
        else:
            lines, cursor = self._claude_area()
        self.screen.set_area(lines, cursor)

    def _draft_lines(self, prefix: str, cont: str) -> tuple[list[str], tuple[int, int]]:
        parts = self.draft.split("\n")
        lines = [prefix + parts[0]] + [cont + p for p in parts[1:]]
        return lines, (len(lines) - 1, _width(lines[-1]))

    def _claude_area(self) -> tuple[list[str], tuple[int, int]]:
        cols = self.screen.cols if self.screen else 80
        rule = "─" * cols
        if self.mode in ("menu", "freetext"):
            line = "choice> " if self.mode == "menu" else "Type something: " + self.freetext
            return [line], (0, _width(line))
        if self.mode == "dialog":
            lines = [
                rule,
                " Bash command",
                "",
                f"   {self.dialog_command}",
                "   Run a command (standin)",
                "",
                " Do you want to proceed?",
                " ❯ 1. Yes",
                f"   2. Yes, and always allow access to {self.cwd} from this project",
                "   3. Yes, and switch to auto mode · auto mode handles these prompts for you",
                "   4. No",
                "",
                " Esc to cancel · Tab to amend",
            ]
            return lines, (7, 1)
        above: list[str] = []
        if self.mode == "busy":
            above.append("✻ Working…")
            above.append("")
            for text in self.queued:
                above.append("❯ " + text.replace("\n", " "))
                above.append("  ⎿  Queued · ctrl+x ctrl+s to send now")
        if self.draft.startswith("!"):
            saved = self.draft
            self.draft = saved[1:]
            box, (row, col) = self._draft_lines("!" + NBSP, "  ")
            self.draft = saved
            footer = "  ! for shell mode"
        elif self.draft:
            box, (row, col) = self._draft_lines("❯" + NBSP, "  ")
            footer = ""
        elif self.mode == "busy" and self.queued:
            box, (row, col) = [f"❯{NBSP}{DIM}Press up to edit queued messages{RESET}"], (0, 2)
            footer = "  esc to interrupt"
        else:
            box, (row, col) = ["❯" + NBSP], (0, 2)
            footer = "  esc to interrupt" if self.mode == "busy" else "  ? for shortcuts"
        lines = above + [rule] + box + [rule, footer]
        return lines, (len(above) + 1 + row, col)

    def _codex_area(self) -> tuple[list[str], tuple[int, int]]:
        if self.mode in ("menu", "freetext"):
            line = "choice> " if self.mode == "menu" else "Type something: " + self.freetext
            return [line], (0, _width(line))
        if self.mode == "dialog":
            lines = [
                "  Would you like to run the following command?",
                "",
                "  Reason: standin permission request",
                "",
                f"  $ {self.dialog_command}",
                "",
                "› 1. Yes, proceed (y)",
                "  2. Yes, and don't ask again for this command (p)",
                "  3. No, and tell Codex what to do differently (esc)",
                "",
                "  Press enter to confirm or esc to cancel",
            ]
            return lines, (6, 0)
        above: list[str] = []
        if self.mode == "busy":
            secs = int(time.monotonic() - self.busy_started)
            above.append(f"• Working ({secs}s • esc to interrupt)")
            if self.queued:
                above.append("• Queued follow-up inputs")
                for text in self.queued:
                    above.append("  ↳ " + text.replace("\n", " "))
                above.append("    shift+← edit last queued message")
            above.append("")
        if self.draft.startswith("!"):
            saved = self.draft
            self.draft = saved[1:]
            box, (row, col) = self._draft_lines("! ", "  ")
            self.draft = saved
            footer = "  Shell mode"
        elif self.draft:
            box, (row, col) = self._draft_lines("› ", "  ")
            footer = "  tab to queue message" if self.mode == "busy" else ""
        else:
            box, (row, col) = [f"› {DIM}Ask Codex to do anything{RESET}"], (0, 2)
            footer = "  ? for shortcuts"
        lines = above + box + ["", f"  standin · {self.cwd}", footer]
        return lines, (len(above) + row, col)

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
