"""``cafleet server`` as a real subprocess on a free port with a file database (cli.md §4.7).

Checked: the two start-up lines, loopback by default, env and flag precedence, the
non-loopback warning, the admin stylesheet (200), ``/`` → ``/admin/``, the one-time login
link (works once, not twice), the first-run admin user, waitress with DEBUG off, the
port-in-use / bad-port / uninitialised-database errors, and Ctrl-C → exit 0.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import CAFLEET, subprocess_env

pytestmark = pytest.mark.e2e
START_TIMEOUT = 60
LINK = re.compile(
    r"One-time login link \(single use, valid 15 minutes\): "
    r"(http://([^/]+)(/admin/login/link/[A-Za-z0-9_-]{20,}/))$"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_db(tmp_path_factory):
    """One initialised database for the module (the server never changes the schema)."""
    path = tmp_path_factory.mktemp("server") / "data" / "registry.db"
    env = subprocess_env(f"sqlite:///{path}")
    proc = subprocess.run(
        [CAFLEET, "db", "init"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return path, env


class Server:
    def __init__(self, argv, env):
        self.proc = subprocess.Popen(
            [CAFLEET, "server", *argv],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        reader = threading.Thread(target=self._read_two_lines, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if len(self.lines) < 2:
            self.stop()
            raise AssertionError(
                f"server did not start: {self.lines!r} {self.proc.stderr.read()!r}"
            )
        self.banner, second = self.lines
        match = LINK.fullmatch(second)
        assert match, second
        self.link, self.netloc, self.link_path = match.groups()

    def _read_two_lines(self):
        for _ in range(2):
            line = self.proc.stdout.readline()
            if not line:
                return
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig=signal.SIGINT) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture
def start(server_db):
    started: list[Server] = []

    def run(*argv, env=None) -> Server:
        merged = {**server_db[1], **(env or {})}
        server = Server([str(a) for a in argv], merged)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def request(
    port: int, path: str, *, method="GET", cookie: str | None = None, host: str = "127.0.0.1"
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    result = response.status, {k.lower(): v for k, v in response.getheaders()}, body
    conn.close()
    return result


def session_cookie(headers: dict) -> str | None:
    match = re.search(r"(cafleet_sessionid)=([^;]+)", headers.get("set-cookie", ""))
    return f"{match.group(1)}={match.group(2)}" if match else None


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port and len(addr) == width:
                found.add(addr)
    return found


# ------------------------------------------------------------------------------ serving
def test_default_server(start, server_db):
    port = free_port()
    server = start("--port", port)
    assert (
        server.banner
        == f"Serving the cafleet admin at http://127.0.0.1:{port}/admin/ (Ctrl-C to stop)."
    )
    assert server.netloc == f"127.0.0.1:{port}"

    # Loopback only (127.0.0.1 is 0100007F in /proc/net/tcp).
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(port) == {"0100007F"}

    # A production WSGI server (waitress) with DEBUG off.
    status, headers, body = request(port, "/static/admin/css/base.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert headers["server"] == "waitress"
    assert b"--body-fg" in body
    status, _, body = request(port, "/static/no-such-file.css")
    assert status == 404 and b"Using the URLconf" not in body and b"Traceback" not in body

    status, headers, _ = request(port, "/")
    assert status == 302 and headers["location"] == "/admin/"
    status, headers, _ = request(port, "/admin/cafleet/task/")
    assert status == 302 and headers["location"].startswith("/admin/login/?next=")

    # The one-time link logs in once...
    status, headers, _ = request(port, server.link_path)
    assert status == 302 and headers["location"] == "/admin/"
    cookie = session_cookie(headers)
    assert cookie
    status, _, body = request(port, "/admin/cafleet/task/", cookie=cookie)
    assert status == 200 and b"Messages (tasks)" in body
    # ...and not twice.
    status, headers, _ = request(port, server.link_path)
    assert status == 302 and headers["location"].startswith("/admin/login/")
    assert session_cookie(headers) is None
    status, _, body = request(port, headers["location"], cookie=None)
    assert status == 200 and b'id="login-form"' in body

    # The first run made an admin user with no usable password.
    con = sqlite3.connect(server_db[0])
    users = con.execute(
        "SELECT username, password, is_superuser, is_staff, is_active FROM auth_user"
    ).fetchall()
    con.close()
    assert len(users) == 1
    name, password, *flags = users[0]
    assert password.startswith("!") and flags == [1, 1, 1]
    assert re.fullmatch(r"[\w.@+-]+", name)

    code, out, err = server.stop(signal.SIGINT)
    assert (code, out, err) == (0, "", "")


def test_each_start_prints_a_fresh_link_for_the_same_user(start, server_db):
    first = start("--port", free_port())
    first_link = first.link
    assert first.stop()[0] == 0
    second = start("--port", free_port())
    assert second.link_path != first_link.split("/", 3)[3]
    status, headers, _ = request(int(second.netloc.split(":")[1]), second.link_path)
    assert status == 302 and headers["location"] == "/admin/"
    con = sqlite3.connect(server_db[0])
    assert con.execute("SELECT count(*) FROM auth_user").fetchone() == (1,)
    con.close()
    assert second.stop(signal.SIGTERM)[0] == 0


def test_environment_sets_host_and_port_and_flags_win(start):
    port = free_port()
    server = start(env={"CAFLEET_BROKER_PORT": str(port), "CAFLEET_BROKER_HOST": "127.0.0.1"})
    assert (
        server.banner
        == f"Serving the cafleet admin at http://127.0.0.1:{port}/admin/ (Ctrl-C to stop)."
    )
    assert request(port, "/")[0] == 302
    server.stop()

    flag_port = free_port()
    server = start(
        "--host",
        "127.0.0.1",
        "--port",
        flag_port,
        env={"CAFLEET_BROKER_PORT": str(port), "CAFLEET_BROKER_HOST": "0.0.0.0"},
    )
    assert (
        server.banner
        == f"Serving the cafleet admin at http://127.0.0.1:{flag_port}/admin/ (Ctrl-C to stop)."
    )
    code, _, err = server.stop()
    assert code == 0 and err == ""  # no non-loopback warning: the flag won


def test_non_loopback_address_warns(start):
    port = free_port()
    server = start("--host", "0.0.0.0", "--port", port)
    assert (
        server.banner
        == f"Serving the cafleet admin at http://0.0.0.0:{port}/admin/ (Ctrl-C to stop)."
    )
    assert request(port, "/static/admin/css/base.css")[0] == 200
    code, _, err = server.stop()
    assert code == 0
    assert err == (
        f"Warning: serving on a non-loopback address; anyone who can reach "
        f"0.0.0.0:{port} can try to log in.\n"
    )


def test_loopback_server_refuses_foreign_host_names(start):
    port = free_port()
    start("--port", port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/admin/login/", headers={"Host": f"attacker.example:{port}"})
    assert conn.getresponse().status == 400  # DNS-rebinding guard (ALLOWED_HOSTS)
    conn.close()


# ------------------------------------------------------------------------------ errors
def run_server(env, *argv, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CAFLEET, "server", *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_port_in_use(server_db):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        proc = run_server(server_db[1], "--port", port)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "", "80x"])
def test_bad_port_environment_value(server_db, value):
    proc = run_server({**server_db[1], "CAFLEET_BROKER_PORT": value})
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        f"Error: invalid value for CAFLEET_BROKER_PORT: '{value}' "
        "(expected a port number 1-65535).\n"
    )


@pytest.mark.parametrize("value", ["0", "65536", "x"])
def test_bad_port_flag_is_a_usage_error(server_db, value):
    proc = run_server(server_db[1], "--port", value)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Try 'cafleet server --help' for help." in proc.stderr


def test_uninitialised_database(tmp_path):
    path = tmp_path / "none" / "registry.db"
    proc = run_server(subprocess_env(f"sqlite:///{path}"), "--port", free_port())
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"Error: database {path} is not initialised. Run 'cafleet db init'.\n"
    assert not path.exists()


def test_unknown_host(server_db):
    proc = run_server(server_db[1], "--host", "no-such-host.invalid", "--port", free_port())
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("Error: cannot listen on no-such-host.invalid:")


def test_help_documents_host_port_and_login():
    proc = subprocess.run(
        [CAFLEET, "server", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert proc.returncode == 0
    text = proc.stdout
    for needle in (
        "--host ADDR",
        "--port INTEGER",
        "CAFLEET_BROKER_HOST",
        "127.0.0.1",
        "CAFLEET_BROKER_PORT",
        "8000",
        "one-time login link",
        "15 minutes",
        "createsuperuser",
        "changepassword",
    ):
        assert needle in text, needle
