"""Shared fixtures.

Databases: in-process tests use pytest-django's test database, which is put in a real
SQLite *file* and named in ``CAFLEET_DATABASE_URL`` so the CLI's readiness check and
Django see the same file. Subprocess tests make their own file database with
``cafleet db init`` (``fresh_db``). Nothing touches ``~/.local/share/cafleet``: HOME is
pointed at a temporary directory for the whole run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.plugins.tmux_server", "tests.plugins.postgres_server"]

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CAFLEET = str(BIN / "cafleet")

_RUN_DIR = Path(tempfile.mkdtemp(prefix="cafleet-tests-"))
_HOME = _RUN_DIR / "home"
_HOME.mkdir()
os.environ["HOME"] = str(_HOME)
# tmux without TMUX set talks to $TMUX_TMPDIR/tmux-UID/default: keep that private too, so
# no test can ever reach the user's own tmux server.
os.environ["TMUX_TMPDIR"] = str(_RUN_DIR)
os.environ.pop("CAFLEET_DEBUG", None)
for _var in ("CAFLEET_MAX_TEXT_LEN", "CAFLEET_MAX_BODY_BYTES", "TMUX", "TMUX_PANE"):
    os.environ.pop(_var, None)
TEST_DB = _RUN_DIR / "test-registry.db"
# CAFLEET_TEST_BACKEND=postgres (scripts/test's second pass over the command tests): the
# in-process tests' database is a PostgreSQL database of the throwaway cluster instead.
TEST_BACKEND = os.environ.get("CAFLEET_TEST_BACKEND", "sqlite")
if TEST_BACKEND == "postgres":
    pytest.register_assert_rewrite("tests.plugins.postgres_server")
    from tests.plugins.postgres_server import shared_cluster

    TEST_URL = shared_cluster().url("cafleet_inproc")
else:
    TEST_URL = f"sqlite:///{TEST_DB}"
os.environ["CAFLEET_DATABASE_URL"] = TEST_URL


# Fixtures that run cafleet (or Python) in subprocesses: a test using one is ``e2e``.
SUBPROCESS_FIXTURES = frozenset({"file_db", "fresh_db"})


def pytest_collection_modifyitems(items):
    for item in items:
        if SUBPROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    from django.conf import settings

    if TEST_BACKEND == "postgres":
        # The settings were read before this module set the URL: point Django's default
        # connection at the cluster (pytest-django then makes its test database there).
        from django.db import connections

        from broker.database import django_databases

        default = settings.DATABASES["default"]
        default.clear()
        default.update(django_databases())
        default.update(
            ATOMIC_REQUESTS=False,
            AUTOCOMMIT=True,
            CONN_HEALTH_CHECKS=False,
            TIME_ZONE=None,
            TEST={
                "NAME": None,
                "CHARSET": None,
                "COLLATION": None,
                "MIGRATE": True,
                "MIRROR": None,
            },
        )
        try:
            del connections["default"]
        except AttributeError:
            pass
        return
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(TEST_DB)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """Every test starts with the run's database URL and no tmux in the environment."""
    monkeypatch.setenv("CAFLEET_DATABASE_URL", TEST_URL)
    for var in (
        "TMUX",
        "TMUX_PANE",
        "CAFLEET_MAX_TEXT_LEN",
        "CAFLEET_MAX_BODY_BYTES",
        "CAFLEET_DEBUG",
    ):
        monkeypatch.delenv(var, raising=False)
    # In-process tests never start a background delivery worker (tests that do, opt in).
    monkeypatch.setenv("CAFLEET_DELIVERY_AUTOSTART", "0")


# ----------------------------------------------------------------------------- in-process
@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    @property
    def err_json(self):
        return json.loads(self.err.strip().splitlines()[-1])

    @property
    def lines(self):
        return self.out.splitlines()


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the entry point in-process: ``cli("--session-id", sid, "agent", "list", ...)``."""
    from cafleet_project.cli import main

    def run(*argv, stdin: bytes | None = None) -> Result:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@dataclass
class Fleet:
    """A live session made through the service layer (no tmux needed)."""

    sid: str
    director: str
    admin: str
    pane: str = "%1"

    def register(self, name: str, description: str = "test agent") -> str:
        from broker.services import agent_register

        return agent_register(
            session_id=self.sid, name=name, description=description, skills_json=None
        ).agent_id


def make_fleet(label: str | None = "test", pane: str = "%1") -> Fleet:
    from broker.services import session_create

    session, director, admin, _ = session_create(
        label=label, coding_agent="claude", caller=("cafleet-test", "@1", pane)
    )
    return Fleet(session.session_id, director.agent_id, admin.agent_id, pane)


@pytest.fixture
def fleet(db) -> Fleet:
    return make_fleet()


def place_member(
    sid: str,
    director: str,
    name: str,
    pane: str | None,
    *,
    description: str = "d",
    coding_agent: str = "claude",
    tmux_session: str = "main",
    stamp: str | None = None,
):
    """A member (an agent placed in ``pane`` under ``director``) without tmux or the member
    service: a registered agent plus its placement row. ``stamp`` (registration and placement
    time) orders members. Returns the ``Agent``."""
    from broker.models import Placement
    from broker.services import agent_register

    agent = agent_register(session_id=sid, name=name, description=description, skills_json=None)
    if stamp is not None:
        agent.registered_at = stamp
        agent.save(update_fields=["registered_at"])
    Placement.objects.create(
        agent=agent,
        director_agent_id=director,
        tmux_session=tmux_session,
        tmux_window_id="@1",
        tmux_pane_id=pane,
        coding_agent=coding_agent,
        created_at=agent.registered_at,
    )
    return agent


# ----------------------------------------------------------------------------- subprocess
@dataclass
class FileDB:
    """A database for subprocess tests: a SQLite file (``path``) or, on the PostgreSQL run
    of a ``both_backends`` test, a database of the throwaway cluster (``path`` None)."""

    path: Path | None
    url: str
    env: dict

    @property
    def backend(self) -> str:
        return "sqlite" if self.path is not None else "postgres"

    def rows(self, sql: str, *params) -> list[tuple]:
        """Read with ``?`` placeholders, on either backend."""
        from bench.dbquery import rows

        return rows(self.url, sql, *params)

    def execute(self, sql: str, *params) -> None:
        from bench.dbquery import execute

        execute(self.url, sql, *params)

    def run(
        self, *argv, input: bytes | None = None, env: dict | None = None, timeout: float = 60
    ) -> Result:
        merged = {**self.env, **(env or {})}
        merged = {k: v for k, v in merged.items() if v is not None}
        proc = subprocess.run(
            [CAFLEET, *map(str, argv)],
            input=input,
            capture_output=True,
            env=merged,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def subprocess_env(url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CAFLEET_", "DJANGO_"))}
    env["CAFLEET_DATABASE_URL"] = url
    # No background delivery worker outlives a test (tests that want one opt in).
    env["CAFLEET_DELIVERY_AUTOSTART"] = "0"
    return env


def url_db(url: str, path: Path | None = None) -> FileDB:
    """A ``FileDB`` for ``url`` (``path``: its SQLite file, None for PostgreSQL)."""
    return FileDB(path, url, subprocess_env(url))


def sqlite_db(path: Path) -> FileDB:
    """A ``FileDB`` for the SQLite file at ``path`` (which need not exist yet)."""
    return url_db(f"sqlite:///{path}", path)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc):
    """Tests marked ``both_backends`` run once per backend (through ``db_backend``)."""
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_backends"
    ):
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest.fixture
def db_backend(request) -> str:
    """``sqlite`` unless the test is parametrised by ``both_backends``."""
    return getattr(request, "param", "sqlite")


def postgres_db(request, *, initialised: bool) -> FileDB:
    cluster = request.getfixturevalue("pg_cluster")
    return url_db(cluster.url(cluster.new_database(initialised=initialised)))


@pytest.fixture
def file_db(tmp_path, db_backend, request) -> FileDB:
    """A database that is not initialised yet (``cafleet db init`` not run): a path for a
    SQLite file, or an empty PostgreSQL database."""
    if db_backend == "postgres":
        return postgres_db(request, initialised=False)
    return sqlite_db(tmp_path / "data" / "registry.db")


@pytest.fixture(scope="session")
def initialised_db_template(tmp_path_factory) -> Path:
    """One database made by ``cafleet db init`` per run; ``fresh_db`` copies it."""
    path = tmp_path_factory.mktemp("template") / "data" / "registry.db"
    result = sqlite_db(path).run("db", "init")
    assert result.code == 0, result.err
    return path


@pytest.fixture
def fresh_db(tmp_path, db_backend, request) -> FileDB:
    """An initialised database, for subprocess tests: a copy of the run's SQLite template
    (private directory and file, as ``db init`` leaves them), or on PostgreSQL a database
    cloned from the cluster's initialised template."""
    if db_backend == "postgres":
        return postgres_db(request, initialised=True)
    file_db = request.getfixturevalue("file_db")
    template = request.getfixturevalue("initialised_db_template")
    file_db.path.parent.mkdir(mode=0o700)
    for made in template.parent.iterdir():  # the database and its secret key, modes kept
        shutil.copy2(made, file_db.path.parent / made.name)
    return file_db


def seed(db: FileDB, code: str, command: tuple = ("session", "create")):
    """Run ``code`` with Django set up on ``db`` as for ``command`` (the broker's services
    importable); it sets ``result``, which comes back through JSON. One subprocess, so the
    test process's own Django connection is not involved."""
    script = (
        "import json\n"
        "from cafleet_project.cli import setup_django\n"
        f"setup_django({command!r})\n"
        f"{code}\n"
        "print(json.dumps(result))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=db.env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


SEED_SESSION = (
    "from broker.services import session_create\n"
    "s, d, a, p = session_create(label='seed', coding_agent='claude',"
    " caller=('cafleet-test', '@1', '%999999'))\n"
)


def seed_session(db: FileDB) -> Fleet:
    """Create a session in a file database without tmux, through the service layer."""
    sid, director, admin = seed(
        db, SEED_SESSION + "result = [s.session_id, d.agent_id, a.agent_id]"
    )
    return Fleet(sid, director, admin, "%999999")
