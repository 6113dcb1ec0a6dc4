"""Bad input: hypothesis drives the entry point with random command lines.

Known commands with random flags, random Unicode (lone surrogates included: that is what
Python makes of undecodable argv bytes), huge values, empty strings, NUL bytes where the OS
allows them (stdin bodies and ``--text-file`` contents; argv and environment values cannot
carry NUL), bad environment values. For every run:

* exit code in {0, 1, 2}, no traceback, no hang;
* a non-zero exit prints nothing on stdout and ends stderr with an ``Error:`` message (text
  mode) or a one-line JSON error whose ``exit_code`` matches; the only exception is a bare
  group (``cafleet member``), which prints its help to stderr (cli.md §1);
* a zero exit prints no ``Error:`` line;
* every byte written to stdout or stderr is valid UTF-8;
* a rejected command (non-zero exit) changes no stored row.

Speed: a fork server (one Python process with the project imported once) forks a fresh
child per command line, and the child runs ``cafleet_project.cli.main`` with its own
stdin/stdout/stderr exactly as the console script would, so each example costs ~60 ms
instead of ~300 ms. A smaller second test runs random *bytes* through the real installed
``cafleet`` binary.

``server`` and ``django`` are left out: ``server`` with valid flags serves forever, and
``django`` hands its words to Django's management commands (``flush`` deletes rows on
purpose). Profiles: ``CAFLEET_TEST_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CAFLEET, REPO, FileDB, seed_session, subprocess_env

pytestmark = pytest.mark.slow

LONG = os.environ.get("CAFLEET_TEST_PROFILE", "short") == "long"
EXAMPLES = 2500 if LONG else 150
BINARY_EXAMPLES = 300 if LONG else 15

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

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

    def __init__(self, root: Path):
        path = root / "data" / "registry.db"
        url = f"sqlite:///{path}"
        self.db = FileDB(path, url, subprocess_env(url))
        self.root = root
        assert self.db.run("db", "init").code == 0
        self.server = ForkServer(self.db.env)
        self.reseed()
        self.stats: Counter = Counter()

    def reseed(self) -> None:
        fleet = seed_session(self.db)
        extra = self.db.run(
            "--json",
            "--session-id",
            fleet.sid,
            "agent",
            "register",
            "--name",
            "peer",
            "--description",
            "a plain agent",
        )
        self.sid, self.director, self.admin = fleet.sid, fleet.director, fleet.admin
        self.peer = extra.json["agent_id"]
        sent = self.db.run(
            "--json",
            "--session-id",
            fleet.sid,
            "message",
            "send",
            "--agent-id",
            self.director,
            "--to",
            self.peer,
            "--full",
            "--text",
            "seed message",
        )
        self.task = sent.json["task"]["task_id"]

    def ids(self) -> list[str]:
        full = [self.sid, self.director, self.admin, self.peer, self.task]
        return (
            full
            + [i[:8] for i in full]
            + [i[:8].upper() for i in full]
            + [i[:7] for i in full]
            + [i + "0" for i in full[:2]]
        )

    def snapshot(self) -> dict:
        con = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True)
        try:
            return {
                t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                for t in ("sessions", "agents", "tasks", "agent_placements", "django_migrations")
            }
        finally:
            con.close()

    def session_alive(self) -> bool:
        con = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True)
        try:
            live = con.execute(
                "SELECT deleted_at FROM sessions WHERE session_id=?", (self.sid,)
            ).fetchone()
            peers = con.execute(
                "SELECT count(*) FROM agents WHERE session_id=? AND status='active'", (self.sid,)
            ).fetchone()[0]
        finally:
            con.close()
        return live is not None and live[0] is None and peers >= 3


@pytest.fixture(scope="module")
def world():
    root = Path(tempfile.mkdtemp(prefix="cafleet-fuzz-world-"))
    w = World(root)
    yield w
    w.server.close()


# ------------------------------------------------------------------------------ strategies
COMMANDS = {
    ("db", "init"): [],
    ("session", "create"): ["--label", "--coding-agent", "--json", "--full"],
    ("session", "list"): ["--json"],
    ("session", "show"): ["--json"],
    ("session", "delete"): [],
    ("agent", "register"): ["--name", "--description", "--skills"],
    ("agent", "deregister"): ["--agent-id"],
    ("agent", "list"): ["--agent-id", "--full"],
    ("agent", "show"): ["--agent-id", "--id", "--full"],
    ("message", "send"): ["--agent-id", "--to", "--text", "--text-file", "--full", "--quiet"],
    ("message", "broadcast"): ["--agent-id", "--text", "--text-file", "--full"],
    ("message", "poll"): ["--agent-id", "--all", "--since", "--page-size", "--wait", "--full"],
    ("message", "ack"): ["--agent-id", "--task-id", "--full", "--quiet"],
    ("message", "cancel"): ["--agent-id", "--task-id", "--full"],
    ("message", "show"): ["--agent-id", "--task-id", "--full"],
    ("member", "create"): ["--agent-id", "--name", "--description", "--coding-agent", "--full"],
    ("member", "delete"): ["--agent-id", "--member-id", "--force", "-f"],
    ("member", "list"): ["--agent-id", "--activity"],
    ("member", "capture"): [
        "--agent-id",
        "--member-id",
        "--lines",
        "--tail",
        "--ansi",
        "--no-ansi",
        "--full",
    ],
    ("member", "send-input"): ["--agent-id", "--member-id", "--choice", "--freetext"],
    ("member", "exec"): ["--agent-id", "--member-id"],
    ("member", "ping"): ["--agent-id", "--member-id", "--quiet"],
    ("doctor",): [],
    ("member",): [],
    ("message",): [],
    (): [],
}
ALL_FLAGS = sorted(
    {f for flags in COMMANDS.values() for f in flags}
    | {"--help", "--version", "--json", "--pretty", "--session-id", "--bogus", "-x", "--", "-"}
)
GLOBAL_FLAGS = ["--json", "--pretty", "--session-id", "--version", "--help", "--agent-id"]

# Text that a command line can carry: no NUL; lone surrogates stand for undecodable bytes.
argv_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=()), max_size=40)
raw_bytes_as_argv = st.binary(max_size=24).map(lambda b: os.fsdecode(b.replace(b"\x00", b"")))
huge = st.sampled_from([10_000, 100_000]).flatmap(
    lambda n: st.sampled_from(["x" * n, "é" * (n // 2), "9" * n, "\U0001f600" * (n // 4)])
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "1",
            "3",
            "4",
            "+1",
            " 2 ",
            "1e3",
            "nan",
            "inf",
            "-inf",
            "0x10",
            "1_000",
            "٣",
            "1.5",
            "",
            "NaN",
            "3601",
            "1e309",
            "0.0001",
            # huge integers: a range error, never a database error (issue 11 item 4)
            str(2**31),
            str(2**63),
            "9" * 25,
            "-" + "9" * 25,
            "9" * 400,
        ]
    ),
)
timestamps = st.sampled_from(
    [
        "2026-05-05T12:00:00.123456+00:00",
        "2026-05-05T12:00:00Z",
        "2026-05-05",
        "2026-13-45",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-14:00",
        "yesterday",
        "",
        "T",
        "2026-05-05T12:00:00.123456+99:00",
    ]
)
# ``--wait`` is the one flag whose valid values block: keep them short.
waits = st.one_of(
    st.sampled_from(["0", "-1", "3601", "abc", "nan", "", "inf"]),
    st.floats(0.01, 0.4).map(lambda f: f"{f:.2f}"),
)
env_values = st.one_of(numbers, argv_text, st.sampled_from(["", "5", "1", "200", "abc"]))


@st.composite
def values(draw, world: World):
    return draw(
        st.one_of(
            st.sampled_from(world.ids()),
            argv_text,
            raw_bytes_as_argv,
            huge,
            numbers,
            timestamps,
            st.just(""),
            st.sampled_from(
                [
                    "-",
                    "--",
                    "--help",
                    "claude",
                    "codex",
                    "Administrator",
                    " administrator ",
                    "!ls",
                    "[cafleet msg 00000000 from x y]",
                    "{session_id}",
                    "{",
                    "}",
                    "\x1b[31mred",
                    "a\nb",
                    "a\rb",
                    "\t",
                    str(REPO),
                    "/dev/null",
                    "/dev/zero",
                    "/proc/self/mem",
                    "/nonexistent/file",
                ]
            ),
        )
    )


@st.composite
def command_lines(draw, world: World):
    """(argv, stdin bytes, environment changes, files to write)."""
    path = draw(st.sampled_from(sorted(COMMANDS)))
    argv: list[str] = []
    # global options, sometimes wrong ones
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from(GLOBAL_FLAGS))
        argv.append(flag)
        if flag in ("--session-id", "--agent-id"):
            argv.append(draw(values(world)))
    if draw(st.booleans()) and "--session-id" not in argv:
        argv += ["--session-id", draw(st.sampled_from(world.ids()))]
    argv += list(path)
    flags = COMMANDS[path] + ["--help", "--bogus", "--json", "--session-id", "--text"]
    stdin = b""
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.integers(0, 9))
        if kind <= 5 and flags:
            flag = draw(st.sampled_from(flags))
        elif kind <= 7:
            flag = draw(st.sampled_from(ALL_FLAGS))
        else:
            argv.append(draw(values(world)))  # a stray positional
            continue
        if flag == "--help" and draw(st.integers(0, 4)):
            continue  # keep --help rare, it short-circuits everything
        argv.append(flag)
        if flag in ("--wait",):
            argv.append(draw(waits))
        elif flag == "--since":
            argv.append(draw(st.one_of(timestamps, values(world))))
        elif flag in ("--page-size", "--lines", "--tail", "--choice"):
            argv.append(draw(st.one_of(numbers, values(world))))
        elif flag == "--text" and draw(st.booleans()):
            argv.append("-")
            stdin = draw(
                st.one_of(
                    st.binary(max_size=300),
                    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                    st.sampled_from([b"", b"\x00", b"a\x00b", b"\xff\xfe", b"x" * 70000]),
                )
            )
        elif flag == "--text-file":
            name = f"f{len(files)}"
            files[name] = draw(
                st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"\x00\x00", b"ok\n"]))
            )
            argv.append(f"@FILE:{name}")
        elif flag in (
            "--agent-id",
            "--to",
            "--id",
            "--member-id",
            "--task-id",
            "--session-id",
            "--name",
            "--description",
            "--label",
            "--skills",
            "--text",
            "--freetext",
            "--coding-agent",
        ):
            if draw(st.integers(0, 9)):  # sometimes leave the value out
                argv.append(draw(values(world)))
    if path == ("member", "exec") and draw(st.booleans()):
        argv.append(draw(values(world)))
    env = {}
    if draw(st.integers(0, 5)) == 0:
        var = draw(
            st.sampled_from(
                [
                    "CAFLEET_MAX_TEXT_LEN",
                    "CAFLEET_MAX_BODY_BYTES",
                    "CAFLEET_DEBUG",
                    "DJANGO_SETTINGS_MODULE",
                ]
            )
        )
        env[var] = draw(env_values).replace("\x00", "")
    return argv, stdin, env, files


# Well-formed lines: the required options of each command, mostly valid values, plus a few
# optional ones. They get past the parser and exercise validation, resolution and effects.
REQUIRED = {
    ("session", "create"): [],
    ("session", "show"): ["SESSION_ID"],
    ("session", "delete"): ["SESSION_ID"],
    ("agent", "register"): ["--name", "--description"],
    ("agent", "deregister"): ["--agent-id"],
    ("agent", "list"): ["--agent-id"],
    ("agent", "show"): ["--agent-id", "--id"],
    ("message", "send"): ["--agent-id", "--to", "BODY"],
    ("message", "broadcast"): ["--agent-id", "BODY"],
    ("message", "poll"): ["--agent-id"],
    ("message", "ack"): ["--agent-id", "--task-id"],
    ("message", "cancel"): ["--agent-id", "--task-id"],
    ("message", "show"): ["--agent-id", "--task-id"],
    ("member", "create"): ["--agent-id", "--name", "--description"],
    ("member", "delete"): ["--agent-id", "--member-id"],
    ("member", "list"): ["--agent-id"],
    ("member", "capture"): ["--agent-id", "--member-id"],
    ("member", "send-input"): ["--agent-id", "--member-id"],
    ("member", "exec"): ["--agent-id", "--member-id", "COMMAND"],
    ("member", "ping"): ["--agent-id", "--member-id"],
}
OPTIONAL_VALUES = {
    "--since": timestamps,
    "--page-size": numbers,
    "--wait": waits,
    "--lines": numbers,
    "--tail": numbers,
    "--choice": numbers,
    "--skills": st.sampled_from(
        [
            '[{"name":"x"}]',
            "not json",
            "{}",
            '"\\u0000"',
            "[" * 5000,
            "null",
            '{"cafleet":{"kind":1}}',
        ]
    ),
    "--coding-agent": st.sampled_from(["claude", "codex", "CLAUDE", ""]),
}
body_text = st.one_of(
    st.text(max_size=300),
    argv_text,
    huge,
    st.sampled_from(
        ["", "-", " ", "\x1b]0;t\x07", "done;", "!rm -rf ~", "/exit", "\u2028", "a\r\nb"]
    ),
)


@st.composite
def structured_lines(draw, world: World):
    path = draw(st.sampled_from(sorted(REQUIRED)))
    ids = world.ids()
    good = st.sampled_from(ids[:5] + ids[5:10])
    pick = st.one_of(good, good, good, values(world))
    argv = []
    if draw(st.integers(0, 3)):
        argv += ["--json"] if draw(st.booleans()) else []
        argv += ["--session-id", draw(st.one_of(st.just(world.sid), pick))]
    argv += list(path)
    stdin = b""
    files: dict[str, bytes] = {}
    for req in REQUIRED[path]:
        if req == "BODY":
            how = draw(st.integers(0, 3))
            if how == 0:
                argv += ["--text", "-"]
                stdin = draw(
                    st.one_of(
                        st.binary(max_size=200),
                        body_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                    )
                )
            elif how == 1:
                files["b"] = draw(
                    st.one_of(
                        st.binary(max_size=200),
                        body_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                    )
                )
                argv += ["--text-file", "@FILE:b"]
            else:
                argv += ["--text", draw(body_text)]
        elif req in ("SESSION_ID", "COMMAND"):
            argv.append(draw(pick))
        elif req in ("--name", "--description"):
            argv += [req, draw(st.one_of(argv_text, body_text, st.just("Administrator")))]
        else:
            argv += [req, draw(pick)]
    for flag in draw(st.lists(st.sampled_from(COMMANDS[path] or ["--json"]), max_size=3)):
        if flag in REQUIRED[path]:
            continue
        argv.append(flag)
        if flag in OPTIONAL_VALUES:
            argv.append(draw(OPTIONAL_VALUES[flag]))
        elif flag in ("--label", "--freetext", "--text"):
            argv.append(draw(body_text))
        elif flag == "--text-file":
            files["c"] = draw(st.binary(max_size=100))
            argv.append("@FILE:c")
        elif flag in (
            "--agent-id",
            "--to",
            "--id",
            "--member-id",
            "--task-id",
            "--name",
            "--description",
        ):
            argv.append(draw(pick))
    env = {}
    if draw(st.integers(0, 7)) == 0:
        env[draw(st.sampled_from(["CAFLEET_MAX_TEXT_LEN", "CAFLEET_MAX_BODY_BYTES"]))] = draw(
            env_values
        ).replace("\x00", "")
    return argv, stdin, env, files


# ------------------------------------------------------------------------------ the property
def _decoded(data: bytes, what: str, argv) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssertionError(f"{what} is not UTF-8 for {argv!r}: {exc}") from None


def check_result(argv, code, out_b, err_b, *, timed_out=False):
    assert not timed_out, f"hang: {argv!r}"
    assert code in (0, 1, 2), (argv, code, err_b[-2000:])
    out = _decoded(out_b, "stdout", argv)
    err = _decoded(err_b, "stderr", argv)
    assert "Traceback" not in err, (argv, err)
    lines = err.splitlines()
    if code == 0:
        assert not any(line.startswith("Error:") for line in lines), (argv, err)
        return
    assert out == "", (argv, code, out[:500], err)
    if code == 2 and err.startswith("Usage: cafleet") and "Error:" not in err:
        return  # a bare group or no command: help on stderr (cli.md §1)
    assert lines, (argv, code)
    last = lines[-1]
    # JSON errors are one line; a text error may span lines when it quotes user input
    if last.startswith('{"error":'):
        obj = json.loads(last)
        assert list(obj) == ["error", "exit_code"] and obj["exit_code"] == code, (argv, last)
        assert obj["error"] and not obj["error"].startswith("Error:"), (argv, last)
    else:
        assert any(line.startswith("Error: ") for line in lines), (argv, err)


def run_example(world: World, example):
    argv, stdin, env, files = example
    real_argv = []
    for token in argv:
        if token.startswith("@FILE:"):
            path = world.root / token[6:]
            path.write_bytes(files[token[6:]])
            token = str(path)
        real_argv.append(token)
    before = world.snapshot()
    reply = world.server.run(real_argv, stdin=stdin, env=env)
    check_result(real_argv, reply["code"], reply["out"], reply["err"], timed_out=reply["timeout"])
    world.stats[reply["code"]] += 1
    if reply["code"] != 0:
        assert world.snapshot() == before, f"rejected command changed rows: {real_argv!r}"
    if not world.session_alive():
        world.reseed()  # the fuzzer deleted the session or its agents: start a new one


def test_fuzz_entry_point(world):
    @FUZZ_SETTINGS
    @given(st.data())
    def fuzz(data):
        run_example(world, data.draw(st.one_of(command_lines(world), structured_lines(world))))

    fuzz()
    print(f"\nexit codes over the fuzz run: {dict(world.stats)}")
    assert world.stats[0] and world.stats[1] and world.stats[2]  # every outcome was reached


def test_fork_server_matches_the_real_binary(world):
    """The fork server gives the same results as the installed console script."""
    cases = [
        (["--session-id", world.sid, "agent", "list", "--agent-id", world.director], b""),
        (["--json", "--session-id", world.sid, "message", "poll", "--agent-id", world.peer], b""),
        (
            [
                "--session-id",
                world.sid,
                "message",
                "send",
                "--agent-id",
                world.director,
                "--to",
                world.peer,
                "--text",
                "-",
            ],
            b"\xff",
        ),
        (["bogus"], b""),
        (["--json", "agent", "list"], b""),
        (["member"], b""),
        (["--session-id", os.fsdecode(b"\xff\xfe"), "agent", "list", "--agent-id", "x"], b""),
    ]
    for argv, stdin in cases:
        mine = world.server.run(argv, stdin=stdin)
        real = subprocess.run(
            [CAFLEET, *[os.fsencode(a) for a in argv]],
            input=stdin,
            capture_output=True,
            env=world.db.env,
            timeout=60,
        )
        assert (mine["code"], mine["out"], mine["err"]) == (
            real.returncode,
            real.stdout,
            real.stderr,
        ), argv


def test_fuzz_forked_child_really_reports_tracebacks(world):
    """Control: an exception escaping ``main`` in the child is seen as a traceback."""
    reply = world.server.run(
        ["--session-id", world.sid, "message", "poll", "--agent-id", world.peer],
        env={"CAFLEET_DATABASE_URL": "sqlite:///"},
    )
    check_result([], reply["code"], reply["out"], reply["err"])  # an ordinary error
    with pytest.raises(AssertionError):
        check_result(["x"], 1, b"", b"Traceback (most recent call last):\n")
    with pytest.raises(AssertionError):
        check_result(["x"], 3, b"", b"Error: x\n")


@settings(FUZZ_SETTINGS, max_examples=BINARY_EXAMPLES)
@given(
    words=st.lists(
        st.binary(min_size=0, max_size=30).map(lambda b: b.replace(b"\0", b"")), max_size=6
    ),
    head=st.sampled_from(
        [
            [],
            [b"message", b"send"],
            [b"agent", b"register"],
            [b"session", b"show"],
            [b"--json", b"message", b"poll"],
        ]
    ),
)
def test_fuzz_real_binary_with_random_bytes(world, head, words):
    """Random bytes straight through the real console script (argv as the OS passes it)."""
    argv = (
        [b"--session-id", world.sid.encode(), *head, *words]
        if head and head[0] != b"session"
        else [*head, *words]
    )
    before = world.snapshot()
    proc = subprocess.run(
        [CAFLEET.encode(), *argv],
        capture_output=True,
        env=world.db.env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    check_result(argv, proc.returncode, proc.stdout, proc.stderr)
    if proc.returncode != 0:
        assert world.snapshot() == before, argv
    if not world.session_alive():
        world.reseed()


# ------------------------------------------------------------------------------ endless input
# cli.md §4.4.1: reading stops once the limit is exceeded, so an endless body is refused.
def test_endless_text_file_is_refused_promptly(world):
    reply = world.server.run(
        [
            "--session-id",
            world.sid,
            "message",
            "send",
            "--agent-id",
            world.director,
            "--to",
            world.peer,
            "--text-file",
            "/dev/zero",
        ],
        timeout=8,
    )
    assert not reply["timeout"], "cafleet kept reading /dev/zero"
    assert reply["code"] == 2
    assert b"the limit is 1048576 bytes (CAFLEET_MAX_BODY_BYTES)" in reply["err"]


def test_endless_stdin_is_refused_promptly(world):
    proc = subprocess.Popen(
        [
            CAFLEET,
            "--session-id",
            world.sid,
            "message",
            "broadcast",
            "--agent-id",
            world.director,
            "--text",
            "-",
        ],
        env=world.db.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    chunk = b"y\n" * 32768
    deadline = time.monotonic() + 8
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                proc.stdin.write(chunk)
            except BrokenPipeError:
                break
        assert proc.poll() is not None or proc.wait(timeout=2) is not None, (
            "cafleet kept reading an endless stdin"
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("cafleet kept reading an endless stdin") from None
    finally:
        if proc.poll() is None:
            proc.kill()  # the process started above
        proc.wait()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    assert proc.returncode == 2
    assert b"(CAFLEET_MAX_BODY_BYTES)" in proc.stderr.read()


# ------------------------------------------------------------------------------ streams
# Closed stdin/stdout, a reader that went away (SIGPIPE is ignored by Python: EPIPE) and a
# non-UTF-8 locale (issue 11 items 2, 3). No traceback, ever; a command that changed rows
# exits 0 whatever happened to its output (a retry would repeat it).
STREAM_CASES = [
    {"stdout": "closed"},
    {"stdout": "broken"},
    {"stdin": "closed"},
    {"stdin": "closed", "stdout": "closed"},
    {"encoding": "ascii"},
    {"encoding": "latin-1", "stdout": "broken"},
]


def check_stream_result(argv, streams, reply, changed: bool):
    assert not reply["timeout"], f"hang: {argv!r} {streams}"
    code = reply["code"]
    assert code in (0, 1, 2), (argv, streams, code, reply["err"][-2000:])
    err = _decoded(reply["err"], "stderr", argv)
    out = reply["out"]
    assert "Traceback" not in err and "Exception ignored" not in err, (argv, streams, err)
    if changed:
        assert code == 0, f"committed, then failed: {argv!r} {streams}: {err}"
    if streams.get("stdout") in ("closed", "broken"):
        assert out == b"", (argv, streams)
    else:
        _decoded(out, "stdout", argv)  # UTF-8 whatever the locale
    lines = err.splitlines()
    if code == 0:
        assert not any(line.startswith("Error:") for line in lines), (argv, streams, err)
    elif not (streams.get("stdout") == "broken" and code == 1):
        # a reader that went away is told nothing; any other failure says why
        assert err.startswith("Usage: cafleet") or any(
            line.startswith(("Error: ", '{"error":')) for line in lines
        ), (argv, streams, err)


def run_stream_example(world: World, example, streams: dict):
    argv, stdin, env, files = example
    real_argv = []
    for token in argv:
        if token.startswith("@FILE:"):
            path = world.root / token[6:]
            path.write_bytes(files[token[6:]])
            token = str(path)
        real_argv.append(token)
    before = world.snapshot()
    reply = world.server.run(real_argv, stdin=stdin, env=env, streams=streams)
    changed = world.snapshot() != before
    check_stream_result(real_argv, streams, reply, changed)
    world.stats[("streams", reply["code"], changed)] += 1
    if not world.session_alive():
        world.reseed()


def test_fuzz_streams(world):
    @settings(FUZZ_SETTINGS, max_examples=max(60, EXAMPLES // 2))
    @given(st.data())
    def fuzz(data):
        streams = data.draw(st.sampled_from(STREAM_CASES))
        example = data.draw(st.one_of(structured_lines(world), command_lines(world)))
        run_stream_example(world, example, streams)

    fuzz()


@pytest.mark.parametrize("streams", STREAM_CASES, ids=lambda s: "-".join(map(str, s.values())))
def test_committing_commands_exit_0_whatever_the_streams(world, streams):
    """Deterministic control for the fuzz test: a send and an ack always commit and exit 0."""
    base = ["--session-id", world.sid, "message"]
    text = f"stream case {sorted(streams.items())} \u4e2d\u6587"
    send = base + ["send", "--agent-id", world.director, "--to", world.peer, "--text", text]
    before = world.snapshot()
    reply = world.server.run(send, streams=streams)
    check_stream_result(send, streams, reply, world.snapshot() != before)
    assert reply["code"] == 0
    con = sqlite3.connect(world.db.path)
    task = con.execute("SELECT task_id FROM tasks WHERE text=?", (text,)).fetchone()
    con.close()
    assert task is not None
    ack = base + ["ack", "--agent-id", world.peer, "--task-id", task[0]]
    reply = world.server.run(ack, streams=streams)
    check_stream_result(ack, streams, reply, True)


@pytest.mark.parametrize(
    "streams, argv, code",
    [
        ({"stdout": "closed"}, ["--version"], 1),
        ({"stdout": "broken"}, ["--help"], 1),
        ({"stdout": "broken"}, ["message", "send", "--help"], 1),
        ({"stdin": "closed"}, ["--version"], 0),
        ({"encoding": "ascii"}, ["--help"], 0),
    ],
)
def test_stream_cases_of_the_issue(world, streams, argv, code):
    reply = world.server.run(argv, streams=streams)
    check_stream_result(argv, streams, reply, False)
    assert reply["code"] == code


def test_huge_integers_are_range_errors_in_every_int_option(world):
    from broker.command_table import GROUPS, TOP_COMMANDS

    commands = [((g.name, c.name), c) for g in GROUPS for c in g.commands]
    commands += [((c.name,), c) for c in TOP_COMMANDS]
    seen = 0
    for path, cmd in commands:
        for opt in (o for o in cmd.options if o.kind == "int"):
            for value in ("9" * 25, str(2**63), str(2**31)):
                argv = ["--session-id", world.sid, *path, opt.names[0], value]
                for other in cmd.options:
                    if other.required and other is not opt:
                        argv += [other.names[0], world.director]
                before = world.snapshot()
                reply = world.server.run(argv)
                check_result(argv, reply["code"], reply["out"], reply["err"])
                err = reply["err"].decode()
                assert reply["code"] == 2, (argv, err)
                assert f"Invalid value for '{opt.names[0]}': {value} is not in the range" in err
                assert "datatype mismatch" not in err and "overflow" not in err.lower()
                assert world.snapshot() == before
                seen += 1
    assert seen >= 12
