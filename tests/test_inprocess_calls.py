"""Commands run one after another in one process (``main([...])`` in a loop, as the
concurrency workers and ``manage.py cafleet`` do) keep every committed message.

SQLite keeps its locks as POSIX record locks, which the kernel drops for the whole process
when ANY descriptor of the file is closed. A readiness check that opened and closed the
database file while the previous call's connection was still open silently dropped that
connection's locks; another process closing its connection then believed it was the last,
checkpointed and deleted the WAL file, and every later write of the first process went
into the deleted file and was lost, although each command had exited 0.
"""

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import seed_session

pytestmark = [pytest.mark.e2e]

LOOP = r"""
import contextlib, io, subprocess, sys
from cafleet_project.cli import main

sid, director, admin = sys.argv[1:4]


def send(text):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--session-id", sid, "message", "send", "--agent-id", director,
                     "--to", admin, "--quiet", "--text", text])
    assert code == 0, err.getvalue()


send("a1")
send("a2")  # readiness is checked again while a1's connection may still be open
# Another process writes and closes its connection: with the locks of this process lost it
# would take itself for the last connection and remove the WAL.
subprocess.run([sys.executable, "-m", "cafleet_project.cli", "--session-id", sid, "message",
                "send", "--agent-id", director, "--to", admin, "--quiet", "--text", "b1"],
               check=True)
# A reader keeps its own connection open until this process has exited (the test then kills
# it), so this process's exit is not the last close, which would checkpoint what it wrote.
reader = subprocess.Popen(
    [sys.executable, "-c",
     "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
     "c.execute('SELECT count(*) FROM tasks').fetchall(); print('open', flush=True);"
     "import time; time.sleep(120)", sys.argv[4]],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
assert reader.stdout.readline() == "open\n"
send("a3")
send("a4")
print(reader.pid)
"""


def test_in_process_calls_keep_every_message_when_another_process_closes(fresh_db):
    fleet = seed_session(fresh_db)
    proc = subprocess.run(
        [sys.executable, "-c", LOOP, fleet.sid, fleet.director, fleet.admin, str(fresh_db.path)],
        env=fresh_db.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    os.kill(int(proc.stdout.split()[-1]), signal.SIGKILL)
    texts = sorted(r[0] for r in fresh_db.rows("SELECT text FROM tasks"))
    assert texts == ["a1", "a2", "a3", "a4", "b1"]
    assert fresh_db.rows("PRAGMA integrity_check") == [("ok",)]
