"""Read-only SQL against a cafleet database of either backend, for checks and benchmarks.

``target`` is a SQLite file path or a ``CAFLEET_DATABASE_URL`` value (``sqlite:///...`` or
``postgresql://...``). SQL is written with ``?`` placeholders; they become ``%s`` on
PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def _is_postgres(target) -> bool:
    return isinstance(target, str) and target.split("://", 1)[0].split("+")[0] in (
        "postgresql",
        "postgres",
    )


def _sqlite_file(target) -> str:
    if isinstance(target, Path):
        return str(target)
    if target.startswith("sqlite"):
        return target.partition("://")[2][1:].split("?", 1)[0]
    return target


def pg_connect(url: str, *, autocommit: bool = True):
    """A psycopg connection for a ``postgresql://`` URL as cafleet reads it."""
    import psycopg

    from broker.conf import postgres_params

    p = postgres_params({"CAFLEET_DATABASE_URL": url})
    kwargs = {k: p[k] for k in ("host", "port", "dbname", "user", "password") if p[k]}
    return psycopg.connect(autocommit=autocommit, **kwargs, **p["options"])


def rows(target, sql: str, *params) -> list[tuple]:
    if _is_postgres(target):
        with pg_connect(target) as con:
            cur = con.execute(sql.replace("?", "%s"), params or None)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    con = sqlite3.connect(_sqlite_file(target))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def execute(target, sql: str, *params) -> None:
    """One write statement, committed."""
    if _is_postgres(target):
        with pg_connect(target) as con:
            con.execute(sql.replace("?", "%s"), params or None)
        return
    con = sqlite3.connect(_sqlite_file(target))
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def integrity_problems(target) -> list[str]:
    """SQLite's integrity and foreign-key checks; PostgreSQL enforces both itself, so only
    rows whose foreign keys dangle (which it would have refused) are looked for."""
    if _is_postgres(target):
        dangling = rows(
            target,
            "SELECT count(*) FROM tasks t LEFT JOIN agents a ON a.agent_id = t.context_id "
            "WHERE a.agent_id IS NULL",
        )[0][0]
        return [f"{dangling} tasks without their agent"] if dangling else []
    problems = []
    integrity = rows(target, "PRAGMA integrity_check")
    if integrity != [("ok",)]:
        problems.append(f"integrity_check: {integrity}")
    fk = rows(target, "PRAGMA foreign_key_check")
    if fk:
        problems.append(f"foreign_key_check: {fk[:5]}")
    return problems
