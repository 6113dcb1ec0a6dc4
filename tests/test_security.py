"""Security properties of the local installation (threat model: ``docs/security.md``).

Here: the database directory is 0700 and the database file and its ``-wal``/``-shm``
companions are 0600 whatever the umask, while in use, and after ``db init`` repairs a loose
file; the admin's secret key beside the database is 0600 and stable; no code path starts a
shell. ``tests/test_e2e_storage.py`` already checks the modes of a plain ``db init``.

Covered elsewhere, not repeated here:

* every admin URL requires a login: ``tests/test_admin_access.py``
  (``test_anonymous_requests_end_at_the_login_page``, ``test_url_crawl_covers_the_admin``);
* ``cafleet server`` warns on a non-loopback bind: ``tests/test_server.py``
  (``test_non_loopback_address_warns``);
* hostile bodies, names, descriptions and labels: ``tests/test_injection_bodies.py`` and
  ``tests/test_injection_names.py``.
"""

import ast
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import send_argv
from tests.conftest import CAFLEET, REPO, seed, seed_session, sqlite_db


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def run_with_umask(db, umask, *argv):
    return subprocess.run(
        [CAFLEET, *argv],
        env=db.env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
        timeout=60,
    )


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_db_init_is_private_whatever_the_umask(file_db, umask):
    r = run_with_umask(file_db, umask, "db", "init")
    assert r.returncode == 0, r.stderr
    assert mode(file_db.path.parent) == 0o700
    assert mode(file_db.path) == 0o600
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{file_db.path}{suffix}")
        assert not companion.exists() or mode(companion) == 0o600


def test_db_init_repairs_a_loose_database_file(fresh_db):
    os.chmod(fresh_db.path, 0o644)
    r = fresh_db.run("db", "init")
    assert (r.code, r.out) == (0, "Already at head (0005_agent_state); nothing to do.\n")
    assert mode(fresh_db.path) == 0o600


def test_wal_and_shm_are_private_while_in_use(fresh_db):
    """SQLite creates the companions while connections are open; they must not be
    readable by others even under a permissive umask."""
    fleet = seed_session(fresh_db)
    reader = sqlite3.connect(fresh_db.path)  # keeps the WAL from being checkpointed away
    try:
        reader.execute("SELECT count(*) FROM tasks").fetchall()
        for umask in (0o000, 0o022):
            r = run_with_umask(fresh_db, umask, *send_argv(fleet, fleet.admin, "private"))
            assert r.returncode == 0, r.stderr
            for suffix in ("-wal", "-shm"):
                companion = Path(f"{fresh_db.path}{suffix}")
                assert companion.exists(), suffix
                assert mode(companion) == 0o600, (suffix, oct(mode(companion)))
    finally:
        reader.close()
    assert mode(fresh_db.path) == 0o600


def test_commands_other_than_db_init_never_loosen_modes(fresh_db):
    fleet = seed_session(fresh_db)
    for argv in (
        ["session", "list"],
        [
            "--session-id",
            fleet.sid,
            "message",
            "broadcast",
            "--agent-id",
            fleet.director,
            "--text",
            "x",
        ],
        ["--session-id", fleet.sid, "agent", "register", "--name", "n", "--description", "d"],
    ):
        r = run_with_umask(fresh_db, 0o000, *argv)
        assert r.returncode == 0, r.stderr
        assert mode(fresh_db.path.parent) == 0o700 and mode(fresh_db.path) == 0o600


def test_admin_secret_key_is_private_and_stable(fresh_db):
    key = fresh_db.path.parent / "secret_key"
    assert mode(key) == 0o600  # db init creates it once the database is at head
    for _ in range(2):
        proc = subprocess.run(
            [CAFLEET, "django", "check"],
            env=fresh_db.env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert mode(key) == 0o600
    first = key.read_text()
    proc = subprocess.run(
        [CAFLEET, "django", "check"], env=fresh_db.env, capture_output=True, text=True, timeout=60
    )
    assert key.read_text() == first and len(first.strip()) >= 50


@pytest.mark.e2e
def test_secret_key_is_never_written_where_db_init_did_not_run(tmp_path):
    db = sqlite_db(tmp_path / "absent" / "registry.db")
    r = db.run("session", "list")
    assert r.code == 1
    proc = subprocess.run(
        [CAFLEET, "django", "check"], env=db.env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "absent").exists()


# ------------------------------------------------------------------------------ no shell
def _python_files():
    for top in ("broker", "cafleet_project"):
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def shell_calls(tree: ast.AST, label: str) -> list[str]:
    """Calls that start a shell: ``shell=`` anything but False, ``os.system``/``popen``,
    ``subprocess.getoutput``/``getstatusoutput``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("system", "popen", "getoutput", "getstatusoutput"):
            found.append(f"{label}:{node.lineno} {name}()")
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                found.append(f"{label}:{node.lineno} shell=")
    return found


def test_no_code_path_starts_a_shell():
    """tmux and everything else run from argument lists (tmux.md §1)."""
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        offenders += shell_calls(tree, str(path.relative_to(REPO)))
    assert offenders == []


def test_the_shell_scan_can_fail():
    tree = ast.parse(
        "import subprocess, os\nsubprocess.run('x', shell=True)\n"
        "os.system('y')\nsubprocess.run(['z'], shell=False)\n"
    )
    assert shell_calls(tree, "t") == ["t:2 shell=", "t:3 system()"]


# ------------------------------------------------------------------------------ admin responses
def test_admin_responses_carry_browser_hardening(client, admin_user):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page.cookies["cafleet_csrftoken"]["samesite"] == "Lax"
    login = client.post(
        "/admin/login/",
        {"username": admin_user.username, "password": "password", "next": "/admin/"},
    )
    assert login.status_code == 302, login.content[:500]
    session = login.cookies["cafleet_sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"


def test_served_settings_have_debug_off(fresh_db):
    code = "from django.conf import settings\nresult = settings.DEBUG"
    assert seed(fresh_db, code, command=("server",)) is False
