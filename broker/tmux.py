"""The single door to tmux (contract: tmux.md).

Every tmux call cafleet makes goes through :func:`run`, which executes the ``tmux`` binary
with an argument list (never a shell) and never adds ``-L``/``-S``: the call reaches the
server named by ``$TMUX``, otherwise the user's default server.

This module is imported on the message-send hot path, so it uses the standard library only
(no libtmux) and keeps its top-level imports to ``os``, ``re``, ``shutil``, ``subprocess`` and
``time``. Regular expressions are compiled on first use.

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

import os
import re
import shutil
import subprocess
import time

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


def run(args: list[str], *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``tmux <args>`` and return its stdout (decoded as UTF-8, bad bytes replaced).

    Raises :class:`TmuxError` on a non-zero exit, a missing binary or a timeout. Arguments
    ending in ``;`` are escaped (module docstring) so they reach tmux's command unchanged.
    """
    argv = ["tmux", *(_escape_arg(str(a)) for a in args)]
    shown = " ".join(argv)
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TmuxError(
            f"tmux command timed out after {float(timeout)}s: {shown}",
            argv=argv,
            timeout=timeout,
        ) from None
    except OSError as exc:
        raise TmuxError(f"tmux binary not found: {exc}", argv=argv) from exc
    if proc.returncode != 0:
        stderr = (proc.stderr or "").strip()
        raise TmuxError(
            f"tmux command failed: {shown}\nstderr: {stderr}",
            argv=argv,
            returncode=proc.returncode,
            stderr=stderr,
        )
    return proc.stdout


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


def split_window(window_id: str, argv: list[str], database_url: str | None) -> str:
    """Spawn ``argv`` in a new pane of ``window_id`` without focusing it; return its pane id.

    ``-e CAFLEET_DATABASE_URL=<database_url>`` is added when ``database_url`` is not ``None``
    (pass ``broker.conf.raw_database_url()``; an empty value is passed through).
    Raises :class:`TmuxError`.
    """
    args = ["split-window", "-d", "-t", window_id, "-P", "-F", "#{pane_id}"]
    if database_url is not None:
        args += ["-e", f"CAFLEET_DATABASE_URL={database_url}"]
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

_regexes: dict[str, re.Pattern] = {}

_PATTERNS = {
    # tmux.md §6 step 1: ESC [ params(0x30-0x3F)* intermediates(0x20-0x2F)* final(0x40-0x7E)
    "capture_csi": r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]",
    # tmux.md §10.4 step 1, tried in this order at each position
    "body_escapes": (
        r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"  # CSI
        r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])"  # string sequence opener
        r"[^\n\r\x85\u2028\u2029]*?"  # its content, never past a line break
        r"(?:\x07|\x1b\\|\x9c|(?=[\n\r\x85\u2028\u2029])|\Z)"  # terminator or end of line
        r"|\x1b[\s\S]?"  # any other ESC with the one character after it
    ),
    # §10.4 step 2
    "line_breaks": r"\r\n|[\n\r\x85\u2028\u2029]",
    # §10.4 step 4
    "controls": r"[\x00-\x1f\x7f\x80-\x9f]",
    # §10.4 step 6
    "fake_header": r"\[(?= *cafleet +msg)",
}


def _rx(name: str) -> re.Pattern:
    pattern = _regexes.get(name)
    if pattern is None:
        flags = re.IGNORECASE if name == "fake_header" else 0
        pattern = _regexes[name] = re.compile(_PATTERNS[name], flags)
    return pattern


def clean_capture(text: str) -> str:
    """tmux.md §6: drop CSI sequences, then keep each line's text after its last ``\\r``."""
    text = _rx("capture_csi").sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def capture(pane: str, lines: int, *, ansi: bool) -> str:
    """``capture-pane -p -t <pane> -S -<lines>``; cleaned (§6) unless ``ansi``.

    ``lines`` ≤ 0 raises ``TmuxError("capture_pane: lines must be positive, got <N>")``
    before any tmux call; tmux failures raise :class:`TmuxError`.
    """
    if lines <= 0:
        raise TmuxError(f"capture_pane: lines must be positive, got {lines}")
    out = run(["capture-pane", "-p", "-t", pane, "-S", f"-{lines}"])
    return out if ansi else clean_capture(out)


# --- §7 / §8 / §9 keystrokes ---------------------------------------------------------------


def _send_literal(pane: str, text: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    # '-l' makes the text literal. A text starting with '-' would be read as a flag by
    # tmux's option parser ("unknown flag"), so only then a '--' goes in front of it.
    args = ["send-keys", "-t", pane, "-l"]
    if text.startswith("-"):
        args.append("--")
    args.append(text)
    run(args, timeout=timeout)


def _send_enter(pane: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    run(["send-keys", "-t", pane, "Enter"], timeout=timeout)


def send_choice(pane: str, n) -> None:
    """``send-keys -t <pane> <n>`` (no Enter). Raises :class:`TmuxError`."""
    run(["send-keys", "-t", pane, str(n)])


def send_freetext(pane: str, text: str) -> None:
    """``4``, then ``-l <text>`` (skipped when empty), pause 0.12 s, ``Enter`` (tmux.md §7).

    Raises :class:`TmuxError`.
    """
    run(["send-keys", "-t", pane, "4"])
    if text:
        _send_literal(pane, text)
    time.sleep(LITERAL_PAUSE)
    _send_enter(pane)


def send_exec(pane: str, command: str) -> None:
    """``-l "! <stripped command>"``, pause 0.12 s, ``Enter`` (tmux.md §8). Raises TmuxError."""
    _send_literal(pane, f"! {command.strip()}")
    time.sleep(LITERAL_PAUSE)
    _send_enter(pane)


def poll_trigger(pane: str, session_id: str, member_id: str) -> bool:
    """Type the poll command and Enter (tmux.md §9). True when delivered; never raises."""
    try:
        if tmux_binary() is None:
            return False
        command = f"cafleet --session-id {session_id} message poll --agent-id {member_id}"
        _send_literal(pane, command, timeout=PREVIEW_TIMEOUT)
        time.sleep(LITERAL_PAUSE)
        _send_enter(pane, timeout=PREVIEW_TIMEOUT)
        return True
    except Exception:  # the trigger reports, it never raises
        return False


# --- §10 inline preview --------------------------------------------------------------------


def _control_picture(match: re.Match) -> str:
    ch = match.group(0)
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return ""  # C1 controls are removed


def harden_body(text: str, limit: int) -> str:
    """The body line of a preview, tmux.md §10.4 steps 1-7 in order.

    Step 8 (trailing ``;``) is a property of the tmux call and is handled by :func:`run`.
    """
    text = _rx("body_escapes").sub("", text)  # 1. escape sequences
    text = _rx("line_breaks").sub("\u23ce", text)  # 2. line breaks -> ⏎
    text = text.replace("\t", " ")  # 3. tab -> space
    text = _rx("controls").sub(_control_picture, text)  # 4. other controls
    if len(text) > limit:  # 5. cut
        text = text[:limit] + "\u2026"
    text = _rx("fake_header").sub("(", text)  # 6. defang
    if text.startswith(("!", "/")):  # 7. no command on line 2
        text = " " + text
    return text


def preview_payload(task_id: str, sender_id: str, ts: str, body: str, limit: int) -> str:
    """``[cafleet msg <task8> from <sender8> <ts>]`` + LF + hardened body (tmux.md §10.3)."""
    header = f"[cafleet msg {task_id[:8]} from {sender_id[:8]} {ts}]"
    return header + "\n" + harden_body(body, limit)


def deliver_preview(pane_id: str, payload: str) -> bool:
    """Type ``payload`` into ``pane_id`` and press Enter (tmux.md §10.5).

    Leaves copy-mode (or any mode) first. Every call has a 5 s timeout. True only when
    every call succeeded; never raises.
    """
    try:
        if tmux_binary() is None:
            return False
        in_mode = run(
            ["display-message", "-p", "-t", pane_id, "#{pane_in_mode}"], timeout=PREVIEW_TIMEOUT
        )
        if in_mode.strip() == "1":
            run(["send-keys", "-t", pane_id, "-X", "cancel"], timeout=PREVIEW_TIMEOUT)
        _send_literal(pane_id, payload, timeout=PREVIEW_TIMEOUT)
        time.sleep(LITERAL_PAUSE)
        _send_enter(pane_id, timeout=PREVIEW_TIMEOUT)
        return True
    except Exception:  # a failed preview is reported, never raised
        return False
