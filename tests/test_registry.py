"""The grammar table is the one command registry (issue 12).

* every command names a handler (and optional validator / tmux check) that exists;
* ``manage.py cafleet ...`` and ``cafleet ...`` are one parser and one check order:
  byte-identical output and exit codes on a table of cases, and ``call_command`` works;
* an in-process call leaves no process-wide state behind; ``message poll`` never loads
  ``django.forms``; the version constant matches ``pyproject.toml``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib

import pytest

from broker import grammar
from tests.conftest import CAFLEET, REPO, seed_session


def all_commands():
    for group in grammar.GROUPS:
        for command in group.commands:
            yield (group.name, command.name), command
    for command in grammar.TOP_COMMANDS:
        yield (command.name,), command


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=" ".join)
def test_every_command_names_callables_that_exist(path):
    from broker.commands import load

    command = grammar.find_command(path)
    assert callable(load(command.handler))
    if command.validator:
        assert callable(load(command.validator))
    if command.tmux not in (None, "guard", "pane"):
        assert callable(load(command.tmux))
    # Commands that act as an agent take --agent-id, and need a session to resolve it in.
    if command.agent:
        assert command.needs_session
        assert "agent_id" in {o.dest for o in command.options}


def test_session_commands_are_exactly_the_agent_message_member_groups():
    needing = {p for p, c in all_commands() if c.needs_session}
    assert needing == {p for p, _ in all_commands() if p[0] in ("agent", "message", "member")}


def test_full_settings_are_the_admin_stack_commands():
    assert {p for p, c in all_commands() if c.full_settings} == {
        ("db", "init"),
        ("server",),
        ("django",),
    }


def test_exclusive_pairs_come_from_the_table():
    with pytest.raises(grammar.UsageError, match="--quiet and --full are mutually exclusive"):
        grammar.parse(["message", "ack", "--agent-id", "a", "--task-id", "t", "--quiet", "--full"])
    # cancel declares no such pair (it has no --quiet at all)
    with pytest.raises(grammar.UsageError, match="No such option: --quiet"):
        grammar.parse(["message", "cancel", "--agent-id", "a", "--task-id", "t", "--quiet"])


def test_epilogs_come_from_the_table():
    for path, command in all_commands():
        text = grammar.help_for(path)
        for line in command.epilog:
            assert line in text.splitlines()
    assert "Body: exactly one of" in grammar.help_for(("message", "send"))
    assert "Body: exactly one of" not in grammar.help_for(("message", "poll"))


def test_version_constant_matches_pyproject():
    from cafleet_project.version import __version__

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]


# ------------------------------------------------------------------------ call_command
def call(line: str) -> tuple[int, str, str]:
    """``call_command("cafleet", *line.split())``: (exit code, stdout, stderr)."""
    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("cafleet", *line.split(), stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_call_command_runs_the_cafleet_grammar(fleet):
    member = fleet.register("worker")
    code, out, err = call(
        f"--json --session-id {fleet.sid} message send --agent-id {fleet.director} "
        f"--to {member} --text hello"
    )
    assert (code, err) == (0, "") and json.loads(out)["task"]["text"] == "hello"
    code, out, err = call(f"--session-id {fleet.sid} message poll --agent-id {member}")
    assert (code, err) == (0, "") and out.endswith("\nhello\n")
    code, out, err = call("message --session-id abc poll --agent-id x --wait 0")
    assert (code, out) == (2, "")
    assert "\nError: No such option: --session-id\nGlobal flags " in err
    code, out, err = call(f"--session-id {fleet.sid} message poll --agent-id x --wait 0")
    assert (code, out) == (2, "")
    assert err.endswith("Error: Invalid value for '--wait': 0.0 is not in the range 0<x<=3600.\n")


# ------------------------------------------------------------------------ one parser
CASES = [
    ("message", "--session-id", "abc", "poll", "--agent-id", "x", "--wait", "0"),
    ("--session-id", "abc", "message", "poll", "--agent-id", "x", "--wait", "0"),
    ("--session-id", "{sid}", "message", "poll", "--agent-id", "{director}", "--wait", "0"),
    ("message", "poll", "--agent-id", "x"),
    ("--json", "message", "poll", "--agent-id", "x"),
    ("--session-id", "{sid}", "message", "ack", "--agent-id", "x", "--task-id", "y", "--quiet",
     "--full"),
    ("--session-id", "{sid}", "message", "poll", "--agent-id", "{director}"),
    ("--json", "--session-id", "{sid}", "agent", "list", "--agent-id", "{director}"),
    ("--session-id", "{sid}", "agent", "show", "--agent-id", "{director}", "--id", "nobody00"),
    ("--session-id", "{sid}", "member", "capture", "--agent-id", "{director}", "--member-id",
     "x", "--lines", "0"),
    ("--session-id", "{sid}", "member", "exec", "--agent-id", "{director}", "--member-id", "x",
     ""),
    ("session", "list"),
    ("--pretty", "--json", "session", "show", "{sid}"),
    ("session", "show", "nosuchsession"),
    ("--version",),
    ("--help",),
    ("message", "--help"),
    ("member", "create", "--help"),
    (),
    ("bogus",),
    ("doctor",),
]  # fmt: skip


@pytest.mark.e2e
def test_manage_py_cafleet_and_cafleet_are_byte_identical(fresh_db):
    fleet = seed_session(fresh_db)
    names = {"sid": fleet.sid, "director": fleet.director}
    for case in CASES:
        argv = [word.format(**names) for word in case]
        runs = [
            subprocess.run(cmd + argv, capture_output=True, env=fresh_db.env, cwd=REPO)
            for cmd in ([CAFLEET], [sys.executable, str(REPO / "manage.py"), "cafleet"])
        ]
        direct, managed = ((r.returncode, r.stdout, r.stderr) for r in runs)
        assert managed == direct, argv
        assert b"Traceback" not in direct[2], argv


# ------------------------------------------------------------------------ process state
def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
    )


@pytest.mark.e2e
def test_an_in_process_call_leaves_no_process_wide_state(fresh_db):
    fleet = seed_session(fresh_db)
    code = (
        "import os, sys\n"
        "from cafleet_project import cli\n"
        "finders = list(sys.meta_path)\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'caller.settings'\n"
        f"code = cli.main(['--session-id', {fleet.sid!r}, 'message', 'poll', "
        f"'--agent-id', {fleet.director!r}])\n"
        "assert code == 0, code\n"
        "assert sys.meta_path == finders, sys.meta_path\n"
        "assert os.environ['DJANGO_SETTINGS_MODULE'] == 'caller.settings'\n"
        "del os.environ['DJANGO_SETTINGS_MODULE']\n"
        "assert cli.main(['session', 'list']) == 0\n"
        "assert 'DJANGO_SETTINGS_MODULE' not in os.environ\n"
        "assert not any(isinstance(f, cli._LazyFinder) for f in sys.meta_path)\n"
        "print('clean')\n"
    )
    proc = _python(code, fresh_db.env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("clean\n")


@pytest.mark.e2e
def test_message_poll_never_loads_django_forms(fresh_db):
    fleet = seed_session(fresh_db)
    code = (
        "import sys\n"
        "from cafleet_project import cli\n"
        f"code = cli.main(['--json', '--session-id', {fleet.sid!r}, 'message', 'poll', "
        f"'--agent-id', {fleet.director!r}])\n"
        "loaded = sorted(n for n in sys.modules if n.startswith('django.forms.'))\n"
        "forms = sys.modules.get('django.forms')\n"
        "lazy = forms is None or type(forms).__name__ == '_LazyModule'\n"
        "print(code, loaded, lazy, file=sys.stderr)\n"
    )
    proc = _python(code, fresh_db.env)
    assert proc.stdout == "[]\n"
    assert proc.stderr == "0 [] True\n"


def test_nothing_but_broker_conf_reads_cafleet_settings():
    offenders = []
    for top in ("broker", "cafleet_project"):
        for path in sorted((REPO / top).rglob("*.py")):
            if path.name == "conf.py" or "migrations" in path.parts:
                continue
            text = path.read_text()
            for needle in ('environ.get("CAFLEET_', 'environ["CAFLEET_', "getenv("):
                if needle in text:
                    offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []
