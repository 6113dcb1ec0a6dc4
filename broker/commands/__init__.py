"""Command handlers, one module per noun (db, session, agent, message, member, doctor,
server, django), and :func:`dispatch`, the one place that runs a command.

The grammar table (``broker.grammar``) names each command's handler and what it needs;
``dispatch`` establishes those needs in the contract's order (cli.md §2.8) and hands the
handler a :class:`Call`. Handlers parse nothing, check nothing that the table declares, and
render through ``broker.output``; the work is in ``broker.services`` / ``broker.members``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

SESSION_REQUIRED = (
    "--session-id <uuid> is required for this subcommand. Create a session "
    "with 'cafleet session create' and pass its id."
)


@dataclass
class Call:
    """One command invocation as its handler sees it."""

    parsed: object  # broker.grammar.Parsed
    session_id: str | None = None  # resolved --session-id (commands that need a session)
    agent_id: str | None = None  # resolved --agent-id (commands that act as an agent)
    caller: tuple[str, str, str] | None = None  # the caller's tmux pane, when resolved
    checked: object = None  # what the command's validator returned

    @property
    def options(self) -> dict:
        return self.parsed.options

    @property
    def acting(self) -> dict:
        """``session_id`` and ``agent_ref``: the keywords with which every workflow that acts
        in a session as ``--agent-id`` learns who acts, and where."""
        return {"session_id": self.session_id, "agent_ref": self.agent_id}

    @property
    def tmux(self):
        from broker import tmux

        return tmux


def load(dotted: str):
    """The function named ``"package.module:function"``."""
    module, _, name = dotted.partition(":")
    return getattr(import_module(module), name)


def dispatch(parsed, out) -> None:
    """Run one parsed command: the checks of cli.md §2.8 steps 2-6, then its handler."""
    from broker.exceptions import CafleetError

    cmd = parsed.command
    call = Call(parsed)
    if cmd.needs_session and not parsed.session_id:  # step 2
        raise CafleetError(SESSION_REQUIRED)
    if cmd.validator:  # step 3
        call.checked = load(cmd.validator)(call)
    if cmd.tmux == "guard":  # step 4
        call.tmux.require_tmux()
    elif cmd.tmux == "pane":  # doctor: the error names the command
        call.tmux.require_tmux(command=" ".join(parsed.path))
        call.caller = call.tmux.require_caller_pane()
    elif cmd.tmux:
        call.caller = load(cmd.tmux)(call)
    if cmd.database or cmd.needs_session:  # step 5
        from broker.database import ensure_ready

        ensure_ready()
    if cmd.needs_session:  # step 6
        from broker.ids import resolve_session

        call.session_id = resolve_session(parsed.session_id)
    if cmd.agent:
        from broker.ids import resolve_agent

        call.agent_id = resolve_agent(call.session_id, parsed.options["agent_id"])
    load(cmd.handler)(call, out)
