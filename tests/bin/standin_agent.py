"""A stand-in coding agent (claude / codex) for tests that drive real tmux panes.

It behaves like a line-oriented REPL in its pane:

* prints a banner ``standin-<backend> argv=<JSON list of its arguments>`` (and, when set,
  ``standin-env CAFLEET_DATABASE_URL=<value>``), then the prompt ``> ``;
* reads lines from its tty and echoes each one as ``got: <line>``;
* runs a line starting with ``!`` through the shell (as the real agents do);
* exits on ``/exit`` (unless ``STANDIN_IGNORE_EXIT=1``) and on end of input;
* with ``--name <name>`` (claude) sets the pane title to the name, like the real claude.

Options (environment; tests set them with ``tmux set-environment -g`` before the spawn, or
point ``STANDIN_CONFIG`` at a file of ``NAME=VALUE`` lines):

* ``STANDIN_LOG=<path>``: append one JSON object per event to this file:
  ``{"event": "start", "backend", "argv", "env"}``, ``{"event": "line", "text"}`` for every
  received line, ``{"event": "exec", "command", "rc"}``, ``{"event": "choice", "value"}``,
  ``{"event": "freetext", "text"}``, ``{"event": "menu"}``,
  ``{"event": "exit", "ignored": bool}``.
* ``STANDIN_IGNORE_EXIT=1``: ``/exit`` is acknowledged but ignored.
* ``STANDIN_MENU=1``: show an AskUserQuestion-like menu at start (also on the line
  ``/menu``). While it is up the tty is in cbreak mode and single keys are read: ``1``-``3``
  choose without Enter; ``4`` asks for a line of text ended by Enter.

Standard library only.
"""

import codecs
import json
import os
import subprocess
import sys
import termios
import time
import tty

MENU = (
    "Which option do you prefer?",
    "1. Alpha",
    "2. Beta",
    "3. Gamma",
    "4. Type something",
)


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


class Agent:
    def __init__(self, backend: str, argv: list[str]):
        self.backend = backend
        self.argv = argv
        self.opts = _options()
        self.log_path = self.opts.get("STANDIN_LOG") or None
        self.fd = sys.stdin.fileno()
        self.out = sys.stdout

    # -- output ------------------------------------------------------------------------------
    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def log(self, **event) -> None:
        if not self.log_path:
            return
        event.setdefault("t", round(time.time(), 3))
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, ensure_ascii=False) + "\n")

    def prompt(self) -> None:
        self.say("> ", end="")

    # -- startup -----------------------------------------------------------------------------
    def banner(self) -> None:
        name = None
        if "--name" in self.argv:
            i = self.argv.index("--name")
            if i + 1 < len(self.argv):
                name = self.argv[i + 1]
        if name is not None:
            # OSC 2 sets the pane title, as the real claude shows its --name there.
            self.say(f"\x1b]2;{name}\x1b\\", end="")
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

    # -- menu (cbreak mode) ------------------------------------------------------------------
    def _read_char(self, decoder) -> str | None:
        while True:
            data = os.read(self.fd, 1)
            if not data:
                return None
            text = decoder.decode(data)
            if text:
                return text

    def menu(self) -> None:
        interactive = os.isatty(self.fd)
        saved = termios.tcgetattr(self.fd) if interactive else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            # cbreak before the menu shows, so a key sent as soon as it is visible is
            # read as a single key and never sits in a canonical line buffer.
            if interactive:
                tty.setcbreak(self.fd)
            for line in MENU:
                self.say(line)
            self.log(event="menu")
            self.say("choice> ", end="")
            while True:
                ch = self._read_char(decoder)
                if ch is None:
                    return
                if ch in "123":
                    self.say(ch)
                    self.say(f"chose: {ch}")
                    self.log(event="choice", value=ch)
                    return
                if ch == "4":
                    self.say(ch)
                    self.say("Type something: ", end="")
                    text = self._read_text_line(decoder)
                    self.say(f"freetext: {text}")
                    self.log(event="freetext", text=text)
                    return
                # anything else is ignored while the menu is up
        finally:
            if saved is not None:
                termios.tcsetattr(self.fd, termios.TCSANOW, saved)

    def _read_text_line(self, decoder) -> str:
        chars: list[str] = []
        while True:
            ch = self._read_char(decoder)
            if ch is None or ch in "\r\n":
                self.say("")
                return "".join(chars)
            if ch in "\x7f\x08":
                if chars:
                    chars.pop()
                    self.say("\b \b", end="")
                continue
            chars.append(ch)
            self.say(ch, end="")

    # -- REPL --------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Handle one received line; False ends the REPL."""
        self.log(event="line", text=line)
        self.say(f"got: {line}")
        # Like the real agents, a slash command must start the line: " /exit" is plain text.
        stripped = line.rstrip()
        if stripped == "/exit":
            if self.opts.get("STANDIN_IGNORE_EXIT") == "1":
                self.say("standin: ignoring /exit")
                self.log(event="exit", ignored=True)
                return True
            self.say("standin: bye")
            self.log(event="exit", ignored=False)
            return False
        if stripped == "/menu":
            self.menu()
            return True
        if line.startswith("!"):
            command = line[1:]
            self.out.flush()
            proc = subprocess.run(command, shell=True, check=False)
            self.say(f"standin: exec rc={proc.returncode}")
            self.log(event="exec", command=command, rc=proc.returncode)
        return True

    def main(self) -> int:
        self.banner()
        if self.opts.get("STANDIN_MENU") == "1":
            self.menu()
        stdin = sys.stdin.buffer
        while True:
            self.prompt()
            raw = stdin.readline()
            if not raw:
                self.say("")
                self.say("standin: end of input")
                return 0
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if not self.handle(line):
                return 0


def main(backend: str) -> int:
    try:
        return Agent(backend, sys.argv[1:]).main()
    except KeyboardInterrupt:
        return 130
