"""Faults: a database directory or file that is not writable.

Each gives a clear ``Error:`` line, never a traceback, and leaves the database as it was
(``tests/test_e2e_storage.py`` already covers ``db init`` when the directory cannot be
created).
"""

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli_helpers import as_agent, send_argv
from tests.conftest import seed_session, sqlite_db

pytestmark = pytest.mark.e2e


# ------------------------------------------------------------------------------ unwritable directory
@contextmanager
def unwritable(path: Path):
    """Make ``path`` unwritable for this process: immutable for root, mode 0500 otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a directory unwritable")
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i not supported here: {proc.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


def test_unwritable_directory_of_an_existing_database(fresh_db):
    fleet = seed_session(fresh_db)
    before = _snapshot(fresh_db.path)
    with unwritable(fresh_db.path.parent):
        for argv in (
            send_argv(fleet, fleet.admin, "hi"),
            as_agent(fleet, fleet.admin, "message poll"),
            ["session", "list"],
        ):
            r = fresh_db.run(*argv)
            assert (r.code, r.out) == (1, ""), (argv, r.out)
            assert r.err.startswith("Error: ") and r.err.count("\n") == 1, r.err
            assert "Traceback" not in r.err
            assert str(fresh_db.path) in r.err, r.err
            j = fresh_db.run("--json", *argv)
            assert j.code == 1 and json.loads(j.err)["exit_code"] == 1
    assert _snapshot(fresh_db.path) == before


def test_db_init_in_unwritable_directory_names_the_file(fresh_db):
    with unwritable(fresh_db.path.parent):
        r = fresh_db.run("db", "init")
    assert (r.code, r.out) == (1, "")
    assert "Traceback" not in r.err
    assert str(fresh_db.path) in r.err, r.err


def test_db_init_cannot_create_the_file(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    db = sqlite_db(directory / "registry.db")
    with unwritable(directory):
        r = db.run("db", "init")
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith(f"Error: cannot create database {db.path}: "), r.err
    assert not db.path.exists()


def test_read_only_database_file(fresh_db):
    fleet = seed_session(fresh_db)
    before = _snapshot(fresh_db.path)
    with unwritable(fresh_db.path):
        r = fresh_db.run(*send_argv(fleet, fleet.admin, "hi"))
        assert (r.code, r.out) == (1, "")
        assert r.err.startswith("Error: ") and "Traceback" not in r.err, r.err
        r = fresh_db.run(*as_agent(fleet, fleet.admin, "message poll"))
        # reading may still work (it does for root with an immutable file); if not, cleanly
        assert (r.code, r.out) == (0, "No messages found.\n") or (
            r.code == 1 and r.err.startswith("Error: ") and "Traceback" not in r.err
        ), r.err
    assert _snapshot(fresh_db.path) == before
