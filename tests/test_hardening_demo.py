"""Issue 11 item 14: ``scripts/demo`` shows each step as it happens; aligned id8 tables.

* The demo's outer process used to wait for the whole run and print the log at the end
  (~29 s of silence); it now follows the Director's log line by line.
* ``scripts/demo`` announces every install step and lets pip print what it does.
* ``member list`` columns widen to their longest value (a long tmux session name no longer
  shifts the row) and show the id8 of each agent, as every text table does.
"""

import importlib.util
import re
import threading
import time

import pytest

from tests.conftest import REPO, place_member


def load_demo():
    spec = importlib.util.spec_from_file_location("cafleet_demo", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_follow_prints_each_line_before_the_demo_ends(tmp_path):
    demo = load_demo()
    log, done = tmp_path / "demo.log", tmp_path / "done"
    seen: list[tuple[str, bool]] = []
    first_shown = threading.Event()

    def write(text):
        seen.append((text, done.exists()))
        first_shown.set()

    def director():
        with open(log, "a", encoding="utf-8") as fh:
            fh.write("== 1. database and session\n")
            fh.flush()
            # the next step only starts once the first line has reached the terminal
            assert first_shown.wait(30)
            fh.write("$ cafleet db init\nhalf a li")
            fh.flush()
            fh.write("ne\nDemo finished.")
        done.write_text("0\n")

    worker = threading.Thread(target=director)
    worker.start()
    assert demo.follow(log, done, write, deadline=time.monotonic() + 60, poll=0.01)
    worker.join(10)
    assert seen[0] == ("== 1. database and session\n", False)
    assert "".join(text for text, _ in seen) == (
        "== 1. database and session\n$ cafleet db init\nhalf a line\nDemo finished.\n"
    )
    assert all(text.endswith("\n") for text, _ in seen)


def test_follow_gives_up_at_the_deadline(tmp_path):
    demo = load_demo()
    lines = []
    assert not demo.follow(tmp_path / "log", tmp_path / "done", lines.append, deadline=0)
    assert lines == []


def test_demo_script_announces_every_install_step():
    script = (REPO / "scripts" / "demo").read_text().splitlines()
    work = [
        i
        for i, line in enumerate(script)
        if re.search(r"(pip install|-m venv|apt-get install|compileall|demo\.py)", line)
        and not line.strip().startswith(("step ", "#"))
    ]
    assert len(work) >= 5
    for i in work:
        before = [line.strip() for line in script[max(0, i - 2) : i]]
        assert any(line.startswith("step ") for line in before), script[i]
        assert " -q " not in script[i] or "apt-get" in script[i] or "compileall" in script[i]
    assert "python -u scripts/demo.py" in script[-1]


def starts(line: str) -> list[int]:
    """Start column of every cell (cells are separated by two or more spaces)."""
    return [m.start() for m in re.finditer(r"(?:(?<=^  )|(?<=  ))\S", line)]


@pytest.mark.django_db
@pytest.mark.parametrize("activity", [False, True])
def test_member_list_stays_aligned_with_long_values(cli, fleet, activity):
    a = place_member(fleet.sid, fleet.director, "Alice", "%3", tmux_session="cafleet-demo")
    b = place_member(
        fleet.sid,
        fleet.director,
        "a-rather-long-member-name",
        None,
        tmux_session="a-very-long-tmux-session-name",
    )
    extra = ("--activity",) if activity else ()
    r = cli("--session-id", fleet.sid, "member", "list", "--agent-id", fleet.director, *extra)
    assert r.code == 0
    lines = r.out.splitlines()
    header, rule, rows = lines[1], lines[2], lines[3:]
    assert [row.split()[0] for row in rows] == [a.agent_id[:8], b.agent_id[:8]]
    for row in rows:
        assert starts(row) == starts(header), (header, row)
    assert starts(rule) == starts(header)
    for line in lines:
        assert line == line.rstrip()
