"""The fuzz tests' world: a fork server that runs ``cafleet_project.cli.main`` in a fresh
child per command line, and one initialised file database with a live session."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import REPO, SEED_SESSION, FileDB, seed, subprocess_env

# ------------------------------------------------------------------------------ fork server
SERVER = r"""
import base64, io, json, os, sys, tempfile, time, traceback
import cafleet_project.cli as cli
import broker.grammar, broker.output, broker.exceptions  # noqa: F401
import django, django.apps, django.conf, django.db, django.db.models  # noqa: F401

requests = sys.stdin.buffer
replies = sys.stdout.buffer
work = tempfile.mkdtemp(prefix="cafleet-fuzz-")

def child(req, paths):
    fin = os.open(paths[0], os.O_RDONLY)
    fout = os.open(paths[1], os.O_WRONLY | os.O_TRUNC)
    ferr = os.open(paths[2], os.O_WRONLY | os.O_TRUNC)
    for fd, target in ((fin, 0), (fout, 1), (ferr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    # the streams a freshly started interpreter has (UTF-8 locale unless the request names
    # another encoding; "streams" closes stdin/stdout or breaks stdout's pipe first)
    streams = req.get("streams", {})
    enc = streams.get("encoding", "utf-8")
    if streams.get("stdout") == "broken":
        r, w = os.pipe()
        os.close(r)
        os.dup2(w, 1)
        os.close(w)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                 encoding=enc)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                  encoding=enc, errors="strict")
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                  encoding=enc, errors="backslashreplace",
                                  line_buffering=True)
    if streams.get("stdin") == "closed":
        os.close(0)
        sys.stdin = None
    if streams.get("stdout") == "closed":
        os.close(1)
        sys.stdout = None
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    for key, value in req["env"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        code = cli.main(req["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 99)

paths = [os.path.join(work, n) for n in ("in", "out", "err")]
while True:
    line = requests.readline()
    if not line:
        break
    req = json.loads(line)
    with open(paths[0], "wb") as fh:
        fh.write(base64.b64decode(req["stdin"]))
    for p in paths[1:]:
        open(p, "wb").close()
    replies.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(req, paths)
    deadline = time.monotonic() + req["timeout"]
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.kill(pid, 9)  # the child forked just above
            os.waitpid(pid, 0)
            status = 9
            break
        time.sleep(0.002)
    code = os.waitstatus_to_exitcode(status) if not timed_out else None
    reply = {"code": code, "timeout": timed_out}
    for name, p in zip(("out", "err"), paths[1:]):
        with open(p, "rb") as fh:
            reply[name] = base64.b64encode(fh.read()).decode()
    replies.write((json.dumps(reply) + "\n").encode())
    replies.flush()
"""


class ForkServer:
    def __init__(self, env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes = b"",
        env: dict | None = None,
        timeout: float = 30.0,
        streams: dict | None = None,
    ) -> dict:
        req = {
            "argv": argv,
            "stdin": base64.b64encode(stdin).decode(),
            "env": env or {},
            "timeout": timeout,
            "streams": streams or {},
        }
        # lone surrogates survive json's \\uXXXX escapes
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        reply["out"] = base64.b64decode(reply["out"])
        reply["err"] = base64.b64decode(reply["err"])
        return reply

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the server started in __init__
            self.proc.wait()


# ------------------------------------------------------------------------------ the world
class World:
    """One initialised file database with a live session, and what the fuzzer may name."""

    def __init__(self, root: Path, pg_url: str | None = None):
        if pg_url is None:
            path = root / "data" / "registry.db"
            url = f"sqlite:///{path}"
        else:  # the PostgreSQL run: an empty database of the throwaway cluster
            path, url = None, pg_url
        self.db = FileDB(path, url, subprocess_env(url))
        self.root = root
        assert self.db.run("db", "init").code == 0
        self.server = ForkServer(self.db.env)
        self.reseed()
        self.stats: Counter = Counter()

    def reseed(self) -> None:
        """A live session with its Director, Administrator, a plain peer and one message,
        made through the services in one subprocess."""
        self.sid, self.director, self.admin, self.peer, self.task = seed(
            self.db,
            SEED_SESSION + "from broker.services import agent_register, message_send\n"
            "peer = agent_register(session_id=s.session_id, name='peer',"
            " description='a plain agent', skills_json=None)\n"
            "task, _ = message_send(session_id=s.session_id, agent_ref=d.agent_id,"
            " to_ref=peer.agent_id, text='seed message', limit=200)\n"
            "result = [s.session_id, d.agent_id, a.agent_id, peer.agent_id, task.task_id]",
        )

    def ids(self) -> list[str]:
        full = [self.sid, self.director, self.admin, self.peer, self.task]
        return (
            full
            + [i[:8] for i in full]
            + [i[:8].upper() for i in full]
            + [i[:7] for i in full]
            + [i + "0" for i in full[:2]]
        )

    KEYS = {
        "sessions": "session_id",
        "agents": "agent_id",
        "tasks": "task_id",
        "agent_placements": "agent_id",
        "django_migrations": "id",
    }

    def snapshot(self) -> dict:
        return {t: self.db.rows(f"SELECT * FROM {t} ORDER BY {k}") for t, k in self.KEYS.items()}

    def session_alive(self) -> bool:
        live = self.db.rows("SELECT deleted_at FROM sessions WHERE session_id=?", self.sid)
        peers = self.db.rows(
            "SELECT count(*) FROM agents WHERE session_id=? AND status='active'", self.sid
        )[0][0]
        return bool(live) and live[0][0] is None and peers >= 3
