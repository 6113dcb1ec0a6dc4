"""Database readiness (cli.md §4.1.2) and ``db init`` (§4.1.1).

Commands other than ``db init`` never create the database file or its directory: the
readiness check runs before Django opens a connection (sqlite3 would create the file).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from contextlib import contextmanager
from urllib.parse import quote

from broker.conf import DatabaseURLError, database_path
from broker.exceptions import CafleetError, NotReady

SQLITE_HEADER = b"SQLite format 3\x00"
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


def db_path() -> str:
    try:
        return database_path()
    except DatabaseURLError as exc:
        raise CafleetError(str(exc)) from None


def is_sqlite_file(path: str) -> bool:
    """True for an empty file or one that starts with the SQLite header."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(len(SQLITE_HEADER))
    except IsADirectoryError:
        return False
    return start == b"" or start == SQLITE_HEADER


def _unknown_revision(rev: str) -> CafleetError:
    return CafleetError(
        f"DB schema is at revision {rev} which is unknown to this version of "
        "cafleet. Refusing to downgrade automatically."
    )


def ensure_ready() -> str:
    """Check the database before first use; returns its path. Raises NotReady."""
    path = db_path()
    not_init = NotReady(f"database {path} is not initialised. Run 'cafleet db init'.")
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise NotReady(f"{path} is not a SQLite database.")
        raise not_init
    try:
        if not is_sqlite_file(path):
            raise NotReady(f"{path} is not a SQLite database.")
    except PermissionError as exc:
        raise CafleetError(f"cannot open database {path}: {exc.strerror}.") from None
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT name FROM django_migrations WHERE app = %s", [APP_LABEL])
            applied = {row[0] for row in cur.fetchall()}
    except DatabaseError as exc:
        text = str(exc)
        if "no such table" in text:
            raise not_init from None
        if "not a database" in text:
            raise NotReady(f"{path} is not a SQLite database.") from None
        raise CafleetError(f"cannot open database {path}: {text}") from None
    known = known_migrations()
    if not applied:
        raise not_init
    unknown = sorted(applied - set(known))
    if unknown:
        raise _unknown_revision(unknown[-1])
    if set(known) - applied:
        raise NotReady(f"database {path} is out of date. Run 'cafleet db init'.")
    return path


# ------------------------------------------------------------------------------ db init
def _inspect_readonly(path: str) -> tuple[set[str], list[str] | None]:
    """(user tables, applied cafleet migrations or None without history). Never writes."""
    uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise CafleetError(f"cannot open database {path}: {exc}") from None
    try:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if "django_migrations" not in tables:
            return tables, None
        applied = [
            r[0]
            for r in con.execute(
                "SELECT name FROM django_migrations WHERE app = ? ORDER BY id", (APP_LABEL,)
            )
        ]
        return tables, applied
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise CafleetError(f"{path} is not a SQLite database.") from None
        raise CafleetError(f"cannot open database {path}: {exc}") from None
    finally:
        con.close()


def _make_private_dir(directory: str) -> None:
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


def _restrict_files(path: str) -> None:
    for candidate in (path, path + "-wal", path + "-shm"):
        if os.path.exists(candidate):
            try:
                os.chmod(candidate, 0o600)
            except OSError as exc:
                raise CafleetError(
                    f"cannot set mode 0600 on {candidate}: {exc.strerror or exc}."
                ) from None


def _migrate() -> list:
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
    with connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode=WAL")
    connection.close()
    return pending


#: How long ``db init`` waits for another ``db init`` of the same database to finish.
LOCK_WAIT = 120.0


def lock_path(path: str) -> str:
    return path + ".lock"


@contextmanager
def _init_lock(path: str):
    """An exclusive ``flock`` on ``<database>.lock`` (mode 0600) for the whole migration, so
    concurrent ``db init`` runs take turns instead of racing on ``CREATE TABLE``. The file
    stays after the run (removing it would let a waiting run lock a deleted inode)."""
    import fcntl

    name = lock_path(path)
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        # A directory we cannot write to: lock the database file itself when it exists
        # (its own checks then report what is wrong), else say the database cannot be made.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            raise CafleetError(f"cannot create database {path}: {exc.strerror or exc}.") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CafleetError(
                        f"another 'cafleet db init' has held {name} for over "
                        f"{int(LOCK_WAIT)} s; retry when it has finished."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_existing(path: str) -> list[str] | None:
    """The refusals for an existing file (read-only). Returns the applied migrations, or
    None for a file without migration history (empty or new)."""
    if not os.path.isfile(path) or not is_sqlite_file(path):
        raise CafleetError(f"{path} is not a SQLite database.")
    tables, applied = _inspect_readonly(path)
    if applied is None and tables:
        raise CafleetError(
            f"{path} has tables that cafleet does not manage and no Django migration "
            "history. Refusing to touch it; move it aside or point CAFLEET_DATABASE_URL "
            "at a new file."
        )
    unknown = [name for name in (applied or []) if name not in known_migrations()]
    if unknown:
        raise _unknown_revision(unknown[-1])
    return applied


def db_init() -> str:
    """Create or upgrade the schema. Returns the line to print. Needs the full settings.

    Every refusal happens before anything is written beside the database (no directory,
    lock file or secret key). Migrations run under :func:`_init_lock`; the admin's secret
    key file is created last, once the database is at head.
    """
    from cafleet_project import secretkey

    path = db_path()
    directory = os.path.dirname(os.path.abspath(path))
    try:
        secretkey.check(secretkey.key_path(path))
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None
    if os.path.exists(path):
        _check_existing(path)  # refuse before writing anything; repeated under the lock
    try:
        _make_private_dir(directory)
    except OSError as exc:
        raise CafleetError(
            f"cannot create database directory {directory}: {exc.strerror or exc}."
        ) from None

    from django.db import DatabaseError

    with _init_lock(path):
        applied: list[str] | None = None
        if os.path.exists(path):
            applied = _check_existing(path)
        else:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
            except OSError as exc:
                raise CafleetError(
                    f"cannot create database {path}: {exc.strerror or exc}."
                ) from None
        try:
            pending = _migrate()
        except DatabaseError as exc:
            raise CafleetError(f"cannot open database {path}: {exc}") from None
        _restrict_files(path)
        try:
            secretkey.ensure(path)
        except secretkey.SecretKeyError as exc:
            raise CafleetError(str(exc)) from None
    fresh = not applied
    target = head()
    if fresh:
        return f"Created {path} and applied migrations to head ({target})."
    if not pending:
        return f"Already at head ({target}); nothing to do."
    return f"Upgraded from {applied[-1]} to {target}."
