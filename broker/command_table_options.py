"""The option vocabulary of the command table: one factory per kind of option, and the
options that several commands share (``--agent-id``, ``--full``, the message body, ...).

An option's ``dest`` is its first name without the dashes (``--page-size`` → ``page_size``)
unless given. Standard library only, like the table that uses it.
"""

from __future__ import annotations

from broker.registry import Arg, Opt

#: Every integer option has a maximum (or, where the contract documents none, a ceiling),
#: so that a huge number is a range error (exit 2) instead of a failure deep down (SQLite's
#: LIMIT takes at most a 64-bit integer).
INT_MAX = 2**31 - 1
#: ``member capture --lines``: far more than any tmux history holds.
MAX_CAPTURE_LINES = 1_000_000


def _opt(names: tuple[str, ...], kind: str, help: str, dest: str | None = None, **kw) -> Opt:
    return Opt(names, dest or names[0].lstrip("-").replace("-", "_"), kind=kind, help=help, **kw)


def flag(*names: str, help: str, **kw) -> Opt:
    """A boolean option, set by its presence (``--full``)."""
    return _opt(names, "flag", help, **kw)


def text(*names: str, help: str, **kw) -> Opt:
    """An option taking one string (metavar ``TEXT`` unless given)."""
    return _opt(names, "str", help, **kw)


def path(*names: str, help: str, **kw) -> Opt:
    """An option naming a file (metavar ``PATH``)."""
    return _opt(names, "str", help, metavar="PATH", **kw)


def ref(*names: str, help: str, **kw) -> Opt:
    """A required id option (``--agent-id ID``): a full UUID or a unique prefix."""
    return _opt(names, "str", help, required=True, metavar="ID", **kw)


def integer(*names: str, help: str, **kw) -> Opt:
    """An integer option; bounds by ``minimum``/``maximum``/``ceiling``."""
    return _opt(names, "int", help, metavar="INTEGER", **kw)


def seconds(*names: str, help: str, maximum: float) -> Opt:
    """A duration in seconds, ``0 < S <= maximum``."""
    return _opt(names, "float", help, minimum=0, maximum=maximum, min_open=True, metavar="SECONDS")


AGENT_ID = ref("--agent-id", help="Your own agent id (full UUID or a unique 8+ character prefix).")
MEMBER_ID = ref("--member-id", help="The member's agent id (full or 8+ character prefix).")
TASK_ID = ref("--task-id", help="Task (message) id, full or 8+ character prefix.")
FULL = flag("--full", help="Show every field; cut nothing.")
QUIET = flag("--quiet", help="Print only the 8-character id.")
JSON_LOCAL = flag("--json", help="JSON output (same as the global --json).")
CODING_AGENT = Opt(
    ("--coding-agent",),
    "coding_agent",
    kind="choice",
    choices=("claude", "codex"),
    metavar="[claude|codex]",
    default="claude",
    help="Coding agent backend (default: claude).",
)
NAME = text("--name", required=True, help="Agent name.")
DESCRIPTION = text("--description", required=True, help="Agent description.")
SETTINGS_FILE = text(
    "--settings-file",
    metavar="PATH",
    help="Claude settings file (default ~/.claude/settings.json).",
)

#: The message body: exactly one of these (``message send|broadcast``).
BODY = (
    text("--text", help="Message body, or '-' to read it from stdin."),
    path("--text-file", help="Read the message body from this file."),
)
BODY_EPILOG = ("  Body: exactly one of --text TEXT, --text - (stdin), --text-file PATH.",)
QUIET_FULL = (("quiet", "full"),)
SESSION_ID = Arg("SESSION_ID", "session_ref")
