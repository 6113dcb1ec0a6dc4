"""Helpers shared by the command tests: argv builders (for the in-process ``cli`` fixture and
for subprocess runs through ``FileDB.run`` alike), the in-process ``send`` shortcut, and
typing a command into a real pane of the injection stage."""

from tests.conftest import CAFLEET

# The columns of a task row, in the order ``--full`` output and the table list them.
TASK_COLUMNS = (
    "task_id context_id from_agent_id to_agent_id type created_at status_state "
    "status_timestamp origin_task_id text"
).split()


def unoffered(state, reason):
    """The JSON ``delivery`` of a message whose preview was not offered: no channel, no times."""
    return {"state": state, "reason": reason, "channel": None, "offered_at": None, "seen_at": None}


def sid_args(fleet):
    """The ``--session-id`` option naming the fleet's session."""
    return ("--session-id", fleet.sid)


def as_agent(fleet, agent, command, *options):
    """The argv of ``cafleet --session-id <fleet> <command> --agent-id <agent> <options>``,
    where ``command`` is a command path such as ``"message poll"``."""
    return [*sid_args(fleet), *command.split(), "--agent-id", agent, *options]


def send_argv(fleet, to, text="hello", *options, sender=None):
    """The argv of ``message send`` from ``sender`` (the fleet's ``director`` by default) to
    ``to``; ``text`` None leaves ``--text`` out. ``fleet``: anything with ``sid`` and
    ``director`` (a ``Fleet``, the fuzz ``World``)."""
    body = () if text is None else ("--text", text)
    return as_agent(fleet, sender or fleet.director, "message send", "--to", to, *body, *options)


def send(cli, fleet, *options, sender=None, to=None, text="hello", json=False, stdin=None):
    """``message send`` in-process (``json`` adds the global ``--json``)."""
    argv = send_argv(fleet, to, text, *options, sender=sender)
    return cli(*(["--json"] if json else []), *argv, stdin=stdin)


def register_argv(fleet, name, description="d", *options):
    """The argv of ``agent register`` in the fleet's session."""
    return [
        *sid_args(fleet),
        "agent",
        "register",
        "--name",
        name,
        "--description",
        description,
        *options,
    ]


def type_cafleet_in_pane(stage, pane, args: str, then: str) -> None:
    """Type ``cafleet --session-id <stage> <args>; <then>`` into the shell in ``pane`` of the
    injection stage (tests/injection_stage.py), on the stage's database, and press Enter."""
    line = f"CAFLEET_DATABASE_URL={stage.db.url} {CAFLEET} --session-id {stage.sid} {args}; {then}"
    stage.server.run("send-keys", "-t", pane, "-l", line)
    stage.server.run("send-keys", "-t", pane, "Enter")


def create_logged_member(stage, name, description, log):
    """``--json member create`` from the injection stage's Director, its stand-in logging to
    ``log`` (STANDIN_LOG is set on the tmux server only for the spawn)."""
    stage.server.set_env("STANDIN_LOG", str(log))
    try:
        argv = ("--agent-id", stage.did, "--name", name, "--description", description)
        return stage.cafleet("member", "create", *argv, json_mode=True)
    finally:
        stage.server.run("set-environment", "-gu", "STANDIN_LOG")
