"""A throwaway PostgreSQL cluster for the tests (``initdb`` + ``pg_ctl`` in a temp dir).

The cluster listens on a unix socket only (``listen_addresses=''``), in a directory of its
own, and is stopped and removed at the end of the run. It is started on first use, so a
run that selects no PostgreSQL test never starts it. When the server binaries are missing
(Debian's ``postgresql`` package, which ``.ci/run`` installs) the tests that need it skip
and say why. Running as root, the server runs as the ``postgres`` OS user (``runuser``),
which owns the cluster's directory.

Roles: ``cafleet`` (superuser, ``trust`` over the socket) for the tests, and ``cafleet_pw``
(password ``scram-sha-256``) for the password tests. Each test gets a database of its own,
cloned from a template that ``cafleet db init`` prepared once.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

PASSWORD_ROLE = "cafleet_pw"
PASSWORD = "s3cret-Pw:with@odd/chars"
SKIP_REASON = (
    "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/pg_ctl); "
    "install Debian's postgresql package (.ci/run does)"
)


def server_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    root: Path
    socket_dir: Path
    bindir: Path
    runas: list[str]
    counter = itertools.count(1)
    template: str | None = None

    def url(self, dbname: str, user: str = "cafleet", password: str | None = None) -> str:
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{quote(str(self.socket_dir), safe='')}/{dbname}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), user="cafleet", dbname="postgres", autocommit=True
        ) as con:
            con.execute(sql)

    def new_database(self, *, initialised: bool) -> str:
        name = f"cafleet_t{next(self.counter)}"
        if initialised:
            self.admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        else:
            self.admin(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        subprocess.run(
            [
                *self.runas,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


class Unavailable(Exception):
    """No cluster can be made here; ``str(exc)`` says why."""


def start_cluster() -> Cluster:
    """A running cluster with the template database ready. Raises Unavailable."""
    bindir = server_bin()
    if bindir is None:
        raise Unavailable(SKIP_REASON)
    runas: list[str] = []
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root and no 'postgres' OS user to run the server as"
            ) from None
    root = Path(tempfile.mkdtemp(prefix="cafleet-pg-", dir="/tmp"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        runas = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o755)
    data = root / "data"
    subprocess.run(
        [
            *runas,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "cafleet",
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--no-sync",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    hba_text = f"local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n"
    subprocess.run(
        [*runas, "sh", "-c", f"printf '%s' '{hba_text}' > {data}/pg_hba.conf"], check=True
    )
    opts = (
        f"-c listen_addresses='' -k {root} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        [
            *runas,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    cluster = Cluster(root, root, bindir, runas)
    try:
        cluster.admin(
            f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD.replace(chr(39), chr(39) * 2)}'"
        )
        cluster.admin("CREATE DATABASE cafleet_template")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAFLEET_", "TMUX"))}
        env["CAFLEET_DATABASE_URL"] = cluster.url("cafleet_template")
        # db init on PostgreSQL keeps the admin's key in the user's data directory: give it
        # the cluster's own, so no run (tests or benchmarks) writes to the real home.
        (cluster.root / "home").mkdir(mode=0o700)
        env["HOME"] = str(cluster.root / "home")
        env.pop("XDG_DATA_HOME", None)
        cafleet = Path(os.sys.executable).parent / "cafleet"
        done = subprocess.run(
            [str(cafleet), "db", "init"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        cluster.template = "cafleet_template"
    except BaseException:
        cluster.stop()
        raise
    return cluster


_CLUSTER: list[Cluster] = []


def shared_cluster() -> Cluster:
    """The run's one cluster, started on first use and stopped when the process exits.
    Raises Unavailable."""
    if not _CLUSTER:
        import atexit

        cluster = start_cluster()
        _CLUSTER.append(cluster)
        atexit.register(cluster.stop)
    return _CLUSTER[0]


@pytest.fixture(scope="session")
def pg_cluster():
    try:
        return shared_cluster()
    except Unavailable as exc:
        pytest.skip(str(exc))
