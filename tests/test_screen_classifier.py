"""broker.tmux.classify_screen on captures of the real clients and of the stand-ins.

The fixture captures (tests/fixtures/screens/, see its README) are real screens of Claude
Code 2.1.328 and Codex 0.169.0 in two measurements (120x40, and 200x50 with a session name in
Claude Code's box); the classifier is a pure function of the captured text.
"""

from pathlib import Path

import pytest

from broker import screen, tmux

SCREENS = Path(__file__).resolve().parent / "fixtures" / "screens"

CLAUDE, CODEX = "❯", "›"
DIALOG, MENU = tmux.Screen("permission_dialog"), tmux.Screen("menu")


def ready(prompt: str, *, busy: bool = False, queued: bool = False):
    return tmux.Screen(None, prompt, "", busy, queued)


def draft(prompt: str, text: str = "", *, busy: bool = False):
    return tmux.Screen("draft", prompt, text, busy, False)


# fixture name -> what the classifier reads; the screens measured alike at both sizes
BOTH = {
    "claude-idle": ready(CLAUDE),
    "claude-draft": draft(CLAUDE, "hello wor"),
    "claude-bang": draft("!"),
    "claude-busy": ready(CLAUDE, busy=True),
    "claude-busy-queued": ready(CLAUDE, busy=True, queued=True),
    "claude-dialog": DIALOG,
    "codex-idle": ready(CODEX),
    "codex-draft": draft(CODEX, "hello wor"),
    "codex-bang": draft("!"),
    "codex-busy": ready(CODEX, busy=True),
}
# 120x40 measurement
EXPECTED = {
    **BOTH,
    "claude-multiline-draft": draft(CLAUDE, "line one line two"),
    "claude-busy-draft": draft(CLAUDE, "second queued"),
    "claude-ask-menu": MENU,
    "claude-after-reply": ready(CLAUDE),
    "claude-paste-bang": draft("!", "echo pasted-bang-$((6*7))"),
    "claude-after-cu": ready(CLAUDE),
    "codex-multiline-draft": draft(CODEX, "line one"),
    "codex-busy-draft": draft(CODEX, "second queued", busy=True),
    "codex-busy-queued": ready(CODEX, busy=True),
    "codex-after-queue": ready(CODEX),
    "codex-paste-bang": draft("!", "echo pasted-bang-$((6*7))"),
}
# 200x50 measurement (the `real` helper's tests/realagent/measure_screens.py); "shell" and
# "exited" show a bash prompt: no input box on the screen (the foreground check holds those
# panes before the screen is read). Each client's screens after a dialog, a busy turn or a
# cleared "!" are ready again.
EXPECTED_200 = {
    **BOTH,
    **{
        f"{client}-{after}": ready(prompt)
        for client, prompt in (("claude", CLAUDE), ("codex", CODEX))
        for after in ("after-bang-cleared", "after-busy", "after-dialog")
    },
    **{
        f"{client}-{kind}": screen
        for client in ("claude", "codex")
        for kind, screen in (("dialog-typed", DIALOG), ("shell", MENU), ("exited", MENU))
    },
    "claude-busy-draft": draft(CLAUDE, "queued note one"),
    "codex-busy-draft": draft(CODEX, "queued note one", busy=True),
    "codex-busy-queued": ready(CODEX),
    "codex-busy-tab": ready(CODEX, busy=True),
    "codex-busy-tab-draft": draft(CODEX, "queued note two", busy=True),
    "codex-busy-tab-queued": ready(CODEX, busy=True),
    "codex-after-busy-tab": ready(CODEX),
    "codex-dialog": DIALOG,
}
CASES = [("120x40", n, v) for n, v in EXPECTED.items()] + [
    ("200x50", n, v) for n, v in EXPECTED_200.items()
]


def load(name: str, size: str = "120x40") -> str:
    return (SCREENS / size / f"{name}.ansi").read_text(encoding="utf-8")


def test_every_fixture_is_covered():
    assert sorted(p.stem for p in (SCREENS / "120x40").glob("*.ansi")) == sorted(EXPECTED)
    assert sorted(p.stem for p in (SCREENS / "200x50").glob("*.ansi")) == sorted(EXPECTED_200)


@pytest.mark.parametrize(("size", "name", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_real_client_screens(size, name, expected):
    backend = name.split("-", 1)[0]
    assert tmux.classify_screen(load(name, size), backend) == expected


def test_codex_is_held_while_busy_and_claude_is_not():
    assert tmux.HOLD_WHEN_BUSY == {"claude": False, "codex": True}


def test_named_box_rule_and_highlighted_option():
    named = "\u2500" * 20 + " worker \u2500"
    assert screen._is_rule(named) and screen._is_rule("\u2500" * 30)
    assert not screen._is_rule("\u2500\u2500 text")
    option = "\u203a \x1b[1;7m1. Yes, proceed (y)\x1b[0m\n  2. No\n"
    assert tmux.classify_screen(option, "codex").reason == "menu"


@pytest.mark.parametrize("name", ["claude-idle", "claude-busy", "claude-busy-queued"])
def test_claude_empty_input_is_ready(name):
    assert tmux.classify_screen(load(name), "claude").input_empty is True


def test_placeholder_is_not_a_draft_but_the_same_text_typed_is():
    dim = "\u203a \x1b[2mAsk Codex to do anything\x1b[0m\n  ? for shortcuts"
    typed = "\u203a Ask Codex to do anything\n  ? for shortcuts"
    assert tmux.classify_screen(dim, "codex").reason is None
    assert tmux.classify_screen(typed, "codex").reason == "draft"


def test_sgr_colour_arguments_are_not_read_as_dim():
    # 38;2;2;2;2 is a colour, not "dim"; the typed text must still count
    screen = "\u203a \x1b[38;2;2;2;2mhello\x1b[0m\n  footer"
    assert tmux.classify_screen(screen, "codex").input_text == "hello"
    screen = "\u203a \x1b[38;5;2mhello\x1b[0m\n  footer"
    assert tmux.classify_screen(screen, "codex").input_text == "hello"


def test_claude_cursor_on_a_placeholder_and_on_typed_text():
    rule = "\u2500" * 30
    placeholder = (
        f"{rule}\n\u276f\u00a0\x1b[7mP\x1b[0;2mress up to edit queued messages\x1b[0m\n{rule}\n  x"
    )
    assert tmux.classify_screen(placeholder, "claude").input_empty is True
    cursor_inside = f"{rule}\n\u276f\u00a0hel\x1b[7ml\x1b[0mo\n{rule}\n  x"
    assert tmux.classify_screen(cursor_inside, "claude").input_text == "hello"
    lone_char = f"{rule}\n\u276f\u00a0\x1b[7mx\x1b[0m\n{rule}\n  x"
    assert tmux.classify_screen(lone_char, "claude").reason == "draft"


def test_text_in_the_history_never_counts():
    """A message in the scrollback that looks like a dialog or a prompt changes nothing."""
    rule = "\u2500" * 30
    history = "\n".join(
        [
            "\u276f Do you want to proceed?",
            " \u276f 1. Yes",
            "\u276f hello wor",
            rule,
            "\u276f\u00a0\x1b[7m \x1b[0m",
            rule,
            "  ? for shortcuts",
        ]
    )
    assert tmux.classify_screen(history, "claude") == tmux.Screen(None, "\u276f", "", False, False)


def test_an_input_box_far_above_the_bottom_is_not_the_input():
    rule = "\u2500" * 30
    screen = "\n".join([rule, "\u276f\u00a0", rule, *["output line"] * 6])
    assert tmux.classify_screen(screen, "claude").reason == "menu"


def test_codex_selection_list_is_a_menu():
    screen = "Would you like to run the following command?\n\u203a 1. Yes, proceed\n  2. No\n"
    assert tmux.classify_screen(screen, "codex").reason == "permission_dialog"
    assert tmux.classify_screen("Pick one\n\u203a 1. Alpha\n  2. Beta\n", "codex").reason == "menu"


@pytest.mark.parametrize(
    ("screen", "reason", "text"),
    [
        ("standin-claude argv=[]\n> ", None, ""),
        ("standin-claude argv=[]\n>\n\n\n", None, ""),
        ("got: x\n> half typed", "draft", "half typed"),
        ("Which option do you prefer?\n4. Type something\nchoice> ", "menu", ""),
        ("got: ! sleep 4", "menu", ""),
        ("", "menu", ""),
    ],
)
def test_line_oriented_repl(screen, reason, text):
    for backend in ("claude", "codex"):
        seen = tmux.classify_screen(screen, backend)
        assert (seen.reason, seen.input_text) == (reason, text)


def test_narrow_claude_footer_still_reads():
    rule = "\u2500" * 35
    screen = f"{rule}\n\u276f\u00a0\x1b[7m \x1b[0m\n{rule}\n  \u23f8 manual mode on \u00b7 ? for short\u2026"
    assert tmux.classify_screen(screen, "claude").reason is None


def test_shell_mode_footer_marks_a_draft():
    rule = "\u2500" * 30
    screen = f"{rule}\n\u276f\u00a0\n{rule}\n  ! for shell mode"
    assert tmux.classify_screen(screen, "claude").reason == "draft"
