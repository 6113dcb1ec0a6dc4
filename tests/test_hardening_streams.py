"""Closed and broken standard streams, and a non-UTF-8 locale (issue 11 items 2 and 3).

A command never prints a traceback because of its standard streams; a command that changed
state exits 0 even when its output cannot be written (a retry would repeat it), and output is
UTF-8 whatever ``PYTHONIOENCODING`` says.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from tests.conftest import CAFLEET, seed_session

pytestmark = pytest.mark.e2e


def run(db, *argv, stdout="pipe", stdin=None, close=(), env=None):
    """Run cafleet; ``close`` lists the standard descriptors closed first (``>&-``, ``<&-``),
    ``stdout="broken"`` gives it a pipe whose reader has already gone."""
    redirs = " ".join({"stdin": "<&-", "stdout": ">&-"}[c] for c in close)
    cmd = ["/bin/sh", "-c", f'exec "$@" {redirs}', "sh", CAFLEET, *map(str, argv)]
    full_env = {**db.env, **(env or {})}
    read_end = None
    if stdout == "broken":
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = subprocess.run(
                cmd, stdin=stdin, stdout=write_end, stderr=subprocess.PIPE, env=full_env, timeout=60
            )
        finally:
            os.close(write_end)
        return proc.returncode, b"", proc.stderr.decode()
    proc = subprocess.run(cmd, stdin=stdin, capture_output=True, env=full_env, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr.decode()


@pytest.fixture
def world(fresh_db):
    fleet = seed_session(fresh_db)
    reg = fresh_db.run(
        "--session-id", fleet.sid, "agent", "register", "--name", "bob", "--description", "b"
    )
    assert reg.code == 0, reg.err
    con = sqlite3.connect(fresh_db.path)
    fleet.bob = con.execute("SELECT agent_id FROM agents WHERE name='bob'").fetchone()[0]
    con.close()
    fleet.db = fresh_db
    return fleet


def task_count(db, text: str | None = None) -> int:
    con = sqlite3.connect(db.path)
    try:
        if text is None:
            return con.execute("SELECT count(*) FROM tasks").fetchone()[0]
        return con.execute("SELECT count(*) FROM tasks WHERE text=?", (text,)).fetchone()[0]
    finally:
        con.close()


def send_argv(w):
    return ("--session-id", w.sid, "message", "send", "--agent-id", w.director, "--to", w.bob)


# ----------------------------------------------------------------------------- read-only
def test_version_with_stdout_closed_is_an_error_not_a_traceback(fresh_db):
    code, _, err = run(fresh_db, "--version", close=("stdout",))
    assert (code, err) == (1, "Error: cannot write to stdout: Bad file descriptor\n")


def test_help_into_a_closed_pipe_exits_quietly(fresh_db):
    code, _, err = run(fresh_db, "--help", stdout="broken")
    assert (code, err) == (1, "")
    code, _, err = run(fresh_db, "message", "send", "--help", stdout="broken")
    assert (code, err) == (1, "")


def test_poll_with_stdout_closed(world):
    code, _, err = run(
        world.db,
        "--session-id",
        world.sid,
        "message",
        "poll",
        "--agent-id",
        world.bob,
        close=("stdout",),
    )
    assert (code, err) == (1, "Error: cannot write to stdout: Bad file descriptor\n")


# ----------------------------------------------------------------------------- committed
@pytest.mark.parametrize("how", ["closed", "broken"])
def test_send_that_committed_exits_0_when_stdout_fails(world, how):
    kwargs = {"close": ("stdout",)} if how == "closed" else {"stdout": "broken"}
    text = f"sent with stdout {how}"
    code, _, err = run(world.db, *send_argv(world), "--text", text, **kwargs)
    assert code == 0, err
    assert task_count(world.db, text) == 1
    assert "Traceback" not in err
    reason = "Bad file descriptor" if how == "closed" else "Broken pipe"
    assert err == (
        "Warning: cafleet message send succeeded, but its output could not be written to "
        f"stdout: {reason}.\n"
    )


def test_session_delete_with_stdout_closed_exits_0(world):
    code, _, err = run(world.db, "session", "delete", world.sid, close=("stdout",))
    assert code == 0, err
    con = sqlite3.connect(world.db.path)
    assert con.execute("SELECT deleted_at FROM sessions").fetchone()[0] is not None


def test_closed_stdin_with_text_dash_is_the_contract_error(world):
    code, out, err = run(world.db, *send_argv(world), "--text", "-", close=("stdin",))
    assert code == 2
    assert out == b""
    assert err.endswith("Error: cannot read stdin: Bad file descriptor\n")
    assert task_count(world.db) == 0


def test_closed_stdin_and_stdout_together(world):
    code, _, err = run(world.db, *send_argv(world), "--text", "-", close=("stdin", "stdout"))
    assert code == 2 and "Traceback" not in err
    assert err.endswith("Error: cannot read stdin: Bad file descriptor\n")


# ----------------------------------------------------------------------------- encoding
@pytest.mark.parametrize(
    "env",
    [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"}, {"LC_ALL": "C", "LANG": "C"}],
)
def test_non_utf8_locale_sends_once_and_prints_utf8(world, env):
    code, out, err = run(world.db, *send_argv(world), "--text", "中文 ok", "--full", env=env)
    assert code == 0, err
    assert task_count(world.db, "中文 ok") == 1
    assert "text:  中文 ok" in out.decode("utf-8")
    code, out, err = run(
        world.db, "--json", "--session-id", world.sid, "message", "poll", "--agent-id", world.bob,
        env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "中文 ok" in out.decode("utf-8")


def test_ascii_locale_errors_are_utf8_too(world):
    code, out, err = run(
        world.db, *send_argv(world), "--to", "ünknown-агент", "--text", "x",
        env={"PYTHONIOENCODING": "ascii"},
    )  # fmt: skip
    assert code == 1 and out == b""
    assert "ünknown-агент" in err and "Traceback" not in err


def test_in_process_stream_that_cannot_encode_gets_escapes(cli, fleet, monkeypatch, capsys):
    """A redirected stream that is not cafleet's own (here ASCII) gets ``\\u`` escapes."""
    import io
    import sys

    bob = fleet.register("bob")
    buffer = io.BytesIO()
    ascii_out = io.TextIOWrapper(buffer, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    from cafleet_project.cli import main

    code = main(
        ["--session-id", fleet.sid, "message", "send", "--agent-id", fleet.director,
         "--to", bob, "--text", "中", "--full"]
    )  # fmt: skip
    ascii_out.flush()
    assert code == 0
    assert "text:  \\u4e2d" in buffer.getvalue().decode("ascii")
    assert sys.stdout is ascii_out  # restored
