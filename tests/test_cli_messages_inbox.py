"""``message broadcast``, ``poll``, ``ack``, ``cancel`` and ``show``, in-process.

Runs on pytest-django's file database. Numbers in test names refer to ``acceptance.md``.
"""

import pytest

from broker.models import Task
from tests.cli_helpers import send, sid_args
from tests.conftest import make_fleet

pytestmark = pytest.mark.django_db


# ----------------------------------------------------------------------------- broadcast
def test_125_to_131_broadcast(cli, fleet):
    b = fleet.register("bob")
    c = fleet.register("carl")
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "all")
    summary = Task.objects.get(type="broadcast_summary")
    assert r.out == f"broadcast id={summary.task_id[:8]} recipients=2 delivered=0\n"
    rows = Task.objects.filter(type="unicast")
    assert sorted(t.context_id for t in rows) == sorted([fleet.director, c])
    assert {t.origin_task_id for t in rows} == {summary.task_id}
    assert {t.created_at for t in Task.objects.all()} == {summary.created_at}
    assert (
        summary.context_id,
        summary.from_agent_id,
        summary.to_agent_id,
        summary.status_state,
        summary.origin_task_id,
        summary.text,
    ) == (b, b, "", "completed", summary.task_id, "Broadcast sent to 2 recipients")
    assert not Task.objects.filter(context_id=fleet.admin).exists()
    r = cli(
        "--json",
        *sid_args(fleet),
        "message",
        "broadcast",
        "--agent-id",
        fleet.admin,
        "--text",
        "from admin",
    )
    data = r.json
    assert len(data) == 1 and data[0]["notifications_sent_count"] == 0
    assert data[0]["task"]["kind"] == "broadcast_summary"
    assert data[0]["task"]["origin"] == data[0]["task"]["id"]
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "x", "--full")
    assert r.lines[1] == "  state: completed" and "  type:  broadcast_summary" in r.lines
    assert not any(line.startswith("  to:") for line in r.lines)
    assert r.lines[-1] == "  text:  Broadcast sent to 2 recipients"


def test_133_134_broadcast_edges(cli, fleet):
    b = fleet.register("bob")
    cli(*sid_args(fleet), "agent", "deregister", "--agent-id", b)
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "x")
    assert r.err == f"Error: Sender agent not found or not active in session: {b}\n"
    r = cli(*sid_args(fleet), "message", "broadcast", "--agent-id", fleet.director, "--text", "x")
    assert "recipients=0" in r.out
    assert Task.objects.get().text == "Broadcast sent to 0 recipients"


# ----------------------------------------------------------------------------- poll
def test_135_136_137_141_142_143_poll(cli, fleet):
    b = fleet.register("bob")
    assert cli(*sid_args(fleet), "message", "poll", "--agent-id", b).out == "No messages found.\n"
    assert cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b).out == "[]\n"
    t1 = send(cli, fleet, "--quiet", to=b, text="first").out.strip()
    t2 = send(cli, fleet, "--quiet", to=b, text="second").out.strip()
    t3 = send(cli, fleet, "--quiet", to=b, text="third").out.strip()
    cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t1)
    cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t2)
    cli(*sid_args(fleet), "message", "broadcast", "--agent-id", b, "--text", "bc")
    items = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b).json
    assert [i["id"] for i in items] == [t3]
    assert list(items[0]) == ["id", "from", "ts", "text", "delivery"]
    assert items[0]["delivery"]["state"] == "seen"  # polling marks it seen
    everything = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--all").json
    assert {i["id"] for i in everything} == {t1, t2, t3}  # no broadcast summary
    ts = [i["ts"] for i in everything]
    assert ts == sorted(ts, reverse=True)
    d = cli(*sid_args(fleet), "message", "poll", "--agent-id", fleet.director)
    assert " | origin:" in d.lines[0]
    dj = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", fleet.director).json
    assert "origin" in dj[0] and "kind" not in dj[0]


def test_138_139_since(cli, fleet):
    b = fleet.register("bob")
    send(cli, fleet, to=b, text="one")
    task = Task.objects.get()
    ts = task.status_timestamp
    r = cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", ts).json
    assert len(r) == 1
    z = ts.replace("+00:00", "Z")
    assert (
        len(cli("--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", z).json)
        == 1
    )
    later = ts[:19] + "+00:00"  # fewer fractional digits → earlier or equal instant
    assert (
        len(
            cli(
                "--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--since", later
            ).json
        )
        == 1
    )
    assert (
        cli(
            "--json",
            *sid_args(fleet),
            "message",
            "poll",
            "--agent-id",
            b,
            "--since",
            "2999-01-01T00:00:00+02:00",
        ).json
        == []
    )
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--since", "yesterday")
    assert r.code == 2 and r.err.endswith(
        "Error: Invalid value for '--since': 'yesterday' is not an ISO-8601 timestamp.\n"
    )


def test_140_144_page_size_and_full(cli, fleet):
    b = fleet.register("bob")
    send(cli, fleet, to=b, text="one")
    send(cli, fleet, to=b, text="two")
    assert (
        len(
            cli(
                "--json", *sid_args(fleet), "message", "poll", "--agent-id", b, "--page-size", "1"
            ).json
        )
        == 1
    )
    assert cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--page-size", "0").code == 2
    r = cli(*sid_args(fleet), "message", "poll", "--agent-id", b, "--full")
    first = r.out.split("\n\n")[0].splitlines()
    assert [line.split(":")[0].strip() for line in first] == [
        "id",
        "state",
        "from",
        "to",
        "type",
        "text",
    ]


# ----------------------------------------------------------------------------- ack/cancel
def test_149_to_157_ack_cancel(cli, fleet):
    b = fleet.register("bob")
    t = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", fleet.director, "--task-id", t)
    assert r.err == "Error: Only the recipient can ACK a task\n"
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", b, "--task-id", t)
    assert r.err == "Error: Only the sender can cancel a task\n"
    before = Task.objects.get().status_timestamp
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t)
    task = Task.objects.get()
    assert task.status_state == "completed" and task.status_timestamp > before
    assert r.lines[0] == "Message acknowledged." and r.lines[1].startswith(f"[{t} | from:")
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t)
    assert r.err == "Error: Cannot cancel task in state completed\n"
    t2 = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", t2)
    assert r.lines[0] == "Task canceled."
    assert Task.objects.get(task_id__startswith=t2).status_state == "canceled"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t2)
    assert r.err == "Error: Cannot ACK task in state canceled\n"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", "0badbeef")
    assert r.err == "Error: Task 0badbeef not found\n"
    t3 = send(cli, fleet, "--quiet", to=b).out.strip()
    assert (
        cli(*sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t3, "--quiet").out
        == f"{t3}\n"
    )
    t4 = send(cli, fleet, "--quiet", to=b).out.strip()
    acked = cli("--json", *sid_args(fleet), "message", "ack", "--agent-id", b, "--task-id", t4).json
    assert list(acked) == ["task"] and acked["task"]["id"] == t4


def test_summary_rows_cannot_be_acked_or_canceled(cli, fleet):
    cli(*sid_args(fleet), "message", "broadcast", "--agent-id", fleet.director, "--text", "x")
    s = Task.objects.get().task_id
    r = cli(*sid_args(fleet), "message", "cancel", "--agent-id", fleet.director, "--task-id", s)
    assert r.err == "Error: Cannot cancel task in state completed\n"
    r = cli(*sid_args(fleet), "message", "ack", "--agent-id", fleet.director, "--task-id", s)
    assert r.err == "Error: Cannot ACK task in state completed\n"


def test_158_159_160_show_and_gate(cli, fleet):
    b = fleet.register("bob")
    c = fleet.register("carl")
    t = send(cli, fleet, "--quiet", to=b).out.strip()
    r = cli("--json", *sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", t)
    assert r.json["task"]["id"] == t
    assert (
        cli(*sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", t)
        .lines[0]
        .startswith(f"[{t} |")
    )
    other = make_fleet("other")
    o = other.register("oscar")
    ot = send(cli, other, to=o, text="secret", json=True).json["task"]["id"]
    full_ot = Task.objects.get(task_id__startswith=ot).task_id
    r = cli(*sid_args(fleet), "message", "show", "--agent-id", c, "--task-id", full_ot)
    assert r.err == f"Error: Task {full_ot} not found\n"
    for verb in ("poll",):
        r = cli(*sid_args(fleet), "message", verb, "--agent-id", o)
        assert r.err == f"Error: agent {o} is not a member of session {fleet.sid}.\n"
    for verb in ("ack", "cancel", "show"):
        r = cli(*sid_args(fleet), "message", verb, "--agent-id", o, "--task-id", t)
        assert r.err == f"Error: agent {o} is not a member of session {fleet.sid}.\n"
