"""Database readiness (cli.md §4.1.2), ``db init`` (§4.1.1), and every difference between
the two backends that the broker itself handles (the one place with a per-backend branch).

SQLite (the default): commands other than ``db init`` never create the database file or
its directory: the readiness check runs before Django opens a connection (sqlite3 would
create the file); ``db init`` makes the directory 0700 and the files 0600 and sets WAL.

PostgreSQL (``CAFLEET_DATABASE_URL=postgresql://...``): the database must exist (the
server's administrator creates it); ``db init`` applies the migrations. Nothing on disk is
touched. A delivery NOTIFY (:func:`notify_inbox`) wakes ``message poll --wait``
(:func:`wait_for_inbox`), which on SQLite sleeps and re-queries.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from contextlib import contextmanager
from urllib.parse import quote

from broker import conf
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


# ------------------------------------------------------------------------------ backends
def django_databases(environ=os.environ) -> dict:
    """Django's ``DATABASES["default"]`` for the configured URL (the per-backend branch of
    the settings; a bad URL yields a harmless SQLite placeholder, reported by the entry
    point before any database access)."""
    try:
        kind = conf.backend(environ)
    except DatabaseURLError:
        kind = "sqlite"
    if kind == "postgresql":
        try:
            p = conf.postgres_params(environ)
        except DatabaseURLError:
            p = None
        if p is not None:
            return {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": p["dbname"],
                "USER": p["user"],
                "PASSWORD": p["password"],
                "HOST": p["host"],
                "PORT": p["port"],
                # Every state change commits at once; no connection is kept between calls.
                "CONN_MAX_AGE": 0,
                "OPTIONS": dict(p["options"]),
            }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": conf.safe_database_path(environ),
        # data-model.md §1: busy timeout 5000 ms, writes BEGIN IMMEDIATE. Django turns
        # foreign_keys on for every SQLite connection.
        "OPTIONS": {"timeout": 5, "transaction_mode": "IMMEDIATE"},
    }


DRIVER_MISSING = (
    "PostgreSQL support needs the psycopg driver, which is not installed; "
    "install it with: pip install 'cafleet[postgres]'"
)


def backend() -> str:
    """``"sqlite"`` or ``"postgresql"``; a bad URL is the contract's error."""
    try:
        kind = conf.backend()
        if kind == "postgresql":
            conf.postgres_params()
        return kind
    except DatabaseURLError as exc:
        raise CafleetError(str(exc)) from None


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def scrub(text: str) -> str:
    """``text`` with the configured database password (if any) replaced by ``***``."""
    try:
        if conf.backend() != "postgresql":
            return text
        password = conf.postgres_params()["password"]
    except DatabaseURLError:
        return text
    secrets_ = [password] if password else []
    pg_env = os.environ.get("PGPASSWORD")
    if pg_env:
        secrets_.append(pg_env)
    for secret in secrets_:
        text = text.replace(secret, "***")
    return text


def require_driver() -> None:
    """On PostgreSQL, the psycopg driver must be importable: else the error names the extra.
    Runs before Django is set up (the admin stack would otherwise report Django's own
    "Error loading psycopg2 or psycopg module")."""
    try:
        if conf.backend() != "postgresql":
            return
    except DatabaseURLError:
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise CafleetError(DRIVER_MISSING) from None


def _pg_failure(exc: Exception) -> CafleetError:
    label = conf.database_label()
    text = scrub(" ".join(str(exc).split()))
    return CafleetError(f"cannot open database {label}: {text}")


def _pg_applied() -> tuple[set[str], list[str] | None]:
    """(tables, applied cafleet migrations or None without history) on PostgreSQL."""
    from django.db import DatabaseError, connection

    try:
        tables = set(connection.introspection.table_names())
        if "django_migrations" not in tables:
            return tables, None
        with connection.cursor() as cur:
            cur.execute(
                "SELECT name FROM django_migrations WHERE app = %s ORDER BY id", [APP_LABEL]
            )
            return tables, [row[0] for row in cur.fetchall()]
    except DatabaseError as exc:
        raise _pg_failure(exc) from None


def _check_revisions(applied: list[str] | None, not_init: NotReady, label: str) -> None:
    known = known_migrations()
    if not applied:
        raise not_init
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise _unknown_revision(unknown[-1])
    if set(known) - set(applied):
        raise NotReady(f"database {label} is out of date. Run 'cafleet db init'.")


def _ensure_ready_postgres() -> str:
    require_driver()
    label = conf.database_label()
    _, applied = _pg_applied()
    _check_revisions(
        applied, NotReady(f"database {label} is not initialised. Run 'cafleet db init'."), label
    )
    return label


def ensure_ready() -> str:
    """Check the database before first use; returns its path (SQLite) or its password-free
    URL (PostgreSQL). Raises NotReady."""
    if backend() == "postgresql":
        return _ensure_ready_postgres()
    from django.db import DatabaseError, connection

    path = db_path()
    not_init = NotReady(f"database {path} is not initialised. Run 'cafleet db init'.")
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise NotReady(f"{path} is not a SQLite database.")
        raise not_init
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
    _check_revisions(sorted(applied), not_init, path)
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
    if connection.vendor == "sqlite":
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


# The key of PostgreSQL's advisory lock that serialises concurrent ``db init`` runs there.
PG_INIT_LOCK = 0x6361666C  # "cafl"


def _ensure_key(anchor: str) -> None:
    from cafleet_project import secretkey

    try:
        secretkey.ensure(anchor)
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None


def secret_key_anchor() -> str:
    """The path ``cafleet_project.secretkey`` keys on: the SQLite file, or (PostgreSQL) a
    name in the default data directory, which is created (0700) here when missing."""
    anchor = conf.key_anchor()
    if backend() == "postgresql":
        directory = os.path.dirname(anchor)
        try:
            _make_private_dir(directory)
        except OSError as exc:
            raise CafleetError(
                f"cannot create directory {directory}: {exc.strerror or exc}."
            ) from None
    return anchor


def _db_init_postgres() -> str:
    """``db init`` on PostgreSQL: the same refusals, migrations under an advisory lock (two
    hosts initialising at once take turns), the admin's key in the local data directory."""
    require_driver()
    from django.db import DatabaseError, connection

    from cafleet_project import secretkey

    label = conf.database_label()
    try:
        secretkey.check(secretkey.key_path(conf.key_anchor()))
    except secretkey.SecretKeyError as exc:
        raise CafleetError(str(exc)) from None
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [PG_INIT_LOCK])
        tables, applied = _pg_applied()
        if applied is None and tables:
            raise CafleetError(
                f"{label} has tables that cafleet does not manage and no Django migration "
                "history. Refusing to touch it; point CAFLEET_DATABASE_URL at an empty database."
            )
        unknown = [name for name in (applied or []) if name not in known_migrations()]
        if unknown:
            raise _unknown_revision(unknown[-1])
        pending = _migrate()  # closes the connection, which releases the lock
    except DatabaseError as exc:
        raise _pg_failure(exc) from None
    finally:
        connection.close()
    _ensure_key(secret_key_anchor())
    target = head()
    if not applied:
        return f"Initialised {label} and applied migrations to head ({target})."
    if not pending:
        return f"Already at head ({target}); nothing to do."
    return f"Upgraded from {applied[-1]} to {target}."


def db_init() -> str:
    """Create or upgrade the schema. Returns the line to print. Needs the full settings.

    Every refusal happens before anything is written beside the database (no directory,
    lock file or secret key). Migrations run under :func:`_init_lock`; the admin's secret
    key file is created last, once the database is at head.
    """
    if backend() == "postgresql":
        return _db_init_postgres()
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


# ------------------------------------------------------------------------------ wake-ups
def inbox_channel(agent_id: str) -> str:
    """The NOTIFY channel of one agent's inbox (PostgreSQL)."""
    return f"cafleet.{agent_id}"


def notify_inbox(agent_ids) -> None:
    """Inside a writing transaction: one NOTIFY per recipient, sent by PostgreSQL when the
    transaction commits (never for a rolled-back one). Nothing on SQLite."""
    from django.db import connection

    ids = sorted(set(agent_ids))
    if connection.vendor != "postgresql" or not ids:
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_notify('cafleet.' || r, '') FROM unnest(%s::text[]) AS r", [ids])


class InboxWaiter:
    """Waits for new messages of one agent: LISTEN on PostgreSQL (re-querying at least
    every ``fallback`` seconds, in case a NOTIFY was missed), a sleep on SQLite."""

    def __init__(self, agent_id: str, *, interval: float, fallback: float = 1.0):
        from django.db import connection

        self.interval = interval
        self.fallback = fallback
        self.conn = None
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            if connection.get_autocommit():
                channel = connection.ops.quote_name(inbox_channel(agent_id))
                with connection.cursor() as cur:
                    cur.execute(f"LISTEN {channel}")
                self.conn = connection.connection

    def wait(self, remaining: float) -> None:
        """Return after a NOTIFY, after the fallback interval, or after ``remaining`` s."""
        import time

        if self.conn is None:
            time.sleep(min(self.interval, remaining))
            return
        timeout = min(self.fallback, remaining)
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            break


# ------------------------------------------------------------------------------ SQL forms
def prefix_filter(field: str, prefix: str) -> dict:
    """Filter kwargs matching ``field`` values that start with ``prefix`` (hex digits and
    hyphens only), through an index on either backend: a range on SQLite (whose TEXT
    ordering is bytewise), ``LIKE 'p%'`` on PostgreSQL, served by the ``varchar_pattern_ops``
    index Django gives every indexed CharField there (a range would follow the database's
    collation, which need not be bytewise)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return {f"{field}__startswith": prefix}
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {f"{field}__gte": prefix, f"{field}__lt": upper}


def card_kind_expression():
    """SQL for an agent card's ``cafleet.kind`` member (NULL when absent): SQLite's
    ``json_extract``, PostgreSQL's ``jsonb #>>``."""
    from django.db.models import CharField, F, Func

    class CardKind(Func):
        function = "json_extract"
        template = "%(function)s(%(expressions)s, '$.cafleet.kind')"
        output_field = CharField()

        def as_postgresql(self, compiler, connection, **extra):
            return self.as_sql(
                compiler, connection, template="((%(expressions)s)::jsonb #>> '{cafleet,kind}')"
            )

    return CardKind(F("agent_card_json"))


# ------------------------------------------------------------------------------ the worker
def database_identity() -> str:
    """What names this database in the delivery worker's lease and log: the SQLite file's
    absolute path, or the PostgreSQL URL without its password."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return conf.database_label()
    return os.path.abspath(str(connection.settings_dict["NAME"]))


def database_vanished() -> bool:
    """True when the SQLite file was removed under a running worker (it then exits); a
    PostgreSQL database cannot vanish that way (a lost server is a connection error)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return False
    return not os.path.exists(database_identity())


def local_state_dir() -> str:
    """Where this host keeps files about the database (the worker's log): beside a SQLite
    file, else the default data directory (created 0700 when missing)."""
    directory = os.path.dirname(secret_key_anchor())
    return directory
