"""The docs checker: commands and error strings quoted in docs must be real (see test_docs.py).

Used by tests/test_docs.py and tests/test_skills_walkthrough.py.

What counts as a command line
-----------------------------
* A line inside a fenced code block (any language) whose text starts with ``cafleet ``, or
  that pipes into cafleet (``cat <<'BODY' | cafleet ...``: the part after the last ``| ``
  is taken). A line ending in ``\\`` is joined with the next one.
* An inline code span (outside fences) whose text starts with ``cafleet ``.
* ``docs/benchmarks.md`` is a results page: there only lines in shell fences (``bash``,
  ``sh``, ``shell``, ``console`` or no language) count; its inline spans and other
  fences are labels and measurements, not commands.

How a command line is checked
-----------------------------
The line is split with :func:`shlex.split` (``#`` comments dropped), ``cafleet`` removed and
placeholders filled: a whole-word ``<name>`` becomes a sample value (a number for an integer
or float option, the first choice for a choice option, a UUID-shaped value for ``<...-id>``,
otherwise a plain word). Id placeholders must be one of :data:`KNOWN_ID_PLACEHOLDERS`, so a
typo such as ``<sesion-id>`` is caught. The result goes through the real parser,
:func:`broker.grammar.parse`, which must succeed: the command exists and accepts every flag in
the position shown. A line that stops at ``--help`` or at a bare group is refused, and a
command that needs a session must show ``--session-id`` (the standard example shape).

Abbreviation rule: a doc may shorten a command with a standalone ``…`` or ``...`` word (one that
is not the value of an option, unlike ``--text "…"``). Those words are dropped, and the parse
may then fail *only* with ``Missing option '...'.`` or ``Missing argument '...'.``; any other
usage error is still a failure. A line without such a word must parse completely.

How an error string is checked
------------------------------
Every inline code span starting with ``Error: `` must be text the CLI prints. Primary check
against the product source: every string literal and f-string in ``broker/**/*.py`` and
``cafleet_project/**/*.py`` is a template whose f-string fields match any text. The quoted
string (with and without its ``Error: `` prefix, which the entry point adds) matches when

* a template with real literal content (at least :data:`MIN_LITERAL_LETTERS` letters besides
  ``Error:``) fully matches it, the doc's ``<placeholders>`` standing for sample text; or
* the doc's text, placeholders read as wildcards, fully matches a template whose fields are
  sample text (this is how a deliberately generic quote such as ``Error: <message>`` matches).

Secondary check, the same way, against the contract's error texts (``cli.md`` / ``tmux.md`` in
``/work/shared/contract`` or ``$CAFLEET_CONTRACT_DIR``; skipped when the contract is absent).
"""

from __future__ import annotations

import ast
import functools
import os
import re
import shlex
import zlib
from dataclasses import dataclass
from pathlib import Path

from broker.grammar import GLOBAL_OPTIONS, GROUPS, TOP_COMMANDS, UsageError, find_command, parse

REPO = Path(__file__).resolve().parent.parent
DOC_ROOTS = ("skills", "docs")
SOURCE_ROOTS = ("broker", "cafleet_project")
CONTRACT_DIR = Path(os.environ.get("CAFLEET_CONTRACT_DIR", "/work/shared/contract"))

ELLIPSES = ("…", "...")
KNOWN_ID_PLACEHOLDERS = frozenset(
    {
        "session-id",
        "agent-id",
        "other-id",
        "member-id",
        "director-id",
        "task-id",
        "claude-member-id",
        "codex-member-id",
    }
)
SHELL_FENCES = ("", "bash", "sh", "shell", "console")
BANNED_TMUX = ("send-keys", "kill-pane", "list-panes", "capture-pane", "display-message")
MIN_LITERAL_LETTERS = 6


# =============================================================================== extraction
@dataclass(frozen=True)
class Snippet:
    """A command line or an error string quoted in a doc."""

    path: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_PLACEHOLDER = re.compile(r"<([^<>\s][^<>]*)>")


def _lines_with_fences(text: str):
    """Yield ``(lineno, line, fence_lang)``; ``fence_lang`` is None outside fences.

    Fence delimiter lines themselves are yielded with ``fence_lang`` ``"#delim"``.
    """
    fence: tuple[str, str] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = (m.group(1), m.group(2).lower())
            yield lineno, line, "#delim"
            continue
        if (
            fence is not None
            and m
            and m.group(1)[0] == fence[0][0]
            and len(m.group(1)) >= len(fence[0])
            and not m.group(2)
        ):
            fence = None
            yield lineno, line, "#delim"
            continue
        yield lineno, line, None if fence is None else fence[1]


def inline_spans(text: str) -> list[tuple[int, str]]:
    """Code spans outside fences as ``(lineno, content)``.

    A span may run over a soft line break (not a blank line); as in CommonMark its line
    breaks become spaces and one surrounding space on both sides is stripped.
    """
    prose = []
    for _lineno, line, lang in _lines_with_fences(text):
        prose.append("" if lang is not None else line)
    joined = "\n".join(prose)
    spans = []
    for m in _SPAN.finditer(joined):
        content = m.group(2)
        if "\n\n" in content:
            continue
        content = re.sub(r"\s*\n\s*", " ", content)
        if len(content) > 2 and content.startswith(" ") and content.endswith(" "):
            content = content[1:-1]
        spans.append((joined.count("\n", 0, m.start()) + 1, content))
    return spans


def _command_part(line: str) -> str | None:
    stripped = line.strip()
    if stripped.startswith("cafleet "):
        return stripped
    if "| " in stripped:
        tail = stripped.rsplit("| ", 1)[1].strip()
        if tail.startswith("cafleet "):
            return tail
    return None


def extract_commands(text: str, path: str) -> list[Snippet]:
    """Every ``cafleet ...`` command line of a markdown text (module docstring rules)."""
    results_page = Path(path).name == "benchmarks.md"
    found: list[Snippet] = []
    pending: tuple[int, str] | None = None
    for lineno, line, lang in _lines_with_fences(text):
        if lang is None or lang == "#delim":
            pending = None
            continue
        if results_page and lang not in SHELL_FENCES:
            continue
        if pending is not None:
            start, head = pending
            line = head + " " + line.strip()
            lineno = start
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (lineno, line.rstrip()[:-1].rstrip())
            continue
        cmd = _command_part(line)
        if cmd is not None:
            found.append(Snippet(path, lineno, cmd))
    if not results_page:
        for lineno, content in inline_spans(text):
            if content.startswith("cafleet "):
                found.append(Snippet(path, lineno, content))
    return sorted(found, key=lambda s: s.line)


def extract_errors(text: str, path: str) -> list[Snippet]:
    return [
        Snippet(path, lineno, content)
        for lineno, content in inline_spans(text)
        if content.startswith("Error: ")
    ]


def doc_files() -> list[Path]:
    files: list[Path] = []
    for root in DOC_ROOTS:
        files += sorted((REPO / root).rglob("*.md"))
    return files


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _unique_ids(snippets: list[Snippet]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for s in snippets:
        seen[s.where] = seen.get(s.where, 0) + 1
        ids.append(s.where if seen[s.where] == 1 else f"{s.where}#{seen[s.where]}")
    return ids


# ========================================================================= command checking
def _all_options():
    yield from GLOBAL_OPTIONS
    for group in GROUPS:
        for cmd in group.commands:
            yield from cmd.options
    for cmd in TOP_COMMANDS:
        yield from cmd.options


@functools.cache
def _option_table() -> dict[str, object]:
    """Option name → Opt, across every command (names mean the same thing everywhere)."""
    table: dict[str, object] = {}
    for opt in _all_options():
        for name in (*opt.names, *opt.off_names):
            table.setdefault(name, opt)
    return table


def _sample_id(name: str) -> str:
    digits = f"{zlib.crc32(name.encode()):012d}"
    return f"{digits[:8]}-0000-4000-8000-{digits}"


def _fill(token: str, previous: str | None) -> str:
    """Sample value for a whole-word placeholder; other tokens are returned unchanged."""
    m = _PLACEHOLDER.fullmatch(token)
    if not m:
        return token
    name = m.group(1)
    if name.endswith("-id") or name == "id":
        if name not in KNOWN_ID_PLACEHOLDERS:
            raise ValueError(f"unknown id placeholder <{name}>")
        return _sample_id(name)
    opt = _option_table().get(previous or "")
    if opt is not None:
        if opt.kind in ("int", "float"):
            return "1"
        if opt.kind == "choice":
            return opt.choices[0]
    return name.replace(" ", "-") or "x"


def to_argv(command: str) -> tuple[list[str], bool]:
    """``(argv without 'cafleet', abbreviated)`` for a doc command line.

    Raises ValueError for a line shlex cannot split or an unknown id placeholder.
    """
    words = shlex.split(command, comments=True)
    if not words or words[0] != "cafleet":
        raise ValueError("does not start with 'cafleet'")
    argv: list[str] = []
    abbreviated = False
    after_dashdash = False
    for word in words[1:]:
        previous = argv[-1] if argv else None
        takes_value = (
            not after_dashdash
            and previous is not None
            and getattr(_option_table().get(previous), "takes_value", False)
        )
        if word in ELLIPSES and not takes_value:
            abbreviated = True
            continue
        if word == "--":
            after_dashdash = True
        argv.append(_fill(word, previous))
    return argv, abbreviated


_MISSING = re.compile(r"Missing (option|argument) '[^']+'\.")


def check_command(command: str) -> str | None:
    """None if the doc line is a valid cafleet command line, else the problem."""
    try:
        argv, abbreviated = to_argv(command)
    except ValueError as exc:
        return f"cannot read the line: {exc}"
    try:
        parsed = parse(argv)
    except UsageError as exc:
        if abbreviated and _MISSING.fullmatch(exc.message):
            return _session_problem(argv)
        where = " ".join(("cafleet", *exc.path))
        return f"parser rejects it ({where}): Error: {exc.message}"
    if parsed.help_text is not None or parsed.help_to_stderr is not None:
        return "not a complete command (the parser would only print help)"
    if parsed.version:
        return None
    cmd = parsed.command
    if cmd is not None and cmd.needs_session and not parsed.session_id:
        return "command needs --session-id before the group (standard example shape)"
    return None


def _session_problem(argv: list[str]) -> str | None:
    """For abbreviated lines: the command path must exist and show --session-id if needed."""
    words = [w for w in argv if not w.startswith("-")]
    for n in (2, 1):
        for i in range(len(words)):
            cmd = find_command(tuple(words[i : i + n]))
            if cmd is not None:
                if cmd.needs_session and "--session-id" not in argv:
                    return "command needs --session-id before the group (standard example shape)"
                return None
    return "no command found in the abbreviated line"


# =========================================================================== error checking
@dataclass(frozen=True)
class Template:
    """Literal parts and fields (``None``) of a printed message."""

    parts: tuple[str | None, ...]
    origin: str

    @property
    def literal(self) -> str:
        return "".join(p for p in self.parts if p is not None)

    def regex(self) -> re.Pattern:
        return _compile(self.parts)

    def sample(self) -> str:
        return "".join("X" if p is None else p for p in self.parts)

    @property
    def specific(self) -> bool:
        lit = self.literal
        if lit.startswith("Error: "):
            lit = lit[len("Error: ") :]
        return sum(c.isalpha() for c in lit) >= MIN_LITERAL_LETTERS


@functools.cache
def _compile(parts: tuple[str | None, ...]) -> re.Pattern:
    return re.compile("".join(".+?" if p is None else re.escape(p) for p in parts), re.DOTALL)


def _doc_parts(text: str) -> tuple[str | None, ...]:
    parts: list[str | None] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        parts += [text[pos : m.start()], None]
        pos = m.end()
    parts.append(text[pos:])
    return tuple(p for p in parts if p != "")


def _strip_template(parts: list[str | None]) -> tuple[str | None, ...]:
    """Drop trailing newlines (``f"Error: {m}\\n"``)."""
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip("\n")
        if not parts[-1]:
            parts.pop()
    return tuple(parts)


def _joined_parts(node: ast.JoinedStr) -> list[str | None]:
    parts: list[str | None] = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
        elif not parts or parts[-1] is not None:
            parts.append(None)
    return parts


@functools.cache
def source_templates() -> tuple[Template, ...]:
    """Every string literal and f-string of the product source, as templates."""
    found: list[Template] = []
    for root in SOURCE_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            # Constants inside f-strings are visited as parts of their JoinedStr only.
            inner = {
                id(v)
                for node in ast.walk(tree)
                if isinstance(node, ast.JoinedStr)
                for v in node.values
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr):
                    parts = _joined_parts(node)
                elif (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in inner
                ):
                    parts = [node.value]
                else:
                    continue
                parts = _strip_template(parts)
                if parts:
                    found.append(Template(parts, f"{_rel(path)}:{node.lineno}"))
    return tuple(found)


def _contract_error_texts(text: str) -> list[str]:
    texts = [c for _n, c in inline_spans(text) if c.startswith("Error: ")]
    for _n, line, lang in _lines_with_fences(text):
        if lang not in (None, "#delim") and line.strip().startswith("Error: "):
            texts.append(line.strip())
    # cli.md §2.5 lists the usage-error texts without their "Error: " prefix.
    section = re.search(r"^### 2\.5.*?(?=^### )", text, re.M | re.S)
    if section:
        for row in section.group(0).splitlines():
            if row.startswith("|"):
                cells = row.split("|")
                if len(cells) > 2:
                    texts += ["Error: " + c for c in re.findall(r"`([^`]+)`", cells[2])]
    return texts


@functools.cache
def contract_templates() -> tuple[Template, ...]:
    found = []
    for name in ("cli.md", "tmux.md"):
        path = CONTRACT_DIR / name
        if path.exists():
            for text in _contract_error_texts(path.read_text(encoding="utf-8")):
                found.append(Template(_doc_parts(text), f"{name}"))
    return tuple(found)


def find_template(error: str, templates) -> Template | None:
    """The template that prints the doc's ``error`` (rules in the module docstring)."""
    candidates = [error]
    if error.startswith("Error: "):
        candidates.append(error[len("Error: ") :])
    for quoted in candidates:
        doc = Template(_doc_parts(quoted), "doc")
        filled = doc.sample()
        doc_rx = doc.regex() if None in doc.parts else None
        for template in templates:
            if template.specific and template.regex().fullmatch(filled):
                return template
            if doc_rx is not None and doc_rx.fullmatch(template.sample()):
                return template
            if doc_rx is None and None not in template.parts and template.literal == quoted:
                return template
    return None


def check_error(error: str) -> str | None:
    if find_template(error, source_templates()) is None:
        return "no string literal or f-string in broker/ or cafleet_project/ prints it"
    return None


# ========================================================================= whole-doc checker
def check_document(text: str, path: str) -> list[str]:
    """Every problem of one markdown text: bad commands, unknown error strings, raw tmux."""
    problems = []
    for snip in extract_commands(text, path):
        problem = check_command(snip.text)
        if problem:
            problems.append(f"{snip.where}: {snip.text!r}: {problem}")
    for snip in extract_errors(text, path):
        problem = check_error(snip.text)
        if problem:
            problems.append(f"{snip.where}: {snip.text!r}: {problem}")
    if path.startswith("skills/"):
        for word in BANNED_TMUX:
            if word in text:
                problems.append(f"{path}: raw tmux subcommand {word!r}")
    return problems
