"""Drawing for the stand-in coding agent (see standin_agent.py): history, then the input area.

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
"""

import json
import os
import re
import time
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

#: The permission dialogs as the real clients draw them (Claude Code's below a ``─`` rule).
DIALOGS = {
    "claude": """\
 Bash command

   {command}
   Run a command (standin)

 Do you want to proceed?
 ❯ 1. Yes
   2. Yes, and always allow access to {cwd} from this project
   3. Yes, and switch to auto mode · auto mode handles these prompts for you
   4. No

 Esc to cancel · Tab to amend""",
    "codex": """\
  Would you like to run the following command?

  Reason: standin permission request

  $ {command}

› 1. Yes, proceed (y)
  2. Yes, and don't ask again for this command (p)
  3. No, and tell Codex what to do differently (esc)

  Press enter to confirm or esc to cancel""",
}


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


class Drawing:
    """What the stand-in draws: its banner and its input area.

    Mixed into ``standin_agent.Agent``, whose state it draws.
    """

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
        if self.mode in ("menu", "freetext"):
            line = "choice> " if self.mode == "menu" else "Type something: " + self.freetext
            lines, cursor = [line], (0, _width(line))
        elif self.mode == "dialog":
            lines, cursor = self._dialog()
        elif self.backend == "codex":
            lines, cursor = self._codex_area()
        else:
            lines, cursor = self._claude_area()
        self.screen.set_area(lines, cursor)

    def _dialog(self) -> tuple[list[str], tuple[int, int]]:
        """The permission dialog; the cursor rests on the highlighted option's pointer."""
        template = DIALOGS[self.backend].split("\n")
        if self.backend != "codex":
            template.insert(0, "─" * self.screen.cols)
        row = next(i for i, line in enumerate(template) if "1. Yes" in line)
        pointer = len(template[row]) - len(template[row].lstrip(" "))
        lines = [line.format(command=self.dialog_command, cwd=self.cwd) for line in template]
        return lines, (row, pointer)

    def _input_box(self, prompt: str) -> tuple[list[str], tuple[int, int]]:
        """The draft after ``prompt`` (``!`` + the prompt's gap for a draft starting with
        ``!``: shell mode), its further lines indented; the cursor after its last character."""
        text = self.draft[1:] if self.shell_mode else self.draft
        parts = text.split("\n")
        head = "!" + prompt[1:] if self.shell_mode else prompt
        lines = [head + parts[0]] + ["  " + p for p in parts[1:]]
        return lines, (len(lines) - 1, _width(lines[-1]))

    @property
    def shell_mode(self) -> bool:
        return self.draft.startswith("!")

    def _claude_area(self) -> tuple[list[str], tuple[int, int]]:
        rule = "─" * self.screen.cols
        above: list[str] = []
        if self.mode == "busy":
            above.append("✻ Working…")
            above.append("")
            for text in self.queued:
                above.append("❯ " + text.replace("\n", " "))
                above.append("  ⎿  Queued · ctrl+x ctrl+s to send now")
        box, (row, col) = self._input_box("❯" + NBSP)
        if self.shell_mode:
            footer = "  ! for shell mode"
        elif self.draft:
            footer = ""
        elif self.mode == "busy" and self.queued:
            box = [f"❯{NBSP}{DIM}Press up to edit queued messages{RESET}"]
            footer = "  esc to interrupt"
        else:
            footer = "  esc to interrupt" if self.mode == "busy" else "  ? for shortcuts"
        lines = above + [rule] + box + [rule, footer]
        return lines, (len(above) + 1 + row, col)

    def _codex_area(self) -> tuple[list[str], tuple[int, int]]:
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
        box, (row, col) = self._input_box("› ")
        if self.shell_mode:
            footer = "  Shell mode"
        elif self.draft:
            footer = "  tab to queue message" if self.mode == "busy" else ""
        else:
            box = [f"› {DIM}Ask Codex to do anything{RESET}"]
            footer = "  ? for shortcuts"
        lines = above + box + ["", f"  standin · {self.cwd}", footer]
        return lines, (len(above) + row, col)
