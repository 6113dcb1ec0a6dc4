"""The types of the command registry: options, arguments, commands and groups.

The table itself is ``broker.command_table``; the parser and help are ``broker.grammar``.
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Opt:
    """One option. ``names[0]`` is the canonical name; ``dest`` the key in the result."""

    names: tuple[str, ...]
    dest: str
    kind: str = "str"  # str | int | float | choice | flag
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    # An implementation limit above the documented range (integers with no documented
    # maximum): a larger value is a range error naming it, the help keeps the contract's range.
    ceiling: int | None = None
    metavar: str = "TEXT"
    help: str = ""
    # For boolean pairs such as --ansi/--no-ansi: names that set the flag to False.
    off_names: tuple[str, ...] = ()
    default: object = None

    @property
    def takes_value(self) -> bool:
        return self.kind != "flag"

    def describe_range(self, *, with_ceiling: bool = False) -> str:
        lo, hi = self.minimum, self.maximum
        if with_ceiling and self.ceiling is not None:
            hi = self.ceiling if hi is None else min(hi, self.ceiling)
        fmt = _fmt_num
        if lo is not None and hi is not None:
            op = "<" if self.min_open else "<="
            return f"{fmt(lo)}{op}x<={fmt(hi)}"
        if lo is not None:
            return f"x{'>' if self.min_open else '>='}{fmt(lo)}"
        return f"x<={fmt(hi)}"


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass(frozen=True)
class Arg:
    """A positional argument; ``many`` collects every remaining word (``PROMPT...``)."""

    name: str
    dest: str
    required: bool = True
    many: bool = False
    help: str = ""


@dataclass(frozen=True)
class Command:
    """One command: its grammar, its handler and what ``broker.commands.dispatch`` must
    establish before the handler runs (cli.md §2.8, in this order):

    * ``needs_session``: ``--session-id`` is required (step 2), resolved after readiness;
    * ``validator``: ``"module:function"`` run on the call (step 3); its result is
      ``call.checked``;
    * ``tmux``: the environment prerequisite (step 4): ``"guard"`` (binary and ``TMUX``),
      ``"pane"`` (guard, then the caller's pane as ``call.caller``) or a
      ``"module:function"`` whose result is ``call.caller``;
    * ``database``: the database is ready (step 5; implied by ``needs_session``);
    * ``agent``: ``--agent-id`` is resolved to ``call.agent_id`` (step 6);
    * ``full_settings``: Django runs with the admin stack, not the lean settings;
    * ``writes``: the command changes state (rows, panes). Once its handler has run, a
      failure to write its output does not fail it: it exits 0 (a retry would repeat it).

    Handler names are strings so that this module stays free of Django imports.
    """

    name: str
    help: str
    options: tuple[Opt, ...] = ()
    args: tuple[Arg, ...] = ()
    needs_session: bool = False
    # Every word after the command name is passed on untouched (``cafleet django ...``).
    passthrough: bool = False
    handler: str = ""
    validator: str | None = None
    tmux: str | None = None
    database: bool = False
    agent: bool = False
    full_settings: bool = False
    writes: bool = False
    # Pairs of option dests that may not both be set (a usage error, exit 2).
    exclusive: tuple[tuple[str, str], ...] = ()
    # Extra paragraphs of the command's --help, after its one-line description.
    epilog: tuple[str, ...] = ()

    @property
    def pattern(self) -> str:
        if not self.args:
            return "[OPTIONS]"
        parts = ["[OPTIONS]"]
        for a in self.args:
            parts.append(f"[{a.name}]..." if a.many else a.name)
        return " ".join(parts)


@dataclass(frozen=True)
class Group:
    name: str
    help: str
    commands: tuple[Command, ...] = field(default_factory=tuple)

    def get(self, name: str) -> Command | None:
        for c in self.commands:
            if c.name == name:
                return c
        return None
