"""``message send``: destinations, outputs, body sources and limits, in-process.

Runs on pytest-django's file database. Numbers in test names refer to ``acceptance.md``.
"""

import re

import pytest

from broker.models import Task
from tests.cli_helpers import TASK_COLUMNS, as_agent, send, unoffered
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db


# ----------------------------------------------------------------------------- send


def test_94_to_98_destination_errors(cli, fleet):
    assert send(cli, fleet, to="bob").err == "Error: Invalid destination format: bob\n"
    assert send(cli, fleet, to="deadbeef").err == "Error: Destination agent not found: deadbeef\n"
    b = fleet.register("bob")
    cli(*as_agent(fleet, b, "agent deregister"))
    assert send(cli, fleet, to=b).err == f"Error: Destination agent not found: {b}\n"
    r = send(cli, fleet, sender=b, to=fleet.admin)
    assert r.err == f"Error: Sender agent not found or not active in session: {b}\n"
    other = make_fleet("other")
    assert (
        send(cli, fleet, to=other.director).err
        == f"Error: Destination agent not in session: {other.director}\n"
    )
    r = send(cli, fleet, sender=other.director, to=fleet.admin)
    assert r.err == f"Error: Sender agent not found or not active in session: {other.director}\n"
    assert Task.objects.count() == 0


def test_99_100_101_102_103_send_outputs(cli, fleet):
    b = fleet.register("bob")
    r = send(cli, fleet, to=b, text="hello\nworld")
    task = Task.objects.get()
    assert (
        task.type,
        task.context_id,
        task.to_agent_id,
        task.status_state,
        task.origin_task_id,
        task.text,
    ) == ("unicast", b, b, "input_required", None, "hello\nworld")
    assert task.created_at == task.status_timestamp
    assert r.out == (
        f"Message sent. No pane to preview.\n[{task.task_id[:8]} | from:{fleet.director[:8]} | "
        f"{task.status_timestamp}]\nhello\nworld\n"
    )
    data = send(cli, fleet, to=b, text="x", json=True).json
    assert list(data) == ["task", "notification_sent", "delivery"]
    assert data["notification_sent"] is False
    assert data["delivery"] == unoffered("owed", "no_pane")
    assert list(data["task"]) == ["id", "from", "ts", "text"]
    full = send(cli, fleet, "--full", to=b, text="x", json=True).json
    assert list(full["task"]) == TASK_COLUMNS
    q = send(cli, fleet, "--quiet", to=b)
    assert re.fullmatch(r"[0-9a-f]{8}\n", q.out)
    verbose = send(cli, fleet, "--full", to=b, text="v")
    t = Task.objects.get(task_id=verbose.lines[1].split()[-1])
    assert verbose.lines == [
        "Message sent. No pane to preview.",
        f"  id:    {t.task_id}",
        "  state: input_required",
        f"  from:  {fleet.director}",
        f"  to:    {b}",
        "  type:  unicast",
        "  text:  v",
    ]


def test_104_105_106_truncation(cli, fleet):
    b = fleet.register("bob")
    r = send(cli, fleet, to=b, text="é" * 300)
    assert r.lines[-1] == "é" * 200 + "…"
    assert Task.objects.get().text == "é" * 300
    r = send(cli, fleet, "--full", to=b, text="é" * 300)
    assert r.lines[-1] == "  text:  " + "é" * 300
    r = send(cli, fleet, to=b, text="😀" * 200)
    assert r.lines[-1] == "😀" * 200


def test_107_stdin_body(cli, fleet):
    r = send(cli, fleet, to=fleet.admin, text="-", stdin=b"line1\n'q' \"d\" $x `b`\n")
    assert r.code == 0
    assert Task.objects.get().text == "line1\n'q' \"d\" $x `b`\n"


def test_108_112_text_file(cli, fleet, tmp_path):
    body = "quotes ' \" back\\slash\ttab\nnew 😀\n"
    p = tmp_path / "body.txt"
    p.write_text(body, encoding="utf-8")
    r = send(cli, fleet, "--text-file", p, to=fleet.admin, text=None)
    assert r.code == 0 and Task.objects.get().text == body
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe bad")
    r = send(cli, fleet, "--text-file", bad, to=fleet.admin, text=None)
    assert r.code == 2 and r.err.endswith("Error: message text is not valid UTF-8.\n")
    r = send(cli, fleet, "--text-file", tmp_path / "missing", to=fleet.admin, text=None)
    assert r.code == 2
    assert r.err.endswith(
        f"Error: cannot read --text-file '{tmp_path / 'missing'}': No such file or directory\n"
    )


def test_109_110_body_source_errors(cli, fleet, tmp_path):
    msg = "Error: --text and --text-file are mutually exclusive; supply exactly one.\n"
    assert send(cli, fleet, to=fleet.admin, text=None).err.endswith(msg)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    r = send(cli, fleet, "--text-file", empty, to=fleet.admin)
    assert r.code == 2 and r.err.endswith(msg)
    for argv, stdin in (
        (["--text", ""], None),
        (["--text", "-"], b""),
        (["--text-file", empty], None),
    ):
        r = send(cli, fleet, *argv, to=fleet.admin, text=None, stdin=stdin)
        assert r.code == 2 and r.err.endswith("Error: message text may not be empty.\n")
    assert Task.objects.count() == 0


def test_111_size_limit(cli, fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("CAFLEET_MAX_BODY_BYTES", "10")
    r = send(cli, fleet, to=fleet.admin, text="é" * 5)
    assert r.code == 0
    big = tmp_path / "big.txt"
    big.write_bytes(b"z" * 25)
    r = send(cli, fleet, "--text-file", big, to=fleet.admin, text=None)
    assert r.err.endswith(
        "Error: message text is 25 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    r = send(cli, fleet, to=fleet.admin, text="é" * 5 + "x")
    assert r.code == 2 and r.err.endswith(
        "Error: message text is 11 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    r = send(cli, fleet, to=fleet.admin, text="-", stdin=b"y" * 100000)
    # reading a stream stops once the limit is exceeded, so its full size is not known
    assert r.err.endswith(
        "Error: message text is over 10 bytes; the limit is 10 bytes (CAFLEET_MAX_BODY_BYTES).\n"
    )
    assert Task.objects.count() == 1


def test_113_114_no_preview_targets(cli, fleet):
    r = send(cli, fleet, to=fleet.director, text="self", json=True)
    assert r.json["notification_sent"] is False
    b = fleet.register("plain")
    r = send(cli, fleet, to=b, text="x", json=True)
    assert r.json["notification_sent"] is False
