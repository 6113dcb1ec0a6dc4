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
from dataclasses import dataclass

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
    # Before step 1: compatibility forms that imitate ASCII (odd spaces, vertical, small,
    # fullwidth and halfwidth forms, letterlike and mathematical letters); NFKC maps them.
    "compat_lookalikes": (
        "[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u2100-\u214f\ufe10-\ufe19"
        "\ufe30-\ufe6f\uff00-\uffef\U0001d400-\U0001d7ff]+"
    ),
    # §10.4 step 6, after lookalikes are folded (see harden_body): any opening bracket,
    # then any whitespace or ⏎ (a former line break), then "cafleet msg" spelt with ASCII letters or the Cyrillic and
    # Greek letters that look like them.
    "fake_header": (
        "[\\[{\u2045\u2329\u27e6\u27e8\u27ea\u27ec\u27ee\u2983\u2985\u2987\u2989"
        "\u298b\u298d\u298f\u2991\u2993\u2995\u2997\u29fc\u2e22\u2e24\u2e26\u2e28"
        "\u2768\u276a\u276c\u276e\u2770\u2772\u2774\u3008\u300a\u300c\u300e\u3010"
        "\u3014\u3016\u3018\u301a]"
        "(?=[\\s\u23ce]*[c\u0441\u03f2][a\u0430\u0251\u03b1]f[l\u04cf\u0456\u03b9\u01311|]"
        "[e\u0435][e\u0435][t\u0442\u03c4][\\s\u23ce]+[m\u043c][s\u0455][g\u0261\u050d])"
    ),
}


def _rx(name: str) -> re.Pattern:
    pattern = _regexes.get(name)
    if pattern is None:
        flags = re.IGNORECASE if name == "fake_header" else 0
        pattern = _regexes[name] = re.compile(_PATTERNS[name], flags)
    return pattern


def clean_capture(text: str) -> str:
    """tmux.md §6: drop CSI sequences, then keep each line's text after its last ``\\r``.

    Lines are split on ``\\n`` only: a ``\\r`` is an overwrite within its line, never a
    line break (:func:`run` keeps it as tmux wrote it).
    """
    text = _rx("capture_csi").sub("", text)
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


# --- safe delivery: pane gate, typist lock, bracketed paste, verify (docs/delivery.md) -------

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


# ------------------------------------------------------------------ screen classification

#: Markers of a permission dialog (no input box on screen while one is open).
_PERMISSION_MARKERS = (
    "Do you want to proceed?",
    "Do you want to make this edit",
    "Do you want to create",
    "Do you want to allow",
    "Would you like to run the following command",
    "Would you like to make the following edits",
    "Allow command?",
    "Press enter to confirm",
)
_BUSY_MARKER = "esc to interrupt"
_QUEUED_MARKER = "Queued \u00b7"
_SHELL_MODE_MARKERS = ("for shell mode", "Shell mode")
_RULE_CHAR = "\u2500"  # ─, Claude Code's input box border
_CLAUDE_PROMPT = "\u276f"  # ❯
_CODEX_PROMPT = "\u203a"  # ›
_SPACES = " \u00a0\t"
#: At most this many non-blank lines below the input box (the footer).
_FOOTER_LINES = 4

_MENU_LINE = "\x00menu"
_SGR_OR_CHAR = None
_DIM, _REVERSE = 1, 2


@dataclass(frozen=True)
class Screen:
    """What :func:`classify_screen` read from one capture.

    ``reason``: a hold reason seen on screen (``permission_dialog``, ``menu``, ``draft``) or
    ``None``. ``prompt``: the input box's prompt character (``❯``, ``›``, ``!`` in shell
    mode, ``>`` for a line-oriented REPL) or ``""`` when no input box is visible.
    ``input_text``: what the input box holds, placeholder text removed. ``busy``: the agent
    is working (``esc to interrupt``); ``queued``: input waits in Claude Code's queue.
    """

    reason: str | None
    prompt: str = ""
    input_text: str = ""
    busy: bool = False
    queued: bool = False

    @property
    def input_empty(self) -> bool:
        return bool(self.prompt) and self.prompt != "!" and not self.input_text


def _parse_screen(capture: str) -> list[tuple[str, list[int]]]:
    """Lines of a ``capture-pane -e`` text as ``(plain text, attribute flags per char)``.

    Only two attributes matter: dim (placeholder text) and reverse video (the cursor Claude
    Code draws). SGR state carries over line ends as on a terminal; other escape sequences
    are dropped.
    """
    global _SGR_OR_CHAR
    if _SGR_OR_CHAR is None:
        _SGR_OR_CHAR = re.compile(
            r"\x1b\[([0-9;:]*)m|\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\x1b[^\[]?|([^\x1b]+)"
        )
    flags = 0
    lines: list[tuple[str, list[int]]] = []
    for raw in capture.split("\n"):
        chars: list[str] = []
        attrs: list[int] = []
        for match in _SGR_OR_CHAR.finditer(raw.rstrip("\r")):
            text = match.group(2)
            if text is not None:
                chars.append(text)
                attrs.extend([flags] * len(text))
            elif match.group(1) is not None:
                flags = _apply_sgr(flags, match.group(1))
        lines.append(("".join(chars), attrs))
    return lines


def _apply_sgr(flags: int, params: str) -> int:
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48, 58):  # extended colour: skip its arguments
            i += 3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5
            continue
        if code == 0:
            flags = 0
        elif code == 2:
            flags |= _DIM
        elif code == 22:
            flags &= ~_DIM
        elif code == 7:
            flags |= _REVERSE
        elif code == 27:
            flags &= ~_REVERSE
        i += 1
    return flags


def _typed_text(text: str, attrs: list[int]) -> str:
    """The text a user typed on one input line: dim placeholder text and the cursor removed.

    A reverse-video character is Claude Code's cursor. When it sits on the first character
    of a dim placeholder (``❯ Press up to edit queued messages``) it is part of the
    placeholder; otherwise a non-blank character under the cursor is typed text.
    """
    kept = []
    for i, ch in enumerate(text):
        flag = attrs[i] if i < len(attrs) else 0
        if flag & _DIM:
            continue
        before = attrs[i - 1] if 0 < i <= len(attrs) else 0
        after = attrs[i + 1] if i + 1 < len(attrs) else 0
        if flag & _REVERSE and not (before & _REVERSE) and not (after & _REVERSE):
            # a single reverse-video cell is the cursor (a highlighted run is not)
            rest_dim = any(a & _DIM for a in attrs[i + 1 :])
            if ch in _SPACES or rest_dim:
                continue
        kept.append(ch)
    return "".join(kept).strip(_SPACES)


def _is_rule(line: str) -> bool:
    """A ``─`` rule; Claude Code writes a session name into its box's top rule
    (``────── worker ─``)."""
    stripped = line.strip(_SPACES)
    return (
        len(stripped) >= 8
        and stripped.startswith(_RULE_CHAR * 4)
        and stripped.endswith(_RULE_CHAR)
        and _CLAUDE_PROMPT not in stripped
    )


def _modal_reason(plain: list[str], bottom: int, lines: int = 30) -> str:
    """No input box: a permission dialog when its markers show in the last ``lines``
    non-blank lines up to ``bottom``, else a menu or question. Blank lines do not count:
    the real Claude Code draws a short dialog at the top of a tall screen with a block of
    blank lines between it and its bottom rule."""
    recent = [line for line in plain[: bottom + 1] if line.strip(_SPACES)][-lines:]
    text = "\n".join(recent)
    if any(marker in text for marker in _PERMISSION_MARKERS):
        return "permission_dialog"
    return "menu"


def _claude_input(lines, bottom: int) -> tuple[int, int] | None:
    """``(first, last)`` line index of Claude Code's input box: between two rules, the
    lower one at most ``_FOOTER_LINES`` non-blank lines above the bottom of the screen."""
    plain = [text for text, _ in lines]
    below = 0
    for j in range(bottom, -1, -1):
        if _is_rule(plain[j]):
            break
        if plain[j].strip(_SPACES):
            below += 1
        if below > _FOOTER_LINES:
            return None
    else:
        return None
    for i in range(j - 1, -1, -1):
        if _is_rule(plain[i]):
            return (i + 1, j - 1) if i + 1 <= j - 1 else None
    return None


def _read_prompt(text: str, attrs: list[int], prompts: tuple[str, ...]):
    """``(prompt, typed text)`` when ``text`` starts with one of ``prompts``, else None.

    A numbered option (``› 1. Yes, proceed``) is a selection list, not a prompt: typed text
    ``"\x00menu"`` marks it.
    """
    for prompt in prompts:
        if text.startswith(prompt) and (len(text) == len(prompt) or text[len(prompt)] in _SPACES):
            if _rx_numbered().match(text[len(prompt) :].strip(_SPACES)):
                return prompt, _MENU_LINE
            return prompt, _typed_text(text[len(prompt) :], attrs[len(prompt) :])
    return None


def classify_screen(capture: str, coding_agent: str) -> Screen:
    """Read the visible screen of an agent's pane (``capture-pane -p -e``). Pure function.

    Claude Code: the input box is the line(s) between the last two ``─`` rules just above
    the footer; its prompt is ``❯`` (``!`` in shell mode). Codex: the input line is the last
    line starting with ``›`` (``!`` in shell mode) near the bottom. A line-oriented REPL
    (the test stand-ins) shows ``> `` on its last line. No input box visible means a dialog
    or menu owns the screen. Placeholder text (dim) does not count as typed text.
    """
    lines = _parse_screen(capture)
    plain = [text for text, _ in lines]
    bottom = len(plain) - 1
    while bottom >= 0 and not plain[bottom].strip(_SPACES):
        bottom -= 1
    if bottom < 0:
        return Screen("menu")
    busy = False
    queued = any(_QUEUED_MARKER in line for line in plain)
    found = None
    footer: list[str] = []
    if coding_agent == "claude":
        box = _claude_input(lines, bottom)
        if box is not None:
            first, last = box
            found = _read_prompt(*lines[first], (_CLAUDE_PROMPT, "!", ">"))
            if found is not None:
                rest = " ".join(_typed_text(*lines[k]) for k in range(first + 1, last + 1))
                found = (found[0], (found[1] + " " + rest).strip(_SPACES))
            footer = plain[last + 2 : bottom + 1]
            busy = any(_BUSY_MARKER in line for line in footer)
    elif coding_agent == "codex":
        seen = 0
        for k in range(bottom, -1, -1):
            if plain[k].strip(_SPACES):
                seen += 1
            if seen > _FOOTER_LINES + 4:
                break
            found = _read_prompt(*lines[k], (_CODEX_PROMPT, "!"))
            if found is not None:
                footer = plain[k + 1 : bottom + 1]
                busy = _codex_busy(plain, k)
                break
    if found is None:
        # A line-oriented REPL (the test stand-ins): its prompt is the last line.
        found = _read_prompt(*lines[bottom], (">",))
        if found is None:
            return Screen(_modal_reason(plain, bottom))
    prompt, typed = found
    if prompt == "!" or any(m in line for m in _SHELL_MODE_MARKERS for line in footer):
        return Screen("draft", "!", typed, busy, queued)
    if typed == _MENU_LINE:  # ❯ 1. Yes …: a selection list, not an input box
        return Screen(_modal_reason(plain, bottom), "", "", busy, queued)
    return Screen("draft" if typed else None, prompt, typed, busy, queued)


def _codex_busy(plain: list[str], k: int) -> bool:
    """Codex's ``• Working (… esc to interrupt)`` line, up to 8 lines above its input line
    (queued follow-ups sit in between), not past the previous user turn (``› …``)."""
    for line in reversed(plain[max(0, k - 8) : k]):
        if line.startswith(_CODEX_PROMPT):
            return False
        if _BUSY_MARKER in line:
            return True
    return False


def _rx_numbered() -> re.Pattern:
    pattern = _regexes.get("numbered")
    if pattern is None:
        pattern = _regexes["numbered"] = re.compile(r"\d+\.\s")
    return pattern


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
        out = run(["display-message", "-p", "-t", pane_id, _FACTS], timeout=PREVIEW_TIMEOUT)
    except TmuxError as exc:
        if is_pane_gone(exc):
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
        foreground=_foreground_argv(pid),
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


def capture_screen(pane_id: str) -> str:
    """The visible screen with its attributes, wrapped lines joined (``capture-pane -p -e -J``)."""
    return run(["capture-pane", "-p", "-e", "-J", "-t", pane_id], timeout=PREVIEW_TIMEOUT)


def _check(pane_id: str, coding_agent: str, *, screen: bool = True):
    """The gate proper: ``(Delivery, Screen | None, capture)``. Raises :class:`TmuxError`."""
    facts = pane_facts(pane_id)
    if facts is None:
        return _failed("pane_gone"), None, ""
    if not runs_agent(facts, coding_agent):
        return _held("agent_not_running"), None, ""
    if facts.in_mode:  # copy-mode or another mode: leave it (never Escape)
        run(["send-keys", "-t", pane_id, "-X", "cancel"], timeout=PREVIEW_TIMEOUT)
    if not screen:
        return _PASSED, None, ""
    raw = capture_screen(pane_id)
    seen = classify_screen(raw, coding_agent)
    settle = time.monotonic() + GATE_SETTLE
    while seen.reason == "menu" and time.monotonic() < settle:
        # No input box: a dialog, or a redraw caught halfway. Look again briefly.
        time.sleep(VERIFY_POLL)
        raw = capture_screen(pane_id)
        seen = classify_screen(raw, coding_agent)
    if seen.reason is not None:
        return _held(seen.reason), seen, raw
    if seen.busy and HOLD_WHEN_BUSY.get(coding_agent, True):
        return _held("busy"), seen, raw
    return _PASSED, seen, raw


def _guarded(fn):
    """Run ``fn()``; tmux failures become ``failed`` deliveries. Never raises."""
    try:
        if tmux_binary() is None:
            return _failed("tmux_error")
        return fn()
    except TmuxError as exc:
        return _failed("pane_gone" if is_pane_gone(exc) else "tmux_error")
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


# ------------------------------------------------------------------ typist lock


def _server_key() -> str:
    """The tmux server this process reaches: ``$TMUX``'s socket, else the default one."""
    value = os.environ.get("TMUX", "")
    if value:
        return os.path.realpath(value.split(",", 1)[0])
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.realpath(os.path.join(base, f"tmux-{os.getuid()}", "default"))


def runtime_dir() -> str:
    """A private (0700, ours, not a link) directory for the typist locks.

    ``$XDG_RUNTIME_DIR/cafleet`` when that is set, else ``/tmp/cafleet-<uid>``. Raises
    ``OSError`` when the directory exists but is not private.
    """
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(base, "cafleet") if base else f"/tmp/cafleet-{uid}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    import stat as stat_mod

    if not stat_mod.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise OSError(f"{path} is not a private directory of uid {uid}")
    return path


class TypistLock:
    """One typist per pane and tmux server at a time, across processes (``flock`` on a
    0600 file in :func:`runtime_dir`). ``acquire`` waits up to ``wait`` seconds."""

    def __init__(self, pane_id: str, *, wait: float | None = None):
        import hashlib

        key = f"{_server_key()}\0{pane_id}".encode("utf-8", "surrogateescape")
        self.path = os.path.join(runtime_dir(), f"typist-{hashlib.sha256(key).hexdigest()[:32]}")
        self.wait = LOCK_WAIT if wait is None else wait
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o600)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.005)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


# ------------------------------------------------------------------ typing


def paste(pane_id: str, text: str) -> None:
    """Bracketed paste of ``text`` through a private named buffer, deleted after use.

    ``load-buffer -b cafleet-<random> -`` reads the text from stdin (no argument parsing of
    the text at all), ``paste-buffer -p -d`` pastes it (bracketed when the application
    asked for it) and deletes the buffer. Raises :class:`TmuxError`.
    """
    import secrets

    name = f"cafleet-{secrets.token_hex(8)}"
    run(["load-buffer", "-b", name, "-"], timeout=PREVIEW_TIMEOUT, input=text)
    try:
        run(["paste-buffer", "-p", "-d", "-b", name, "-t", pane_id], timeout=PREVIEW_TIMEOUT)
    except TmuxError:
        try:
            run(["delete-buffer", "-b", name], timeout=PREVIEW_TIMEOUT)
        except TmuxError:
            pass
        raise


def _marker(text: str) -> str:
    """A short piece of the pasted text to recognise it in the input box."""
    first = " ".join(text.split("\n", 1)[0].split())
    return first.lstrip("!").strip()[:12]


def _watch(pane_id: str, coding_agent: str, done, timeout: float) -> tuple[Screen, str]:
    """Poll the screen until ``done(screen, raw)`` or ``timeout``; the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        raw = capture_screen(pane_id)
        seen = classify_screen(raw, coding_agent)
        if done(seen, raw) or time.monotonic() >= deadline:
            return seen, raw
        time.sleep(VERIFY_POLL)


def _submit(pane_id: str, text: str, coding_agent: str, gate: Screen, before: str) -> Delivery:
    """Paste, wait for the text to show, Enter, verify; re-send only Enter (bounded).

    ``gate`` is what the gate saw, ``before`` its capture. The text "shows" when the input box holds text; then
    Enter goes in a separate call. Verified when the input box is empty again or the client
    shows its queued marker. Enter is re-sent only while the input box still holds this
    text, never when a dialog or menu owns the screen. A line-oriented REPL (prompt ``>``,
    the terminal's own line editing) gets the Enter at once and no re-send: its terminal
    cannot lose an Enter, and it shows no input box to watch.
    """
    marker = _marker(text)

    def shows_text(seen: Screen, raw: str) -> bool:
        # A frame without the input box may be a redraw caught halfway: keep looking.
        return bool(seen.prompt) and bool(seen.input_text) and seen.reason in (None, "draft")

    settled: list[bool] = []

    def left_input(seen: Screen, raw: str) -> bool:
        # Empty input (or queued) must be seen twice in a row: one frame may be a redraw
        # caught halfway. No input box (a REPL printing, a dialog): keep looking.
        settled.append(seen.input_empty or seen.queued)
        if settled[-2:] == [True, True]:
            return True
        return bool(seen.prompt and seen.input_text and marker not in seen.input_text)

    paste(pane_id, text)
    if gate.prompt == ">":
        run(["send-keys", "-t", pane_id, "Enter"], timeout=PREVIEW_TIMEOUT)
        seen, _raw = _watch(pane_id, coding_agent, lambda s, r: s.input_empty, ENTER_WAIT)
        return Delivery("delivered", None, seen.input_empty)
    seen, raw = _watch(pane_id, coding_agent, shows_text, PASTE_SHOW_WAIT)
    if not shows_text(seen, raw) and raw != before:
        # The text never showed in the input box and the screen changed (a dialog or menu
        # took it): an Enter could answer a dialog, so none is sent. An unchanged screen is
        # a client that has not read anything yet: its Enter goes in after the paste.
        return Delivery("delivered", None, False)
    for _ in range(ENTER_TRIES):
        run(["send-keys", "-t", pane_id, "Enter"], timeout=PREVIEW_TIMEOUT)
        settled.clear()
        seen, _raw = _watch(pane_id, coding_agent, left_input, ENTER_WAIT)
        if settled[-2:] == [True, True]:
            return Delivery("delivered", None, True)
        if not seen.prompt or not seen.input_text or marker not in seen.input_text:
            # No input box, or not our text: never press Enter on it.
            return Delivery("delivered", None, False)
    return Delivery("delivered", None, False)


def type_text(pane_id: str, text: str, *, coding_agent: str = "claude") -> Delivery:
    """Gate, then paste ``text`` + Enter and verify, all under the pane's typist lock.

    Returns ``held`` (gate refused, nothing typed), ``failed`` (pane gone, tmux error) or
    ``delivered`` (``verified`` when the text was seen leaving the input box). Never raises.
    """

    def attempt() -> Delivery:
        try:
            lock = TypistLock(pane_id)
        except OSError:
            return _failed("tmux_error")
        if not lock.acquire():
            return _held("busy")  # another typist kept the pane longer than LOCK_WAIT
        try:
            verdict, seen, raw = _check(pane_id, coding_agent)
            if verdict.status != "delivered":
                return verdict
            return _submit(pane_id, text, coding_agent, seen, raw)
        finally:
            lock.release()

    return _guarded(attempt)


def fit_preview(payload: str, limit: int = PREVIEW_MAX_CHARS) -> str:
    """``payload`` cut to ``limit`` characters (the last one ``…``) when longer."""
    if len(payload) <= limit:
        return payload
    return payload[: limit - 1] + "\u2026"


# --- §7 / §8 / §9 member keystrokes ----------------------------------------------------------


def _send_literal(pane: str, text: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    # '-l' makes the text literal. A text starting with '-' would be read as a flag by
    # tmux's option parser ("unknown flag"), so only then a '--' goes in front of it.
    args = ["send-keys", "-t", pane, "-l"]
    if text.startswith("-"):
        args.append("--")
    args.append(text)
    run(args, timeout=timeout)


def send_choice(pane: str, n) -> None:
    """``send-keys -t <pane> <n>`` (no Enter). Raises :class:`TmuxError`."""
    run(["send-keys", "-t", pane, str(n)])


def send_freetext(pane: str, text: str, *, coding_agent: str = "claude") -> None:
    """Option ``4`` as a plain key, then ``text`` as a bracketed paste through a private
    named buffer, ``Enter``, and a verify (docs/delivery.md): ``Enter`` is re-sent only while
    the text still sits in an input box (at most ``ENTER_TRIES`` in all). Empty text: ``4``
    and ``Enter`` only. Under the pane's typist lock, so no preview interleaves.

    Raises :class:`TmuxError` (also when another typist keeps the pane past ``LOCK_WAIT``).
    """
    lock = TypistLock(pane)
    if not lock.acquire():
        raise TmuxError(f"pane {pane} is busy: another sender is typing into it")
    try:
        run(["send-keys", "-t", pane, "4"])
        marker = _marker(text)
        if not text:
            time.sleep(LITERAL_PAUSE)
            run(["send-keys", "-t", pane, "Enter"])
            return

        def in_box(seen: Screen) -> bool:
            return bool(marker) and bool(seen.prompt) and marker in seen.input_text

        paste(pane, text)
        # Enter goes in a later call, once the client has shown the text (or after a bound).
        _watch(pane, coding_agent, lambda s, r: marker in clean_capture(r), PASTE_SHOW_WAIT)
        for _ in range(ENTER_TRIES):
            run(["send-keys", "-t", pane, "Enter"])
            seen, _raw = _watch(pane, coding_agent, lambda s, r: not in_box(s), ENTER_WAIT)
            if not in_box(seen):
                return
    finally:
        lock.release()


def send_exec(pane: str, command: str, *, coding_agent: str = "claude") -> Delivery:
    """Gate, then ``! <stripped command>`` pasted + Enter + verify. Never raises."""
    return type_text(pane, f"! {command.strip()}", coding_agent=coding_agent)


def poll_trigger(pane: str, session_id: str, member_id: str, *, coding_agent: str = "claude"):
    """Gate, then the member's poll command pasted + Enter + verify. Never raises."""
    command = f"cafleet --session-id {session_id} message poll --agent-id {member_id}"
    return type_text(pane, command, coding_agent=coding_agent)


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

    Before step 1 the text is normalised so lookalikes cannot slip past steps 6 and 7:
    characters that imitate ASCII get their NFKC form (fullwidth ``［``, ``／``, ``！``,
    odd spaces, mathematical letters; other text such as ``…`` is kept as written), then
    every invisible character (zero-width, bidi controls, BOM, fillers:
    ``broker.textnorm.INVISIBLE``) is removed. Step 6 then defangs any opening bracket before ``cafleet msg``, whatever
    whitespace or Cyrillic/Greek lookalike letters it is spelt with.
    """
    import unicodedata

    from broker import textnorm

    text = _rx("compat_lookalikes").sub(  # 0a. compatibility forms imitating ASCII
        lambda m: unicodedata.normalize("NFKC", m.group(0)), text
    )
    text = textnorm.strip_invisible(text)  # 0b. zero-width, bidi, BOM, fillers
    text = _rx("body_escapes").sub("", text)  # 1. escape sequences
    text = _rx("line_breaks").sub("\u23ce", text)  # 2. line breaks -> ⏎
    text = text.replace("\t", " ")  # 3. tab -> space
    text = _rx("controls").sub(_control_picture, text)  # 4. other controls
    if len(text) > limit:  # 5. cut
        text = text[:limit] + "\u2026"
    text = _rx("fake_header").sub("(", text)  # 6. defang (any bracket, any lookalike)
    if text.startswith(("!", "/")):  # 7. no command on line 2
        text = " " + text
    return text


def preview_payload(task_id: str, sender_id: str, ts: str, body: str, limit: int) -> str:
    """``[cafleet msg <task8> from <sender8> <ts>]`` + LF + hardened body (tmux.md §10.3)."""
    header = f"[cafleet msg {task_id[:8]} from {sender_id[:8]} {ts}]"
    return header + "\n" + harden_body(body, limit)


def deliver_preview(pane_id: str, payload: str, *, coding_agent: str = "claude") -> Delivery:
    """Type a preview into ``pane_id`` safely (docs/delivery.md); never raises.

    Gate → bracketed paste through a private named buffer → Enter → verify (Enter re-sent
    only while the text still sits in the input box, at most ``ENTER_TRIES`` in all), under
    the pane's typist lock. The payload is cut to ``PREVIEW_MAX_CHARS``.
    """
    return type_text(pane_id, fit_preview(payload), coding_agent=coding_agent)
