"""The cafleet command grammar and its parser: the one command registry.

One declarative table describes every command, option and argument of the CLI
(``../shared/contract/cli.md`` §1), and for each command its handler and what it needs
(see :class:`Command`). The same table drives:

* the entry point's parser (``parse``), which answers ``--help``/``--version`` and every
  usage error without importing Django (``manage.py cafleet ...`` goes through it too);
* ``broker.commands.dispatch``, which runs the contract's checks in order, then the handler;
* the docs tests, which check every ``cafleet ...`` line in ``skills/`` against it, and the
  fuzz tests, which draw their commands and options from it.

Error texts follow the contract's click-compatible wording (§2.5). This module imports
nothing beyond the standard library so that usage errors stay cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class UsageError(Exception):
    """A command-line usage error (exit 2)."""

    exit_code = 2
    json_mode = False

    def __init__(self, message: str, path: tuple[str, ...] = (), pattern: str = "[OPTIONS]"):
        super().__init__(message)
        self.message = message
        self.path = path
        self.pattern = pattern

    def banner(self) -> str:
        cmd = " ".join(("cafleet", *self.path))
        return f"Usage: {cmd} {self.pattern}\nTry '{cmd} --help' for help.\n"


@dataclass(frozen=True)
class Opt:
    """One option. ``names[0]`` is the canonical name; ``dest`` the key in the result."""

    names: tuple[str, ...]
    dest: str
    kind: str = "str"  # str | int | float | choice | flag
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    metavar: str = "TEXT"
    help: str = ""
    # For boolean pairs such as --ansi/--no-ansi: names that set the flag to False.
    off_names: tuple[str, ...] = ()
    default: object = None

    @property
    def takes_value(self) -> bool:
        return self.kind != "flag"

    def describe_range(self) -> str:
        lo, hi = self.minimum, self.maximum
        fmt = _fmt_num
        if lo is not None and hi is not None:
            op = "<" if self.min_open else "<="
            return f"{fmt(lo)}{op}x<={fmt(hi)}"
        if lo is not None:
            return f"x{'>' if self.min_open else '>='}{fmt(lo)}"
        return f"x<={fmt(hi)}"


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass(frozen=True)
class Arg:
    """A positional argument; ``many`` collects every remaining word (``PROMPT...``)."""

    name: str
    dest: str
    required: bool = True
    many: bool = False
    help: str = ""


@dataclass(frozen=True)
class Command:
    """One command: its grammar, its handler and what ``broker.commands.dispatch`` must
    establish before the handler runs (cli.md §2.8, in this order):

    * ``needs_session``: ``--session-id`` is required (step 2), resolved after readiness;
    * ``validator``: ``"module:function"`` run on the call (step 3); its result is
      ``call.checked``;
    * ``tmux``: the environment prerequisite (step 4): ``"guard"`` (binary and ``TMUX``),
      ``"pane"`` (guard, then the caller's pane as ``call.caller``) or a
      ``"module:function"`` whose result is ``call.caller``;
    * ``database``: the database is ready (step 5; implied by ``needs_session``);
    * ``agent``: ``--agent-id`` is resolved to ``call.agent_id`` (step 6);
    * ``full_settings``: Django runs with the admin stack, not the lean settings.

    Handler names are strings so that this module stays free of Django imports.
    """

    name: str
    help: str
    options: tuple[Opt, ...] = ()
    args: tuple[Arg, ...] = ()
    needs_session: bool = False
    # Every word after the command name is passed on untouched (``cafleet django ...``).
    passthrough: bool = False
    handler: str = ""
    validator: str | None = None
    tmux: str | None = None
    database: bool = False
    agent: bool = False
    full_settings: bool = False
    # Pairs of option dests that may not both be set (a usage error, exit 2).
    exclusive: tuple[tuple[str, str], ...] = ()
    # Extra paragraphs of the command's --help, after its one-line description.
    epilog: tuple[str, ...] = ()

    @property
    def pattern(self) -> str:
        if not self.args:
            return "[OPTIONS]"
        parts = ["[OPTIONS]"]
        for a in self.args:
            parts.append(f"[{a.name}]..." if a.many else a.name)
        return " ".join(parts)


@dataclass(frozen=True)
class Group:
    name: str
    help: str
    commands: tuple[Command, ...] = field(default_factory=tuple)

    def get(self, name: str) -> Command | None:
        for c in self.commands:
            if c.name == name:
                return c
        return None


# --------------------------------------------------------------------------- options
AGENT_ID = Opt(
    ("--agent-id",),
    "agent_id",
    required=True,
    metavar="ID",
    help="Your own agent id (full UUID or a unique 8+ character prefix).",
)
MEMBER_ID = Opt(
    ("--member-id",),
    "member_id",
    required=True,
    metavar="ID",
    help="The member's agent id (full or 8+ character prefix).",
)
TASK_ID = Opt(
    ("--task-id",),
    "task_id",
    required=True,
    metavar="ID",
    help="Task (message) id, full or 8+ character prefix.",
)
FULL = Opt(("--full",), "full", kind="flag", help="Show every field; cut nothing.")
QUIET = Opt(("--quiet",), "quiet", kind="flag", help="Print only the 8-character id.")
JSON_LOCAL = Opt(("--json",), "json", kind="flag", help="JSON output (same as the global --json).")
CODING_AGENT = Opt(
    ("--coding-agent",),
    "coding_agent",
    kind="choice",
    choices=("claude", "codex"),
    metavar="[claude|codex]",
    default="claude",
    help="Coding agent backend (default: claude).",
)
TEXT = Opt(("--text",), "text", metavar="TEXT", help="Message body, or '-' to read it from stdin.")
TEXT_FILE = Opt(
    ("--text-file",), "text_file", metavar="PATH", help="Read the message body from this file."
)
NAME = Opt(("--name",), "name", required=True, help="Agent name.")
DESCRIPTION = Opt(("--description",), "description", required=True, help="Agent description.")

BODY = (TEXT, TEXT_FILE)
QUIET_FULL = (("quiet", "full"),)
BODY_EPILOG = ("  Body: exactly one of --text TEXT, --text - (stdin), --text-file PATH.",)


def _in(noun: str, function: str) -> str:
    return f"broker.commands.{noun}:{function}"


def _session_command(noun: str, name: str, help: str, options, args=(), **kw) -> Command:
    """A command that acts in a session as ``--agent-id`` (agent, message, member)."""
    fn = kw.pop("function", name.replace("-", "_"))
    return Command(
        name,
        help,
        tuple(options),
        tuple(args),
        needs_session=True,
        agent=True,
        handler=_in(noun, fn),
        **kw,
    )


GROUPS: tuple[Group, ...] = (
    Group(
        "db",
        "Database schema management.",
        (
            Command(
                "init",
                "Create the database or apply pending migrations (idempotent).",
                handler=_in("db", "init"),
                full_settings=True,
            ),
        ),
    ),
    Group(
        "session",
        "Create, list, show and delete sessions.",
        (
            Command(
                "create",
                "Create a session bound to the calling tmux pane.",
                (
                    Opt(("--label",), "label", help="Free-text label."),
                    CODING_AGENT,
                    JSON_LOCAL,
                    FULL,
                ),
                handler=_in("session", "create"),
                validator=_in("session", "check_label"),
                tmux=_in("session", "session_pane"),
                database=True,
            ),
            Command(
                "list",
                "List live sessions.",
                (JSON_LOCAL,),
                handler=_in("session", "list_"),
                database=True,
            ),
            Command(
                "show",
                "Show one session (live or deleted).",
                (JSON_LOCAL,),
                (Arg("SESSION_ID", "session_ref"),),
                handler=_in("session", "show"),
                database=True,
            ),
            Command(
                "delete",
                "Soft-delete a session and deregister its agents.",
                (),
                (Arg("SESSION_ID", "session_ref"),),
                handler=_in("session", "delete"),
                database=True,
            ),
        ),
    ),
    Group(
        "agent",
        "Register, list, show and deregister agents.",
        (
            Command(
                "register",
                "Register an agent (no pane, no previews).",
                (
                    NAME,
                    DESCRIPTION,
                    Opt(("--skills",), "skills", metavar="JSON", help="Skills list as JSON."),
                ),
                needs_session=True,
                handler=_in("agent", "register"),
                validator=_in("agent", "check_register"),
            ),
            _session_command("agent", "deregister", "Deregister an agent.", (AGENT_ID,)),
            _session_command(
                "agent",
                "list",
                "List active agents of the session.",
                (AGENT_ID, FULL),
                function="list_",
            ),
            _session_command(
                "agent",
                "show",
                "Show one active agent.",
                (
                    AGENT_ID,
                    Opt(
                        ("--id",),
                        "target_id",
                        required=True,
                        metavar="ID",
                        help="The agent to show.",
                    ),
                    FULL,
                ),
            ),
        ),
    ),
    Group(
        "message",
        "Send, broadcast, poll, acknowledge, cancel and show messages.",
        (
            _session_command(
                "message",
                "send",
                "Send a message to one agent.",
                (
                    AGENT_ID,
                    Opt(("--to",), "to", required=True, metavar="ID", help="Recipient agent id."),
                    *BODY,
                    FULL,
                    QUIET,
                ),
                validator=_in("message", "check_body"),
                exclusive=QUIET_FULL,
                epilog=BODY_EPILOG,
            ),
            _session_command(
                "message",
                "broadcast",
                "Send a message to every active agent of the session.",
                (AGENT_ID, *BODY, FULL),
                validator=_in("message", "check_body"),
                epilog=BODY_EPILOG,
            ),
            _session_command(
                "message",
                "poll",
                "List messages in your inbox (unread only by default).",
                (
                    AGENT_ID,
                    Opt(("--all",), "all", kind="flag", help="Include acknowledged and canceled."),
                    Opt(
                        ("--since",),
                        "since",
                        metavar="TS",
                        help="Only messages at or after this ISO-8601 timestamp.",
                    ),
                    Opt(
                        ("--page-size",),
                        "page_size",
                        kind="int",
                        minimum=1,
                        metavar="INTEGER",
                        help="At most N messages.",
                    ),
                    Opt(
                        ("--wait",),
                        "wait",
                        kind="float",
                        minimum=0,
                        maximum=3600,
                        min_open=True,
                        metavar="SECONDS",
                        help="Block until a message arrives (0 < S <= 3600).",
                    ),
                    FULL,
                ),
                validator=_in("message", "check_poll"),
            ),
            _session_command(
                "message",
                "ack",
                "Acknowledge a message you received.",
                (AGENT_ID, TASK_ID, FULL, QUIET),
                validator=_in("message", "check_limit"),
                exclusive=QUIET_FULL,
            ),
            _session_command(
                "message",
                "cancel",
                "Cancel a message you sent, before it is acknowledged.",
                (AGENT_ID, TASK_ID, FULL),
                validator=_in("message", "check_limit"),
            ),
            _session_command(
                "message",
                "show",
                "Show one message of the session.",
                (AGENT_ID, TASK_ID, FULL),
                validator=_in("message", "check_limit"),
            ),
        ),
    ),
    Group(
        "member",
        "Director commands: spawn, inspect, drive and delete member panes.",
        (
            _session_command(
                "member",
                "create",
                "Register a member and spawn its coding agent in a new pane.",
                (AGENT_ID, NAME, DESCRIPTION, CODING_AGENT, FULL),
                (
                    Arg(
                        "PROMPT",
                        "prompt",
                        required=False,
                        many=True,
                        help="Custom spawn prompt, after --.",
                    ),
                ),
                validator=_in("member", "check_create"),
                tmux=_in("member", "preflight"),
                epilog=(
                    "  Words after -- form the spawn prompt; placeholders {session_id},",
                    "  {agent_id}, {director_agent_id}; double literal braces ({{, }}).",
                ),
            ),
            _session_command(
                "member",
                "delete",
                "Send /exit to a member's pane, wait, and deregister it.",
                (
                    AGENT_ID,
                    MEMBER_ID,
                    Opt(
                        ("--force", "-f"),
                        "force",
                        kind="flag",
                        help="Kill the pane instead of /exit.",
                    ),
                ),
                tmux="guard",
            ),
            _session_command(
                "member",
                "list",
                "List your members.",
                (
                    AGENT_ID,
                    Opt(
                        ("--activity",),
                        "activity",
                        kind="flag",
                        help="Add last_sent/last_recv/last_ack/idle/unread.",
                    ),
                ),
                function="list_",
            ),
            _session_command(
                "member",
                "capture",
                "Print the last lines of a member's pane.",
                (
                    AGENT_ID,
                    MEMBER_ID,
                    Opt(
                        ("--lines", "--tail"),
                        "lines",
                        kind="int",
                        metavar="INTEGER",
                        default=30,
                        help="Number of lines (default 30).",
                    ),
                    Opt(
                        ("--ansi",),
                        "ansi",
                        kind="flag",
                        off_names=("--no-ansi",),
                        default=False,
                        help="Keep escape sequences (default --no-ansi cleans them).",
                    ),
                    FULL,
                ),
                tmux="guard",
            ),
            _session_command(
                "member",
                "send-input",
                "Answer a member's AskUserQuestion menu.",
                (
                    AGENT_ID,
                    MEMBER_ID,
                    Opt(
                        ("--choice",),
                        "choice",
                        kind="int",
                        minimum=1,
                        maximum=3,
                        metavar="INTEGER",
                        help="Press 1, 2 or 3.",
                    ),
                    Opt(("--freetext",), "freetext", help="Pick option 4 and type this text."),
                ),
                validator=_in("member", "check_send_input"),
                tmux="guard",
            ),
            _session_command(
                "member",
                "exec",
                "Run a shell command in a member's pane ('! <command>').",
                (AGENT_ID, MEMBER_ID),
                (Arg("COMMAND", "command"),),
                function="exec_",
                validator=_in("member", "check_exec"),
                tmux="guard",
            ),
            _session_command(
                "member",
                "ping",
                "Type the poll command into a member's pane.",
                (AGENT_ID, MEMBER_ID, QUIET),
                tmux="guard",
            ),
        ),
    ),
)

TOP_COMMANDS: tuple[Command, ...] = (
    Command(
        "doctor",
        "Show the calling tmux pane's identifiers.",
        handler=_in("doctor", "doctor"),
        tmux="pane",
    ),
    Command(
        "server",
        "Serve the Django admin web view.",
        (
            Opt(
                ("--host",),
                "host",
                metavar="ADDR",
                help="Address to bind (CAFLEET_BROKER_HOST, default 127.0.0.1).",
            ),
            Opt(
                ("--port",),
                "port",
                kind="int",
                minimum=1,
                maximum=65535,
                metavar="INTEGER",
                help="Port (CAFLEET_BROKER_PORT, default 8000).",
            ),
        ),
        handler=_in("server", "server"),
        validator=_in("server", "check_listen"),
        full_settings=True,
        epilog=(
            "  Login: every admin page needs a login. On start the server prints a",
            "  one-time login link (single use, valid 15 minutes) for the local admin",
            "  user, created on first run. Manage users with",
            "  'cafleet django createsuperuser' / 'cafleet django changepassword NAME'.",
        ),
    ),
    Command(
        "django",
        "Run a Django management command on cafleet's database, e.g. "
        "'cafleet django createsuperuser' or 'cafleet django changepassword NAME'.",
        args=(Arg("ARGS", "django_args", required=False, many=True),),
        passthrough=True,
        handler=_in("django", "django"),
        full_settings=True,
    ),
)

GLOBAL_OPTIONS: tuple[Opt, ...] = (
    Opt(("--version",), "version", kind="flag", help="Print the version and exit."),
    Opt(("--json",), "json", kind="flag", help="JSON output and JSON errors."),
    Opt(("--pretty",), "pretty", kind="flag", help="Indent JSON by 2 spaces."),
    Opt(
        ("--session-id",),
        "session_id",
        metavar="ID",
        help="Session to act in (required by agent, message and member commands).",
    ),
)

GROUP_MAP = {g.name: g for g in GROUPS}
TOP_MAP = {c.name: c for c in TOP_COMMANDS}


def find_command(path: tuple[str, ...]) -> Command | None:
    """The Command for ``("message", "send")`` or ``("doctor",)``, else None."""
    if len(path) == 1:
        return TOP_MAP.get(path[0])
    if len(path) == 2 and path[0] in GROUP_MAP:
        return GROUP_MAP[path[0]].get(path[1])
    return None


# --------------------------------------------------------------------------- results
@dataclass
class Parsed:
    path: tuple[str, ...] = ()
    json: bool = False
    pretty: bool = False
    session_id: str | None = None
    version: bool = False
    help_text: str | None = None  # set when --help was asked: print it to stdout, exit 0
    help_to_stderr: str | None = None  # no command given: print to stderr, exit 2
    options: dict = field(default_factory=dict)

    @property
    def command(self) -> Command | None:
        return find_command(self.path)


# --------------------------------------------------------------------------- help text
def _opt_line(o: Opt) -> tuple[str, str]:
    names = ", ".join(o.names)
    if o.off_names:
        names = " / ".join((names, *o.off_names))
    if o.takes_value:
        names += f" {o.metavar}"
    extra = []
    if o.required:
        extra.append("required")
    if o.kind == "choice":
        extra.append("one of " + ", ".join(o.choices))
    if o.kind in ("int", "float") and (o.minimum is not None or o.maximum is not None):
        extra.append(o.describe_range())
    text = o.help + (f" [{'; '.join(extra)}]" if extra else "")
    return names, text


def _format_rows(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(a) for a, _ in rows), default=0)
    return [f"  {a.ljust(width)}  {b}".rstrip() for a, b in rows]


def help_for(path: tuple[str, ...]) -> str:
    """Help text for the top level, a group or a command."""
    lines: list[str] = []
    if not path:
        lines += [
            "Usage: cafleet [OPTIONS] COMMAND [ARGS]...",
            "",
            "  cafleet: local message broker and agent registry for coding agents in tmux.",
            "",
            "  Global options go before the command; command options after it.",
            "",
            "Options:",
        ]
        lines += _format_rows(
            [_opt_line(o) for o in GLOBAL_OPTIONS] + [("--help", "Show this message and exit.")]
        )
        lines += ["", "Commands:"]
        rows = [(g.name, g.help) for g in GROUPS] + [(c.name, c.help) for c in TOP_COMMANDS]
        lines += _format_rows(sorted(rows))
        lines += [
            "",
            "Environment: CAFLEET_DATABASE_URL, CAFLEET_MAX_TEXT_LEN, "
            "CAFLEET_MAX_BODY_BYTES, CAFLEET_BROKER_HOST, CAFLEET_BROKER_PORT, "
            "CAFLEET_DEBUG.",
        ]
        return "\n".join(lines) + "\n"
    if len(path) == 1 and path[0] in GROUP_MAP:
        g = GROUP_MAP[path[0]]
        lines += [
            f"Usage: cafleet {g.name} [OPTIONS] COMMAND [ARGS]...",
            "",
            f"  {g.help}",
            "",
            "Options:",
        ]
        lines += _format_rows([("--help", "Show this message and exit.")])
        lines += ["", "Commands:"]
        lines += _format_rows([(c.name, c.help) for c in g.commands])
        return "\n".join(lines) + "\n"
    cmd = find_command(path)
    assert cmd is not None
    prefix = "cafleet --session-id <session-id> " if cmd.needs_session else "cafleet "
    lines += [f"Usage: cafleet {' '.join(path)} {cmd.pattern}", "", f"  {cmd.help}"]
    if cmd.needs_session:
        lines += ["", f"  Run as: {prefix}{' '.join(path)} ..."]
    if cmd.epilog:
        lines += ["", *cmd.epilog]
    lines += ["", "Options:"]
    rows = [_opt_line(o) for o in cmd.options] + [("--help", "Show this message and exit.")]
    lines += _format_rows(rows)
    if cmd.args:
        lines += ["", "Arguments:"]
        lines += _format_rows(
            [
                (
                    a.name + ("..." if a.many else ""),
                    a.help or ("required" if a.required else "optional"),
                )
                for a in cmd.args
            ]
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- conversion
def convert(opt: Opt, raw: str, path: tuple[str, ...], pattern: str):
    name = opt.names[0]
    if opt.kind == "str":
        return raw
    if opt.kind == "choice":
        if raw not in opt.choices:
            choices = ", ".join(f"'{c}'" for c in opt.choices)
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not one of {choices}.", path, pattern
            )
        return raw
    if opt.kind == "int":
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not a valid integer.", path, pattern
            ) from None
    else:  # float
        try:
            value = float(raw.strip())
        except ValueError:
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not a valid float.", path, pattern
            ) from None
    _check_range(opt, value, path, pattern)
    return value


def _check_range(opt: Opt, value, path, pattern) -> None:
    bad = isinstance(value, float) and math.isnan(value)
    if opt.minimum is not None:
        bad = bad or (value <= opt.minimum if opt.min_open else value < opt.minimum)
    if opt.maximum is not None:
        bad = bad or value > opt.maximum
    if bad:
        raise UsageError(
            f"Invalid value for '{opt.names[0]}': {value} is not in the range "
            f"{opt.describe_range()}.",
            path,
            pattern,
        )


# --------------------------------------------------------------------------- parsing
def _index(options: tuple[Opt, ...]) -> dict[str, tuple[Opt, bool]]:
    table: dict[str, tuple[Opt, bool]] = {}
    for o in options:
        for n in o.names:
            table[n] = (o, True)
        for n in o.off_names:
            table[n] = (o, False)
    return table


def _scan_options(
    argv: list[str],
    options: tuple[Opt, ...],
    path: tuple[str, ...],
    pattern: str,
    interspersed: bool,
):
    """Split argv into (values by dest, positionals, rest). Raises UsageError.

    With ``interspersed`` false (groups), scanning stops at the first positional word and
    the rest is returned untouched. ``--help`` anywhere among the options wins.
    """
    table = _index(options)
    raw: dict[str, object] = {}
    seen: list[Opt] = []
    positionals: list[str] = []
    i = 0
    if any(a == "--help" for a in _options_region(argv, table, interspersed)):
        return None, [], []
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            positionals.extend(argv[i + 1 :])
            return raw, positionals, []
        if tok.startswith("-") and tok != "-" and len(tok) > 1:
            name, eq, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
            if name not in table:
                raise UsageError(f"No such option: {name}", path, pattern)
            opt, on = table[name]
            if opt.takes_value:
                if eq:
                    value = inline
                else:
                    if i + 1 >= len(argv):
                        raise UsageError(f"Option '{name}' requires an argument.", path, pattern)
                    i += 1
                    value = argv[i]
                raw[opt.dest] = (opt, value)
            else:
                if eq:
                    raise UsageError(f"Option '{name}' does not take a value.", path, pattern)
                raw[opt.dest] = (opt, on)
            if opt not in seen:
                seen.append(opt)
            i += 1
            continue
        if not interspersed:
            return raw, [], argv[i:]
        positionals.append(tok)
        i += 1
    return raw, positionals, []


def _options_region(argv: list[str], table: dict, interspersed: bool):
    """Tokens in option position (not values, not after ``--``, not past a group's word)."""
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok == "--":
            return
        if not tok.startswith("-") or tok == "-":
            if not interspersed:
                return
            continue
        entry = table.get(tok)
        skip = bool(entry and entry[0].takes_value)
        yield tok


def _finish(cmd: Command, raw: dict, positionals: list[str], path: tuple[str, ...]) -> dict:
    pattern = cmd.pattern
    values: dict[str, object] = {}
    for o in cmd.options:
        if o.dest in raw:
            opt, value = raw[o.dest]
            values[o.dest] = convert(opt, value, path, pattern) if opt.takes_value else value
        elif o.required:
            raise UsageError(f"Missing option '{o.names[0]}'.", path, pattern)
        else:
            values[o.dest] = o.default if o.kind != "flag" else bool(o.default)
    rest = list(positionals)
    for a in cmd.args:
        if a.many:
            values[a.dest] = tuple(rest)
            rest = []
        elif rest:
            values[a.dest] = rest.pop(0)
        elif a.required:
            raise UsageError(f"Missing argument '{a.name}'.", path, pattern)
        else:
            values[a.dest] = None
    if rest:
        word = "argument" if len(rest) == 1 else "arguments"
        raise UsageError(f"Got unexpected extra {word} ({' '.join(rest)})", path, pattern)
    for first, second in cmd.exclusive:
        if values.get(first) and values.get(second):
            raise UsageError(f"--{first} and --{second} are mutually exclusive.", path, pattern)
    return values


def parse(argv: list[str]) -> Parsed:
    """Parse a full cafleet argv (without the program name).

    A UsageError carries ``json_mode``: whether a valid global ``--json`` was seen before
    the error, so the entry point can print it in JSON form (cli.md §2.4).
    """
    result = Parsed()
    try:
        return _parse(argv, result)
    except UsageError as exc:
        exc.json_mode = result.json
        raise


def _parse(argv: list[str], result: Parsed) -> Parsed:
    top_pattern = "[OPTIONS] COMMAND [ARGS]..."
    raw, _, rest = _scan_options(argv, GLOBAL_OPTIONS, (), top_pattern, interspersed=False)
    if raw is None:
        result.help_text = help_for(())
        return result
    for dest, (_opt, value) in raw.items():
        setattr(result, dest, value)
    if result.version:
        return result
    if not rest:
        result.help_to_stderr = help_for(())
        return result
    name, rest = rest[0], rest[1:]
    if name in TOP_MAP:
        return _parse_command(result, (name,), rest)
    if name not in GROUP_MAP:
        raise UsageError(f"No such command '{name}'.", (), top_pattern)
    group_pattern = "[OPTIONS] COMMAND [ARGS]..."
    graw, _, grest = _scan_options(rest, (), (name,), group_pattern, interspersed=False)
    if graw is None:
        result.help_text = help_for((name,))
        return result
    if not grest:
        result.help_to_stderr = help_for((name,))
        return result
    sub = grest[0]
    if GROUP_MAP[name].get(sub) is None:
        raise UsageError(f"No such command '{sub}'.", (name,), group_pattern)
    return _parse_command(result, (name, sub), grest[1:])


def _parse_command(result: Parsed, path: tuple[str, ...], argv: list[str]) -> Parsed:
    cmd = find_command(path)
    assert cmd is not None
    result.path = path
    if cmd.passthrough:
        if argv == ["--help"]:
            result.help_text = help_for(path)
        result.options = {cmd.args[0].dest: tuple(argv)}
        return result
    raw, positionals, _ = _scan_options(argv, cmd.options, path, cmd.pattern, interspersed=True)
    if raw is None:
        result.help_text = help_for(path)
        return result
    result.options = _finish(cmd, raw, positionals, path)
    if result.options.get("json"):
        result.json = True
    return result
