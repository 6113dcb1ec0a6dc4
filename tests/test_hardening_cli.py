"""Huge integers, doctor outside tmux and misplaced global flags (issue 11 items 4, 15, 16)."""

from __future__ import annotations

import pytest

from broker import grammar
from broker.command_table import GLOBAL_OPTIONS, GROUPS, TOP_COMMANDS

HUGE = "999999999999999999999999"


def all_commands():
    for group in GROUPS:
        for cmd in group.commands:
            yield (group.name, cmd.name), cmd
    for cmd in TOP_COMMANDS:
        yield (cmd.name,), cmd


def int_options():
    for path, cmd in all_commands():
        for opt in cmd.options:
            if opt.kind == "int":
                yield path, cmd, opt


# ----------------------------------------------------------------------------- item 4
def test_every_integer_option_has_an_upper_bound():
    found = list(int_options())
    assert {o.names[0] for _, _, o in found} >= {"--page-size", "--lines", "--choice", "--port"}
    for path, _, opt in found:
        top = opt.maximum if opt.maximum is not None else opt.ceiling
        assert top is not None and top <= 2**31 - 1, (path, opt.names)


@pytest.mark.parametrize("path, cmd, opt", list(int_options()), ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "9" * 400])
def test_huge_integers_are_range_errors(path, cmd, opt, value):
    argv = [*path, opt.names[0], value]
    for o in cmd.options:
        if o.required and o is not opt:
            argv += [o.names[0], "x"]
    if value.startswith("-") and opt.minimum is None:
        # no lower bound: a negative --lines is the capture's own error (acceptance 200)
        assert grammar.parse(argv).options[opt.dest] == int(value)
        return
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(argv)
    err = info.value
    assert err.exit_code == 2
    assert err.message.startswith(f"Invalid value for '{opt.names[0]}': {int(value)} is not in ")
    assert err.message.endswith(".")


def test_page_size_range_texts():
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(["message", "poll", "--agent-id", "a", "--page-size", HUGE])
    assert info.value.message == (
        f"Invalid value for '--page-size': {HUGE} is not in the range 1<=x<=2147483647."
    )
    # the contract's text for a value under the minimum is unchanged
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(["message", "poll", "--agent-id", "a", "--page-size", "0"])
    assert info.value.message == "Invalid value for '--page-size': 0 is not in the range x>=1."
    parsed = grammar.parse(["message", "poll", "--agent-id", "a", "--page-size", "2147483647"])
    assert parsed.options["page_size"] == 2**31 - 1


def test_huge_page_size_through_the_cli(cli, fleet):
    r = cli("--session-id", fleet.sid, "message", "poll", "--agent-id", fleet.director,
            "--page-size", HUGE)  # fmt: skip
    assert r.code == 2
    assert "datatype mismatch" not in r.err
    assert r.err.endswith(
        f"Error: Invalid value for '--page-size': {HUGE} is not in the range 1<=x<=2147483647.\n"
    )
    r = cli("--json", "--session-id", fleet.sid, "member", "capture", "--agent-id",
            fleet.director, "--member-id", fleet.director, "--lines", HUGE)  # fmt: skip
    assert r.code == 2 and r.err_json["exit_code"] == 2
    assert "x<=1000000" in r.err_json["error"]


# ----------------------------------------------------------------------------- item 15
def test_doctor_outside_tmux_names_doctor(cli, monkeypatch):
    from broker import tmux

    monkeypatch.setattr(tmux, "tmux_binary", lambda: "/usr/bin/tmux")
    r = cli("doctor")
    assert (r.code, r.out, r.err) == (
        1,
        "",
        "Error: cafleet doctor must be run inside a tmux session\n",
    )


def test_member_commands_keep_their_wording(cli, fleet, monkeypatch):
    from broker import tmux

    monkeypatch.setattr(tmux, "tmux_binary", lambda: "/usr/bin/tmux")
    r = cli("--session-id", fleet.sid, "member", "ping", "--agent-id", fleet.director,
            "--member-id", fleet.director)  # fmt: skip
    assert r.err == "Error: cafleet member commands must be run inside a tmux session\n"


# ----------------------------------------------------------------------------- item 16
HINT = "Global flags (--json, --pretty, --session-id) go before the command: "


@pytest.mark.parametrize(
    "argv, example",
    [
        (["message", "poll", "--agent-id", "a", "--json"], "'cafleet --json message poll ...'."),
        (["agent", "list", "--pretty"], "'cafleet --pretty agent list ...'."),
        (
            ["member", "list", "--session-id", "s"],
            "'cafleet --session-id <session-id> member list ...'.",
        ),
        (["message", "--json", "poll"], "'cafleet --json message ...'."),
        (["session", "delete", "x", "--json"], "'cafleet --json session delete ...'."),
        (["session", "list", "--pretty"], "'cafleet --pretty session list ...'."),
    ],
)
def test_misplaced_global_flag_says_where_it_goes(argv, example):
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(argv)
    first, second = info.value.message.split("\n")
    flag = next(a for a in argv if a in ("--json", "--pretty", "--session-id"))
    assert first == f"No such option: {flag}"
    assert second == HINT + example


def test_other_unknown_options_get_no_hint():
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(["agent", "list", "--jsn"])
    assert info.value.message == "No such option: --jsn"
    with pytest.raises(grammar.UsageError) as info:
        grammar.parse(["--agent-id", "x", "agent", "list"])
    assert info.value.message == "No such option: --agent-id"


@pytest.mark.parametrize("command", ["create", "list", "show"])
def test_session_commands_keep_their_own_json(command):
    argv = ["session", command, *(["abc"] if command == "show" else []), "--json"]
    assert grammar.parse(argv).json is True


def test_misplaced_flag_on_the_command_line(cli, fleet):
    r = cli("message", "poll", "--agent-id", fleet.director, "--json")
    assert r.code == 2
    assert r.err.endswith(
        "Error: No such option: --json\n" + HINT + "'cafleet --json message poll ...'.\n"
    )
    assert {o.names[0] for o in GLOBAL_OPTIONS} >= {"--json", "--pretty", "--session-id"}
