"""Reading an agent's screen: what one ``capture-pane -p -e`` says (docs/delivery.md §2).

A pure function of the captured text (:func:`classify_screen`): no tmux call, no subprocess.
:mod:`broker.tmux` takes the capture; the pane gate (:mod:`broker.panes`) and the typist
(:mod:`broker.typist`) read it here. Standard library only; regular expressions are compiled
on first use.
"""

import functools
import re
from dataclasses import dataclass

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
_DIM, _REVERSE = 1, 2

_PATTERNS = {
    # an SGR sequence (group 1: its parameters), any other escape sequence, or plain text
    "sgr_or_char": (
        r"\x1b\[([0-9;:]*)m|\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\x1b[^\[]?|([^\x1b]+)"
    ),
    # a numbered option after a prompt character (``› 1. Yes, proceed``)
    "numbered": r"\d+\.\s",
}


@functools.cache
def _rx(name: str) -> re.Pattern:
    return re.compile(_PATTERNS[name])


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
    flags = 0
    lines: list[tuple[str, list[int]]] = []
    for raw in capture.split("\n"):
        chars: list[str] = []
        attrs: list[int] = []
        for match in _rx("sgr_or_char").finditer(raw.rstrip("\r")):
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
            if _rx("numbered").match(text[len(prompt) :].strip(_SPACES)):
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
