"""Domain exceptions. Each carries the contract's message and its exit code.

Models and services raise these; the entry point maps them to ``Error: ...`` output in one
place (``cafleet_project.cli``). They never depend on Django's ``CommandError``.
"""


class CafleetError(Exception):
    """A runtime error: exit 1, ``Error: <message>``."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None, stdout_json=None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        # Extra JSON printed on stdout in JSON mode (the member delete timeout only).
        self.stdout_json = stdout_json


class ValidationError(CafleetError):
    """A command-specific input error: exit 2 (cli.md §2.5, "marked exit 2")."""

    exit_code = 2


class NotFound(CafleetError):
    pass


class Forbidden(CafleetError):
    pass


class InvalidState(CafleetError):
    pass


class NotReady(CafleetError):
    """The database is missing, outdated or not SQLite."""
