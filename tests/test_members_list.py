"""``member list`` without tmux: which members, in which order, the activity columns (one
query for any number of members) and the CLI's text and JSON (tests/members_support.py)."""

import json
from datetime import UTC, datetime

import pytest

from broker import members
from broker.clock import new_id, now
from broker.models import Task, TaskState
from broker.services import agent_register
from tests import members_support
from tests.members_support import add_member, lines_of, task, ts

# the shared fixtures, requested by name
rec, team, mcli = members_support.rec, members_support.team, members_support.mcli


@pytest.mark.django_db
def test_list_selects_own_active_members_in_order(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    second = add_member(team, name="second", stamp=ts(2))
    first = add_member(team, name="first", stamp=ts(1), pane=None)
    add_member(team, name="theirs", director_id=other.agent_id, stamp=ts(3))
    gone = add_member(team, name="gone", stamp=ts(4))
    gone.deregister()
    rows = members.member_list(session_id=team.sid, agent_ref=team.did)
    assert [r.agent.name for r in rows] == ["first", "second"]
    assert rows[0].placement.tmux_pane_id is None
    assert members.member_list(session_id=team.sid, agent_ref="nobody-at-all") == []
    assert members.member_list(session_id=new_id(), agent_ref=team.did) == []
    assert members.member_list(session_id=team.sid, agent_ref=team.admin.agent_id) == []
    assert [
        r.agent.agent_id for r in members.member_list(session_id=team.sid, agent_ref=team.did[:8])
    ] == [first.agent_id, second.agent_id]
    assert rec.calls == []


@pytest.mark.django_db
def test_activity_values(team):
    busy = add_member(team, name="busy", stamp=ts(0))
    quiet = add_member(team, name="quiet", stamp=ts(0))
    did, mid = team.did, busy.agent_id
    task(frm=did, to=mid, at=ts(1))  # unread
    task(frm=did, to=mid, at=ts(2))  # unread
    task(frm=did, to=mid, state=TaskState.COMPLETED, at=ts(5))  # acked at :05
    task(frm=did, to=mid, state=TaskState.CANCELED, at=ts(6))  # canceled at :06
    task(frm=mid, to=did, at=ts(3))  # sent at :03
    task(frm=mid, to=mid, at=ts(40), summary=True)  # summary rows count for nothing
    task(frm=quiet.agent_id, to=quiet.agent_id, at=ts(50), summary=True)
    at = datetime(2026, 5, 5, 12, 1, 6, 900000, tzinfo=UTC)
    rows = members.member_list(session_id=team.sid, agent_ref=did, activity=True, at=at)
    got = {r.agent.name: (r.last_sent, r.last_recv, r.last_ack, r.idle, r.unread) for r in rows}
    assert got == {"busy": (ts(3), ts(6), ts(5), 60, 2), "quiet": (None, None, None, None, 0)}
    Task.objects.filter(context_id=mid, status_timestamp=ts(1)).update(
        status_state=TaskState.COMPLETED, status_timestamp=ts(7)
    )
    rows = members.member_list(session_id=team.sid, agent_ref=did, activity=True, at=at)
    busy_row = next(r for r in rows if r.agent.name == "busy")
    assert (busy_row.unread, busy_row.last_ack, busy_row.idle) == (1, ts(7), 59)


def test_idle_never_negative_and_floored():
    at = datetime(2026, 5, 5, 12, 0, 0, tzinfo=UTC)
    assert members.idle_seconds(ts(30), None, at) == 0
    assert members.idle_seconds(None, "2026-05-05T11:59:58.500000+00:00", at) == 1
    assert members.idle_seconds(None, None, at) is None


@pytest.mark.django_db
def test_list_with_activity_is_one_query_for_fifty_members(team, django_assert_num_queries):
    for i in range(50):
        m = add_member(team, name=f"m{i}", pane=f"%{i + 10}")
        task(frm=team.did, to=m.agent_id, at=now())
        task(frm=m.agent_id, to=team.did, at=now())
    with django_assert_num_queries(1):
        rows = members.member_list(session_id=team.sid, agent_ref=team.did, activity=True)
    assert len(rows) == 50
    assert all(r.unread == 1 and r.last_sent and r.last_recv for r in rows)


# ------------------------------------------------------------------------------ CLI


@pytest.mark.django_db
def test_cli_list_text_layout(team, mcli):
    res = mcli.member("list")
    assert res.out == "0 members.\n"
    one = add_member(team, name="alice", stamp=ts(1), pane="%12")
    res = mcli.member("list")
    assert lines_of(res.out) == [
        "1 member:",
        "  agent_id  name      status  backend  session  window_id  pane_id  created_at",
        "  --------  --------  ------  -------  -------  ---------  -------  " + "-" * len(ts(1)),
        f"  {one.agent_id[:8]}  alice     active  claude   main     @1         %12      {ts(1)}",
    ]
    two = add_member(team, name="a-much-longer-name", stamp=ts(2), pane=None, coding_agent="codex")
    task(frm=team.did, to=two.agent_id, at=ts(3))
    res = mcli.member("list")
    out = lines_of(res.out)
    assert out[0] == "2 members:"
    # columns widen to their longest value: every row stays aligned
    assert out[1] == (
        "  agent_id  name                status  backend  session  window_id  pane_id    created_at"
    )
    assert out[4] == (
        f"  {two.agent_id[:8]}  a-much-longer-name  active  codex    main     "
        f"@1         (pending)  {ts(2)}"
    )
    res = mcli.member("list", "--activity")
    out = lines_of(res.out)
    assert out[1:3] == [
        "  agent_id  name                status  last_sent  last_recv  last_ack   idle   unread  held"
        "  channel  state  age",
        "  --------  ------------------  ------  ---------  ---------  ---------  -----  ------  ----"
        "  -------  -----  ---",
    ]
    assert (
        out[3] == f"  {one.agent_id[:8]}  alice               active  -          -          -"
        "          -      0       0     -        -      -"
    )
    assert out[4].startswith(
        f"  {two.agent_id[:8]}  a-much-longer-name  active  -          12:00:03   -          "
    )
    assert out[4].endswith("  1       0     -        -      -")
    for line in out:
        assert line == line.rstrip()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h")],
)
def test_idle_text(seconds, text):
    from broker.commands.member import idle_text

    assert idle_text(seconds) == text


@pytest.mark.django_db
def test_cli_list_json(team, mcli):
    member = add_member(team, name="alice", stamp=ts(1), pane=None)
    res = mcli.member("list", head=("--json",))
    assert json.loads(res.out) == [
        {
            "agent_id": member.agent_id,
            "name": "alice",
            "description": "does work",
            "status": "active",
            "registered_at": ts(1),
            "placement": {
                "director_agent_id": team.did,
                "tmux_session": "main",
                "tmux_window_id": "@1",
                "tmux_pane_id": None,
                "coding_agent": "claude",
                "created_at": ts(1),
            },
        }
    ]
    res = mcli.member("list", "--activity", head=("--json",))
    entry = json.loads(res.out)[0]
    assert list(entry)[-9:] == [
        "last_sent", "last_recv", "last_ack", "idle", "unread", "held",
        "channel", "state", "state_age",
    ]  # fmt: skip
    assert (entry["last_sent"], entry["idle"], entry["unread"], entry["held"]) == (None, None, 0, 0)
