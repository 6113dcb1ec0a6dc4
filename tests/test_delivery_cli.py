"""What `message send|show|poll` print about the delivery (issue 9 point 5), in-process with
the stand-in tmux layer."""

from __future__ import annotations

import re

import pytest

from broker.commands import Call
from broker.models import Delivery
from tests.cli_helpers import as_agent, send, unoffered
from tests.delivery_fakes import FakeTmux
from tests.test_delivery_states import add_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(monkeypatch):
    tmux = FakeTmux()
    monkeypatch.setattr(Call, "tmux", property(lambda self: tmux))
    return tmux


@pytest.mark.parametrize(
    ("setup", "first_line"),
    [
        ("idle", "Message sent. Preview delivered."),
        ("dialog", "Message sent. Preview held: waiting for permission."),
        ("draft", "Message sent. Preview held: draft in the input."),
        ("stopped", "Message sent. Preview held: agent not running."),
        ("gone", "Message sent. Preview not delivered: pane gone."),
        ("pending", "Message sent. No pane to preview."),
        ("self", "Message sent. No preview (sent to yourself)."),
    ],
)
def test_send_text_says_what_became_of_the_preview(cli, fleet, fake, setup, first_line):
    member = add_member(fleet, "alice", None if setup == "pending" else "%5")
    fake.gate["%5"] = {
        "dialog": "permission_dialog",
        "draft": "draft",
        "stopped": "agent_not_running",
    }.get(setup)
    if setup == "gone":
        fake.gone.add("%5")
    r = send(cli, fleet, to=member, text="hi", sender=member if setup == "self" else None)
    assert r.code == 0 and r.err == ""
    assert r.lines[0] == first_line
    assert re.fullmatch(r"\[[0-9a-f]{8} \| from:[0-9a-f]{8} \| \S{32}\]", r.lines[1])
    assert r.lines[2:] == ["hi"]


def test_send_quiet_and_json_stay_stable(cli, fleet, fake):
    member = add_member(fleet, "alice", "%5")
    fake.gate["%5"] = "busy"
    q = send(cli, fleet, "--quiet", to=member)
    assert re.fullmatch(r"[0-9a-f]{8}\n", q.out)
    data = send(cli, fleet, to=member, text="x", json=True).json
    assert list(data) == ["task", "notification_sent", "delivery"]
    assert list(data["task"]) == ["id", "from", "ts", "text"]
    assert data["notification_sent"] is False
    assert data["delivery"] == unoffered("held", "busy")
    fake.gate["%5"] = None
    ok = send(cli, fleet, to=member, text="y", json=True)
    assert ok.json["notification_sent"] is True
    d = ok.json["delivery"]
    assert (d["state"], d["reason"], d["channel"]) == ("seen", None, "keys")
    assert d["offered_at"] == d["seen_at"] and len(d["seen_at"]) == 32


def test_show_adds_one_line_and_a_json_key(cli, fleet, fake):
    member = add_member(fleet, "alice", "%5")
    fake.gate["%5"] = "permission_dialog"
    tid = send(cli, fleet, "--quiet", to=member, text="line one\nline two").out.strip()
    held = Delivery.objects.get(task__task_id__startswith=tid)
    # the sender reads it: nothing changes
    show = as_agent(fleet, fleet.director, "message show", "--task-id", tid)
    r = cli(*show)
    assert r.lines[0].startswith(f"[{tid} | from:{fleet.director[:8]} | ")
    assert r.lines[1:3] == ["line one", "line two"]
    assert r.lines[3:] == [f"delivery: held (waiting for permission) since {held.held_since}"]
    full = cli(*show, "--full")
    assert [x.split(":")[0] for x in full.lines] == [
        "  id", "  state", "  from", "  to", "  type", "  delivery", "  text", "line two",
    ]  # fmt: skip
    j = cli("--json", *show)
    assert list(j.json["task"]) == ["id", "from", "ts", "text", "delivery"]
    assert j.json["task"]["delivery"]["state"] == "held"
    # the recipient reads it: seen
    mine_show = as_agent(fleet, member, "message show", "--task-id", tid)
    mine = cli("--json", *mine_show)
    assert mine.json["task"]["delivery"]["state"] == "seen"
    assert mine.json["task"]["delivery"]["reason"] == "permission_dialog"  # why it was held
    fullj = cli("--json", *mine_show, "--full")
    assert list(fullj.json["task"])[-1] == "delivery"
    assert fullj.json["task"]["task_id"].startswith(tid)


def test_show_of_a_broadcast_summary_has_no_delivery(cli, fleet, fake):
    add_member(fleet, "alice", "%5")
    cli(*as_agent(fleet, fleet.director, "message broadcast", "--text", "all"))
    from broker.models import Task

    summary = Task.objects.get(type="broadcast_summary")
    show = as_agent(fleet, fleet.director, "message show", "--task-id", summary.task_id)
    r = cli(*show)
    assert not any(line.startswith("delivery:") for line in r.lines)
    j = cli("--json", *show)
    assert j.json["task"]["delivery"] is None


def test_poll_json_shows_the_delivery_as_seen(cli, fleet, fake):
    member = add_member(fleet, "alice", "%5")
    fake.gate["%5"] = "draft"
    send(cli, fleet, to=member)
    assert Delivery.objects.get().state == "held"
    items = cli("--json", *as_agent(fleet, member, "message poll")).json
    assert list(items[0]) == ["id", "from", "ts", "text", "delivery"]
    d = items[0]["delivery"]
    assert (d["state"], d["reason"], d["channel"], d["offered_at"]) == ("seen", "draft", None, None)
    assert Delivery.objects.get().seen_at == d["seen_at"]
    text = cli(*as_agent(fleet, member, "message poll"))
    assert not any(line.startswith("delivery:") for line in text.lines)  # text poll unchanged


def test_broadcast_output_unchanged(cli, fleet, fake):
    add_member(fleet, "a", "%5")
    add_member(fleet, "b", "%6")
    fake.gate["%6"] = "busy"
    r = cli(*as_agent(fleet, fleet.director, "message broadcast", "--text", "x"))
    assert re.fullmatch(r"broadcast id=[0-9a-f]{8} recipients=2 delivered=1\n", r.out)


def test_member_list_activity_counts_held_deliveries(cli, fleet, fake):
    alice = add_member(fleet, "alice", "%5")
    bob = add_member(fleet, "bob", "%6")
    fake.gate["%5"] = "permission_dialog"
    for text in ("one", "two", "three"):
        send(cli, fleet, to=alice, text=text)
    send(cli, fleet, to=bob)
    first = Delivery.objects.filter(task__context_id=alice).order_by("task__created_at")[0]
    cli(*as_agent(fleet, alice, "message ack", "--task-id", first.task_id))
    activity = as_agent(fleet, fleet.director, "member list", "--activity")
    r = cli(*activity)
    assert r.lines[1].endswith("  unread  held  channel  state  age")
    assert r.lines[2].endswith("  ------  ----  -------  -----  ---")
    cells = {line.split()[1]: line.split()[-5:] for line in r.lines[3:]}
    # unread, held, channel, state, age (no hook ever reported: no state)
    assert cells == {"alice": ["2", "2", "-", "-", "-"], "bob": ["1", "0", "keys", "-", "-"]}
    j = cli("--json", *activity)
    assert {e["name"]: e["held"] for e in j.json} == {"alice": 2, "bob": 0}
    plain = cli("--json", *as_agent(fleet, fleet.director, "member list"))
    assert "held" not in plain.json[0]
