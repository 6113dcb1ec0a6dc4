"""Issue 11 item 12: wrong ids blame the right thing.

``--session-id not-a-uuid`` and an unknown session used to say ``agent … is not a member of
session not-a-uuid``, and a 4-character agent prefix said the agent was not a member. The
session is now reported unknown (the ``SESSION_ID`` wording of cli.md §2.7), and a prefix
shorter than 8 characters is named as such.
"""

import pytest

from broker import members
from broker.exceptions import CafleetError
from tests.conftest import place_member

UNKNOWN_UUID = "0f0f0f0f-1111-4222-8333-444455556666"


def session_commands(fleet):
    """Commands whose first check used to blame the acting agent for an unknown session."""
    a = ("--agent-id", fleet.director)
    return [
        ("agent", "list", *a),
        ("agent", "show", *a, "--id", fleet.admin),
        ("agent", "deregister", *a),
        ("message", "poll", *a),
        ("message", "ack", *a, "--task-id", UNKNOWN_UUID),
        ("message", "show", *a, "--task-id", UNKNOWN_UUID),
        ("message", "cancel", *a, "--task-id", UNKNOWN_UUID),
        ("message", "send", *a, "--to", fleet.admin, "--text", "hi"),
        ("message", "broadcast", *a, "--text", "hi"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("sid", ["not-a-uuid", UNKNOWN_UUID, "0f0f0f0f"])
def test_unknown_session_is_named(cli, fleet, sid):
    for argv in session_commands(fleet):
        r = cli("--session-id", sid, *argv)
        assert (r.code, r.out) == (1, ""), argv
        assert r.err == f"Error: session '{sid}' not found.\n", argv


@pytest.mark.django_db
def test_short_session_prefix_is_named(cli, fleet):
    for argv in session_commands(fleet):
        r = cli("--session-id", fleet.sid[:4], *argv)
        assert r.code == 1
        assert r.err == (
            f"Error: session '{fleet.sid[:4]}' not found; an id prefix needs at least 8 "
            "characters.\n"
        ), argv


@pytest.mark.django_db
@pytest.mark.parametrize("length", [1, 4, 7])
def test_short_agent_prefix_is_named(cli, fleet, length):
    short = fleet.director[:length]
    expected = (
        f"Error: id prefix '{short}' is too short; an id prefix needs at least 8 characters.\n"
    )
    for argv in (
        ("agent", "list", "--agent-id", short),
        ("message", "poll", "--agent-id", short),
    ):
        r = cli("--session-id", fleet.sid, *argv)
        assert (r.code, r.err) == (1, expected), argv
    # role errors keep their contract wording and add the reason
    sender = (
        f"Error: Sender agent not found or not active in session: {short} (an id prefix "
        "needs at least 8 characters).\n"
    )
    for argv in (
        ("message", "send", "--agent-id", short, "--to", fleet.admin, "--text", "hi"),
        ("message", "broadcast", "--agent-id", short, "--text", "hi"),
    ):
        r = cli("--session-id", fleet.sid, *argv)
        assert (r.code, r.err) == (1, sender), argv


@pytest.mark.django_db
def test_eight_character_prefix_and_unknown_long_value_unchanged(cli, fleet):
    r = cli("--session-id", fleet.sid, "agent", "list", "--agent-id", fleet.director[:8])
    assert r.code == 0
    r = cli("--session-id", fleet.sid, "agent", "list", "--agent-id", "ffffffff-nope")
    assert r.err == f"Error: agent ffffffff-nope is not a member of session {fleet.sid}.\n"


@pytest.mark.django_db
def test_member_commands_name_the_unknown_session_and_short_director(fleet):
    member = place_member(fleet.sid, fleet.director, "worker", "%5").agent_id
    with pytest.raises(CafleetError) as info:
        members.member_target(session_id="not-a-uuid", agent_ref=fleet.director, member_ref=member)
    assert info.value.message == "session 'not-a-uuid' not found."
    with pytest.raises(CafleetError) as info:
        members.member_target(session_id=fleet.sid, agent_ref=fleet.director[:4], member_ref=member)
    assert info.value.message == (
        f"id prefix '{fleet.director[:4]}' is too short; an id prefix needs at least 8 characters."
    )
