"""Member prompts (``build_prompt``) and ``member create``'s preflight checks, without tmux
(tests/members_support.py)."""

import pytest

from broker import members
from broker import tmux as tmux_mod
from broker.exceptions import CafleetError
from tests import members_support

rec = members_support.rec  # the shared fixture, requested by name


# ------------------------------------------------------------------------------ prompt
IDS = {"session_id": "S", "agent_id": "A", "director_agent_id": "D"}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            (),
            "Member of cafleet session S (agent=A, director=D).\nLoad skill 'cafleet'. Bash "
            "auto-approves. Poll: cafleet --session-id S message poll --agent-id A",
        ),
        (("",), None),
        (
            ("Hi", "{agent_id},", "from", "{director_agent_id}", "in", "{session_id}"),
            "Hi A, from D in S",
        ),
        (("json:", '{{"k":', "1}}", "{agent_id}"), 'json: {"k": 1} A'),
        (("{{agent_id}}",), "{agent_id}"),
    ],
    ids=["default", "empty-word-default", "placeholders", "double-braces", "escaped-name"],
)
def test_build_prompt(words, expected):
    got = members.build_prompt(words, **IDS)
    if expected is None:
        expected = members.build_prompt((), **IDS)
    assert got == expected


def test_unknown_placeholder_message():
    with pytest.raises(members.PromptError) as info:
        members.build_prompt(("do", "{task}", "now"), **IDS)
    assert str(info.value) == (
        "Unknown placeholder 'task' in custom prompt. Supported placeholders: {session_id}, "
        "{agent_id}, {director_agent_id}. Double literal braces ({{, }}) to keep them as text."
    )


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        (("a", "{"), "Single '{' encountered in format string"),
        (("a", "}"), "Single '}' encountered in format string"),
        (("{}",), "Replacement index 0 out of range for positional args tuple"),
        (("{0}",), "Replacement index 0 out of range for positional args tuple"),
        (("{agent_id:zz}",), None),  # the wording varies between Python versions
        (("{agent_id!q}",), "Unknown conversion specifier q"),
    ],
    ids=[
        "lone-open",
        "lone-close",
        "positional-empty",
        "positional-0",
        "bad-spec",
        "bad-conversion",
    ],
)
def test_malformed_prompt_message(words, reason):
    if reason is None:
        with pytest.raises(ValueError) as parser:
            "".join(words).format(**IDS)
        reason = str(parser.value)
    with pytest.raises(members.PromptError) as info:
        members.build_prompt(words, **IDS)
    assert str(info.value) == (
        f"Malformed custom prompt: {reason}. Double literal braces "
        "({{, }}) to keep them as text."
    )


# ------------------------------------------------------------------------------ preflight
@pytest.mark.parametrize("name", ["Administrator", "administrator", "  ADMINISTRATOR "])
def test_preflight_reserved_name_before_any_tmux(rec, name):
    with pytest.raises(CafleetError, match=r"^the name 'Administrator' is reserved\.$"):
        members.member_preflight(name=name, coding_agent="claude", tmux=tmux_mod)
    assert rec.calls == []


def test_preflight_checks_in_order(rec, monkeypatch):
    def preflight(**kw):
        return members.member_preflight(name="x", tmux=tmux_mod, **kw)

    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: None)
    with pytest.raises(CafleetError, match="^tmux binary not found on PATH$"):
        preflight(coding_agent="claude")
    monkeypatch.setattr(tmux_mod, "tmux_binary", lambda: "/usr/bin/tmux")
    monkeypatch.delenv("TMUX")
    with pytest.raises(
        CafleetError, match="^cafleet member commands must be run inside a tmux session$"
    ):
        preflight(coding_agent="claude")
    monkeypatch.setenv("TMUX", "/tmp/x,1,0")
    with pytest.raises(CafleetError, match="^binary codex not found on PATH$"):
        preflight(coding_agent="codex", which=lambda name: None)
    monkeypatch.delenv("TMUX_PANE")
    with pytest.raises(
        CafleetError, match="^TMUX_PANE is not set; not running inside a tmux pane$"
    ):
        preflight(coding_agent="claude")
    monkeypatch.setenv("TMUX_PANE", "%0")
    rec.outputs["display-message"] = "garbage\n"
    with pytest.raises(
        CafleetError,
        match=r"^unexpected tmux display-message output: "
        r"'garbage'$",
    ):
        preflight(coding_agent="claude")
    rec.outputs["display-message"] = "s|@2|%4\n"
    assert preflight(coding_agent="codex") == ("s", "@2", "%4")
    assert all(c[0] == "display-message" for c in rec.calls)
