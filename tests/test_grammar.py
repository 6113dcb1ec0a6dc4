"""Unit tests of the command grammar and parser (no Django, no database)."""

import pytest

from broker.grammar import GROUPS, TOP_COMMANDS, UsageError, find_command, help_for, parse


def usage_error(argv):
    with pytest.raises(UsageError) as info:
        parse(argv)
    return info.value


def test_globals_in_any_order():
    a = parse(["--pretty", "--session-id", "X", "--json", "agent", "list", "--agent-id", "a"])
    b = parse(["--json", "--session-id", "X", "--pretty", "agent", "list", "--agent-id", "a"])
    for p in (a, b):
        assert (p.path, p.json, p.pretty, p.session_id) == (("agent", "list"), True, True, "X")
        assert p.options == {"agent_id": "a", "full": False}


def test_equals_form_and_last_value_wins():
    p = parse(["--session-id=S", "message", "poll", "--agent-id=a1", "--agent-id", "a2"])
    assert p.session_id == "S" and p.options["agent_id"] == "a2"


# ``message poll`` option values that are refused, by option: (value, why).
POLL_VALUE_ERRORS = {
    "--page-size": [("abc", "'abc' is not a valid integer."), ("0", "0 is not in the range x>=1.")],
    "--wait": [
        ("x", "'x' is not a valid float."),
        ("0", "0.0 is not in the range 0<x<=3600."),
        ("3601", "3601.0 is not in the range 0<x<=3600."),
        ("nan", "nan is not in the range 0<x<=3600."),
    ],
}


@pytest.mark.parametrize(
    "argv, message, path",
    [
        (
            ["agent", "list", "--json", "--agent-id", "x"],
            "No such option: --json\nGlobal flags (--json, --pretty, --session-id) go before "
            "the command: 'cafleet --json agent list ...'.",
            ("agent", "list"),
        ),
        (
            ["agent", "list", "--session-id", "x"],
            "No such option: --session-id\nGlobal flags (--json, --pretty, --session-id) go "
            "before the command: 'cafleet --session-id <session-id> agent list ...'.",
            ("agent", "list"),
        ),
        (["--agent-id", "x", "agent", "list"], "No such option: --agent-id", ()),
        (["bogus"], "No such command 'bogus'.", ()),
        (["member", "bogus"], "No such command 'bogus'.", ("member",)),
        (["agent", "list"], "Missing option '--agent-id'.", ("agent", "list")),
        (
            ["member", "delete", "--agent-id", "a"],
            "Missing option '--member-id'.",
            ("member", "delete"),
        ),
        (
            ["member", "exec", "--agent-id", "a", "--member-id", "m"],
            "Missing argument 'COMMAND'.",
            ("member", "exec"),
        ),
        (["session", "show"], "Missing argument 'SESSION_ID'.", ("session", "show")),
        (
            ["agent", "list", "--agent-id"],
            "Option '--agent-id' requires an argument.",
            ("agent", "list"),
        ),
        (
            ["session", "create", "--coding-agent", "foo"],
            "Invalid value for '--coding-agent': 'foo' is not one of 'claude', 'codex'.",
            ("session", "create"),
        ),
        *(
            (
                ["message", "poll", "--agent-id", "a", option, value],
                f"Invalid value for '{option}': {why}",
                ("message", "poll"),
            )
            for option, refused in POLL_VALUE_ERRORS.items()
            for value, why in refused
        ),
        (
            ["member", "send-input", "--agent-id", "a", "--member-id", "m", "--choice", "4"],
            "Invalid value for '--choice': 4 is not in the range 1<=x<=3.",
            ("member", "send-input"),
        ),
        (["session", "list", "--all"], "No such option: --all", ("session", "list")),
        (
            ["session", "show", "a", "b", "c"],
            "Got unexpected extra arguments (b c)",
            ("session", "show"),
        ),
        (
            ["session", "delete", "a", "b"],
            "Got unexpected extra argument (b)",
            ("session", "delete"),
        ),
        (
            ["message", "send", "--agent-id", "a", "--to", "b", "--text", "x", "--quiet", "--full"],
            "--quiet and --full are mutually exclusive.",
            ("message", "send"),
        ),
        (
            ["agent", "list", "--full=yes", "--agent-id", "a"],
            "Option '--full' does not take a value.",
            ("agent", "list"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_usage_errors(argv, message, path):
    err = usage_error(argv)
    assert err.message == message
    assert err.path == path
    cmd = " ".join(("cafleet", *path))
    assert err.banner().splitlines()[1] == f"Try '{cmd} --help' for help."
    assert err.banner().startswith(f"Usage: {cmd} ")


def test_misplaced_json_is_not_json_mode_but_global_json_is():
    assert usage_error(["agent", "list", "--json"]).json_mode is False
    assert usage_error(["--json", "agent", "list"]).json_mode is True


def test_option_values_may_look_like_options():
    p = parse(
        ["--session-id", "s", "message", "send", "--agent-id", "a", "--to", "b", "--text", "--help"]
    )
    assert p.help_text is None and p.options["text"] == "--help"
    p = parse(
        ["--session-id", "s", "message", "send", "--agent-id", "a", "--to", "b", "--text", "-"]
    )
    assert p.options["text"] == "-"


def test_prompt_words_after_double_dash():
    p = parse(
        [
            "--session-id",
            "s",
            "member",
            "create",
            "--agent-id",
            "a",
            "--name",
            "n",
            "--description",
            "d",
            "--",
            "--name",
            "{agent_id}",
            "x",
        ]
    )
    assert p.options["prompt"] == ("--name", "{agent_id}", "x")
    assert p.options["name"] == "n" and p.options["coding_agent"] == "claude"


def test_lines_and_tail_are_one_option_and_ansi_pair():
    p = parse(
        [
            "--session-id",
            "s",
            "member",
            "capture",
            "--agent-id",
            "a",
            "--member-id",
            "m",
            "--tail",
            "200",
            "--ansi",
            "--no-ansi",
        ]
    )
    assert p.options["lines"] == 200 and p.options["ansi"] is False
    p = parse(["--session-id", "s", "member", "capture", "--agent-id", "a", "--member-id", "m"])
    assert p.options["lines"] == 30 and p.options["ansi"] is False


def test_short_force_flag():
    p = parse(
        ["--session-id", "s", "member", "delete", "--agent-id", "a", "--member-id", "m", "-f"]
    )
    assert p.options["force"] is True


def test_help_everywhere_lists_every_flag():
    assert parse(["--help"]).help_text.startswith("Usage: cafleet [OPTIONS] COMMAND")
    for group in GROUPS:
        assert parse([group.name, "--help"]).help_text is not None
        for command in group.commands:
            text = parse([group.name, command.name, "--help"]).help_text
            for opt in command.options:
                for name in (*opt.names, *opt.off_names):
                    assert name in text, (group.name, command.name, name)
    for command in TOP_COMMANDS:
        text = parse([command.name, "--help"]).help_text
        for opt in command.options:
            assert opt.names[0] in text


def test_no_command_help_goes_to_stderr():
    assert parse([]).help_to_stderr.startswith("Usage:")
    assert parse(["member"]).help_to_stderr.startswith("Usage: cafleet member")
    assert parse(["--json"]).help_to_stderr is not None


def test_version_short_circuits():
    p = parse(["--version", "bogus-command"])
    assert p.version is True and p.path == ()


def test_server_help_documents_login():
    text = help_for(("server",))
    assert "--host" in text and "--port" in text and "one-time login link" in text


def test_find_command():
    assert find_command(("message", "send")).needs_session
    assert not find_command(("session", "create")).needs_session
    assert find_command(("doctor",)) is not None
    assert find_command(("nope",)) is None
