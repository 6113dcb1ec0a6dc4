"""What both backends share for the readiness check and ``db init``: the cafleet app's
migrations, the refusals every database gets, running the migrations, the 0700 directory
and the admin's secret key (``broker.database`` dispatches to ``broker.db_sqlite`` or
``broker.db_postgres``, which use these)."""

from __future__ import annotations

import os
import re

from broker.exceptions import CafleetError, NotReady

APP_LABEL = "cafleet"
_MIGRATION_FILE = re.compile(r"(\d{4}_\w+)\.py")
MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def known_migrations() -> list[str]:
    """The cafleet app's migration names, in order (from the package directory)."""
    names = []
    for entry in os.listdir(MIGRATIONS_DIR):
        m = _MIGRATION_FILE.fullmatch(entry)
        if m:
            names.append(m.group(1))
    return sorted(names)


def head() -> str:
    return known_migrations()[-1]


def unknown_revision(rev: str) -> CafleetError:
    return CafleetError(
        f"DB schema is at revision {rev} which is unknown to this version of "
        "cafleet. Refusing to downgrade automatically."
    )


def check_revisions(applied: list[str] | None, not_init: NotReady, label: str) -> None:
    """Readiness: some migrations applied, none unknown, none missing."""
    known = known_migrations()
    if not applied:
        raise not_init
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise unknown_revision(unknown[-1])
    if set(known) - set(applied):
        raise NotReady(f"database {label} is out of date. Run 'cafleet db init'.")


def check_history(label: str, tables: set[str], applied: list[str] | None, advice: str) -> None:
    """``db init``'s refusals: tables without a migration history (``advice`` says what to
    do instead), or a revision this version does not know."""
    if applied is None and tables:
        raise CafleetError(
            f"{label} has tables that cafleet does not manage and no Django migration "
            f"history. Refusing to touch it; {advice}."
        )
    unknown = [name for name in (applied or []) if name not in known_migrations()]
    if unknown:
        raise unknown_revision(unknown[-1])


def migrate() -> list:
    """Apply every pending migration (cafleet's and Django's apps'), then set WAL.

    Returns the plan that was pending before the run (empty when already at head).
    """
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        call_command("migrate", interactive=False, verbosity=0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:
            cur.execute("PRAGMA journal_mode=WAL")
    connection.close()
    return pending


def init_line(made: str, applied: list[str] | None, pending: list) -> str:
    """What ``db init`` prints: ``made`` (``Created <path>``...) for a fresh database."""
    target = head()
    if not applied:
        return f"{made} and applied migrations to head ({target})."
    if not pending:
        return f"Already at head ({target}); nothing to do."
    return f"Upgraded from {applied[-1]} to {target}."


def make_private_dir(directory: str) -> None:
    """Create every missing level of ``directory`` with mode 0700 (whatever the umask);
    directories that already exist are left as they are."""
    missing = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            if not os.path.isdir(level):
                raise
            continue
        os.chmod(level, 0o700)


def check_key(anchor: str) -> None:
    """Refuse (before anything is written) when the admin's key file beside ``anchor`` is
    unusable (``cafleet_project.secretkey.check``)."""
    from cafleet_project import secretkey

    try:
        secretkey.check(secretkey.key_path(anchor))
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None


def ensure_key(anchor: str) -> None:
    """Create the admin's key file beside ``anchor`` when missing."""
    from cafleet_project import secretkey

    try:
        secretkey.ensure(anchor)
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None
