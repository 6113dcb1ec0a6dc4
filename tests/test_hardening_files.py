"""Issue 11 items 5 and 6: concurrent ``db init`` and files beside a refused database.

5. Four ``db init`` at once on a fresh path all succeed (they take turns on a lock file
   beside the database) and ``django_migrations`` holds no duplicate row.
6. A command that refuses a database writes nothing beside it (no ``secret_key``, no lock
   file); an existing key file that is not ours or not private is refused with a clear error.
"""

import os
import socket
import sqlite3
import stat
import subprocess

import pytest

from tests.conftest import CAFLEET, FileDB, subprocess_env

pytestmark = pytest.mark.e2e  # runs cafleet or scripts in subprocesses


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


def db_in(directory) -> FileDB:
    path = directory / "registry.db"
    url = f"sqlite:///{path}"
    return FileDB(path, url, subprocess_env(url))


# ------------------------------------------------------------------------------ item 5
def test_four_concurrent_db_inits_all_succeed_without_duplicate_rows(tmp_path):
    db = db_in(tmp_path / "fresh" / "nested")
    procs = [
        subprocess.Popen(
            [CAFLEET, "db", "init"],
            env=db.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        results.append((proc.returncode, out.decode(), err.decode()))
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    outs = sorted(out.split(" ", 1)[0] for _, out, _ in results)
    assert outs == ["Already", "Already", "Already", "Created"], results
    con = sqlite3.connect(db.path)
    try:
        dupes = con.execute(
            "SELECT app, name, COUNT(*) FROM django_migrations GROUP BY app, name "
            "HAVING COUNT(*) > 1"
        ).fetchall()
        total = con.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0]
    finally:
        con.close()
    assert dupes == []
    assert total > 0
    lock = db.path.parent / "registry.db.lock"
    assert mode(lock) == 0o600
    assert db.run("session", "list").code == 0


# ------------------------------------------------------------------------------ item 6
def test_db_init_on_a_non_sqlite_file_writes_nothing_beside_it(tmp_path):
    directory = tmp_path / "notes"
    directory.mkdir()
    db = db_in(directory)
    db.path.write_text("just some notes\n")
    result = db.run("db", "init")
    assert result.code == 1
    assert result.err == f"Error: {db.path} is not a SQLite database.\n"
    assert listing(directory) == ["registry.db"]
    assert db.path.read_text() == "just some notes\n"


def test_db_init_on_foreign_tables_writes_nothing_beside_it(tmp_path):
    directory = tmp_path / "other"
    directory.mkdir()
    db = db_in(directory)
    con = sqlite3.connect(db.path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    result = db.run("db", "init")
    assert result.code == 1
    assert "has tables that cafleet does not manage" in result.err
    assert listing(directory) == ["registry.db"]


def test_server_on_an_uninitialised_path_writes_nothing(tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    db = db_in(directory)
    result = db.run("server", "--port", free_port(), timeout=30)
    assert result.code == 1
    assert "is not initialised" in result.err
    assert listing(directory) == []


def test_db_init_creates_a_private_key_once(tmp_path):
    db = db_in(tmp_path / "d")
    assert db.run("db", "init").code == 0
    key = db.path.parent / "secret_key"
    assert mode(key) == 0o600
    first = key.read_text()
    assert len(first.strip()) >= 50
    assert db.run("db", "init").code == 0
    assert key.read_text() == first


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o666])
def test_key_readable_by_others_is_refused(tmp_path, bits):
    db = db_in(tmp_path / "d")
    assert db.run("db", "init").code == 0
    key = db.path.parent / "secret_key"
    key.chmod(bits)
    for argv in (("db", "init"), ("server", "--port", free_port())):
        result = db.run(*argv, timeout=30)
        assert result.code == 1, (argv, result)
        assert result.err.startswith(f"Error: refusing the secret key file {key}: its mode "), (
            argv,
            result.err,
        )
        assert "lets group or others read it" in result.err
        assert "Traceback" not in result.err
    assert mode(key) == bits  # left as it was


def test_key_refused_before_db_init_writes_anything(tmp_path):
    directory = tmp_path / "pre"
    directory.mkdir()
    key = directory / "secret_key"
    key.write_text("x" * 60 + "\n")
    key.chmod(0o644)
    db = db_in(directory)
    result = db.run("db", "init")
    assert result.code == 1
    assert "refusing the secret key file" in result.err
    assert listing(directory) == ["secret_key"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_key_owned_by_someone_else_is_refused(tmp_path):
    db = db_in(tmp_path / "d")
    assert db.run("db", "init").code == 0
    key = db.path.parent / "secret_key"
    os.chown(key, 4242, 4242)
    result = db.run("db", "init")
    assert result.code == 1
    assert result.err.startswith(
        f"Error: refusing the secret key file {key}: it is owned by uid 4242, not by the "
        f"current user (uid {os.geteuid()})."
    )


def test_key_that_is_a_symlink_is_refused(tmp_path):
    db = db_in(tmp_path / "d")
    db.path.parent.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("k" * 60 + "\n")
    target.chmod(0o600)
    (db.path.parent / "secret_key").symlink_to(target)
    result = db.run("db", "init")
    assert result.code == 1
    assert "it is not a regular file" in result.err
    assert not db.path.exists()
