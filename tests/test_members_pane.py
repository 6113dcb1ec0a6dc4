"""Member targets and pane actions without tmux: which member a Director may drive, and the
exact keystrokes of ``capture``, ``send-input``, ``exec`` and ``ping`` (tests/members_support.py).
"""

import pytest

from broker import members
from broker.clock import new_id
from broker.exceptions import CafleetError
from broker.services import agent_register
from tests import members_support
from tests.members_support import add_member, is_active, refs, refusal

# the shared fixtures, requested by name
rec, team, pane = members_support.rec, members_support.team, members_support.pane


# ------------------------------------------------------------------------------ targets
@pytest.mark.django_db
def test_target_checks(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    plain = agent_register(session_id=team.sid, name="plain", description="x", skills_json=None)
    theirs = add_member(team, director_id=other.agent_id, pane="%8")
    pending = add_member(team, pane=None)
    gone = add_member(team, pane="%6")
    gone.deregister()

    def target(ref, action="send", **kw):
        return members.member_target(
            session_id=team.sid, agent_ref=team.did, member_ref=ref, action=action, **kw
        )

    for ref, expected in [
        ("short", "Agent short not found"),
        (new_id(), None),
        (gone.agent_id, f"Agent {gone.agent_id} not found"),
        (
            team.admin.agent_id,
            f"agent {team.admin.agent_id} has no placement row; it was not spawned via "
            "`cafleet member create`.",
        ),
        (
            plain.agent_id[:8],
            f"agent {plain.agent_id} has no placement row; it was not spawned via "
            "`cafleet member create`.",
        ),
        (
            theirs.agent_id,
            f"agent {theirs.agent_id} is not a member of your team "
            f"(director_agent_id={other.agent_id}).",
        ),
        (team.did, f"agent {team.did} is not a member of your team (director_agent_id=None)."),
        (
            pending.agent_id,
            f"member {pending.agent_id} has no pane yet (pending placement) — nothing to send.",
        ),
    ]:
        assert refusal(target, ref) == (expected or f"Agent {ref} not found")
    with pytest.raises(CafleetError, match="nothing to capture"):
        target(pending.agent_id, action="capture")
    assert refusal(target, plain.agent_id, action=None, deleting=True) == (
        f"agent {plain.agent_id} has no placement; use `cafleet agent deregister` instead"
    )
    assert target(pending.agent_id.upper()[:10], action=None).pane is None
    assert rec.calls == []


@pytest.mark.django_db
def test_cross_director_refused_with_zero_keystrokes(team, rec):
    other = agent_register(session_id=team.sid, name="other", description="x", skills_json=None)
    theirs = add_member(team, director_id=other.agent_id, pane="%8")
    common = refs(team, theirs.agent_id)
    attempts = [
        lambda: members.member_capture(lines=30, ansi=False, **common),
        lambda: members.member_send_input(choice=1, **common),
        lambda: members.member_send_input(freetext="hi", **common),
        lambda: members.member_exec(command="ls", **common),
        lambda: members.member_ping(**common),
        lambda: members.member_delete(force=False, **common),
        lambda: members.member_delete(force=True, **common),
    ]
    for attempt in attempts:
        with pytest.raises(CafleetError, match="is not a member of your team"):
            attempt()
    assert rec.calls == []
    assert is_active(theirs.agent_id)


# ------------------------------------------------------------------------------ capture
@pytest.mark.django_db
def test_capture_argv_cleaning_and_errors(team, rec):
    member = add_member(team)
    common = refs(team, member.agent_id)
    rec.outputs["capture-pane"] = "\x1b[1mbold\x1b[0m\nloading 10%\rloading 100%\n"
    target, text = members.member_capture(lines=30, ansi=False, **common)
    assert text == "bold\nloading 100%\n"
    assert target.pane == "%7"
    _, raw = members.member_capture(lines=200, ansi=True, **common)
    assert raw == "\x1b[1mbold\x1b[0m\nloading 10%\rloading 100%\n"
    assert rec.calls == [
        ["capture-pane", "-p", "-t", "%7", "-S", "-30"],
        ["capture-pane", "-p", "-t", "%7", "-S", "-200"],
    ]
    for bad in (0, -5):
        assert refusal(members.member_capture, lines=bad, ansi=False, **common) == (
            f"capture failed: capture_pane: lines must be positive, got {bad}"
        )
    assert len(rec.calls) == 2
    rec.failures["capture-pane"] = "can't find pane: %7"
    assert refusal(members.member_capture, lines=30, ansi=False, **common) == (
        "capture failed: tmux command failed: tmux capture-pane -p "
        "-t %7 -S -30\nstderr: can't find pane: %7"
    )


# ------------------------------------------------------------------------------ keystrokes


@pytest.mark.django_db
def test_send_input_choice_and_freetext_keystrokes(team, pane):
    member = add_member(team)
    common = refs(team, member.agent_id[:8])
    members.member_send_input(choice=2, **common)
    assert pane.keystrokes == [["send-keys", "-t", "%7", "2"]]
    pane.calls.clear()
    members.member_send_input(freetext="hi $HOME `x` Enter C-c", **common)
    # 4 as a plain key, then the text as a bracketed paste (never send-keys), then Enter
    keys = [["<buf>" if a.startswith("cafleet-") else a for a in k] for k in pane.keystrokes]
    assert keys[:3] == [
        ["send-keys", "-t", "%7", "4"],
        ["paste-buffer", "-p", "-d", "-b", "<buf>", "-t", "%7"],
        ["send-keys", "-t", "%7", "Enter"],
    ]
    assert not any("-l" in k for k in keys)
    pane.calls.clear()
    members.member_send_input(freetext="", **common)
    assert pane.keystrokes == [["send-keys", "-t", "%7", "4"], ["send-keys", "-t", "%7", "Enter"]]
    pane.fail["send-keys"] = "no server running"
    with pytest.raises(
        CafleetError,
        match=r"^send failed: tmux command failed: tmux send-keys "
        r"-t %7 2\nstderr: no server running$",
    ):
        members.member_send_input(choice=2, **common)


@pytest.mark.django_db
def test_send_input_refuses_a_pane_not_running_the_agent(team, pane):
    member = add_member(team)
    pane.command = "bash"
    assert refusal(members.member_send_input, choice=1, **refs(team, member.agent_id)) == (
        "pane %7 is not ready: agent not running"
    )
    assert pane.keystrokes == []


@pytest.mark.django_db
def test_send_input_still_answers_a_menu(team, pane):
    """The screen gate does not apply: answering a question is the Director's action."""
    member = add_member(team)
    pane.dialog = True
    members.member_send_input(choice=1, **refs(team, member.agent_id))
    assert pane.keystrokes == [["send-keys", "-t", "%7", "1"]]


@pytest.mark.django_db
def test_exec_keystrokes(team, pane):
    member = add_member(team)
    target = members.member_exec(command="git status | wc -l", **refs(team, member.agent_id))
    assert target.member.name == "worker"
    assert [c[0] for c in pane.keystrokes] == ["paste-buffer", "send-keys"]
    assert pane.keystrokes[1] == ["send-keys", "-t", "%7", "Enter"]
    assert pane.submitted == ["! git status | wc -l"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ({"dialog": True}, "waiting for permission"),
        ({"draft": "hello wor"}, "draft in the input"),
        ({"command": "bash"}, "agent not running"),
        ({"gone": True}, "pane gone"),
    ],
)
def test_exec_and_ping_refuse_a_pane_that_is_not_ready(team, pane, setup, words):
    member = add_member(team)
    for key, value in setup.items():
        setattr(pane, key, value)
    common = refs(team, member.agent_id)
    assert refusal(members.member_exec, command="rm -rf build", **common) == (
        f"pane %7 is not ready: {words}"
    )
    assert refusal(members.member_ping, **common) == f"pane %7 is not ready: {words}"
    assert pane.keystrokes == [] and pane.submitted == []


@pytest.mark.django_db
def test_ping_keystrokes_and_not_delivered(team, pane):
    member = add_member(team)
    common = refs(team, member.agent_id, agent_ref=team.did[:8])
    members.member_ping(**common)
    poll = f"cafleet --session-id {team.sid} message poll --agent-id {member.agent_id}"
    assert pane.submitted == [poll]
    assert [c[0] for c in pane.keystrokes] == ["paste-buffer", "send-keys"]
    pane.fail["paste-buffer"] = "server exited unexpectedly"
    assert refusal(members.member_ping, **common) == (
        "send failed: tmux send-keys did not deliver the poll-trigger keystroke to pane %7."
    )
