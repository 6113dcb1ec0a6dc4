"""The ``cafleet`` console entry point.

Django's own command runner cannot take flags before the command name, so this module
parses the whole command line itself (``broker.grammar``), answers ``--version``,
``--help`` and every usage error without importing Django, then sets Django up with the
settings the command needs and runs exactly one management-command-style handler.

Every failure is mapped to ``Error: ...`` (or one JSON line) and exit 1/2 here, in one
place; a traceback is printed only with ``CAFLEET_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

# Modules that the ORM imports at start-up but never uses on the command line (form fields,
# system checks). Loading them on first attribute access instead of at import saves a large
# share of start-up time on every call; the admin and tests load them as usual. (sqlparse is
# not listed: SQLite introspection loads it on every database command anyway.)
LAZY_MODULES = frozenset({"django.forms", "django.core.checks"})


class _LazyFinder:
    """A meta-path finder that wraps the listed modules' loaders in LazyLoader."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def _write_error(message: str, code: int, json_mode: bool, banner: str = "") -> int:
    if json_mode:
        from broker.output import compact_json

        sys.stderr.write(compact_json({"error": message, "exit_code": code}) + "\n")
    else:
        sys.stderr.write(f"{banner}\nError: {message}\n" if banner else f"Error: {message}\n")
    sys.stderr.flush()
    return code


def setup_django(path: tuple[str, ...]) -> None:
    """Configure Django for one command without the web-only parts of ``django.setup()``.

    ``django.setup()`` also configures logging and imports the URL machinery; broker
    commands need neither, and the two cost tens of milliseconds per call. Nothing is done
    when Django is already set up (``manage.py cafleet ...``, tests). The settings module
    variable and the lazy-import finder are left for :func:`run` to restore.
    """
    from broker.grammar import find_command

    full = find_command(path).full_settings
    if "django.conf" in sys.modules:
        from django.apps import apps

        if apps.ready:
            return
    os.environ["DJANGO_SETTINGS_MODULE"] = (
        "cafleet_project.settings" if full else "cafleet_project.settings_lean"
    )
    if full:
        import django

        django.setup()
        return
    sys.meta_path.insert(0, _LazyFinder(LAZY_MODULES))
    from django.apps import apps
    from django.conf import settings

    apps.populate(settings.INSTALLED_APPS)


def _close_connections() -> None:
    """Close the database connections the command opened, as the end of a process would, so
    that calls made one after another in one process (``manage.py cafleet``, worker loops)
    each start from none. A connection inside the caller's own transaction is the caller's
    and is left open."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def run(parsed) -> None:
    """Set Django up and run the command's handler; the process-wide state that the set-up
    touched (``DJANGO_SETTINGS_MODULE``, ``sys.meta_path``, open connections) is restored
    afterwards."""
    from broker.grammar import find_command

    saved_settings = os.environ.get("DJANGO_SETTINGS_MODULE")
    cmd = find_command(parsed.path)
    if cmd.database or cmd.needs_session or cmd.full_settings:
        from broker.conf import host_id
        from broker.database import require_driver

        require_driver()
        host_id()  # a bad CAFLEET_HOST_ID fails before anything is written
    try:
        setup_django(parsed.path)
        from broker.commands import dispatch
        from broker.output import Output

        dispatch(parsed, Output(json_mode=parsed.json, pretty=parsed.pretty))
    finally:
        _close_connections()
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _LazyFinder)]
        if saved_settings is None:
            os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = saved_settings


def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit code.

    Standard streams are guarded for the length of the command (``cafleet_project.streams``):
    output is UTF-8 whatever the locale and a write never raises. When stdout could not be
    written (closed, a reader that went away), the exit code says what happened to the work
    (docs/security.md, "Output"): a command that changes state has done so, so it still exits
    0 (a retry would repeat it) and says on stderr that its output was lost; any other command
    exits 1, with ``Error: cannot write to stdout: <reason>`` unless the pipe was merely
    closed by its reader.
    """
    from cafleet_project.streams import Streams, is_broken_pipe, reason

    streams = Streams()
    state: dict = {}
    try:
        code = _main(sys.argv[1:] if argv is None else argv, state)
        streams.flush()
        failure = streams.stdout.failure
        if failure is not None and code == 0:
            command = state.get("command")
            if command is not None and command.writes:
                streams.stderr.write(
                    f"Warning: cafleet {' '.join(command_path(state))} succeeded, but its "
                    f"output could not be written to stdout: {reason(failure)}.\n"
                )
            elif is_broken_pipe(failure):
                code = 1
            else:
                code = _write_error(f"cannot write to stdout: {reason(failure)}", 1, False)
    finally:
        streams.restore()
    return code


def command_path(state: dict) -> tuple[str, ...]:
    parsed = state.get("parsed")
    return parsed.path if parsed is not None else ()


def _is_hook_call(argv: list[str]) -> bool:
    """``cafleet hook EVENT ...`` without ``--help``: the fast path (docs/hooks.md)."""
    return bool(argv) and argv[0] == "hook" and not {"--help", "-h"} & set(argv[1:])


def _main(argv: list[str], state: dict | None = None) -> int:
    """Parse and run; ``state`` (when given) receives ``parsed`` and ``command``."""
    state = {} if state is None else state
    if _is_hook_call(argv):
        # Runs on every tool call of every agent: no grammar, no Django (broker.hook).
        from broker.hook import main as hook_main

        return hook_main(argv[1:])
    from broker.grammar import UsageError, parse

    try:
        parsed = parse(argv)
    except UsageError as exc:
        return _write_error(exc.message, 2, exc.json_mode, "" if exc.json_mode else exc.banner())
    if parsed.help_text is not None:
        sys.stdout.write(parsed.help_text)
        return 0
    if parsed.help_to_stderr is not None:
        sys.stderr.write(parsed.help_to_stderr)
        return 2
    if parsed.version:
        from cafleet_project.version import __version__

        sys.stdout.write(f"cafleet {__version__}\n")
        return 0
    command = parsed.command
    state.update(parsed=parsed, command=command)
    from broker.conf import debug
    from broker.exceptions import CafleetError

    try:
        run(parsed)
    except CafleetError as exc:
        if exc.stdout_json is not None and parsed.json:
            from broker.output import Output

            Output(json_mode=True, pretty=parsed.pretty).json(exc.stdout_json)
        banner = ""
        if exc.exit_code == 2 and not parsed.json and getattr(exc, "usage", True):
            banner = UsageError("", parsed.path, command.pattern).banner()
        return _write_error(exc.message, exc.exit_code, parsed.json, banner)
    except KeyboardInterrupt:
        return _write_error("interrupted.", 1, parsed.json)
    except Exception as exc:  # the one place that maps every failure
        if debug():
            import traceback

            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        return _write_error(message, 1, parsed.json)
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
