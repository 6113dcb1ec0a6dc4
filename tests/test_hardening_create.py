"""Issue 11 item 1: a failed ``member create`` never leaves a registered orphan.

A custom prompt asking for an absurd format width (``{agent_id:>99999999999}``) used to
raise MemoryError after the member was registered, leaving it in ``member list`` as pending.
"""

from types import SimpleNamespace

import pytest

from broker import members
from broker.exceptions import CafleetError
from broker.models import Agent, AgentStatus, Placement
from broker.services import session_create

CALLER = ("main", "@1", "%0")


class FakeTmux:
    """A test double of ``broker.tmux`` for ``member_create``: records the spawn calls."""

    TmuxError = RuntimeError

    def __init__(self, split=None):
        self.calls: list[str] = []
        self._split = split

    def split_window(self, window_id, argv, database_url):
        self.calls.append("split-window")
        if self._split is not None:
            return self._split(argv)
        return "%9"

    def select_layout(self, window_id):
        self.calls.append("select-layout")

    def send_exit(self, pane):
        self.calls.append("send-exit")


@pytest.fixture
def team(db):
    session, director, admin, _ = session_create(label=None, coding_agent="claude", caller=CALLER)
    return SimpleNamespace(sid=session.session_id, did=director.agent_id, aid=admin.agent_id)


def create(team, tmux, prompt):
    return members.member_create(
        session_id=team.sid,
        director_ref=team.did,
        name="alice",
        description="d",
        coding_agent="claude",
        prompt=prompt,
        caller=CALLER,
        tmux=tmux,
        environ={},
    )


def new_agents(team):
    return list(
        Agent.objects.filter(session_id=team.sid).exclude(agent_id__in=[team.did, team.aid])
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "prompt",
    [
        ("{agent_id:>99999999999}",),
        ("{agent_id!r:>99999999999}",),
        ("x", "{session_id:.99999999999}"),
        ("{agent_id:>{agent_id}}", "{agent_id:>{director_agent_id:99999999999}}"),
        ("{agent_id:0>" + "9" * 5000 + "}",),
    ],
)
def test_absurd_width_refused_before_anything_is_registered(team, prompt):
    tmux = FakeTmux()
    with pytest.raises(CafleetError) as info:
        create(team, tmux, prompt)
    assert info.value.exit_code == 1
    assert info.value.message.startswith("prompt resolution failed: Malformed custom prompt: ")
    assert "larger than 10000" in info.value.message
    assert new_agents(team) == []  # nothing registered, so nothing to roll back
    assert tmux.calls == []


@pytest.mark.django_db
def test_many_wide_fields_refused_before_anything_is_registered(team):
    tmux = FakeTmux()
    with pytest.raises(CafleetError) as info:
        create(team, tmux, ("{agent_id:>10000}",) * 20)
    assert "longer than 131072 characters" in info.value.message
    assert new_agents(team) == []
    assert tmux.calls == []


@pytest.mark.django_db
def test_width_up_to_the_bound_is_accepted(team):
    seen = []
    tmux = FakeTmux(split=lambda argv: seen.append(argv[-1]) or "%9")
    agent, placement = create(team, tmux, ("[{agent_id:>10000}]",))
    assert len(seen[0]) == 10002
    assert seen[0].endswith(agent.agent_id + "]")
    assert placement.tmux_pane_id == "%9"


@pytest.mark.django_db
def test_unexpected_failure_after_registration_rolls_back(team, monkeypatch):
    def explode(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(members, "build_prompt", explode)
    with pytest.raises(CafleetError) as info:
        create(team, FakeTmux(), ())
    (agent,) = new_agents(team)
    assert agent.status == AgentStatus.DEREGISTERED
    assert not Placement.objects.filter(agent_id=agent.agent_id).exists()
    assert "MemoryError" in info.value.message
    assert info.value.message.endswith(f"Rolled back registration of {agent.agent_id}.")


@pytest.mark.django_db
def test_interrupt_after_registration_rolls_back_and_propagates(team):
    def interrupt(argv):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create(team, FakeTmux(split=interrupt), ())
    (agent,) = new_agents(team)
    assert agent.status == AgentStatus.DEREGISTERED
    assert not Placement.objects.filter(agent_id=agent.agent_id).exists()


@pytest.mark.django_db
def test_cli_member_create_absurd_width_leaves_no_member(team, monkeypatch, capsys):
    """The whole command: exit 1, a clear error, ``member list`` still empty."""
    from cafleet_project import cli as entry

    monkeypatch.setattr(members, "member_preflight", lambda **kw: CALLER)
    monkeypatch.setattr(entry, "setup_django", lambda path: None)
    base = ["--session-id", team.sid]
    code = entry._main(
        [*base, "member", "create", "--agent-id", team.did, "--name", "bob", "--description", "d"]
        + ["--", "{agent_id:>99999999999}"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("Error: prompt resolution failed: Malformed custom prompt: ")
    assert "MemoryError" not in err
    code = entry._main([*base, "member", "list", "--agent-id", team.did])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "0 members.\n")
