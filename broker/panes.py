"""Whether the broker may type into a pane now: the pane gate (docs/delivery.md §1).

What tmux and ``/proc`` say about a pane (:class:`PaneFacts`: the foreground process, a
tmux mode, a dead pane), whether it runs the member's coding agent (:func:`runs_agent`),
and the gate that combines them with the screen (:mod:`broker.screen`) into a
:class:`Delivery` verdict (:func:`pane_gate`, :func:`agent_gate`).

Every tmux call goes through :mod:`broker.tmux` (the single door), looked up on that module
at call time, as are its timing constants and its clock (``tmux.time``), so a test that
patches those on ``broker.tmux`` reaches this module too. Names defined here (``pane_gate``,
``type_text``, ...) are reachable as ``tmux.<name>`` but are patched where they live.
"""

import os
import re
from dataclasses import dataclass

from broker import tmux
from broker.screen import classify_screen

#: Why a keystroke was not typed (DELIVERY-INTERFACE). Status "held" is retried later;
#: "failed" with ``pane_gone`` means the recipient is gone.
GATE_REASONS = (
    "pane_gone",
    "agent_not_running",
    "permission_dialog",
    "menu",
    "draft",
    "busy",
    "tmux_error",
)
#: Human words for each reason (command output, escalation messages).
REASON_TEXT = {
    "pane_gone": "pane gone",
    "agent_not_running": "agent not running",
    "permission_dialog": "waiting for permission",
    "menu": "menu or question open",
    "draft": "draft in the input",
    "busy": "agent busy",
    "tmux_error": "tmux error",
}


@dataclass(frozen=True)
class Delivery:
    """What became of one gated keystroke sequence (DELIVERY-INTERFACE).

    ``status``: ``delivered`` (typed; for :func:`pane_gate`: the gate passes, nothing typed),
    ``held`` (the gate refused; try again later) or ``failed`` (``pane_gone``: stop trying;
    ``tmux_error``: tmux itself failed). ``verified``: the submit was seen on screen (the text
    left the input box). Truthiness is "delivered".
    """

    status: str
    reason: str | None = None
    verified: bool = False

    def __bool__(self) -> bool:
        return self.status == "delivered"

    @property
    def reason_text(self) -> str:
        return REASON_TEXT.get(self.reason or "", self.reason or "")


_PASSED = Delivery("delivered")


def _held(reason: str) -> Delivery:
    return Delivery("held", reason)


def _failed(reason: str) -> Delivery:
    return Delivery("failed", reason)


# ------------------------------------------------------------------ tmux facts

_FACTS = "#{pane_id}\t#{pane_pid}\t#{pane_in_mode}\t#{pane_dead}\t#{pane_current_command}"
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"})
_INTERPRETERS = re.compile(r"(node|nodejs|bun|deno|python\d?(\.\d+)?|pypy\d?)$")


@dataclass(frozen=True)
class PaneFacts:
    """What tmux and ``/proc`` say about a pane (:func:`pane_facts`)."""

    pane_id: str
    pane_pid: int
    in_mode: bool
    dead: bool
    current_command: str
    #: argv of the tty's foreground process group leader (then of its children, when it is
    #: an ``sh -c`` wrapper); None when ``/proc`` cannot tell.
    foreground: tuple[tuple[str, ...], ...] | None


def _program_names(argv) -> list[str]:
    """Names a command line runs under: the program, and for an interpreter its script."""
    names = []
    for arg in argv[:2]:
        base = os.path.basename(arg)
        for suffix in (".exe", ".js", ".mjs", ".cjs", ".py"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        names.append(base)
        if not _INTERPRETERS.match(base):
            break
    return names


def _read_stat(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (``state`` first)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
        return fh.read().rpartition(")")[2].split()


def _read_argv(pid: int) -> tuple[str, ...]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        raw = fh.read()
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                kids += [int(k) for k in fh.read().split()]
    except (OSError, ValueError):
        pass
    return kids


def _foreground_argv(pane_pid: int) -> tuple[tuple[str, ...], ...] | None:
    """argv of the foreground process group leader of ``pane_pid``'s terminal (Linux
    ``/proc``: field ``tpgid`` of ``stat``), followed, when that leader is a shell wrapper
    (``sh -c <command>`` that did not exec), by the argv of its children in the same group.
    None when ``/proc`` cannot tell."""
    try:
        tpgid = int(_read_stat(pane_pid)[5])
        if tpgid <= 0:
            return None
        leader = _read_argv(tpgid)
    except (OSError, ValueError, IndexError):
        return None
    if not leader:
        return None
    found = [leader]
    if os.path.basename(leader[0]).lstrip("-") in _SHELLS and "-c" in leader[1:3]:
        for kid in _children(tpgid):
            try:
                if int(_read_stat(kid)[2]) == tpgid:
                    found.append(_read_argv(kid))
            except (OSError, ValueError, IndexError):
                continue
    return tuple(argv for argv in found if argv)


def pane_facts(pane_id: str) -> PaneFacts | None:
    """One ``display-message`` for the pane plus ``/proc``; None when the pane is gone.

    Raises :class:`TmuxError` for any other tmux failure.
    """
    try:
        out = tmux.run(
            ["display-message", "-p", "-t", pane_id, _FACTS], timeout=tmux.PREVIEW_TIMEOUT
        )
    except tmux.TmuxError as exc:
        if tmux.is_pane_gone(exc):
            return None
        raise
    parts = out.rstrip("\n").split("\t")
    # tmux 3.3a answers a stale pane id with exit 0 and empty fields.
    if len(parts) != 5 or not parts[0] or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    return PaneFacts(
        pane_id=parts[0],
        pane_pid=pid,
        in_mode=parts[2] == "1",
        dead=parts[3] == "1",
        current_command=parts[4],
        # through broker.tmux: a test may stand in for /proc there
        foreground=tmux._foreground_argv(pid),
    )


def runs_agent(facts: PaneFacts, coding_agent: str) -> bool:
    """True when the pane's foreground process is ``coding_agent`` (real client, node
    wrapper or test stand-in), not a shell or another program."""
    if facts.dead:
        return False
    if facts.foreground is not None:
        return any(coding_agent in _program_names(argv) for argv in facts.foreground)
    # No /proc: tmux's own idea of the foreground command.
    name = os.path.basename(facts.current_command)
    return name == coding_agent or (coding_agent == "codex" and name == "node")


def _check(pane_id: str, coding_agent: str, *, screen: bool = True):
    """The gate proper: ``(Delivery, Screen | None, capture)``. Raises :class:`TmuxError`."""
    facts = pane_facts(pane_id)
    if facts is None:
        return _failed("pane_gone"), None, ""
    if not runs_agent(facts, coding_agent):
        return _held("agent_not_running"), None, ""
    if facts.in_mode:  # copy-mode or another mode: leave it (never Escape)
        tmux.run(["send-keys", "-t", pane_id, "-X", "cancel"], timeout=tmux.PREVIEW_TIMEOUT)
    if not screen:
        return _PASSED, None, ""
    raw = tmux.capture_screen(pane_id)
    seen = classify_screen(raw, coding_agent)
    settle = tmux.time.monotonic() + tmux.GATE_SETTLE
    while seen.reason == "menu" and tmux.time.monotonic() < settle:
        # No input box: a dialog, or a redraw caught halfway. Look again briefly.
        tmux.time.sleep(tmux.VERIFY_POLL)
        raw = tmux.capture_screen(pane_id)
        seen = classify_screen(raw, coding_agent)
    if seen.reason is not None:
        return _held(seen.reason), seen, raw
    if seen.busy and tmux.HOLD_WHEN_BUSY.get(coding_agent, True):
        return _held("busy"), seen, raw
    return _PASSED, seen, raw


def _guarded(fn):
    """Run ``fn()``; tmux failures become ``failed`` deliveries. Never raises."""
    try:
        if tmux.tmux_binary() is None:
            return _failed("tmux_error")
        return fn()
    except tmux.TmuxError as exc:
        return _failed("pane_gone" if tmux.is_pane_gone(exc) else "tmux_error")
    except Exception:  # a delivery reports, it never raises
        return _failed("tmux_error")


def pane_gate(pane_id: str, coding_agent: str) -> Delivery:
    """Whether the broker may type into ``pane_id`` now (nothing is typed).

    Passes (status ``delivered``) only when the pane exists, its foreground process is
    ``coding_agent``, no dialog, menu or question is open, the input box is empty and the
    pane is not in a tmux mode (a mode is left first). Otherwise ``held`` with the reason,
    or ``failed`` (``pane_gone``, ``tmux_error``). Never raises.
    """
    return _guarded(lambda: _check(pane_id, coding_agent)[0])


def agent_gate(pane_id: str, coding_agent: str) -> Delivery:
    """Only the foreground-process part of the gate (``member send-input``). Never raises."""
    return _guarded(lambda: _check(pane_id, coding_agent, screen=False)[0])
