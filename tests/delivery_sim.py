"""A simulated agent pane for unit tests of the safe-delivery sequence (no tmux server).

:class:`PaneSim` answers the tmux verbs the delivery sequence uses (``display-message`` with
the pane-facts format, ``capture-pane -e``, ``load-buffer``, ``paste-buffer``, ``send-keys``,
``delete-buffer``) from a small model of an agent's screen: an input box that pasted text
goes into and that ``Enter`` submits. Screens are drawn like the real clients' (Claude
Code's rule-delimited box with ``❯``, Codex's ``›`` line) so the real classifier reads them.

Knobs: ``command`` (foreground program), ``in_mode``, ``gone``, ``draft`` (text already in
the input), ``dialog`` (a permission dialog instead of the input box), ``busy``,
``swallow_enters`` (that many Enters are ignored, as by a client whose event loop read the
Enter together with the text), ``lag`` (captures that still show the previous screen after
each keystroke), ``glitch`` (frames shown right after the paste, as a redraw caught
halfway), ``dialog_on_paste`` (a dialog opens as the text arrives), ``fail`` (verb → stderr
text: that call fails).
"""

from __future__ import annotations

from broker import tmux as tmux_mod

RULE = "\u2500" * 40


class PaneSim:
    def __init__(self, pane: str = "%7", *, backend: str = "claude", command: str | None = None):
        self.pane = pane
        self.backend = backend
        self.command = command or backend
        self.in_mode = False
        self.gone = False
        self.draft = ""
        self.dialog = False
        self.busy = False
        self.swallow_enters = 0
        self.lag = 0
        self.glitch: list[str] = []
        self.dialog_on_paste = False
        self.fail: dict[str, str] = {}
        self.buffers: dict[str, str] = {}
        self.submitted: list[str] = []
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self._stale: list[str] = []

    # -- screens -------------------------------------------------------------------------
    def screen(self) -> str:
        if self.dialog:
            return "\n".join(
                [
                    "● Running it",
                    RULE,
                    " Bash command",
                    " touch /tmp/x",
                    " Do you want to proceed?",
                    " \u276f 1. Yes",
                    "   2. No",
                    "",
                    " Esc to cancel",
                ]
            )
        text = self.draft
        if self.backend == "codex":
            shown = text.replace("\n", "\n  ") if text else "\x1b[2mAsk Codex to do anything"
            footer = "  tab to queue message" if text else "  ? for shortcuts"
            busy = ["\u2022 Working (1s \u2022 esc to interrupt)"] if self.busy else []
            return "\n".join(["> earlier output", *busy, f"\u203a {shown}\x1b[0m", footer])
        first, *rest = text.split("\n") if text else [""]
        box = [f"\u276f\u00a0{first}\x1b[7m \x1b[0m", *(f"  {line}" for line in rest)]
        hint = "esc to interrupt" if self.busy else "? for shortcuts"
        footer = "  \u23f8 manual mode on" + ("" if text else f" \u00b7 {hint}")
        return "\n".join(["\u25cf earlier reply", RULE, *box, RULE, footer])

    def _capture(self) -> str:
        if self._stale:
            return self._stale.pop(0)
        return self.screen()

    def _changed(self, before: str) -> None:
        self._stale = [before] * self.lag

    # -- tmux ----------------------------------------------------------------------------
    def __call__(self, args, *, timeout=10.0, input=None):
        args = [str(a) for a in args]
        self.calls.append(args)
        self.inputs.append(input)
        verb = args[0]
        if verb in self.fail:
            raise tmux_mod.TmuxError(
                f"tmux command failed: tmux {' '.join(args)}\nstderr: {self.fail[verb]}"
            )
        if self.gone and verb in ("display-message", "capture-pane", "paste-buffer", "send-keys"):
            raise tmux_mod.TmuxError(
                f"tmux command failed: tmux {' '.join(args)}\nstderr: can't find pane: {self.pane}"
            )
        if verb == "display-message":
            fmt = args[-1]
            if "#{pane_pid}" in fmt:
                return f"{self.pane}\t4242\t{int(self.in_mode)}\t0\t{self.command}\n"
            return "main|@1|%0\n"
        if verb == "capture-pane":
            return self._capture() + "\n"
        if verb == "load-buffer":
            self.buffers[args[args.index("-b") + 1]] = input or ""
            return ""
        if verb == "paste-buffer":
            before = self.screen()
            name = args[args.index("-b") + 1]
            text = self.buffers.pop(name) if "-d" in args else self.buffers[name]
            if self.dialog_on_paste:
                self.dialog = True  # a dialog opened just before the text arrived
            if not self.dialog:
                self.draft += text
            self._changed(before)
            self._stale = list(self.glitch) + self._stale
            return ""
        if verb == "delete-buffer":
            self.buffers.pop(args[-1], None)
            return ""
        if verb == "send-keys":
            if args[3:] == ["-X", "cancel"]:
                self.in_mode = False
                return ""
            if args[-1] == "Enter":
                before = self.screen()
                if self.swallow_enters:
                    self.swallow_enters -= 1
                    self.draft += "\n"
                    self.draft = self.draft.rstrip("\n")
                elif self.dialog:
                    self.submitted.append("<dialog answered>")
                elif self.draft:
                    self.submitted.append(self.draft)
                    self.draft = ""
                self._changed(before)
            return ""
        return ""

    @property
    def keystrokes(self) -> list[list[str]]:
        """Every call that changes the pane."""
        return [c for c in self.calls if c[0] in ("paste-buffer", "send-keys")]


def install(monkeypatch, sim: PaneSim) -> PaneSim:
    """Route ``broker.tmux.run`` to ``sim``; the foreground check reads ``sim.command``."""
    monkeypatch.setattr(tmux_mod, "run", sim)
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.setattr(tmux_mod, "_foreground_argv", lambda pid: None)
    monkeypatch.setattr(tmux_mod, "VERIFY_POLL", 0.0)
    return sim
