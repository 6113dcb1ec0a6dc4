"""Command handlers, one module per noun (db, session, agent, message, member, doctor,
server). Each module exposes ``HANDLERS``: verb → ``handler(parsed, out)``.

Handlers parse nothing (``broker.grammar`` did) and render through ``broker.output``; the
work is in ``broker.services``. ``broker/management/commands/<noun>.py`` wraps each module
as a Django management command; the ``cafleet`` entry point calls ``dispatch`` directly so
that it does not import Django's command framework on every call.
"""

from importlib import import_module

SESSION_REQUIRED = (
    "--session-id <uuid> is required for this subcommand. Create a session "
    "with 'cafleet session create' and pass its id."
)


def dispatch(parsed, out) -> None:
    """Run one command. The ``--session-id`` requirement is checked before anything else."""
    from broker.exceptions import CafleetError

    if parsed.command.needs_session and not parsed.session_id:
        raise CafleetError(SESSION_REQUIRED)
    noun = parsed.path[0]
    module = import_module(f"broker.commands.{noun}")
    verb = parsed.path[1] if len(parsed.path) > 1 else ""
    module.HANDLERS[verb](parsed, out)
