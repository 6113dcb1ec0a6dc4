"""Hypothesis strategies for the fuzz tests: command lines drawn from the grammar table."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from broker.grammar import GLOBAL_OPTIONS, GROUPS, TOP_COMMANDS
from tests.conftest import REPO
from tests.fuzz_world import World

# ------------------------------------------------------------------------------ strategies
# The command table, from the grammar: every command path (and each group alone, and no
# command at all) with the option names it accepts. Never fuzzed: ``server`` serves until
# stopped and ``django`` runs Django's own commands.
NOT_FUZZED = {("server",), ("django",)}


def option_names(command) -> list[str]:
    return [name for o in command.options for name in (*o.names, *o.off_names)]


COMMANDS = {(g.name, c.name): option_names(c) for g in GROUPS for c in g.commands}
COMMANDS |= {(c.name,): option_names(c) for c in TOP_COMMANDS if (c.name,) not in NOT_FUZZED}
COMMANDS |= {(g.name,): [] for g in GROUPS} | {(): []}
ALL_FLAGS = sorted(
    {f for flags in COMMANDS.values() for f in flags}
    | {"--help", "--version", "--json", "--pretty", "--session-id", "--bogus", "-x", "--", "-"}
)
ALL_OPTIONS = [o for g in GROUPS for c in g.commands for o in c.options] + list(GLOBAL_OPTIONS)
# Options whose value is free text or a choice, and those whose value is an id.
TEXT_FLAGS = frozenset(n for o in ALL_OPTIONS if o.kind in ("str", "choice") for n in o.names)
ID_FLAGS = frozenset(n for o in ALL_OPTIONS if o.metavar == "ID" for n in o.names)
# The global options, plus --help and a command option in the wrong place.
GLOBAL_FLAGS = [n for o in GLOBAL_OPTIONS for n in o.names] + ["--help", "--agent-id"]

# Text that a command line can carry: no NUL; lone surrogates stand for undecodable bytes.
argv_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=()), max_size=40)
raw_bytes_as_argv = st.binary(max_size=24).map(lambda b: os.fsdecode(b.replace(b"\x00", b"")))
huge = st.sampled_from([10_000, 100_000]).flatmap(
    lambda n: st.sampled_from(["x" * n, "é" * (n // 2), "9" * n, "\U0001f600" * (n // 4)])
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "1",
            "3",
            "4",
            "+1",
            " 2 ",
            "1e3",
            "nan",
            "inf",
            "-inf",
            "0x10",
            "1_000",
            "٣",
            "1.5",
            "",
            "NaN",
            "3601",
            "1e309",
            "0.0001",
            # huge integers: a range error, never a database error (issue 11 item 4)
            str(2**31),
            str(2**63),
            "9" * 25,
            "-" + "9" * 25,
            "9" * 400,
        ]
    ),
)
timestamps = st.sampled_from(
    [
        "2026-05-05T12:00:00.123456+00:00",
        "2026-05-05T12:00:00Z",
        "2026-05-05",
        "2026-13-45",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-14:00",
        "yesterday",
        "",
        "T",
        "2026-05-05T12:00:00.123456+99:00",
    ]
)
# ``--wait`` is the one flag whose valid values block: keep them short.
waits = st.one_of(
    st.sampled_from(["0", "-1", "3601", "abc", "nan", "", "inf"]),
    st.floats(0.01, 0.4).map(lambda f: f"{f:.2f}"),
)
env_values = st.one_of(numbers, argv_text, st.sampled_from(["", "5", "1", "200", "abc"]))


@st.composite
def values(draw, world: World):
    return draw(
        st.one_of(
            st.sampled_from(world.ids()),
            argv_text,
            raw_bytes_as_argv,
            huge,
            numbers,
            timestamps,
            st.just(""),
            st.sampled_from(
                [
                    "-",
                    "--",
                    "--help",
                    "claude",
                    "codex",
                    "Administrator",
                    " administrator ",
                    "!ls",
                    "[cafleet msg 00000000 from x y]",
                    "{session_id}",
                    "{",
                    "}",
                    "\x1b[31mred",
                    "a\nb",
                    "a\rb",
                    "\t",
                    str(REPO),
                    "/dev/null",
                    "/dev/zero",
                    "/proc/self/mem",
                    "/nonexistent/file",
                ]
            ),
        )
    )


@st.composite
def command_lines(draw, world: World):
    """(argv, stdin bytes, environment changes, files to write)."""
    path = draw(st.sampled_from(sorted(COMMANDS)))
    argv: list[str] = []
    # global options, sometimes wrong ones
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from(GLOBAL_FLAGS))
        argv.append(flag)
        if flag in ("--session-id", "--agent-id"):
            argv.append(draw(values(world)))
    if draw(st.booleans()) and "--session-id" not in argv:
        argv += ["--session-id", draw(st.sampled_from(world.ids()))]
    argv += list(path)
    flags = COMMANDS[path] + ["--help", "--bogus", "--json", "--session-id", "--text"]
    stdin = b""
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.integers(0, 9))
        if kind <= 5 and flags:
            flag = draw(st.sampled_from(flags))
        elif kind <= 7:
            flag = draw(st.sampled_from(ALL_FLAGS))
        else:
            argv.append(draw(values(world)))  # a stray positional
            continue
        if flag == "--help" and draw(st.integers(0, 4)):
            continue  # keep --help rare, it short-circuits everything
        argv.append(flag)
        if flag in ("--wait",):
            argv.append(draw(waits))
        elif flag == "--since":
            argv.append(draw(st.one_of(timestamps, values(world))))
        elif flag in ("--page-size", "--lines", "--tail", "--choice"):
            argv.append(draw(st.one_of(numbers, values(world))))
        elif flag == "--text" and draw(st.booleans()):
            argv.append("-")
            stdin = draw(
                st.one_of(
                    st.binary(max_size=300),
                    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                    st.sampled_from([b"", b"\x00", b"a\x00b", b"\xff\xfe", b"x" * 70000]),
                )
            )
        elif flag == "--text-file":
            name = f"f{len(files)}"
            files[name] = draw(
                st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"\x00\x00", b"ok\n"]))
            )
            argv.append(f"@FILE:{name}")
        elif flag in TEXT_FLAGS:
            if draw(st.integers(0, 9)):  # sometimes leave the value out
                argv.append(draw(values(world)))
    if path == ("member", "exec") and draw(st.booleans()):
        argv.append(draw(values(world)))
    env = {}
    if draw(st.integers(0, 5)) == 0:
        var = draw(
            st.sampled_from(
                [
                    "CAFLEET_MAX_TEXT_LEN",
                    "CAFLEET_MAX_BODY_BYTES",
                    "CAFLEET_DEBUG",
                    "DJANGO_SETTINGS_MODULE",
                ]
            )
        )
        env[var] = draw(env_values).replace("\x00", "")
    return argv, stdin, env, files


# Well-formed lines: the required options of each command, mostly valid values, plus a few
# optional ones. They get past the parser and exercise validation, resolution and effects.
def required_words(command) -> list[str]:
    """The required options, ``BODY`` for a message body, then the required arguments."""
    words = [o.names[0] for o in command.options if o.required]
    if any(o.dest == "text" for o in command.options):
        words.append("BODY")
    return words + [a.name for a in command.args if a.required]


REQUIRED = {
    (g.name, c.name): required_words(c) for g in GROUPS if g.name != "db" for c in g.commands
}
OPTIONAL_VALUES = {
    "--since": timestamps,
    "--page-size": numbers,
    "--wait": waits,
    "--lines": numbers,
    "--tail": numbers,
    "--choice": numbers,
    "--skills": st.sampled_from(
        [
            '[{"name":"x"}]',
            "not json",
            "{}",
            '"\\u0000"',
            "[" * 5000,
            "null",
            '{"cafleet":{"kind":1}}',
        ]
    ),
    "--coding-agent": st.sampled_from(["claude", "codex", "CLAUDE", ""]),
}
body_text = st.one_of(
    st.text(max_size=300),
    argv_text,
    huge,
    st.sampled_from(
        ["", "-", " ", "\x1b]0;t\x07", "done;", "!rm -rf ~", "/exit", "\u2028", "a\r\nb"]
    ),
)


@st.composite
def structured_lines(draw, world: World):
    path = draw(st.sampled_from(sorted(REQUIRED)))
    ids = world.ids()
    good = st.sampled_from(ids[:5] + ids[5:10])
    pick = st.one_of(good, good, good, values(world))
    argv = []
    if draw(st.integers(0, 3)):
        argv += ["--json"] if draw(st.booleans()) else []
        argv += ["--session-id", draw(st.one_of(st.just(world.sid), pick))]
    argv += list(path)
    stdin = b""
    files: dict[str, bytes] = {}
    for req in REQUIRED[path]:
        if req == "BODY":
            how = draw(st.integers(0, 3))
            if how == 0:
                argv += ["--text", "-"]
                stdin = draw(
                    st.one_of(
                        st.binary(max_size=200),
                        body_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                    )
                )
            elif how == 1:
                files["b"] = draw(
                    st.one_of(
                        st.binary(max_size=200),
                        body_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                    )
                )
                argv += ["--text-file", "@FILE:b"]
            else:
                argv += ["--text", draw(body_text)]
        elif req in ("SESSION_ID", "COMMAND"):
            argv.append(draw(pick))
        elif req in ("--name", "--description"):
            argv += [req, draw(st.one_of(argv_text, body_text, st.just("Administrator")))]
        else:
            argv += [req, draw(pick)]
    for flag in draw(st.lists(st.sampled_from(COMMANDS[path] or ["--json"]), max_size=3)):
        if flag in REQUIRED[path]:
            continue
        argv.append(flag)
        if flag in OPTIONAL_VALUES:
            argv.append(draw(OPTIONAL_VALUES[flag]))
        elif flag in ("--label", "--freetext", "--text"):
            argv.append(draw(body_text))
        elif flag == "--text-file":
            files["c"] = draw(st.binary(max_size=100))
            argv.append("@FILE:c")
        elif flag in ID_FLAGS or flag in ("--name", "--description"):
            argv.append(draw(pick))
    env = {}
    if draw(st.integers(0, 7)) == 0:
        env[draw(st.sampled_from(["CAFLEET_MAX_TEXT_LEN", "CAFLEET_MAX_BODY_BYTES"]))] = draw(
            env_values
        ).replace("\x00", "")
    return argv, stdin, env, files
