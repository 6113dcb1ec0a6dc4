"""``cafleet db init`` (Django migrations, idempotent, cli.md §4.1) and ``db export`` /
``db import`` (moving a registry between databases, docs/deployment.md)."""

import sys


def init(call, out) -> None:
    from broker.database import db_init

    out.text(db_init())


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items())


def export(call, out) -> None:
    from broker.conf import database_label
    from broker.transfer import export_to

    path = call.options.get("output")
    counts = export_to(path, sys.stdout)
    if path not in (None, "-"):
        if out.json_mode:
            out.json({"exported": counts, "path": path})
        else:
            out.text(
                f"Exported {sum(counts.values())} rows from {database_label()} to {path} "
                f"({_summary(counts)})."
            )


def import_(call, out) -> None:
    from broker.conf import database_label
    from broker.transfer import import_from

    counts = import_from(call.options["input"], sys.stdin)
    if out.json_mode:
        out.json({"imported": counts})
    else:
        out.text(
            f"Imported {sum(counts.values())} rows into {database_label()} ({_summary(counts)})."
        )
