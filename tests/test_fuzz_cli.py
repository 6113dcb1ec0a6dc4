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
purpose). The world (fork server, database) is ``tests/fuzz_world.py``; the strategies,
derived from the grammar table, ``tests/fuzz_strategies.py``. Profiles: ``CAFLEET_TEST_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_helpers import as_agent, send_argv
from tests.conftest import BACKENDS, CAFLEET
from tests.fuzz_strategies import command_lines, structured_lines
from tests.fuzz_world import World

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

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


@pytest.fixture(scope="module", params=BACKENDS)
def world(request):
    """The fuzzed world on each backend (SQLite file, PostgreSQL database)."""
    root = Path(tempfile.mkdtemp(prefix="cafleet-fuzz-world-"))
    pg_url = None
    if request.param == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        pg_url = cluster.url(cluster.new_database(initialised=False))
    w = World(root, pg_url)
    yield w
    w.server.close()


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


def real_argv_of(world: World, argv, files) -> list:
    """The example's argv with each ``@FILE:<name>`` token written out as a file under the
    world's root and replaced by its path."""
    real_argv = []
    for token in argv:
        if token.startswith("@FILE:"):
            path = world.root / token[6:]
            path.write_bytes(files[token[6:]])
            token = str(path)
        real_argv.append(token)
    return real_argv


def run_example(world: World, example):
    argv, stdin, env, files = example
    real_argv = real_argv_of(world, argv, files)
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
        (as_agent(world, world.director, "agent list"), b""),
        (["--json", *as_agent(world, world.peer, "message poll")], b""),
        (send_argv(world, world.peer, "-"), b"\xff"),
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
        as_agent(world, world.peer, "message poll"),
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
        send_argv(world, world.peer, None, "--text-file", "/dev/zero"), timeout=8
    )
    assert not reply["timeout"], "cafleet kept reading /dev/zero"
    assert reply["code"] == 2
    assert b"the limit is 1048576 bytes (CAFLEET_MAX_BODY_BYTES)" in reply["err"]


def test_endless_stdin_is_refused_promptly(world):
    proc = subprocess.Popen(
        [CAFLEET, *as_agent(world, world.director, "message broadcast", "--text", "-")],
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
    real_argv = real_argv_of(world, argv, files)
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
    text = f"stream case {sorted(streams.items())} \u4e2d\u6587"
    send = send_argv(world, world.peer, text)
    before = world.snapshot()
    reply = world.server.run(send, streams=streams)
    check_stream_result(send, streams, reply, world.snapshot() != before)
    assert reply["code"] == 0
    found = world.db.rows("SELECT task_id FROM tasks WHERE text=?", text)
    assert found
    task = found[0]
    ack = as_agent(world, world.peer, "message ack", "--task-id", task[0])
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
