"""``cafleet django ARGS...``: Django's own management commands with cafleet's settings.

This is how users create and reset admin users for the web view
(``cafleet django createsuperuser``, ``cafleet django changepassword NAME``).
"""

from broker.exceptions import CafleetError


def django(call, out) -> None:
    from django.core.management import execute_from_command_line

    args = list(call.options["django_args"])
    if not args:
        args = ["help"]
    try:
        execute_from_command_line(["cafleet django", *args])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise CafleetError(
                f"django {args[0]} exited with status {exc.code}",
                exit_code=1 if exc.code != 2 else 2,
            ) from None
