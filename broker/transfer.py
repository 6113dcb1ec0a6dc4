"""``cafleet db export`` / ``cafleet db import``: move a registry between databases (SQLite →
PostgreSQL, or back) with every row of every cafleet table, byte for byte.

The format is JSON lines: a header line, then one line per row:

    {"format": "cafleet-export", "version": 1, "schema": "<head migration>", "tables": {...}}
    {"table": "sessions", "row": {"session_id": "...", "label": null, ...}}

Rows carry the columns as stored (every cafleet column is TEXT), so nothing is converted on
the way. Import writes everything in one transaction into an initialised, empty registry:
either every row arrives or none does. Foreign keys are checked at the commit (Django
declares them deferrable on both backends), so the session ↔ Director cycle needs no
special order.
"""

from __future__ import annotations

import json
import os

from django.apps import apps
from django.db import DatabaseError, IntegrityError, transaction

from broker.database import APP_LABEL, head
from broker.exceptions import CafleetError

FORMAT = "cafleet-export"
VERSION = 1
BATCH = 500


def _models() -> list:
    """Every cafleet model, in a stable order (parents first, so reading is natural)."""
    return sorted(apps.get_app_config(APP_LABEL).get_models(), key=lambda m: m._meta.db_table)


def _columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def export_rows(stream) -> dict[str, int]:
    """Write the header and every row to ``stream`` (text); returns the count per table.

    One transaction: on SQLite it keeps writers out while it runs; on PostgreSQL it is
    REPEATABLE READ, so the counts and the rows are one snapshot."""
    from django.db import connection

    models = _models()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counts = {model._meta.db_table: model.objects.count() for model in models}
        header = {"format": FORMAT, "version": VERSION, "schema": head(), "tables": counts}
        stream.write(json.dumps(header, ensure_ascii=False) + "\n")
        for model in models:
            table = model._meta.db_table
            cols = _columns(model)
            pk = model._meta.pk.attname
            for values in model.objects.order_by(pk).values_list(*cols).iterator(2000):
                row = dict(zip(cols, values, strict=True))
                stream.write(json.dumps({"table": table, "row": row}, ensure_ascii=False) + "\n")
    return counts


def export_to(path: str | None, stdout) -> dict[str, int]:
    if path is None or path == "-":
        return export_rows(stdout)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CafleetError(f"cannot create {path}: {exc.strerror or exc}.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        return export_rows(fh)


def _bad(lineno: int, what: str) -> CafleetError:
    return CafleetError(f"import: line {lineno}: {what}.")


def _reset_sequences(models) -> None:
    """After inserting explicit ids into auto-increment columns, move PostgreSQL's sequences
    past them (SQLite needs nothing: it takes the next id from the table)."""
    from django.core.management.color import no_style
    from django.db import connection

    statements = connection.ops.sequence_reset_sql(no_style(), models)
    if statements:
        with connection.cursor() as cur:
            for sql in statements:
                cur.execute(sql)


def import_rows(stream) -> dict[str, int]:
    """Read an export and insert every row in one transaction. Returns counts per table."""
    by_table = {m._meta.db_table: m for m in _models()}
    first = stream.readline()
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(1, "not a cafleet export (no header line)")
    if header.get("version") != VERSION:
        raise _bad(1, f"export format version {header.get('version')!r} is not {VERSION}")
    if header.get("schema") != head():
        raise CafleetError(
            f"import: the export is at schema {header.get('schema')}, this cafleet at {head()}; "
            "run 'cafleet db init' with this version on the source database, then export again."
        )
    expected = header.get("tables") or {}
    for model in by_table.values():
        if model.objects.exists():
            raise CafleetError(
                f"import: the target already holds rows in {model._meta.db_table}; "
                "import only into a freshly initialised database."
            )
    counts = dict.fromkeys(by_table, 0)
    pending: dict[str, list] = {t: [] for t in by_table}

    def flush(table: str) -> None:
        if pending[table]:
            by_table[table].objects.bulk_create(pending[table], batch_size=BATCH)
            pending[table] = []

    try:
        with transaction.atomic():
            for lineno, line in enumerate(stream, start=2):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    table, row = item["table"], item["row"]
                except (ValueError, KeyError, TypeError):
                    raise _bad(lineno, "not a row of a cafleet export") from None
                model = by_table.get(table)
                if model is None or not isinstance(row, dict):
                    raise _bad(lineno, f"unknown table {table!r}")
                if set(row) != set(_columns(model)):
                    raise _bad(lineno, f"the columns of {table} do not match this schema")
                pending[table].append(model(**row))
                counts[table] += 1
                if len(pending[table]) >= BATCH:
                    flush(table)
            for table in by_table:
                flush(table)
            _reset_sequences(list(by_table.values()))
            short = {t: n for t, n in expected.items() if counts.get(t) != n}
            if short:
                raise CafleetError(
                    "import: the export is incomplete ("
                    + ", ".join(f"{t}: {counts.get(t, 0)} of {n}" for t, n in short.items())
                    + "); nothing was imported."
                )
    except (IntegrityError, DatabaseError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise CafleetError(f"import failed, nothing was imported: {text}") from None
    return counts


def import_from(path: str, stdin) -> dict[str, int]:
    if path == "-":
        return import_rows(stdin)
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise CafleetError(f"cannot read {path}: {exc.strerror or exc}.") from None
    with fh:
        try:
            return import_rows(fh)
        except UnicodeDecodeError:
            raise CafleetError(f"import: {path} is not UTF-8 text.") from None
