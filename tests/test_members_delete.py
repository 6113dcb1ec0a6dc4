"""``member delete`` without tmux: the /exit wait, --force, a pending member, the timeout
and its recovery text, tmux and database failures, and the CLI's outputs
(tests/members_support.py)."""

import json

import pytest

from broker import members
from broker.exceptions import CafleetError
from broker.models import Agent, Placement
from broker.services import agent_register
from tests import members_support
from tests.members_support import (
    add_member,
    delete,
    delete_report,
    delete_timeout_text,
    fake_member_clock,
    is_active,
    json_error_line,
    lines_of,
    refusal,
)

# the shared fixtures, requested by name
rec, team, mcli = members_support.rec, members_support.team, members_support.mcli


@pytest.mark.django_db
def test_delete_default_waits_then_deregisters_then_rebalances(team, rec):
    member = add_member(team, window="@4")
    answers = iter(["%0\n%7\n", "%0\n%7\n", "%0\n"])
    rec.outputs["list-panes"] = lambda args: next(answers)
    result = delete(team, rec, member)
    assert result == (member.agent_id, "Member deleted.", "%7 (closed)")
    listing = ["list-panes", "-a", "-F", "#{pane_id}"]
    assert rec.script() == [
        ["send-keys", "-t", "%7", "/exit", "Enter"],
        listing,
        ("sleep", 0.5),
        listing,
        ("sleep", 0.5),
        listing,
        ["select-layout", "-t", "@4", "main-vertical"],
    ]
    assert not is_active(member.agent_id)
    assert not Placement.objects.filter(agent_id=member.agent_id).exists()


@pytest.mark.django_db
def test_delete_exit_on_gone_pane_is_fine(team, rec):
    member = add_member(team)
    rec.failures["send-keys"] = "can't find pane: %7"
    assert delete(team, rec, member)[2] == "%7 (closed)"
    assert not is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_force_kills_even_when_gone(team, rec):
    member = add_member(team)
    assert delete(team, rec, member, force=True) == (
        member.agent_id,
        "Member deleted (--force).",
        "%7 (killed)",
    )
    assert rec.calls == [["kill-pane", "-t", "%7"], ["select-layout", "-t", "@1", "main-vertical"]]
    again = add_member(team, pane="%8")
    rec.failures["kill-pane"] = "can't find pane: %8"
    warnings = []
    rec.failures["select-layout"] = "no such window"
    assert delete(team, rec, again, force=True, warnings=warnings)[2] == "%8 (killed)"
    assert not is_active(again.agent_id)
    assert warnings == [
        "Warning: select-layout failed: tmux command failed: tmux select-layout "
        "-t @1 main-vertical\nstderr: no such window"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("force", [False, True], ids=["default", "force"])
def test_delete_pending_makes_no_tmux_call(team, rec, force):
    member = add_member(team, pane=None)
    assert delete(team, rec, member, force=force) == (
        member.agent_id,
        "Member deleted.",
        "(pending — no pane)",
    )
    assert rec.calls == []
    assert not is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_timeout_keeps_member_and_reports_tail(team, rec):
    member = add_member(team)
    rec.outputs["list-panes"] = "%0\n%7\n"
    rec.outputs["capture-pane"] = "\x1b[2m> /exit\x1b[0m\nignoring /exit\n\n\n"
    with pytest.raises(members.DeleteTimeout) as info:
        delete(team, rec, member)
    exc = info.value
    assert exc.exit_code == 2
    assert exc.usage is False
    assert exc.stdout_json == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
    assert exc.message == delete_timeout_text("> /exit\nignoring /exit\n")
    script = rec.script()
    assert script[0] == ["send-keys", "-t", "%7", "/exit", "Enter"]
    assert script[-1] == ["capture-pane", "-p", "-t", "%7", "-S", "-80"]
    assert sum(e[1] for e in script if e[0] == "sleep") == pytest.approx(15.0)
    assert script.count(["list-panes", "-a", "-F", "#{pane_id}"]) == 31
    assert not any(c[0] in ("kill-pane", "select-layout") for c in rec.calls)
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_timeout_with_failing_tail_capture(team, rec):
    member = stuck_member(team, rec)
    rec.failures["capture-pane"] = "boom"
    warnings = []
    with pytest.raises(members.DeleteTimeout) as info:
        delete(team, rec, member, warnings=warnings, deadline=1.0)
    assert warnings == [
        "Warning: capture_pane failed during timeout handling: tmux command "
        "failed: tmux capture-pane -p -t %7 -S -80\nstderr: boom. The timeout "
        "error and recovery hint still print."
    ]
    assert "--- pane %7 tail (last 80 lines) ---\n---\nRecovery:" in info.value.message


@pytest.mark.django_db
def test_delete_tmux_failures(team, rec):
    member = add_member(team)
    rec.failures["send-keys"] = "no server running on /tmp/x"
    assert refusal(delete, team, rec, member) == (
        "send_exit failed for pane %7: tmux command failed: tmux send-keys -t %7 /exit Enter\n"
        "stderr: no server running on /tmp/x. The tmux server may be unreachable. Verify with "
        "'cafleet doctor', then re-run 'cafleet member delete', or use '--force' to kill the "
        "pane directly."
    )
    rec.failures["kill-pane"] = "no server running on /tmp/x"
    assert refusal(delete, team, rec, member, force=True) == (
        "kill_pane failed for pane %7: tmux command failed: tmux kill-pane -t %7\n"
        "stderr: no server running on /tmp/x. The tmux server may be unreachable. Verify with "
        "'cafleet doctor', then re-run the command."
    )
    del rec.failures["send-keys"]
    rec.failures["list-panes"] = "lost server"
    assert refusal(delete, team, rec, member) == (
        "tmux call failed while waiting for pane %7 to close: tmux command failed: tmux "
        "list-panes -a -F #{pane_id}\nstderr: lost server"
    )
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_delete_deregister_failure(team, rec, monkeypatch):
    member = add_member(team)

    def refuse(self, *, at=None, note=""):
        raise CafleetError(f"agent {self.agent_id} not found or already deregistered.")

    monkeypatch.setattr(Agent, "deregister", refuse)
    assert refusal(delete, team, rec, member, force=True) == (
        f"deregister failed: agent {member.agent_id} not found or already deregistered."
    )
    assert not any(c[0] == "select-layout" for c in rec.calls)


def stuck_member(team, rec):
    """A member whose pane %7 never closes (tmux keeps listing it)."""
    member = add_member(team)
    rec.outputs["list-panes"] = "%7\n"
    return member


# ------------------------------------------------------------------------------ CLI
@pytest.mark.django_db
def test_cli_delete_outputs(team, rec, mcli):
    member = add_member(team)
    res = mcli.member("delete", member=member.agent_id)
    assert lines_of(res.out) == delete_report(member.agent_id, "%7 (closed)")
    forced = add_member(team, pane="%8")
    res = mcli.member("delete", "-f", member=forced.agent_id[:8], head=("--json",))
    assert json.loads(res.out) == {"agent_id": forced.agent_id, "pane_status": "%8 (killed)"}
    pending = add_member(team, pane=None)
    res = mcli.member("delete", "--force", member=pending.agent_id)
    assert lines_of(res.out)[2] == "  pane_id:   (pending — no pane)"
    plain = agent_register(session_id=team.sid, name="plain", description="x", skills_json=None)
    res = mcli.member("delete", member=plain.agent_id)
    assert res.err == (
        f"Error: agent {plain.agent_id} has no placement; use `cafleet agent deregister` instead\n"
    )


@pytest.mark.django_db
def test_cli_delete_timeout_text_and_json(team, rec, mcli, monkeypatch):
    member = stuck_member(team, rec)
    rec.outputs["capture-pane"] = "> /exit\nstandin: ignoring /exit\n\n"
    fake_member_clock(monkeypatch, rec)
    res = mcli.member("delete", member=member.agent_id)
    block = delete_timeout_text("> /exit\nstandin: ignoring /exit\n")
    assert (res.code, res.out, res.err) == (2, "", f"Error: {block}\n")
    res = mcli.member("delete", member=member.agent_id, head=("--json", "--pretty"))
    assert res.code == 2
    assert json.loads(res.out) == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
    assert res.err == json_error_line(block, 2)
    assert is_active(member.agent_id)


@pytest.mark.django_db
def test_cli_json_warning_precedes_json_error(team, rec, mcli, monkeypatch):
    """acceptance 25: a warning stays plain text and comes before the JSON error line."""
    member = stuck_member(team, rec)
    rec.failures["capture-pane"] = "boom"
    fake_member_clock(monkeypatch, rec)
    res = mcli.member("delete", member=member.agent_id, head=("--json",))
    assert res.code == 2
    lines = res.err.splitlines()
    assert lines[0].startswith("Warning: capture_pane failed during timeout handling: ")
    assert lines[1].startswith("stderr: boom")  # tmux failure texts carry a second line
    assert json.loads(lines[-1])["exit_code"] == 2
    assert len(lines) == 3
    assert json.loads(res.out) == {"agent_id": member.agent_id, "pane_status": "%7 (timeout)"}
