"""PostgreSQL specifics (issue 13): the URL forms, passwords that never show, the missing
driver, readiness and ``db init``, the NOTIFY behind ``poll --wait``, index-served id
prefixes and the timestamp text form. The shared suites run on both backends through the
``both_backends`` marker; this file holds what only PostgreSQL has."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from broker.conf import DatabaseURLError, postgres_params, redact_url
from tests.cli_helpers import as_agent, send_argv
from tests.conftest import REPO, FileDB, Fleet, seed, seed_session, subprocess_env, url_db
from tests.plugins.postgres_server import PASSWORD, PASSWORD_ROLE

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def params(url: str) -> dict:
    return postgres_params({"CAFLEET_DATABASE_URL": url})


# ------------------------------------------------------------------------------ URL forms
def test_url_parts_are_decoded():
    p = params("postgresql://al%40ice:p%3Ass@db.example:6543/reg%2Dtry")
    assert (p["user"], p["password"], p["host"], p["port"], p["dbname"]) == (
        "al@ice",
        "p:ss",
        "db.example",
        "6543",
        "reg-try",
    )
    assert p["options"] == {}


def test_postgres_spelling_and_driver_suffix_are_accepted():
    assert params("postgres://u@h/d")["dbname"] == "d"
    assert params("postgresql+psycopg://u@h/d")["host"] == "h"


def test_unix_socket_host_as_encoded_host_or_query():
    assert params("postgresql://%2Frun%2Fpostgresql/reg")["host"] == "/run/postgresql"
    p = params("postgresql:///reg?host=/var/run/pg&port=5433")
    assert (p["host"], p["port"], p["dbname"]) == ("/var/run/pg", "5433", "reg")


def test_libpq_options_pass_through():
    p = params(
        "postgresql://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        "&connect_timeout=5&application_name=cafleet"
    )
    assert p["options"] == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
        "connect_timeout": "5",
        "application_name": "cafleet",
    }


def test_ipv6_and_several_hosts():
    p = params("postgresql://u@[::1]:5432/d")
    assert (p["host"], p["port"]) == ("::1", "5432")
    p = params("postgresql://u@a:5001,b:5002/d")
    assert (p["host"], p["port"]) == ("a,b", "5001,5002")


@pytest.mark.parametrize(
    "url, what",
    [
        ("postgresql://u:pw@h/", "no database name"),
        ("postgresql://u:pw@h:99999/d", "bad port '99999'"),
        ("postgresql://u:pw@h:x/d", "bad port 'x'"),
        ("postgresql://u:pw@h/d?bad-key=1", "bad parameter name 'bad-key'"),
    ],
)
def test_bad_urls_are_refused_without_the_password(url, what):
    with pytest.raises(DatabaseURLError) as exc:
        params(url)
    assert what in str(exc.value)
    assert "pw" not in str(exc.value).replace("postgresql", "")


def test_redaction_hides_userinfo_and_query_passwords():
    assert redact_url("postgresql://u:hunter2@h/d") == "postgresql://u:***@h/d"
    assert redact_url("postgresql://h/d?sslmode=require&password=hunter2") == (
        "postgresql://h/d?sslmode=require&password=***"
    )
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_unsupported_scheme_error_is_redacted(file_db):
    env = {**file_db.env, "CAFLEET_DATABASE_URL": "mysql://root:topsecret@h/d"}
    r = file_db.run("db", "init", env=env)
    assert r.code == 1
    assert r.err.startswith("Error: unsupported database URL 'mysql://root:***@h/d'")
    assert "topsecret" not in r.err


# ------------------------------------------------------------------------------ driver
HIDE_PSYCOPG = r"""
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg2", "psycopg_binary"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
from cafleet_project.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["db", "init"], ["session", "list"]])
def test_missing_driver_names_the_extra(argv, tmp_path):
    env = subprocess_env("postgresql://u:pw@%2Fnowhere/d")
    proc = subprocess.run(
        [sys.executable, "-c", HIDE_PSYCOPG, *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: PostgreSQL support needs the psycopg driver, which is not installed; "
        "install it with: pip install 'cafleet[postgres]'\n"
    )


# ------------------------------------------------------------------------------ server
@pytest.fixture
def pg_db(request) -> FileDB:
    from tests.conftest import postgres_db

    return postgres_db(request, initialised=True)


@pytest.fixture
def pg_empty(request) -> FileDB:
    from tests.conftest import postgres_db

    return postgres_db(request, initialised=False)


@pytest.mark.postgres
def test_uninitialised_database_is_refused_then_db_init_makes_it(pg_empty):
    r = pg_empty.run("session", "list")
    assert r.code == 1
    assert r.err == f"Error: database {pg_empty.url} is not initialised. Run 'cafleet db init'.\n"
    r = pg_empty.run("db", "init")
    assert (r.code, r.err) == (0, "")
    assert r.out.startswith(f"Initialised {pg_empty.url} and applied migrations to head (")
    again = pg_empty.run("db", "init")
    assert again.out.startswith("Already at head (")
    assert pg_empty.run("session", "list").out == "No sessions found.\n"


@pytest.mark.postgres
def test_db_init_refuses_a_database_with_foreign_tables(pg_empty):
    pg_empty.execute("CREATE TABLE payroll (id int)")
    r = pg_empty.run("db", "init")
    assert r.code == 1
    assert "has tables that cafleet does not manage" in r.err
    assert pg_empty.rows("SELECT count(*) FROM pg_tables WHERE tablename='sessions'") == [(0,)]


@pytest.mark.postgres
def test_unreachable_server_is_one_error_line_without_password(tmp_path):
    url = f"postgresql://someone:hunter2@{str(tmp_path).replace('/', '%2F')}/d"
    r = url_db(url).run("session", "list")
    assert r.code == 1
    assert r.err.startswith("Error: cannot open database postgresql://someone:***@")
    assert len(r.err.splitlines()) == 1
    assert "hunter2" not in r.err and "Traceback" not in r.err


def _password_url(cluster, dbname, password):
    return cluster.url(dbname, user=PASSWORD_ROLE, password=password)


@pytest.fixture
def pw_setup(pg_cluster, pg_db):
    dbname = pg_db.url.rsplit("/", 1)[1]
    pg_cluster.admin(f"GRANT ALL ON DATABASE {dbname} TO {PASSWORD_ROLE}")
    pg_db.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {PASSWORD_ROLE}")
    return pg_cluster, dbname


@pytest.mark.postgres
def test_password_from_url_works_and_a_wrong_one_is_redacted(pw_setup):
    cluster, dbname = pw_setup
    good = _password_url(cluster, dbname, PASSWORD)
    r = url_db(good).run("session", "list")
    assert (r.code, r.out, r.err) == (0, "No sessions found.\n", "")
    bad = _password_url(cluster, dbname, "wrong-Secret")
    r = url_db(bad).run("--json", "session", "list")
    assert r.code == 1
    assert "password authentication failed" in r.err_json["error"]
    assert "wrong-Secret" not in r.err and ":***@" in r.err


@pytest.mark.postgres
def test_password_from_pgpassword(pw_setup):
    cluster, dbname = pw_setup
    url = cluster.url(dbname, user=PASSWORD_ROLE)
    env = {**subprocess_env(url), "PGPASSWORD": PASSWORD}
    r = FileDB(None, url, env).run("session", "list")
    assert (r.code, r.err) == (0, "")
    r = FileDB(None, url, {**env, "PGPASSWORD": "not-it-either"}).run("session", "list")
    assert r.code == 1 and "not-it-either" not in r.err


@pytest.mark.postgres
def test_password_from_pgpass(pw_setup, tmp_path):
    cluster, dbname = pw_setup
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    escaped = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"*:*:{dbname}:{PASSWORD_ROLE}:{escaped}\n")
    pgpass.chmod(0o600)
    url = cluster.url(dbname, user=PASSWORD_ROLE)
    env = {**subprocess_env(url), "HOME": str(home)}
    env.pop("PGPASSWORD", None)
    r = FileDB(None, url, env).run("session", "list")
    assert (r.code, r.err) == (0, "")


# ------------------------------------------------------------------------------ behaviour
@pytest.mark.postgres
def test_a_committed_send_notifies_the_recipient_channel(pg_db):
    from bench.dbquery import pg_connect

    fleet = seed_session(pg_db)
    listener = pg_connect(pg_db.url)
    try:
        listener.execute(f'LISTEN "cafleet.{fleet.admin}"')
        listener.execute(f'LISTEN "cafleet.{fleet.director}"')
        r = pg_db.run(*send_argv(fleet, fleet.admin, "ping"))
        assert r.code == 0, r.err
        got = [n.channel for n in listener.notifies(timeout=10, stop_after=1)]
        assert got == [f"cafleet.{fleet.admin}"]
        r = pg_db.run(*as_agent(fleet, fleet.admin, "message broadcast", "--text", "all"))
        assert r.code == 0, r.err
        got = [n.channel for n in listener.notifies(timeout=10, stop_after=1)]
        assert got == [f"cafleet.{fleet.director}"]
        # A refused send (unknown destination) commits nothing and notifies nobody.
        r = pg_db.run(*send_argv(fleet, "00000000-0000-4000-8000-000000000000", "x"))
        assert r.code == 1
        assert list(listener.notifies(timeout=0.5)) == []
    finally:
        listener.close()


PREFIX_PLAN = r"""
from django.db import connection
from broker.database import prefix_filter
from broker.models import Task
with connection.cursor() as cur:
    cur.execute("SET enable_seqscan = off")
qs = Task.objects.filter(**prefix_filter("task_id", "0123abcd")).values_list("task_id")
result = {"sql": str(qs.query), "plan": qs.explain()}
"""


@pytest.mark.postgres
def test_id_prefix_lookup_can_use_an_index(pg_db):
    found = seed(pg_db, PREFIX_PLAN, command=("message", "show"))
    assert "LIKE" in found["sql"]
    assert "Index" in found["plan"] and "Seq Scan" not in found["plan"], found["plan"]


@pytest.mark.postgres
def test_prefixes_resolve_and_timestamps_keep_their_form(pg_db):
    fleet = seed_session(pg_db)
    by_prefix = Fleet(fleet.sid[:8], fleet.director[:8], fleet.admin[:9])
    sent = pg_db.run("--json", *send_argv(by_prefix, by_prefix.admin, "hi", "--full"))
    assert sent.code == 0, sent.err
    task = sent.json["task"]
    shown = pg_db.run(
        "--json",
        *as_agent(fleet, fleet.admin, "message show", "--task-id", task["task_id"][:8].upper()),
    )
    assert shown.code == 0, shown.err
    stored = pg_db.rows(
        "SELECT created_at, status_timestamp FROM tasks WHERE task_id = ?", task["task_id"]
    )
    assert len(stored) == 1
    assert all(STAMP.fullmatch(v) for v in stored[0])
    assert task["status_timestamp"] == stored[0][1]
    assert task["task_id"].startswith(shown.json["task"]["id"])


@pytest.mark.postgres
def test_server_and_admin_on_postgres(pg_db):
    """``cafleet server`` on PostgreSQL: the login link, the agents list (whose kind column
    reads the card's JSON with PostgreSQL's operators) and the message list."""
    from tests.test_server import Server, free_port, request, session_cookie

    fleet = seed_session(pg_db)
    sent = pg_db.run(*send_argv(fleet, fleet.admin, "hello from postgres"))
    assert sent.code == 0, sent.err
    port = free_port()
    server = Server(["--port", str(port)], pg_db.env)
    try:
        status, headers, _ = request(port, server.link_path)
        assert status == 302
        cookie = session_cookie(headers)
        # The kind filter runs the card-kind SQL (``#>>`` on PostgreSQL).
        status, _, body = request(port, "/admin/cafleet/agent/?kind=administrator", cookie=cookie)
        assert status == 200
        assert fleet.admin[:8].encode() in body and fleet.director[:8].encode() not in body
        status, _, body = request(port, "/admin/cafleet/agent/?kind=agent", cookie=cookie)
        assert status == 200 and fleet.admin[:8].encode() not in body
        status, _, body = request(port, "/admin/cafleet/task/", cookie=cookie)
        assert status == 200 and b"hello from postgres" in body
        users = pg_db.rows("SELECT is_superuser FROM auth_user")
        assert users == [(True,)]
    finally:
        code, out, err = server.stop()
    assert (code, err) == (0, "")
