"""Issue 9 acceptance on the real Claude Code 2.1.328 and Codex 0.169.0: the held →
escalation path (a member stuck on a permission dialog past
``CAFLEET_DELIVERY_HOLD_TIMEOUT``). The pane-gate cases the clients share (shell, dialog,
draft, lone ``!``, copy-mode, busy, a stopped client, the 50-preview loop) are in
test_delivery_real_clients.py.

The test drives cafleet as a user does (``message send`` as a subprocess, the background
delivery worker started on its own) and checks the result where it lands: in the mock
model's recorded requests, on the pane's screen and in the files a command would create.
"""

from __future__ import annotations

import pytest

from tests.realagent.fleet import RealFleet
from tests.realagent.harness import DIALOG_OF
from tests.realagent.test_delivery_real_clients import CLIENTS

pytestmark = [pytest.mark.realagent, pytest.mark.tmux]


def dialog_part(screen: str, client) -> str:
    """The dialog and what is below it (the client may animate what is above)."""
    return screen[screen.index(DIALOG_OF[client.name]) :]


@CLIENTS
def test_a_dialog_held_past_the_timeout_is_escalated_once_and_never_answered(
    fresh_db, tmux_server, start_agent, client
):
    fleet = RealFleet(fresh_db, tmux_server, CAFLEET_DELIVERY_HOLD_TIMEOUT="3")
    agent = start_agent(client.name)
    member = fleet.add_member(client.member, agent.pane, client.name)
    marker = agent.cwd / "escalation-marker"
    agent.open_dialog(marker)
    dialog_screen = dialog_part(agent.screen(), client)
    before = agent.model.turn_count(agent.backend)
    fleet.send(member, "news for a member stuck on a dialog 4669")
    task = fleet.task_to(member, "4669")
    notes = fleet.wait(fleet.admin_notes, 30, "an escalation")
    # More passes after the escalation: still exactly one, and the dialog untouched.
    first = int(fleet.delivery(task)[2])
    fleet.wait_attempts(task, first + 6)
    notes = fleet.admin_notes()
    assert len(notes) == 1, notes
    ((to, text),) = notes
    assert to == fleet.director
    assert client.member in text and "waiting for permission" in text
    state, reason, _attempts, escalated = fleet.delivery(task)
    assert (state, reason) == ("held", "permission_dialog") and escalated
    # No keystroke reached the member's pane: the dialog reads as it did.
    assert dialog_part(agent.screen(), client) == dialog_screen
    assert not marker.exists()
    assert agent.model.turn_count(agent.backend) == before
    agent.send_keys(client.decline)  # the human answers at last: the member gets its message
    agent.model.wait_user_text(agent.backend, "4669")
