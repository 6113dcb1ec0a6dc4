"""The single door to tmux (contract: tmux.md).

Every tmux call cafleet makes goes through :func:`run`, which executes the ``tmux`` binary
with an argument list (never a shell) and never adds ``-L``/``-S``: the call reaches the
server named by ``$TMUX``, otherwise the user's default server.

Only this module spawns the ``tmux`` binary. Beside it, importing nothing but the standard
library and this module: :mod:`broker.screen` (reading a capture; pure),
:mod:`broker.panes` (pane facts and the pane gate), :mod:`broker.typist` (typist lock,
bracketed paste, Enter, verify) and :mod:`broker.tmux_preview` (the preview's text; pure).
They reach tmux, and the timing constants below, as ``tmux.<name>`` at call time, and their
public names are reachable here too (``tmux.pane_gate``, ``tmux.classify_screen``, ...;
:data:`_ELSEWHERE`), imported on first use.

This module is imported on the message-send hot path, so it uses the standard library only
(no libtmux) and keeps its top-level imports to ``functools``, ``os``, ``re``, ``shutil``,
``subprocess`` and ``time``. Regular expressions are compiled on first use.

Failure texts (``str(TmuxError)``), tmux.md §1:

* non-zero exit: ``tmux command failed: <argv>`` + ``"\\n"`` + ``stderr: <stderr stripped>``
* binary missing at run time: ``tmux binary not found: <exc>``
* timeout: ``tmux command timed out after <t>s: <argv>``

``<argv>`` is the argument list actually passed to tmux, led by the word ``tmux`` and joined
by single spaces (e.g. ``tmux send-keys -t %3 Enter``). ``<t>`` is the timeout as a float
(``5.0``, ``10.0``).

tmux argument quirk (tmux.md §10.4 step 8): tmux reads an argument that ends in ``;`` as a
command separator and drops the ``;`` (tmux 3.3a: ``send-keys -l "done;"`` types ``done``,
and a ``split-window`` argument ending in ``;`` cuts the command in two). tmux turns a final
``\\;`` into ``;``, so :func:`run` sends every argument that ends in ``;`` with its last
character written as ``\\;``; the ``;`` then arrives unchanged (``x\\;`` arrives as ``x\\;``
too, because only the final ``\\;`` pair is unescaped by tmux).
"""

import functools
import os
import re
import shutil
import subprocess
import time  # noqa: F401 - the clock of the gate and the typist (``tmux.time``)

#: Timeout of every tmux call except the preview and the poll trigger (tmux.md §1).
DEFAULT_TIMEOUT = 10.0
#: Timeout of each call of the inline preview (§10) and the poll trigger (§9).
PREVIEW_TIMEOUT = 5.0
#: Pause between typed literal text and its Enter (freetext, exec, ping, preview).
LITERAL_PAUSE = 0.12
#: Layout applied to the caller's window after a spawn and after a delete.
LAYOUT = "main-vertical"

_PANE_GONE_MARKERS = ("can't find pane", "no such pane")


class TmuxError(Exception):
    """A tmux call failed; ``str(exc)`` is the contract failure text (tmux.md §1).

    Attributes (``None`` when not applicable): ``argv`` (the full argument list, ``tmux``
    first), ``returncode``, ``stderr`` (stripped), ``timeout`` (seconds).
    """

    def __init__(self, message, *, argv=None, returncode=None, stderr=None, timeout=None):
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        self.timeout = timeout


def is_pane_gone(exc) -> bool:
    """True when a failure's text says the target pane no longer exists."""
    text = str(exc)
    return any(marker in text for marker in _PANE_GONE_MARKERS)


def tmux_binary() -> str | None:
    """Absolute path of ``tmux`` on PATH, or ``None``."""
    return shutil.which("tmux")


def _escape_arg(arg: str) -> str:
    # tmux treats a trailing ';' as a command separator and drops it; '\;' arrives as ';'.
    if arg.endswith(";"):
        return arg[:-1] + "\\;"
    return arg


def run(args: list[str], *, timeout: float = DEFAULT_TIMEOUT, input: str | None = None) -> str:
    """Run ``tmux <args>`` and return its stdout (decoded as UTF-8, bad bytes replaced).

    The output is returned as tmux wrote it: no newline translation, so a carriage return
    stays a ``\\r`` (tmux.md §6 step 2 needs it) instead of becoming a line break.

    ``input`` is written to tmux's stdin as UTF-8 (``load-buffer -b <name> -``); without it
    stdin is not connected. Raises :class:`TmuxError` on a non-zero exit, a missing binary or
    a timeout. Arguments ending in ``;`` are escaped (module docstring) so they reach tmux's
    command unchanged.
    """
    argv = ["tmux", *(_escape_arg(str(a)) for a in args)]
    shown = " ".join(argv)
    extra = {"input": input.encode("utf-8")} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        proc = subprocess.run(argv, **extra, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TmuxError(
            f"tmux command timed out after {float(timeout)}s: {shown}",
            argv=argv,
            timeout=timeout,
        ) from None
    except OSError as exc:
        raise TmuxError(f"tmux binary not found: {exc}", argv=argv) from exc
    if proc.returncode != 0:
        stderr = (proc.stderr or b"").decode("utf-8", "replace").strip()
        raise TmuxError(
            f"tmux command failed: {shown}\nstderr: {stderr}",
            argv=argv,
            returncode=proc.returncode,
            stderr=stderr,
        )
    return (proc.stdout or b"").decode("utf-8", "replace")


# --- §3 the caller's pane ------------------------------------------------------------------


def caller_pane(environ=os.environ) -> tuple[str, str, str]:
    """``(session_name, window_id, pane_id)`` of the pane named by ``TMUX_PANE`` (tmux.md §3).

    ``environ`` is only read for ``TMUX_PANE``; the tmux call itself runs in this process's
    environment (so it reaches the server named by ``os.environ["TMUX"]``).
    Raises :class:`TmuxError`; an empty part counts as unexpected output (tmux 3.3a prints
    ``||`` and exits 0 for a pane id that no longer exists).
    """
    pane = environ.get("TMUX_PANE")
    if not pane:
        raise TmuxError("TMUX_PANE is not set; not running inside a tmux pane")
    out = run(["display-message", "-p", "-t", pane, "#{session_name}|#{window_id}|#{pane_id}"])
    out = out.strip()
    parts = out.split("|")
    # tmux 3.3a answers a stale pane id with exit 0 and "||": empty parts are refused too.
    if len(parts) != 3 or not all(parts):
        raise TmuxError(f"unexpected tmux display-message output: {out!r}")
    return parts[0], parts[1], parts[2]


# --- §2 guards ------------------------------------------------------------------------------

#: tmux.md §2: the text when ``TMUX`` is unset (member commands and doctor).
OUTSIDE_TMUX = "cafleet member commands must be run inside a tmux session"


def require_tmux(environ=os.environ, *, command: str | None = None) -> None:
    """The tmux guard (tmux.md §2): the binary on PATH, then ``TMUX`` set; else CafleetError.

    ``command`` names the command outside tmux (``doctor``); the default names the member
    commands.
    """
    from broker.exceptions import CafleetError

    if not tmux_binary():
        raise CafleetError("tmux binary not found on PATH")
    if not environ.get("TMUX"):
        if command:
            raise CafleetError(f"cafleet {command} must be run inside a tmux session")
        raise CafleetError(OUTSIDE_TMUX)


def require_caller_pane(environ=os.environ) -> tuple[str, str, str]:
    """:func:`caller_pane` with its failure text as a CafleetError (tmux.md §3)."""
    from broker.exceptions import CafleetError

    try:
        return caller_pane(environ)
    except TmuxError as exc:
        raise CafleetError(str(exc)) from None


# --- §4 spawn and layout -------------------------------------------------------------------


def split_window(
    window_id: str, argv: list[str], database_url: str | None, env: dict | None = None
) -> str:
    """Spawn ``argv`` in a new pane of ``window_id`` without focusing it; return its pane id.

    ``-e CAFLEET_DATABASE_URL=<database_url>`` is added when ``database_url`` is not ``None``
    (pass ``broker.conf.raw_database_url()``; an empty value is passed through).
    Raises :class:`TmuxError`.
    """
    args = ["split-window", "-d", "-t", window_id, "-P", "-F", "#{pane_id}"]
    if database_url is not None:
        args += ["-e", f"CAFLEET_DATABASE_URL={database_url}"]
    for key, value in (env or {}).items():  # the member's own ids (docs/hooks.md)
        args += ["-e", f"{key}={value}"]
    args += list(argv)
    return run(args).strip()


def select_layout(window_id: str) -> None:
    """``select-layout -t <window> main-vertical``. Raises :class:`TmuxError`."""
    run(["select-layout", "-t", window_id, LAYOUT])


# --- §5 teardown ---------------------------------------------------------------------------


def send_exit(pane: str) -> None:
    """Type ``/exit`` + Enter (one call, key arguments). Pane gone is ignored."""
    try:
        run(["send-keys", "-t", pane, "/exit", "Enter"])
    except TmuxError as exc:
        if not is_pane_gone(exc):
            raise


def list_pane_ids() -> set[str]:
    """Ids of every pane of the server. Raises :class:`TmuxError`."""
    out = run(["list-panes", "-a", "-F", "#{pane_id}"])
    return {line.strip() for line in out.splitlines() if line.strip()}


def kill_pane(pane: str) -> None:
    """``kill-pane -t <pane>``; pane already gone is success. Raises :class:`TmuxError`."""
    try:
        run(["kill-pane", "-t", pane])
    except TmuxError as exc:
        if not is_pane_gone(exc):
            raise


# --- §6 capture ----------------------------------------------------------------------------


@functools.cache
def _capture_csi() -> re.Pattern:
    # tmux.md §6 step 1: ESC [ params(0x30-0x3F)* intermediates(0x20-0x2F)* final(0x40-0x7E)
    return re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")


def clean_capture(text: str) -> str:
    """tmux.md §6: drop CSI sequences, then keep each line's text after its last ``\\r``.

    Lines are split on ``\\n`` only: a ``\\r`` is an overwrite within its line, never a
    line break (:func:`run` keeps it as tmux wrote it).
    """
    text = _capture_csi().sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def last_lines(text: str, lines: int, *, ansi: bool = False) -> str:
    """The last ``lines`` lines of a capture once its trailing blank lines are dropped.

    ``capture-pane -S -N`` returns N lines of history *plus the whole visible pane*, so an
    idle pane's capture ends in dozens of blank lines. A line is blank when nothing but
    whitespace is left after cleaning (§6); ``ansi`` keeps the kept lines untouched. The
    result ends with a newline unless it is empty.
    """
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()  # the newline after the last line
    shown = clean_capture("\n".join(raw)).split("\n") if raw else []
    kept = raw if ansi else shown
    end = len(shown)
    while end and not shown[end - 1].strip():
        end -= 1
    kept = kept[max(0, end - lines) : end]
    return "\n".join(kept) + "\n" if kept else ""


def capture(pane: str, lines: int, *, ansi: bool) -> str:
    """``capture-pane -p -t <pane> -S -<lines>``, cut to its last ``lines`` non-blank-ended
    lines (:func:`last_lines`); cleaned (§6) unless ``ansi``.

    ``lines`` ≤ 0 raises ``TmuxError("capture_pane: lines must be positive, got <N>")``
    before any tmux call; tmux failures raise :class:`TmuxError`.
    """
    if lines <= 0:
        raise TmuxError(f"capture_pane: lines must be positive, got {lines}")
    out = run(["capture-pane", "-p", "-t", pane, "-S", f"-{lines}"])
    return last_lines(out, lines, ansi=ansi)


def capture_screen(pane_id: str) -> str:
    """The visible screen with its attributes, wrapped lines joined (``capture-pane -p -e -J``)."""
    return run(["capture-pane", "-p", "-e", "-J", "-t", pane_id], timeout=PREVIEW_TIMEOUT)


# --- safe delivery: the knobs of the gate and the typist (docs/delivery.md) ------------

#: Longest text pasted in one go: Claude Code collapses a longer paste to ``[Pasted text #N]``.
PREVIEW_MAX_CHARS = 800
#: Whether a busy agent holds a delivery. Measured on the real clients: a busy Claude Code
#: queues the input ("Queued ·") and sends it as the next turn, so it is typed at once; a busy
#: Codex takes an Enter as a "steer" that cancels the model call in flight (its running answer
#: is dropped), so it is held until Codex is idle. An unknown backend is held while busy.
HOLD_WHEN_BUSY = {"claude": False, "codex": True}
#: Verification: screen poll interval, how long the pasted text may take to show in the
#: input box, how long to wait for it to leave after an Enter, and Enters in total.
VERIFY_POLL = 0.01
PASTE_SHOW_WAIT = 1.0
ENTER_WAIT = 0.4
ENTER_TRIES = 3
#: How long the gate looks again when no input box is on screen (a redraw caught halfway).
GATE_SETTLE = 0.15
#: How long a typist waits for another typist of the same pane.
LOCK_WAIT = 8.0


# --- §7 / §8 / §9 member keystrokes ----------------------------------------------------------


def send_choice(pane: str, n) -> None:
    """``send-keys -t <pane> <n>`` (no Enter). Raises :class:`TmuxError`."""
    run(["send-keys", "-t", pane, str(n)])


def send_freetext(pane: str, text: str, *, coding_agent: str = "claude") -> None:
    """Option ``4``, then ``text`` pasted + Enter + verify, under the pane's typist lock
    (:func:`broker.typist.type_freetext`). Raises :class:`TmuxError`."""
    from broker import typist

    typist.type_freetext(pane, text, coding_agent=coding_agent)


def send_exec(pane: str, command: str, *, coding_agent: str = "claude"):
    """Gate, then ``! <stripped command>`` pasted + Enter + verify (a :class:`Delivery`).
    Never raises."""
    return _type_text(pane, f"! {command.strip()}", coding_agent=coding_agent)


def poll_trigger(pane: str, session_id: str, member_id: str, *, coding_agent: str = "claude"):
    """Gate, then the member's poll command pasted + Enter + verify. Never raises."""
    command = f"cafleet --session-id {session_id} message poll --agent-id {member_id}"
    return _type_text(pane, command, coding_agent=coding_agent)


# --- §10 inline preview --------------------------------------------------------------------


def fit_preview(payload: str, limit: int = PREVIEW_MAX_CHARS) -> str:
    """``payload`` cut to ``limit`` characters (the last one ``…``) when longer."""
    if len(payload) <= limit:
        return payload
    return payload[: limit - 1] + "\u2026"


def _type_text(pane_id: str, text: str, *, coding_agent: str):
    from broker import typist

    return typist.type_text(pane_id, text, coding_agent=coding_agent)


def deliver_preview(pane_id: str, payload: str, *, coding_agent: str = "claude"):
    """Type a preview into ``pane_id`` safely (docs/delivery.md); never raises.

    Gate → bracketed paste through a private named buffer → Enter → verify (Enter re-sent
    only while the text still sits in the input box, at most ``ENTER_TRIES`` in all), under
    the pane's typist lock. The payload is cut to ``PREVIEW_MAX_CHARS``.
    """
    return _type_text(pane_id, fit_preview(payload), coding_agent=coding_agent)


# --- the companion modules -------------------------------------------------------------------

#: Names that live in the modules beside this one and stay reachable as ``tmux.<name>``
#: (services get this module and call ``tmux.pane_gate``, ``tmux.TypistLock``, ...). They
#: are imported on first use, so importing this module stays as cheap as before.
_ELSEWHERE = {
    "broker.screen": ("Screen", "classify_screen"),
    "broker.panes": (
        "GATE_REASONS",
        "REASON_TEXT",
        "Delivery",
        "PaneFacts",
        "pane_facts",
        "runs_agent",
        "pane_gate",
        "agent_gate",
        "_FACTS",
        "_program_names",
        "_foreground_argv",
    ),
    "broker.typist": ("runtime_dir", "TypistLock", "paste", "type_text", "type_freetext"),
    "broker.tmux_preview": ("harden_body", "preview_payload"),
}
_HOME = {name: module for module, names in _ELSEWHERE.items() for name in names}


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
