"""Subprocess end-to-end tests against real SQLite files: start-up, db init, readiness,
permissions and bad input. Numbers refer to ``acceptance.md``."""

import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from tests.cli_helpers import TASK_COLUMNS, as_agent, send_argv
from tests.conftest import CAFLEET, seed, seed_session, subprocess_env, url_db

pytestmark = pytest.mark.e2e


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_01_02_version_without_django_or_database(tmp_path):
    env = subprocess_env("sqlite:////proc/no/such/dir/registry.db")
    env["DJANGO_SETTINGS_MODULE"] = "no.such.settings"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", CAFLEET, "--version"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("cafleet ") and proc.stdout.strip() != "cafleet"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert "django" not in imported and "broker.models" not in imported


def test_03_no_command_and_bogus(file_db):
    r = file_db.run()
    assert r.code == 2 and r.out == "" and r.err.startswith("Usage: cafleet")
    r = file_db.run("member")
    assert r.code == 2 and r.err.startswith("Usage: cafleet member")
    r = file_db.run("bogus")
    assert r.code == 2 and r.err.endswith("Error: No such command 'bogus'.\n")
    r = file_db.run("--help")
    assert r.code == 0 and r.out.startswith("Usage: cafleet")


def test_07_session_id_ignored_by_db_init_and_doctor(file_db):
    r = file_db.run("--session-id", "whatever", "db", "init")
    assert r.code == 0 and r.out.startswith("Created ")
    r = file_db.run("--session-id", "whatever", "doctor")
    assert r.err == "Error: cafleet doctor must be run inside a tmux session\n"


def test_12_default_location_under_home(tmp_path):
    env = subprocess_env("unused")
    del env["CAFLEET_DATABASE_URL"]
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([CAFLEET, "db", "init"], capture_output=True, text=True, env=env)
    expected = tmp_path / ".local" / "share" / "cafleet" / "registry.db"
    assert proc.stdout == f"Created {expected} and applied migrations to head (0005_agent_state).\n"
    assert expected.is_file()
    assert mode(expected.parent) == 0o700 and mode(expected) == 0o600


def test_36_every_created_directory_level_is_private(tmp_path):
    url = f"sqlite:///{tmp_path}/a/b/c/registry.db"
    env = subprocess_env(url)
    proc = subprocess.run(
        ["sh", "-c", f"umask 000; exec {CAFLEET} db init"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    for level in ("a", "a/b", "a/b/c"):
        assert mode(tmp_path / level) == 0o700, level
    assert mode(tmp_path / "a/b/c/registry.db") == 0o600


def test_13_36_37_db_init_creates_private_file(file_db):
    r = file_db.run("db", "init")
    assert r.out == f"Created {file_db.path} and applied migrations to head (0005_agent_state).\n"
    assert mode(file_db.path.parent) == 0o700
    assert mode(file_db.path) == 0o600
    r = file_db.run("db", "init")
    assert (r.code, r.out) == (0, "Already at head (0005_agent_state); nothing to do.\n")
    r = file_db.run("--json", "db", "init")
    assert r.out == "Already at head (0005_agent_state); nothing to do.\n"


def test_38_pending_migrations_are_applied(fresh_db):
    con = sqlite3.connect(fresh_db.path)
    con.execute("DELETE FROM django_migrations WHERE app = 'sessions'")
    con.execute("DROP TABLE django_session")
    con.commit()
    con.close()
    r = fresh_db.run("session", "list")
    assert r.code == 0  # broker commands only need cafleet's own schema
    r = fresh_db.run("db", "init")
    assert r.out == "Upgraded from 0005_agent_state to 0005_agent_state.\n"
    con = sqlite3.connect(fresh_db.path)
    assert con.execute("SELECT count(*) FROM django_session").fetchone() == (0,)


def test_38_cafleet_migration_pending_blocks_commands(fresh_db):
    con = sqlite3.connect(fresh_db.path)
    con.execute("DELETE FROM django_migrations WHERE app = 'cafleet'")
    con.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES "
        "('cafleet', '0000_fake', '2026-01-01')"
    )
    con.commit()
    con.close()
    r = fresh_db.run("session", "list")
    assert r.err == (
        "Error: DB schema is at revision 0000_fake which is unknown to this version "
        "of cafleet. Refusing to downgrade automatically.\n"
    )


def test_39_foreign_database_left_byte_identical(file_db):
    file_db.path.parent.mkdir(parents=True)
    con = sqlite3.connect(file_db.path)
    con.execute("CREATE TABLE registry (x)")
    con.execute("INSERT INTO registry VALUES (1)")
    con.commit()
    con.close()
    before = file_db.path.read_bytes()
    r = file_db.run("db", "init")
    assert r.code == 1
    assert r.err == (
        f"Error: {file_db.path} has tables that cafleet does not manage and no "
        "Django migration history. Refusing to touch it; move it aside or point "
        "CAFLEET_DATABASE_URL at a new file.\n"
    )
    assert file_db.path.read_bytes() == before


def test_40_unknown_cafleet_revision(fresh_db):
    con = sqlite3.connect(fresh_db.path)
    con.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES "
        "('cafleet', '0099_future', '2026-01-01')"
    )
    con.commit()
    con.close()
    before = fresh_db.path.read_bytes()
    r = fresh_db.run("db", "init")
    assert (r.code, r.err) == (
        1,
        "Error: DB schema is at revision 0099_future which is unknown "
        "to this version of cafleet. Refusing to downgrade "
        "automatically.\n",
    )
    assert fresh_db.path.read_bytes() == before


def test_41_26_not_sqlite(file_db):
    file_db.path.parent.mkdir(parents=True)
    file_db.path.write_bytes(b"this is not a database at all, just text\n" * 10)
    before = file_db.path.read_bytes()
    for argv in (
        ["db", "init"],
        ["session", "list"],
        ["--session-id", "x", "message", "poll", "--agent-id", "y"],
    ):
        r = file_db.run(*argv)
        assert (r.code, r.out) == (1, "")
        assert r.err == f"Error: {file_db.path} is not a SQLite database.\n"
    assert file_db.path.read_bytes() == before


@pytest.mark.parametrize(
    "url, message",
    [
        ("sqlite:///:memory:", "database URL has no file path"),
        ("sqlite://", "database URL has no file path"),
        (  # postgres:// is a PostgreSQL URL now (docs/deployment.md); other schemes are not
            "mysql://localhost/x",
            "unsupported database URL 'mysql://localhost/x'; expected sqlite:///<path>.",
        ),
    ],
)
def test_42_bad_urls(url, message):
    env = subprocess_env(url)
    for argv in (["db", "init"], ["session", "list"]):
        proc = subprocess.run([CAFLEET, *argv], capture_output=True, text=True, env=env)
        assert (proc.returncode, proc.stderr) == (1, f"Error: {message}\n")


def test_driver_suffix_and_relative_path(tmp_path):
    env = subprocess_env("sqlite+aiosqlite:///rel/registry.db")
    proc = subprocess.run(
        [CAFLEET, "db", "init"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0 and (tmp_path / "rel" / "registry.db").is_file()


def test_43_44_46_schema(fresh_db):
    con = sqlite3.connect(fresh_db.path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "agents", "tasks", "agent_placements", "django_migrations"} <= tables
    cols = {
        t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
        for t in ("sessions", "agents", "tasks", "agent_placements")
    }
    assert set(cols["sessions"]) == {
        "session_id",
        "label",
        "created_at",
        "deleted_at",
        "director_agent_id",
    }
    assert set(cols["agents"]) == {
        "agent_id",
        "session_id",
        "name",
        "description",
        "status",
        "registered_at",
        "deregistered_at",
        "agent_card_json",
    }
    assert set(cols["tasks"]) == set(TASK_COLUMNS)
    assert set(cols["agent_placements"]) == {
        "agent_id",
        "director_agent_id",
        "tmux_session",
        "tmux_window_id",
        "tmux_pane_id",
        "coding_agent",
        "created_at",
        "host_id",  # issue 13: the host that owns the pane (migration 0004)
    }
    indexes = {
        r[0]: r[1]
        for r in con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type='index'")
    }
    assert indexes["idx_agents_session_status"] == "agents"
    assert indexes["idx_tasks_context_status_ts"] == "tasks"
    assert indexes["idx_tasks_from_agent_status_ts"] == "tasks"
    assert indexes["idx_placements_director"] == "agent_placements"
    columns = [r[2] for r in con.execute("PRAGMA index_info(idx_tasks_context_status_ts)")]
    assert columns == ["context_id", "status_timestamp"]
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    fleet = seed_session(fresh_db)
    row = con.execute("SELECT session_id, created_at FROM sessions").fetchone()
    assert row[0] == fleet.sid and len(row[0]) == 36 and row[0] == row[0].lower()
    assert len(row[1]) == 32 and row[1].endswith("+00:00")


def test_44_connection_pragmas(fresh_db):
    code = (
        "from django.db import connection\n"
        "c = connection.cursor()\n"
        "result = [c.execute(f'PRAGMA {p}').fetchone()[0] for p in ('foreign_keys', 'busy_timeout')]"
    )
    assert seed(fresh_db, code, command=("session", "list")) == [1, 5000]


def test_45_commands_before_init_create_nothing(file_db):
    for argv in (
        ["session", "list"],
        ["--session-id", "s", "agent", "list", "--agent-id", "a"],
        ["session", "show", "abc"],
    ):
        r = file_db.run(*argv)
        assert (r.code, r.out) == (1, "")
        assert r.err == (
            f"Error: database {file_db.path} is not initialised. Run 'cafleet db init'.\n"
        )
    assert not file_db.path.parent.exists()


def test_47_session_create_outside_tmux_writes_nothing(fresh_db):
    con = sqlite3.connect(fresh_db.path)
    r = fresh_db.run("session", "create")
    assert (r.code, r.err) == (
        1,
        "Error: cafleet session create must be run inside a tmux session\n",
    )
    r = fresh_db.run("session", "create", env={"TMUX": "/tmp/x,1,0"})
    assert r.err == "Error: cafleet session create must be run inside a tmux session\n"
    assert con.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_26_no_traceback_for_odd_input(fresh_db, tmp_path):
    fleet = seed_session(fresh_db)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xc3\x28")
    cases = [
        as_agent(fleet, fleet.director, "message poll", "--page-size", "9" * 40),
        send_argv(fleet, fleet.admin, None, "--text-file", str(bad)),
        send_argv(fleet, fleet.admin, None, "--text-file", str(tmp_path)),
        ["--session-id", "\u202e\u0000"[:1] + "x" * 5000, "agent", "list", "--agent-id", "é"],
        as_agent(fleet, fleet.director, "message poll", "--since", "9999-99-99"),
        ["session", "show", "%" * 20],
        as_agent(fleet, fleet.director, "message show", "--task-id", "\U0010ffff" * 9),
    ]
    for argv in cases:
        r = fresh_db.run(*argv)
        assert r.code in (0, 1, 2), argv
        assert "Traceback" not in r.err, argv
        if r.code:
            assert r.err.splitlines()[-1].startswith("Error: "), (argv, r.err)


def test_closed_stdout_pipe_exits_1_without_traceback(fresh_db):
    fleet = seed_session(fresh_db)
    for _ in range(30):
        fresh_db.run(*send_argv(fleet, fleet.admin, "x" * 5000))
    proc = subprocess.Popen(
        [CAFLEET, *as_agent(fleet, fleet.admin, "message poll", "--full")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=fresh_db.env,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and "Traceback" not in err


def test_stdin_body_byte_exact_through_real_process(fresh_db):
    fleet = seed_session(fresh_db)
    body = "multi\nline 'q' \"dq\" $HOME `id` \\ tab\t😀\n\n"
    r = fresh_db.run("--json", *send_argv(fleet, fleet.admin, "-"), input=body.encode())
    assert r.code == 0
    con = sqlite3.connect(fresh_db.path)
    assert con.execute("SELECT text FROM tasks").fetchone() == (body,)


def test_unwritable_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        # root ignores directory permissions; use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        url = f"sqlite:///{blocker}/sub/registry.db"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        url = f"sqlite:///{locked}/sub/registry.db"
    db = url_db(url, tmp_path / "x")
    r = db.run("db", "init")
    assert r.code == 1 and r.err.startswith("Error: cannot create database directory ")
    assert "Traceback" not in r.err
