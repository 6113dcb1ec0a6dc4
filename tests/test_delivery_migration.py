"""`cafleet db init` upgrades a database made by the 0001 release (migration 0002_delivery_states)
with no data loss, and backfills one delivery row per unicast task."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from tests.conftest import REPO

SID = "11111111-1111-4111-8111-111111111111"
DIRECTOR = "22222222-2222-4222-8222-222222222222"
ADMIN = "33333333-3333-4333-8333-333333333333"
MEMBER = "44444444-4444-4444-8444-444444444444"
GONE = "55555555-5555-4555-8555-555555555555"
T0 = "2026-05-05T12:00:00.000000+00:00"
T1 = "2026-05-05T12:00:01.000000+00:00"
T2 = "2026-05-05T12:00:02.123456+00:00"
BROADCAST = "66666666-6666-4666-8666-666666666666"


def ts(i: int) -> str:
    return f"2026-05-05T12:01:{i:02d}.000000+00:00"


def tid(i: int) -> str:
    return f"aaaaaaaa-0000-4000-8000-{i:012d}"


def manage(db, *args) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args, "--verbosity", "0"],
        cwd=REPO,
        env=db.env,
        check=True,
        capture_output=True,
    )


def card(name: str, admin: bool = False) -> str:
    data = {"name": name, "description": "d", "skills": []}
    if admin:
        data["cafleet"] = {"kind": "builtin-administrator"}
    return json.dumps(data)


TASKS = [
    # task_id, context, from, to, type, created, state, status_ts, origin, text
    (tid(1), MEMBER, DIRECTOR, MEMBER, "unicast", ts(1), "input_required", ts(1), None, "do it"),
    (tid(2), MEMBER, DIRECTOR, MEMBER, "unicast", ts(2), "completed", ts(9), None, "done?\nyes ✓"),
    (tid(3), DIRECTOR, MEMBER, DIRECTOR, "unicast", ts(3), "canceled", ts(8), None, "never mind"),
    (tid(4), ADMIN, MEMBER, ADMIN, "unicast", ts(4), "input_required", ts(4), None, "to admin"),
    (BROADCAST, DIRECTOR, DIRECTOR, "", "broadcast_summary", ts(5), "completed", ts(5), BROADCAST,
     "Broadcast sent to 2 recipients"),
    (tid(6), MEMBER, DIRECTOR, MEMBER, "unicast", ts(5), "input_required", ts(5), BROADCAST, "all"),
    (tid(7), GONE, DIRECTOR, GONE, "unicast", ts(5), "input_required", ts(5), BROADCAST, "all"),
]  # fmt: skip


def seed_0001(path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys=ON")
    with con:
        con.execute(
            "INSERT INTO sessions (session_id,label,created_at,deleted_at,director_agent_id) "
            "VALUES (?,?,?,NULL,NULL)",
            (SID, "old", T0),
        )
        agents = [
            (DIRECTOR, "Director", "active", None, card("Director")),
            (ADMIN, "Administrator", "active", None, card("Administrator", admin=True)),
            (MEMBER, "worker", "active", None, card("worker")),
            (GONE, "gone", "deregistered", T2, card("gone")),
        ]
        for aid, name, status, dereg, agent_card in agents:
            con.execute(
                "INSERT INTO agents (agent_id,session_id,name,description,status,registered_at,"
                "deregistered_at,agent_card_json) VALUES (?,?,?,?,?,?,?,?)",
                (aid, SID, name, "d", status, T0, dereg, agent_card),
            )
        con.execute("UPDATE sessions SET director_agent_id=? WHERE session_id=?", (DIRECTOR, SID))
        con.execute(
            "INSERT INTO agent_placements (agent_id,director_agent_id,tmux_session,tmux_window_id,"
            "tmux_pane_id,coding_agent,created_at) VALUES (?,?,?,?,?,?,?)",
            (DIRECTOR, None, "main", "@1", "%1", "claude", T0),
        )
        con.execute(
            "INSERT INTO agent_placements (agent_id,director_agent_id,tmux_session,tmux_window_id,"
            "tmux_pane_id,coding_agent,created_at) VALUES (?,?,?,?,?,?,?)",
            (MEMBER, DIRECTOR, "main", "@1", "%2", "codex", T1),
        )
        con.executemany(
            "INSERT INTO tasks (task_id,context_id,from_agent_id,to_agent_id,type,created_at,"
            "status_state,status_timestamp,origin_task_id,text) VALUES (?,?,?,?,?,?,?,?,?,?)",
            TASKS,
        )
    con.close()


def dump(path) -> dict[str, list]:
    con = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def test_db_init_upgrades_a_0001_database_without_data_loss(file_db):
    os.makedirs(file_db.path.parent, mode=0o700)
    manage(file_db, "migrate")
    manage(file_db, "migrate", "cafleet", "0001_initial")
    before_tables = dump(file_db.path)
    assert "task_deliveries" not in before_tables and "delivery_workers" not in before_tables
    seed_0001(file_db.path)
    before = dump(file_db.path)
    assert len(before["tasks"]) == len(TASKS)

    refused = file_db.run("--session-id", SID, "message", "poll", "--agent-id", MEMBER)
    assert refused.code == 1
    assert refused.err == (
        f"Error: database {file_db.path} is out of date. Run 'cafleet db init'.\n"
    )

    up = file_db.run("db", "init")
    assert (up.code, up.err) == (0, "")
    assert up.out == "Upgraded from 0001_initial to 0004_placement_host.\n"
    after = dump(file_db.path)

    # every row of every table that existed before is still there, byte for byte
    for table, rows in before.items():
        if table == "django_migrations":
            continue
        if table == "agent_placements":  # 0004 adds host_id, '' on the rows made before
            rows = sorted((*r, "") for r in rows)
            assert sorted(after[table]) == rows, table
            continue
        assert after[table] == rows, table
    old_ids = {r[0] for r in before["django_migrations"]}
    added = [r for r in after["django_migrations"] if r[0] not in old_ids]
    assert [(r[1], r[2]) for r in sorted(added, key=lambda r: r[2])] == [
        ("cafleet", "0002_delivery_states"),
        ("cafleet", "0003_member_events"),
        ("cafleet", "0004_placement_host"),
    ]
    assert sorted(set(after) - set(before)) == [
        "delivery_workers",
        "member_events",
        "task_deliveries",
    ]
    assert after["delivery_workers"] == []

    con = sqlite3.connect(file_db.path)
    con.row_factory = sqlite3.Row
    rows = {r["task_id"]: dict(r) for r in con.execute("SELECT * FROM task_deliveries")}
    con.close()
    unicast = {t[0]: t for t in TASKS if t[4] == "unicast"}
    assert set(rows) == set(unicast)  # one per unicast task, none for the summary
    for task_id, task in unicast.items():
        d = rows[task_id]
        if task[6] == "completed":
            expected = ("seen", None, task[7])
        else:
            expected = ("offered", "migrated", None)
        assert (d["state"], d["reason"], d["seen_at"]) == expected, task_id
        assert d["channel"] is None and d["offered_at"] is None and d["held_since"] is None
        assert (d["attempts"], d["escalated_at"], d["updated_at"]) == ("0", None, task[7])

    again = file_db.run("db", "init")
    assert again.out == "Already at head (0004_placement_host); nothing to do.\n"

    # the upgraded database works: poll shows the delivery and marks it seen
    polled = file_db.run("--json", "--session-id", SID, "message", "poll", "--agent-id", MEMBER)
    assert polled.code == 0, polled.err
    got = {e["id"]: e for e in polled.json}
    assert set(got) == {tid(1)[:8], tid(6)[:8]}
    assert got[tid(1)[:8]]["text"] == "do it"
    assert got[tid(1)[:8]]["delivery"]["state"] == "seen"
    assert got[tid(1)[:8]]["delivery"]["reason"] == "migrated"
    shown = file_db.run(
        "--json", "--session-id", SID, "message", "show", "--agent-id", DIRECTOR,
        "--task-id", tid(2),
    )  # fmt: skip
    assert shown.json["task"]["delivery"]["state"] == "seen"
    assert shown.json["task"]["delivery"]["seen_at"] == ts(9)
