"""The command table: every cafleet command, option and argument (cli.md §1), and for each
command its handler and what ``broker.commands.dispatch`` establishes first.

Handlers are named by ``"module:function"`` strings so that this module, and the parser that
reads it (``broker.grammar``), import nothing beyond the standard library. The options that
several commands share, and the factories every option is made with, are in
``broker.command_table_options``.
"""

from __future__ import annotations

from broker.command_table_options import (
    AGENT_ID,
    BODY,
    BODY_EPILOG,
    CODING_AGENT,
    DESCRIPTION,
    FULL,
    INT_MAX,
    JSON_LOCAL,
    MAX_CAPTURE_LINES,
    MEMBER_ID,
    NAME,
    QUIET,
    QUIET_FULL,
    SESSION_ID,
    SETTINGS_FILE,
    TASK_ID,
    flag,
    integer,
    path,
    ref,
    seconds,
    text,
)
from broker.registry import Arg, Command, Group, Opt


def _in(noun: str, function: str) -> str:
    return f"broker.commands.{noun}:{function}"


#: Session commands that change state (rows or panes): see ``Command.writes``.
WRITING = {
    ("agent", "deregister"),
    ("message", "send"),
    ("message", "broadcast"),
    ("message", "ack"),
    ("message", "cancel"),
    ("member", "create"),
    ("member", "delete"),
    ("member", "send-input"),
    ("member", "exec"),
    ("member", "ping"),
}


def _session_command(noun: str, name: str, help: str, options, args=(), **kw) -> Command:
    """A command that acts in a session as ``--agent-id`` (agent, message, member)."""
    fn = kw.pop("function", name.replace("-", "_"))
    kw.setdefault("writes", (noun, name) in WRITING)
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


def _session_table_command(name: str, help: str, options=(), args=(SESSION_ID,), **kw) -> Command:
    """``session list|show|delete``: the sessions table, no tmux."""
    fn = "list_" if name == "list" else name
    return Command(name, help, options, args, handler=_in("session", fn), database=True, **kw)


def _task_command(name: str, help: str, *, quiet: bool = False) -> Command:
    """``message ack|cancel|show``: one task by ``--task-id``."""
    return _session_command(
        "message",
        name,
        help,
        (AGENT_ID, TASK_ID, FULL, QUIET) if quiet else (AGENT_ID, TASK_ID, FULL),
        validator=_in("message", "check_limit"),
        exclusive=QUIET_FULL if quiet else (),
    )


def _top_command(name: str, help: str, options=(), args=(), *, check=None, **kw) -> Command:
    """A command outside the groups: its handler is the function ``name`` of the module
    ``broker.commands.<name>``, its validator (``check``) another function there."""
    validator = _in(name, check) if check else None
    return Command(name, help, options, args, handler=_in(name, name), validator=validator, **kw)


GROUPS: tuple[Group, ...] = (
    Group(
        "db",
        "Database schema management.",
        (
            Command(
                "init",
                "Create the database or apply pending migrations (idempotent).",
                writes=True,
                handler=_in("db", "init"),
                full_settings=True,
            ),
            Command(
                "export",
                "Write every cafleet row as JSON lines (to move a registry, e.g. to PostgreSQL).",
                (path("--output", help="Write to this new file (mode 0600) instead of stdout."),),
                handler=_in("db", "export"),
                database=True,
            ),
            Command(
                "import",
                "Load a 'db export' into this freshly initialised database, all or nothing.",
                (path("--input", required=True, help="The export file, or '-' for stdin."),),
                handler=_in("db", "import_"),
                database=True,
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
                    text("--label", help="Free-text label."),
                    CODING_AGENT,
                    JSON_LOCAL,
                    FULL,
                ),
                writes=True,
                handler=_in("session", "create"),
                validator=_in("session", "check_label"),
                tmux=_in("session", "session_pane"),
                database=True,
            ),
            _session_table_command("list", "List live sessions.", (JSON_LOCAL,), ()),
            _session_table_command("show", "Show one session (live or deleted).", (JSON_LOCAL,)),
            _session_table_command(
                "delete",
                "Soft-delete a session and deregister its agents.",
                (
                    flag(
                        "--close-members",
                        help="First close every live member's pane as 'member delete' does.",
                    ),
                ),
                writes=True,
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
                    text("--skills", metavar="JSON", help="Skills list as JSON."),
                ),
                needs_session=True,
                writes=True,
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
                    ref("--id", dest="target_id", help="The agent to show."),
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
                    ref("--to", help="Recipient agent id."),
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
                    flag("--all", help="Include acknowledged and canceled."),
                    text(
                        "--since",
                        metavar="TS",
                        help="Only messages at or after this ISO-8601 timestamp.",
                    ),
                    integer("--page-size", minimum=1, ceiling=INT_MAX, help="At most N messages."),
                    seconds(
                        "--wait",
                        maximum=3600,
                        help="Block until a message arrives (0 < S <= 3600).",
                    ),
                    FULL,
                ),
                validator=_in("message", "check_poll"),
            ),
            _task_command("ack", "Acknowledge a message you received.", quiet=True),
            _task_command("cancel", "Cancel a message you sent, before it is acknowledged."),
            _task_command("show", "Show one message of the session."),
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
                    flag("--force", "-f", help="Kill the pane instead of /exit."),
                ),
                tmux="guard",
            ),
            _session_command(
                "member",
                "list",
                "List your members.",
                (
                    AGENT_ID,
                    flag("--activity", help="Add last_sent/last_recv/last_ack/idle/unread."),
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
                    integer(
                        "--lines",
                        "--tail",
                        ceiling=MAX_CAPTURE_LINES,
                        default=30,
                        help="Number of lines (default 30).",
                    ),
                    flag(
                        "--ansi",
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
                    integer("--choice", minimum=1, maximum=3, help="Press 1, 2 or 3."),
                    text("--freetext", help="Pick option 4 and type this text."),
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
    Group(
        "hooks",
        "Install or remove cafleet's hooks in your own Claude Code settings.",
        (
            Command(
                "install",
                "Add cafleet's hooks to a Claude settings file (backup first).",
                (SETTINGS_FILE,),
                handler=_in("hook", "install"),
            ),
            Command(
                "uninstall",
                "Remove cafleet's hooks (byte-identical restore when unedited).",
                (SETTINGS_FILE,),
                handler=_in("hook", "uninstall"),
            ),
        ),
    ),
)

TOP_COMMANDS: tuple[Command, ...] = (
    _top_command(
        "hook",
        "Run by the coding agent's hooks: reads the event's JSON on stdin.",
        (
            flag(
                "--director",
                help="Installed by 'hooks install': skip members (they have their own).",
            ),
            seconds("--timeout", maximum=86400, help="'wait' only: exit 0 after this long."),
        ),
        (Arg("EVENT", "event", help="A Claude Code hook event, or 'wait'."),),
        epilog=(
            "  Events: SessionStart UserPromptSubmit PreToolUse PostToolUse",
            "  PermissionRequest Notification Stop SessionEnd, or 'wait' (the background",
            "  waiter of the Stop hook). Always exits 0 with no output on failure (logged",
            "  to hook.log beside the database); 'wait' exits 2 with new mail on stderr.",
        ),
    ),
    _top_command(
        "doctor",
        "Show the calling tmux pane's identifiers.",
        tmux="pane",
    ),
    _top_command(
        "server",
        "Serve the Django admin web view.",
        (
            text(
                "--host",
                metavar="ADDR",
                help="Address to bind (CAFLEET_BROKER_HOST, default 127.0.0.1).",
            ),
            integer(
                "--port", minimum=1, maximum=65535, help="Port (CAFLEET_BROKER_PORT, default 8000)."
            ),
        ),
        check="check_listen",
        full_settings=True,
        epilog=(
            "  Login: every admin page needs a login. On start the server prints a",
            "  one-time login link (single use, valid 15 minutes) for the local admin",
            "  user, created on first run. Manage users with",
            "  'cafleet django createsuperuser' / 'cafleet django changepassword NAME'.",
        ),
    ),
    _top_command(
        "deliver",
        "Run the delivery worker: offer held inline previews again until they go out.",
        (
            flag(
                "--background",
                help="Start the worker detached (log beside the database) and return.",
            ),
        ),
        check="check_settings",
        database=True,
        epilog=(
            "  One worker per database and host (a lease with a heartbeat). Commands that",
            "  leave a preview held start one in the background by themselves unless",
            "  CAFLEET_DELIVERY_AUTOSTART=0. The worker never types anything of its own: it",
            "  only offers held previews through the pane gate. It exits after",
            "  CAFLEET_DELIVERY_IDLE_EXIT seconds (default 180) with nothing held; a preview",
            "  held longer than CAFLEET_DELIVERY_HOLD_TIMEOUT seconds (default 300) is",
            "  reported once to the member's Director by the Administrator.",
        ),
    ),
    _top_command(
        "django",
        "Run a Django management command on cafleet's database, e.g. "
        "'cafleet django createsuperuser' or 'cafleet django changepassword NAME'.",
        args=(Arg("ARGS", "django_args", required=False, many=True),),
        passthrough=True,
        writes=True,
        full_settings=True,
    ),
)

GLOBAL_OPTIONS: tuple[Opt, ...] = (
    flag("--version", help="Print the version and exit."),
    flag("--json", help="JSON output and JSON errors."),
    flag("--pretty", help="Indent JSON by 2 spaces."),
    text(
        "--session-id",
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
