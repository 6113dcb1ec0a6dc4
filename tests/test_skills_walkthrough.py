"""A stand-in Director follows the skills literally, against a real isolated tmux server.

Every ``cafleet`` call below is a command line taken from ``skills/cafleet/SKILL.md``,
``skills/cafleet/reference/director.md`` or ``skills/cafleet/reference/recovery.md``
(picked by its command path and, where a file has several, by a word it shows), with only
the placeholders filled: ``<session-id>``, ``<agent-id>``, ``<other-id>``, ``<member-id>`` and
``<task-id>`` become the real ids the earlier steps printed (8-character ids where the skill
says they can be typed back), and a ``"…"`` option value becomes concrete text. The heredoc
example of SKILL.md runs through ``sh`` exactly as written. If an example cannot be run like
that, the doc is wrong.

Pane layout: the Director is a stand-in ``claude`` in its own window (so previews typed into
its pane are visible); members are spawned by ``member create`` with the stand-ins of
``tests/bin`` first on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from broker.grammar import parse
from tests.doc_checker import ELLIPSES, REPO, Snippet, extract_commands, to_argv

pytestmark = pytest.mark.tmux

SKILL = "skills/cafleet/SKILL.md"
DIRECTOR = "skills/cafleet/reference/director.md"
RECOVERY = "skills/cafleet/reference/recovery.md"

_PLACEHOLDER = re.compile(r"<([a-z][a-z-]*)>")
_PREVIEW = re.compile(r"\[cafleet msg ([0-9a-f]{8}) from ([0-9a-f]{8}) (\S+)\]")


# ------------------------------------------------------------------------------ the docs
def _text(relpath: str) -> str:
    return (REPO / relpath).read_text(encoding="utf-8")


def example(relpath: str, *path: str, showing: str = "", after: str = "") -> Snippet:
    """The first command line of ``relpath`` for command ``path`` that shows ``showing``,
    looking only below the heading line ``after`` when given."""
    text = _text(relpath)
    start = 0
    if after:
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines, 1) if line.strip() == after)
    for snip in extract_commands(text, relpath):
        if snip.line <= start or showing not in snip.text:
            continue
        if parse(to_argv(snip.text)[0]).path == path:
            return snip
    raise AssertionError(
        f"{relpath} has no example of 'cafleet {' '.join(path)}' showing {showing!r}"
    )


def fill(snip: Snippet, ids: dict[str, str], values: dict[str, str] | None = None) -> list[str]:
    """The example's argv (without ``cafleet``) with placeholders and ``"…"`` values filled."""
    values = values or {}
    words = shlex.split(snip.text)
    assert words[0] == "cafleet"
    argv: list[str] = []
    for word in words[1:]:
        m = _PLACEHOLDER.fullmatch(word)
        if m:
            assert m.group(1) in ids, f"{snip.where}: cannot fill {word}"
            word = ids[m.group(1)]
        elif word in ELLIPSES and argv and argv[-1] in values:
            word = values[argv[-1]]
        argv.append(word)
    return argv


def heredoc_block(relpath: str, marker: str) -> tuple[int, str]:
    """The fenced lines from the line holding ``marker`` to the heredoc's terminator."""
    lines = _text(relpath).splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    tag = re.search(r"<<'?(\w+)'?", lines[start]).group(1)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == tag)
    return start + 1, "\n".join(lines[start : end + 1]) + "\n"


# ------------------------------------------------------------------------------ the team
class Walk:
    def __init__(self, db, server):
        self.db = db
        self.server = server
        # The Director: a stand-in claude in a window of its own.
        self.window, self.director_pane = server.new_window("claude")
        server.wait_for(self.director_pane, "standin-claude argv=")

    def env(self, pane: str) -> dict:
        env = self.server.env(pane, CAFLEET_DATABASE_URL=self.db.url)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        return env

    def run(
        self, snip: Snippet, ids: dict, values: dict | None = None, *, pane: str, code: int = 0
    ):
        argv = fill(snip, ids, values)
        result = self.db.run(*argv, env=self.env(pane))
        assert result.code == code, (
            f"{snip.where}: cafleet {shlex.join(argv)}\n"
            f"exit {result.code}\n{result.out}{result.err}"
        )
        return result


@pytest.fixture
def walk(fresh_db, tmux_server):
    return Walk(fresh_db, tmux_server)


def test_director_walkthrough(walk):
    server = walk.server

    # 1. SKILL.md: create the session from the Director's pane; 7 lines, id, Director id.
    created = walk.run(
        example(SKILL, "session", "create"),
        {},
        {"--label": "walk-through"},
        pane=walk.director_pane,
    )
    lines = created.lines
    assert len(lines) == 7, created.out
    sid, did = lines[0], lines[1]
    assert lines[4] == "director_name:    Director"
    assert lines[5].endswith(f":{walk.window}:{walk.director_pane}")
    director = {"session-id": sid, "agent-id": did}

    # 2. director.md: spawn Claude-B; its 8-character id is typed back from now on.
    spawned = walk.run(
        example(DIRECTOR, "member", "create", showing="--name Claude-B"),
        director,
        pane=walk.director_pane,
    )
    member8, name, backend, pane_word = spawned.out.split()
    assert (name, backend) == ("Claude-B", "backend=claude")
    member_pane = pane_word.removeprefix("pane=")
    screen = server.wait_for(member_pane, "standin-claude argv=", timeout=20)
    assert '"--name", "Claude-B"' in screen
    assert server.display(walk.director_pane, "#{pane_active}") == "1"  # split-window -d

    # Spawn protocol: member list shows the member with a real pane id.
    listing = walk.run(example(DIRECTOR, "member", "list"), director, pane=walk.director_pane)
    assert listing.lines[0] == "1 member:"
    row = listing.lines[3].split()
    assert row[1:3] == ["Claude-B", "active"] and row[6] == member_pane
    assert row[0].startswith(member8)

    # 3. SKILL.md: the Director messages the member; the preview lands in its pane.
    body = "Please review PR #42 and reply when done."
    sent = walk.run(
        example(SKILL, "message", "send"),
        {**director, "other-id": member8},
        {"--text": body},
        pane=walk.director_pane,
    )
    assert sent.lines[0] == "Message sent. Preview delivered."
    task8 = sent.lines[1][1:9]
    assert sent.lines[1].startswith(f"[{task8} | from:{did[:8]} | ")
    assert sent.lines[2] == body
    screen = server.wait_for(member_pane, f"got: {body}")
    header = _PREVIEW.search(screen)
    assert header and header.group(1, 2) == (task8, did[:8]), screen

    # director.md: capture shows the same preview from the Director's side.
    captured = walk.run(
        example(DIRECTOR, "member", "capture"),
        {**director, "member-id": member8},
        pane=walk.director_pane,
    )
    assert f"[cafleet msg {task8} from {did[:8]} " in captured.out

    # 4. SKILL.md, as the member: poll, ack with the id typed back from the header, poll.
    member = {"session-id": sid, "agent-id": member8}
    inbox = walk.run(example(SKILL, "message", "poll"), member, pane=member_pane)
    assert inbox.lines[0].startswith(f"[{task8} | from:{did[:8]} | ")
    assert inbox.lines[1] == body
    acked = walk.run(
        example(SKILL, "message", "ack", after="## Inline preview"),
        {**member, "task-id": header.group(1)},
        pane=member_pane,
    )
    assert acked.lines[0] == "Message acknowledged."
    assert (
        walk.run(example(SKILL, "message", "poll"), member, pane=member_pane).out
        == "No messages found.\n"
    )

    # 5. SKILL.md: the member replies with the quoted-heredoc example, run by sh as written.
    line, script = heredoc_block(SKILL, "| cafleet ")
    for key, value in {**member, "other-id": did}.items():
        script = script.replace(f"<{key}>", value)
    proc = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env=walk.env(member_pane), timeout=60
    )
    assert proc.returncode == 0, f"{SKILL}:{line}: {proc.stderr}"
    reply8 = proc.stdout.splitlines()[1][1:9]
    server.wait_for(walk.director_pane, f"[cafleet msg {reply8} from {member8} ")
    server.wait_for(walk.director_pane, "got: Line one keeps its $dollars and `backticks`.")

    # 6. The Director reads the reply (recovery.md health check: own inbox first), reads it
    #    in full (SKILL.md), acks it (SKILL.md).
    inbox = walk.run(example(RECOVERY, "message", "poll"), director, pane=walk.director_pane)
    assert inbox.lines[0].startswith(f"[{reply8} | from:{member8} | ")
    shown = walk.run(
        example(SKILL, "message", "show"), {**director, "task-id": reply8}, pane=walk.director_pane
    )
    assert "Line one keeps its $dollars and `backticks`.\nLine two.\n" in shown.out
    walk.run(
        example(SKILL, "message", "ack"), {**director, "task-id": reply8}, pane=walk.director_pane
    )

    # 7. recovery.md shutdown protocol (step 1, stopping the /loop, has no cafleet command):
    #    member delete -> member list empty -> session delete -> session list without it.
    shutdown = "## Shutdown protocol"
    deleted = walk.run(
        example(RECOVERY, "member", "delete", after=shutdown),
        {**director, "member-id": member8},
        pane=walk.director_pane,
    )
    assert deleted.lines[0] == "Member deleted."
    assert deleted.lines[2].split() == ["pane_id:", member_pane, "(closed)"]
    assert not server.pane_alive(member_pane)
    emptied = walk.run(
        example(RECOVERY, "member", "list", after=shutdown), director, pane=walk.director_pane
    )
    assert emptied.out == "0 members.\n"
    gone = walk.run(
        example(RECOVERY, "session", "delete", after=shutdown), director, pane=walk.director_pane
    )
    assert gone.out == f"Deleted session {sid}. Deregistered 2 agents.\n"
    remaining = walk.run(
        example(RECOVERY, "session", "list", after=shutdown), {}, pane=walk.director_pane
    )
    assert sid not in remaining.out
    # session delete does not close panes: the Director's own pane is still there.
    assert server.pane_alive(walk.director_pane)
