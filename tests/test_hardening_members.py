"""Issue 11 item 9: a deregistered Director can no longer act on its former members.

Every ``member`` command that targets a member (delete, capture, send-input, exec, ping)
requires the acting ``--agent-id`` to be active; nothing reaches tmux otherwise.
"""

import pytest

from broker import members
from broker.exceptions import CafleetError
from broker.models import AgentStatus
from broker.services import agent_register, session_create
from broker.tmux import Delivery
from tests.conftest import place_member


class FakeTmux:
    """Records every call; any call at all is a failure for these tests."""

    TmuxError = RuntimeError

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append(name)
            if name == "capture":
                return ""
            # Gates and keystrokes answer like the tmux layer: a passed Delivery.
            return Delivery("delivered", None, True)

        return record


@pytest.fixture
def team(db):
    session, root, _admin, _ = session_create(
        label=None, coding_agent="claude", caller=("main", "@1", "%0")
    )
    sid = session.session_id
    lead = agent_register(session_id=sid, name="lead", description="d", skills_json=None)
    member = place_member(sid, lead.agent_id, "worker", "%5")
    return sid, lead, member


ACTIONS = {
    "exec": lambda common: members.member_exec(command="id", **common),
    "capture": lambda common: members.member_capture(lines=10, ansi=False, **common),
    "send-input": lambda common: members.member_send_input(choice=1, **common),
    "ping": lambda common: members.member_ping(**common),
    "delete": lambda common: members.member_delete(force=True, **common),
}


@pytest.mark.django_db
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_deregistered_director_is_refused(team, action):
    sid, lead, member = team
    tmux = FakeTmux()
    common = dict(session_id=sid, agent_ref=lead.agent_id, member_ref=member.agent_id, tmux=tmux)
    lead.deregister()
    with pytest.raises(CafleetError) as info:
        ACTIONS[action](common)
    assert info.value.exit_code == 1
    assert info.value.message == (
        f"Director agent '{lead.agent_id}' not found or not active in session '{sid}'."
    )
    assert tmux.calls == []
    member.refresh_from_db()
    assert member.status == AgentStatus.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_active_director_still_acts(team, action):
    sid, lead, member = team
    tmux = FakeTmux()
    tmux.list_pane_ids = lambda: set()
    common = dict(session_id=sid, agent_ref=lead.agent_id, member_ref=member.agent_id, tmux=tmux)
    ACTIONS[action](common)
    assert tmux.calls
