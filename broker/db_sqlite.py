"""SQLite (the default backend): the readiness check and ``db init`` (cli.md §4.1).

Commands other than ``db init`` never create the database file or its directory: the
readiness check runs before Django opens a connection (sqlite3 would create the file).
``db init`` makes the directory 0700 and the files 0600, sets WAL, and runs under an
exclusive ``flock`` on ``<database>.lock`` so concurrent runs take turns.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from urllib.parse import quote

from broker.db_schema import (
    APP_LABEL,
    check_history,
    check_key,
    check_revisions,
    ensure_key,
    init_line,
    make_private_dir,
    migrate,
)
from broker.exceptions import CafleetError, NotReady

SQLITE_HEADER = b"SQLite format 3\x00"
#: How long ``db init`` waits for another ``db init`` of the same database to finish.
LOCK_WAIT = 120.0


def is_sqlite_file(path: str) -> bool:
    """True for an empty file or one that starts with the SQLite header."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(len(SQLITE_HEADER))
    except IsADirectoryError:
        return False
    return start == b"" or start == SQLITE_HEADER


def ensure_ready(path: str) -> str:
    """The file exists, is a SQLite database and is at head; returns ``path``."""
    not_init = NotReady(f"database {path} is not initialised. Run 'cafleet db init'.")
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise NotReady(f"{path} is not a SQLite database.")
        raise not_init
    from django.db import DatabaseError, connection

    # The header is read only while this thread has no open connection: SQLite's locks are
    # POSIX record locks, which closing ANY descriptor of the file drops for the whole
    # process, and a connection that lost its locks can write into a WAL file that another
    # process has just checkpointed and removed (tests/test_inprocess_calls.py).
    try:
        if connection.connection is None and not is_sqlite_file(path):
            raise NotReady(f"{path} is not a SQLite database.")
    except PermissionError as exc:
        raise CafleetError(f"cannot open database {path}: {exc.strerror}.") from None

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
    check_revisions(sorted(applied), not_init, path)
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


def _restrict_files(path: str) -> None:
    for candidate in (path, path + "-wal", path + "-shm"):
        if os.path.exists(candidate):
            try:
                os.chmod(candidate, 0o600)
            except OSError as exc:
                raise CafleetError(
                    f"cannot set mode 0600 on {candidate}: {exc.strerror or exc}."
                ) from None


def lock_path(path: str) -> str:
    return path + ".lock"


@contextmanager
def _init_lock(path: str):
    """An exclusive ``flock`` on ``<database>.lock`` (mode 0600) for the whole migration, so
    concurrent ``db init`` runs take turns instead of racing on ``CREATE TABLE``. The file
    stays after the run (removing it would let a waiting run lock a deleted inode)."""
    from broker.hook_files import flock_within

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
        if not flock_within(fd, LOCK_WAIT):
            raise CafleetError(
                f"another 'cafleet db init' has held {name} for over "
                f"{int(LOCK_WAIT)} s; retry when it has finished."
            )
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_existing(path: str) -> list[str] | None:
    """The refusals for an existing file (read-only). Returns the applied migrations, or
    None for a file without migration history (empty or new)."""
    if not os.path.isfile(path) or not is_sqlite_file(path):
        raise CafleetError(f"{path} is not a SQLite database.")
    tables, applied = _inspect_readonly(path)
    check_history(
        path, tables, applied, "move it aside or point CAFLEET_DATABASE_URL at a new file"
    )
    return applied


def db_init(path: str) -> str:
    """Create or upgrade the schema of the file ``path``. Returns the line to print.

    Every refusal happens before anything is written beside the database (no directory,
    lock file or secret key). Migrations run under :func:`_init_lock`; the admin's secret
    key file is created last, once the database is at head.
    """
    directory = os.path.dirname(os.path.abspath(path))
    check_key(path)
    if os.path.exists(path):
        _check_existing(path)  # refuse before writing anything; repeated under the lock
    try:
        make_private_dir(directory)
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
            pending = migrate()
        except DatabaseError as exc:
            raise CafleetError(f"cannot open database {path}: {exc}") from None
        _restrict_files(path)
        ensure_key(path)
    return init_line(f"Created {path}", applied, pending)
