"""``cafleet db init``: Django migrations, idempotent (cli.md §4.1)."""


def init(call, out) -> None:
    from broker.database import db_init

    out.text(db_init())
