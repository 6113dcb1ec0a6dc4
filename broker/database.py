"""The database as the broker sees it: which backend, Django's settings for it, the
readiness check (cli.md §4.1.2), ``db init`` (§4.1.1), and the few runtime differences
between the two backends (wake-ups, prefix filters, JSON in SQL, the worker's identity).

The per-backend work lives in ``broker.db_sqlite`` (the default: a file this module never
creates outside ``db init``) and ``broker.db_postgres`` (``CAFLEET_DATABASE_URL=
postgresql://...``), with what they share in ``broker.db_schema``. A delivery NOTIFY
(:func:`notify_inbox`) wakes ``message poll --wait`` (:class:`InboxWaiter`), which on SQLite
sleeps and re-queries.
"""

from __future__ import annotations

import os

from broker import conf, db_postgres, db_sqlite
from broker.conf import DatabaseURLError, database_path
from broker.db_postgres import require_driver, scrub
from broker.db_schema import APP_LABEL, head, known_migrations
from broker.exceptions import CafleetError

# Names other modules import from here (``transfer``, the entry point).
__all__ = ["APP_LABEL", "head", "known_migrations", "require_driver", "scrub"]


def db_path() -> str:
    try:
        return database_path()
    except DatabaseURLError as exc:
        raise CafleetError(str(exc)) from None


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


def backend() -> str:
    """``"sqlite"`` or ``"postgresql"``; a bad URL is the contract's error."""
    try:
        kind = conf.backend()
        if kind == "postgresql":
            conf.postgres_params()
        return kind
    except DatabaseURLError as exc:
        raise CafleetError(str(exc)) from None


def ensure_ready() -> str:
    """Check the database before first use; returns its path (SQLite) or its password-free
    URL (PostgreSQL). Raises NotReady."""
    if backend() == "postgresql":
        return db_postgres.ensure_ready()
    return db_sqlite.ensure_ready(db_path())


def secret_key_anchor() -> str:
    """The path ``cafleet_project.secretkey`` keys on: the SQLite file, or (PostgreSQL) a
    name in the default data directory, which is created (0700) here when missing."""
    if backend() == "postgresql":
        return db_postgres.key_anchor()
    return conf.key_anchor()


def db_init() -> str:
    """Create or upgrade the schema. Returns the line to print. Needs the full settings."""
    if backend() == "postgresql":
        return db_postgres.db_init()
    return db_sqlite.db_init(db_path())


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
