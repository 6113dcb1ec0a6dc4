"""``cafleet db export`` / ``db import``: a populated SQLite registry moved into PostgreSQL
(and back) keeps every row of every cafleet table, field for field (issue 13 acceptance)."""

from __future__ import annotations

import json

import pytest

from bench.dbquery import rows
from tests.cli_helpers import as_agent, register_argv, send_argv
from tests.conftest import seed_session, sqlite_db

TABLES = {
    "sessions": "session_id",
    "agents": "agent_id",
    "tasks": "task_id",
    "agent_placements": "agent_id",
    "task_deliveries": "task_id",
    "delivery_workers": "key",
    "member_events": "id",
    "agent_states": "agent_id",
}
BODIES = [
    "plain",
    "two\nlines\n\nand a blank one",
    "unicode: héllo wörld ✓ 🚀 日本語",
    "quotes ' \" \\ and %s %% ? $1",
    "x" * 70000,
    "  leading and trailing spaces  ",
]


def columns(url: str, table: str) -> list[str]:
    if url.startswith("sqlite"):
        return [r[1] for r in rows(url, f"PRAGMA table_info({table})")]
    return [
        r[0]
        for r in rows(
            url,
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            table,
        )
    ]


def as_dicts(url: str) -> dict[str, list[dict]]:
    """Every row as {column: value}, so the column order of each backend does not matter."""
    out = {}
    for table, key in TABLES.items():
        cols = columns(url, table)
        out[table] = [
            dict(zip(cols, r, strict=True))
            for r in rows(url, f"SELECT {', '.join(cols)} FROM {table} ORDER BY {key}")
        ]
    return out


def populate(db) -> None:
    for label in ("first", "second"):
        fleet = seed_session(db)
        agents = []
        for i in range(3):
            skills = ("--skills", '[{"id":"x"}]')
            r = db.run("--json", *register_argv(fleet, f"a{i}-{label}", f"agent {i} ✓", *skills))
            assert r.code == 0, r.err
            agents.append(r.json["agent_id"])
        ids = []
        for i, body in enumerate(BODIES):
            r = db.run("--json", *send_argv(fleet, agents[i % 3], body, "--full"))
            assert r.code == 0, r.err
            ids.append(r.json["task"]["task_id"])
        r = db.run(*as_agent(fleet, agents[0], "message broadcast", "--text", "all of you"))
        assert r.code == 0, r.err
        for agent, command, *options in (
            (agents[0], "message ack", "--task-id", ids[0]),
            (fleet.director, "message cancel", "--task-id", ids[1]),
            (agents[2], "agent deregister"),
        ):
            assert db.run(*as_agent(fleet, agent, command, *options)).code == 0
        db.execute(
            "INSERT INTO agent_placements (agent_id, director_agent_id, tmux_session, "
            "tmux_window_id, tmux_pane_id, coding_agent, created_at) "
            "SELECT agent_id, ?, 'main', '@2', NULL, 'codex', registered_at FROM agents "
            "WHERE agent_id = ?",
            fleet.director,
            agents[1],
        )
    assert db.run("session", "delete", fleet.sid).code == 0


@pytest.mark.postgres
def test_sqlite_registry_moves_to_postgres_and_back_row_for_row(file_db, request, tmp_path):
    from tests.conftest import postgres_db

    source = file_db
    assert source.run("db", "init").code == 0
    populate(source)
    agent = source.rows("SELECT agent_id FROM agents ORDER BY agent_id")[0][0]
    source.execute(
        "INSERT INTO agent_states (agent_id, state, event, since, reported_at) VALUES (?,?,?,?,?)",
        agent, "idle", "Stop", "2026-05-05T12:00:00.123456+00:00",
        "2026-05-05T12:00:01.123456+00:00",
    )  # fmt: skip
    before = as_dicts(source.url)
    counts = {t: len(v) for t, v in before.items() if t != "member_events"}
    assert before["member_events"]  # the session deletion's event, ids included
    assert counts == {
        "sessions": 2,
        "agents": 10,
        "tasks": 2 * (len(BODIES) + 3 + 1),  # sends, 3 broadcast deliveries, 1 summary
        "agent_placements": 2,  # the live session's Director and a1; the deleted one has none
        "task_deliveries": 18,  # one per unicast row (sends and broadcast deliveries)
        "delivery_workers": 0,
        "agent_states": 1,  # a hook-reported state
    }
    total = sum(len(v) for v in before.values())
    dump = tmp_path / "registry.jsonl"
    r = source.run("db", "export", "--output", dump)
    assert (r.code, r.err) == (0, ""), r.err
    assert r.out.startswith(f"Exported {total} rows from ")
    assert dump.stat().st_mode & 0o777 == 0o600
    header = json.loads(dump.read_text().splitlines()[0])
    assert header["tables"] == {t: len(v) for t, v in before.items()}

    target = postgres_db(request, initialised=True)
    r = target.run("--json", "db", "import", "--input", dump)
    assert (r.code, r.err) == (0, ""), r.err
    assert r.json == {"imported": {t: len(v) for t, v in before.items()}}
    assert as_dicts(target.url) == before
    # Imported ids do not collide with the next auto-numbered row (sequences moved on).
    event = before["member_events"][0]
    target.execute(
        "INSERT INTO member_events (agent_id, director_agent_id, event, at, coding_agent, note)"
        " VALUES (?, ?, 'deleted', ?, 'claude', 'after import')",
        event["agent_id"],
        event["director_agent_id"],
        event["at"],
    )
    ids = [r[0] for r in target.rows("SELECT id FROM member_events ORDER BY id")]
    assert len(ids) == len(before["member_events"]) + 1 and ids[-1] > event["id"]
    target.execute("DELETE FROM member_events WHERE note = 'after import'")

    # The moved registry works: the PostgreSQL side polls what SQLite stored.
    live = target.rows("SELECT session_id FROM sessions WHERE deleted_at IS NULL")
    assert len(live) == 1
    # ... and back into a fresh SQLite file through stdin, again row for row.
    back_path = tmp_path / "back" / "registry.db"
    back = sqlite_db(back_path)
    assert back.run("db", "init").code == 0
    exported = target.run("db", "export")
    assert exported.code == 0, exported.err
    r = back.run("db", "import", "--input", "-", input=exported.out.encode())
    assert r.code == 0, r.err
    assert as_dicts(back.url) == before


@pytest.mark.both_backends
def test_import_refuses_a_non_empty_target_and_changes_nothing(fresh_db, tmp_path):
    seed_session(fresh_db)
    dump = tmp_path / "dump.jsonl"
    assert fresh_db.run("db", "export", "--output", dump).code == 0
    before = as_dicts(fresh_db.url)
    r = fresh_db.run("db", "import", "--input", dump)
    assert r.code == 1
    assert r.err == (
        "Error: import: the target already holds rows in agent_placements; "
        "import only into a freshly initialised database.\n"
    )
    assert as_dicts(fresh_db.url) == before


def test_truncated_or_foreign_input_imports_nothing(fresh_db, tmp_path):
    seed_session(fresh_db)
    dump = tmp_path / "dump.jsonl"
    assert fresh_db.run("db", "export", "--output", dump).code == 0
    lines = dump.read_text().splitlines(keepends=True)
    truncated = tmp_path / "cut.jsonl"
    truncated.write_text("".join(lines[:-1]))
    empty = tmp_path / "empty"
    empty.mkdir()
    target = sqlite_db(empty / "r.db")
    assert target.run("db", "init").code == 0
    r = target.run("db", "import", "--input", truncated)
    assert r.code == 1
    assert "the export is incomplete" in r.err and "nothing was imported" in r.err
    assert all(v == [] for v in as_dicts(target.url).values())
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"hello": 1}\n')
    r = target.run("db", "import", "--input", junk)
    assert (r.code, r.err) == (1, "Error: import: line 1: not a cafleet export (no header line).\n")
    r = target.run("db", "export", "--output", dump)
    assert r.code == 1 and r.err.startswith(f"Error: cannot create {dump}: ")
