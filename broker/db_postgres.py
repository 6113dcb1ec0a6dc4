"""PostgreSQL (``CAFLEET_DATABASE_URL=postgresql://...``): the driver check, the password
kept out of every message, the readiness check and ``db init`` (cli.md §4.1).

The database must exist (the server's administrator creates it); ``db init`` applies the
migrations under an advisory lock. Nothing on disk is touched but the admin's key, kept in
the default data directory.
"""

from __future__ import annotations

import os

from broker import conf, db_schema
from broker.conf import DatabaseURLError
from broker.exceptions import CafleetError, NotReady

DRIVER_MISSING = (
    "PostgreSQL support needs the psycopg driver, which is not installed; "
    "install it with: pip install 'cafleet[postgres]'"
)
# The key of PostgreSQL's advisory lock that serialises concurrent ``db init`` runs there.
PG_INIT_LOCK = 0x6361666C  # "cafl"


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


def _failure(exc: Exception) -> CafleetError:
    label = conf.database_label()
    text = scrub(" ".join(str(exc).split()))
    return CafleetError(f"cannot open database {label}: {text}")


def _applied() -> tuple[set[str], list[str] | None]:
    """(tables, applied cafleet migrations or None without history)."""
    from django.db import DatabaseError, connection

    try:
        tables = set(connection.introspection.table_names())
        if "django_migrations" not in tables:
            return tables, None
        with connection.cursor() as cur:
            cur.execute(
                "SELECT name FROM django_migrations WHERE app = %s ORDER BY id",
                [db_schema.APP_LABEL],
            )
            return tables, [row[0] for row in cur.fetchall()]
    except DatabaseError as exc:
        raise _failure(exc) from None


def ensure_ready() -> str:
    """The database is reachable and at head; returns its password-free URL."""
    require_driver()
    label = conf.database_label()
    _, applied = _applied()
    db_schema.check_revisions(
        applied, NotReady(f"database {label} is not initialised. Run 'cafleet db init'."), label
    )
    return label


def key_anchor() -> str:
    """The name in the default data directory the admin's key is kept beside; the
    directory is created (0700) here when missing."""
    anchor = conf.key_anchor()
    directory = os.path.dirname(anchor)
    try:
        db_schema.make_private_dir(directory)
    except OSError as exc:
        raise CafleetError(f"cannot create directory {directory}: {exc.strerror or exc}.") from None
    return anchor


def db_init() -> str:
    """``db init`` on PostgreSQL: the same refusals, migrations under an advisory lock (two
    hosts initialising at once take turns), the admin's key in the local data directory."""
    require_driver()
    from django.db import DatabaseError, connection

    label = conf.database_label()
    db_schema.check_key(conf.key_anchor())
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [PG_INIT_LOCK])
        tables, applied = _applied()
        db_schema.check_history(
            label, tables, applied, "point CAFLEET_DATABASE_URL at an empty database"
        )
        pending = db_schema.migrate()  # closes the connection, which releases the lock
    except DatabaseError as exc:
        raise _failure(exc) from None
    finally:
        connection.close()
    db_schema.ensure_key(key_anchor())
    return db_schema.init_line(f"Initialised {label}", applied, pending)
