"""The cafleet command grammar: the parser and the help over the one command registry.

One declarative table (``broker.command_table``, types in ``broker.registry``) describes
every command, option and argument of the CLI (``../shared/contract/cli.md`` §1), and for
each command its handler and what it needs (see :class:`Command`). The same table drives:

* the entry point's parser (``parse``), which answers ``--help``/``--version`` and every
  usage error without importing Django (``manage.py cafleet ...`` goes through it too);
* ``broker.commands.dispatch``, which runs the contract's checks in order, then the handler;
* the docs tests, which check every ``cafleet ...`` line in ``skills/`` against it, and the
  fuzz tests, which draw their commands and options from it.

Error texts follow the contract's click-compatible wording (§2.5). This module imports
nothing beyond the standard library so that usage errors stay cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from broker.command_table import (  # the registry, re-exported
    GLOBAL_OPTIONS,
    GROUP_MAP,
    GROUPS,
    TOP_COMMANDS,
    TOP_MAP,
    find_command,
)
from broker.registry import Arg, Command, Group, Opt  # noqa: F401


class UsageError(Exception):
    """A command-line usage error (exit 2)."""

    exit_code = 2
    json_mode = False

    def __init__(self, message: str, path: tuple[str, ...] = (), pattern: str = "[OPTIONS]"):
        super().__init__(message)
        self.message = message
        self.path = path
        self.pattern = pattern

    def banner(self) -> str:
        cmd = " ".join(("cafleet", *self.path))
        return f"Usage: {cmd} {self.pattern}\nTry '{cmd} --help' for help.\n"


# --------------------------------------------------------------------------- results
@dataclass
class Parsed:
    path: tuple[str, ...] = ()
    json: bool = False
    pretty: bool = False
    session_id: str | None = None
    version: bool = False
    help_text: str | None = None  # set when --help was asked: print it to stdout, exit 0
    help_to_stderr: str | None = None  # no command given: print to stderr, exit 2
    options: dict = field(default_factory=dict)

    @property
    def command(self) -> Command | None:
        return find_command(self.path)


# --------------------------------------------------------------------------- help text
def _opt_line(o: Opt) -> tuple[str, str]:
    names = ", ".join(o.names)
    if o.off_names:
        names = " / ".join((names, *o.off_names))
    if o.takes_value:
        names += f" {o.metavar}"
    extra = []
    if o.required:
        extra.append("required")
    if o.kind == "choice":
        extra.append("one of " + ", ".join(o.choices))
    if o.kind in ("int", "float") and (o.minimum is not None or o.maximum is not None):
        extra.append(o.describe_range())
    text = o.help + (f" [{'; '.join(extra)}]" if extra else "")
    return names, text


def _format_rows(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(a) for a, _ in rows), default=0)
    return [f"  {a.ljust(width)}  {b}".rstrip() for a, b in rows]


def help_for(path: tuple[str, ...]) -> str:
    """Help text for the top level, a group or a command."""
    lines: list[str] = []
    if not path:
        lines += [
            "Usage: cafleet [OPTIONS] COMMAND [ARGS]...",
            "",
            "  cafleet: local message broker and agent registry for coding agents in tmux.",
            "",
            "  Global options go before the command; command options after it.",
            "",
            "Options:",
        ]
        lines += _format_rows(
            [_opt_line(o) for o in GLOBAL_OPTIONS] + [("--help", "Show this message and exit.")]
        )
        lines += ["", "Commands:"]
        rows = [(g.name, g.help) for g in GROUPS] + [(c.name, c.help) for c in TOP_COMMANDS]
        lines += _format_rows(sorted(rows))
        lines += [
            "",
            "Environment: CAFLEET_DATABASE_URL, CAFLEET_MAX_TEXT_LEN, "
            "CAFLEET_MAX_BODY_BYTES, CAFLEET_BROKER_HOST, CAFLEET_BROKER_PORT, "
            "CAFLEET_DEBUG.",
        ]
        return "\n".join(lines) + "\n"
    if len(path) == 1 and path[0] in GROUP_MAP:
        g = GROUP_MAP[path[0]]
        lines += [
            f"Usage: cafleet {g.name} [OPTIONS] COMMAND [ARGS]...",
            "",
            f"  {g.help}",
            "",
            "Options:",
        ]
        lines += _format_rows([("--help", "Show this message and exit.")])
        lines += ["", "Commands:"]
        lines += _format_rows([(c.name, c.help) for c in g.commands])
        return "\n".join(lines) + "\n"
    cmd = find_command(path)
    assert cmd is not None
    prefix = "cafleet --session-id <session-id> " if cmd.needs_session else "cafleet "
    lines += [f"Usage: cafleet {' '.join(path)} {cmd.pattern}", "", f"  {cmd.help}"]
    if cmd.needs_session:
        lines += ["", f"  Run as: {prefix}{' '.join(path)} ..."]
    if cmd.epilog:
        lines += ["", *cmd.epilog]
    lines += ["", "Options:"]
    rows = [_opt_line(o) for o in cmd.options] + [("--help", "Show this message and exit.")]
    lines += _format_rows(rows)
    if cmd.args:
        lines += ["", "Arguments:"]
        lines += _format_rows(
            [
                (
                    a.name + ("..." if a.many else ""),
                    a.help or ("required" if a.required else "optional"),
                )
                for a in cmd.args
            ]
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- conversion
def convert(opt: Opt, raw: str, path: tuple[str, ...], pattern: str):
    name = opt.names[0]
    if opt.kind == "str":
        return raw
    if opt.kind == "choice":
        if raw not in opt.choices:
            choices = ", ".join(f"'{c}'" for c in opt.choices)
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not one of {choices}.", path, pattern
            )
        return raw
    if opt.kind == "int":
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not a valid integer.", path, pattern
            ) from None
    else:  # float
        try:
            value = float(raw.strip())
        except ValueError:
            raise UsageError(
                f"Invalid value for '{name}': '{raw}' is not a valid float.", path, pattern
            ) from None
    _check_range(opt, value, path, pattern)
    return value


def _check_range(opt: Opt, value, path, pattern) -> None:
    bad = isinstance(value, float) and math.isnan(value)
    if opt.minimum is not None:
        bad = bad or (value <= opt.minimum if opt.min_open else value < opt.minimum)
    if opt.maximum is not None:
        bad = bad or value > opt.maximum
    over = not bad and opt.ceiling is not None and value > opt.ceiling
    if bad or over:
        raise UsageError(
            f"Invalid value for '{opt.names[0]}': {value} is not in the range "
            f"{opt.describe_range(with_ceiling=over)}.",
            path,
            pattern,
        )


# --------------------------------------------------------------------------- parsing
def _index(options: tuple[Opt, ...]) -> dict[str, tuple[Opt, bool]]:
    table: dict[str, tuple[Opt, bool]] = {}
    for o in options:
        for n in o.names:
            table[n] = (o, True)
        for n in o.off_names:
            table[n] = (o, False)
    return table


def _scan_options(
    argv: list[str],
    options: tuple[Opt, ...],
    path: tuple[str, ...],
    pattern: str,
    interspersed: bool,
):
    """Split argv into (values by dest, positionals, rest). Raises UsageError.

    With ``interspersed`` false (groups), scanning stops at the first positional word and
    the rest is returned untouched. ``--help`` anywhere among the options wins.
    """
    table = _index(options)
    raw: dict[str, object] = {}
    seen: list[Opt] = []
    positionals: list[str] = []
    i = 0
    if any(a == "--help" for a in _options_region(argv, table, interspersed)):
        return None, [], []
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            positionals.extend(argv[i + 1 :])
            return raw, positionals, []
        if tok.startswith("-") and tok != "-" and len(tok) > 1:
            name, eq, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
            if name not in table:
                raise UsageError(f"No such option: {name}{_global_hint(name, path)}", path, pattern)
            opt, on = table[name]
            if opt.takes_value:
                if eq:
                    value = inline
                else:
                    if i + 1 >= len(argv):
                        raise UsageError(f"Option '{name}' requires an argument.", path, pattern)
                    i += 1
                    value = argv[i]
                raw[opt.dest] = (opt, value)
            else:
                if eq:
                    raise UsageError(f"Option '{name}' does not take a value.", path, pattern)
                raw[opt.dest] = (opt, on)
            if opt not in seen:
                seen.append(opt)
            i += 1
            continue
        if not interspersed:
            return raw, [], argv[i:]
        positionals.append(tok)
        i += 1
    return raw, positionals, []


#: Global flags that a user may put after the command by mistake (issue 11 item 16).
MISPLACED_GLOBALS = ("--json", "--pretty", "--session-id")


def _global_hint(name: str, path: tuple[str, ...]) -> str:
    """For a global flag written after a group or command: one more line saying where it
    goes. (``session create|list|show`` take their own ``--json`` and never get here.)"""
    if not path or name not in MISPLACED_GLOBALS:
        return ""
    value = " <session-id>" if name == "--session-id" else ""
    return (
        "\nGlobal flags (--json, --pretty, --session-id) go before the command: "
        f"'cafleet {name}{value} {' '.join(path)} ...'."
    )


def _options_region(argv: list[str], table: dict, interspersed: bool):
    """Tokens in option position (not values, not after ``--``, not past a group's word)."""
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok == "--":
            return
        if not tok.startswith("-") or tok == "-":
            if not interspersed:
                return
            continue
        entry = table.get(tok)
        skip = bool(entry and entry[0].takes_value)
        yield tok


def _finish(cmd: Command, raw: dict, positionals: list[str], path: tuple[str, ...]) -> dict:
    pattern = cmd.pattern
    values: dict[str, object] = {}
    for o in cmd.options:
        if o.dest in raw:
            opt, value = raw[o.dest]
            values[o.dest] = convert(opt, value, path, pattern) if opt.takes_value else value
        elif o.required:
            raise UsageError(f"Missing option '{o.names[0]}'.", path, pattern)
        else:
            values[o.dest] = o.default if o.kind != "flag" else bool(o.default)
    rest = list(positionals)
    for a in cmd.args:
        if a.many:
            values[a.dest] = tuple(rest)
            rest = []
        elif rest:
            values[a.dest] = rest.pop(0)
        elif a.required:
            raise UsageError(f"Missing argument '{a.name}'.", path, pattern)
        else:
            values[a.dest] = None
    if rest:
        word = "argument" if len(rest) == 1 else "arguments"
        raise UsageError(f"Got unexpected extra {word} ({' '.join(rest)})", path, pattern)
    for first, second in cmd.exclusive:
        if values.get(first) and values.get(second):
            raise UsageError(f"--{first} and --{second} are mutually exclusive.", path, pattern)
    return values


def parse(argv: list[str]) -> Parsed:
    """Parse a full cafleet argv (without the program name).

    A UsageError carries ``json_mode``: whether a valid global ``--json`` was seen before
    the error, so the entry point can print it in JSON form (cli.md §2.4).
    """
    result = Parsed()
    try:
        return _parse(argv, result)
    except UsageError as exc:
        exc.json_mode = result.json
        raise


def _parse(argv: list[str], result: Parsed) -> Parsed:
    top_pattern = "[OPTIONS] COMMAND [ARGS]..."
    raw, _, rest = _scan_options(argv, GLOBAL_OPTIONS, (), top_pattern, interspersed=False)
    if raw is None:
        result.help_text = help_for(())
        return result
    for dest, (_opt, value) in raw.items():
        setattr(result, dest, value)
    if result.version:
        return result
    if not rest:
        result.help_to_stderr = help_for(())
        return result
    name, rest = rest[0], rest[1:]
    if name in TOP_MAP:
        return _parse_command(result, (name,), rest)
    if name not in GROUP_MAP:
        raise UsageError(f"No such command '{name}'.", (), top_pattern)
    group_pattern = "[OPTIONS] COMMAND [ARGS]..."
    graw, _, grest = _scan_options(rest, (), (name,), group_pattern, interspersed=False)
    if graw is None:
        result.help_text = help_for((name,))
        return result
    if not grest:
        result.help_to_stderr = help_for((name,))
        return result
    sub = grest[0]
    if GROUP_MAP[name].get(sub) is None:
        raise UsageError(f"No such command '{sub}'.", (name,), group_pattern)
    return _parse_command(result, (name, sub), grest[1:])


def _parse_command(result: Parsed, path: tuple[str, ...], argv: list[str]) -> Parsed:
    cmd = find_command(path)
    assert cmd is not None
    result.path = path
    if cmd.passthrough:
        if argv == ["--help"]:
            result.help_text = help_for(path)
        result.options = {cmd.args[0].dest: tuple(argv)}
        return result
    raw, positionals, _ = _scan_options(argv, cmd.options, path, cmd.pattern, interspersed=True)
    if raw is None:
        result.help_text = help_for(path)
        return result
    result.options = _finish(cmd, raw, positionals, path)
    if result.options.get("json"):
        result.json = True
    return result
