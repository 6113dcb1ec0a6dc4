"""The real clients' screens, as captured (tests/realagent/screens/), read by the shared
screen classifier of the test tiers (tests/realagent/harness.py: ``classify``).

These pin the measured markers (screens.md): if a client update changes its screens, the
re-measured fixtures fail here first.
"""

from pathlib import Path

import pytest

from tests.realagent.harness import classify, input_line

SCREENS = Path(__file__).resolve().parent / "realagent" / "screens"

EXPECTED = {
    "claude-idle": "idle",
    "claude-draft": "draft",
    "claude-bang": "draft",
    "claude-after-bang-cleared": "idle",
    "claude-busy": "busy",
    "claude-busy-draft": "busy-draft",
    "claude-busy-queued": "busy",
    "claude-after-busy": "idle",
    "claude-dialog": "dialog",
    "claude-dialog-typed": "dialog",
    "claude-after-dialog": "idle",
    "claude-shell": "unknown",
    "claude-exited": "unknown",
    "codex-idle": "idle",
    "codex-draft": "draft",
    "codex-bang": "draft",
    "codex-after-bang-cleared": "idle",
    "codex-busy": "busy",
    "codex-busy-draft": "busy-draft",
    "codex-busy-queued": "idle",  # Enter while busy steered: the turn was over 1.5 s later
    "codex-after-busy": "idle",
    "codex-busy-tab": "busy",
    "codex-busy-tab-draft": "busy-draft",
    "codex-busy-tab-queued": "busy",
    "codex-after-busy-tab": "idle",
    "codex-dialog": "dialog",
    "codex-dialog-typed": "dialog",
    "codex-after-dialog": "idle",
    "codex-shell": "unknown",
    "codex-exited": "unknown",
}


def test_every_fixture_is_classified():
    assert sorted(p.stem for p in SCREENS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_screen_state(name):
    client = name.split("-", 1)[0]
    screen = (SCREENS / f"{name}.txt").read_text(encoding="utf-8")
    assert classify(client, screen) == EXPECTED[name]


@pytest.mark.parametrize(
    "client, name, line",
    [
        ("claude", "claude-idle", ""),
        ("claude", "claude-draft", "hello wor"),
        ("claude", "claude-busy-draft", "queued note one"),
        ("claude", "claude-busy-queued", "Press up to edit queued messages"),  # dim placeholder
        ("claude", "claude-dialog", None),
        ("claude", "claude-exited", None),
        ("codex", "codex-idle", "Ask Codex to do anything"),  # dim placeholder
        ("codex", "codex-draft", "hello wor"),
        ("codex", "codex-busy-tab-draft", "queued note two"),
        ("codex", "codex-exited", None),
    ],
)
def test_input_line(client, name, line):
    screen = (SCREENS / f"{name}.txt").read_text(encoding="utf-8")
    assert input_line(client, screen) == line


def test_claude_input_line_uses_a_no_break_space():
    """History lines ("❯ text") use a normal space; only the input box has U+00A0."""
    screen = (SCREENS / "claude-after-busy.txt").read_text(encoding="utf-8")
    assert "❯ start the busy work" in screen
    assert [ln for ln in screen.splitlines() if ln.startswith("❯\u00a0")] == ["❯\u00a0"]


def test_placeholders_are_dim_in_the_attribute_capture():
    """The .ansi captures (capture-pane -e) tell a placeholder from typed text."""
    codex = (SCREENS / "codex-idle.ansi").read_text(encoding="utf-8")
    assert "\x1b[2mAsk Codex to do anything" in codex
    claude = (SCREENS / "claude-busy-queued.ansi").read_text(encoding="utf-8")
    assert "\x1b[0;2m\x1b[39m\x1b[49mress up to edit queued messages" in claude
