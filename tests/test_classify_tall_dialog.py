"""The real Claude Code draws a short permission dialog at the top of a tall screen, with
a block of blank lines between it and its bottom rule (captured live from 2.1.328 in a
200x50 pane). The gate must still name it a permission dialog, not a menu."""

from pathlib import Path

from broker.tmux import classify_screen

SCREEN = Path(__file__).parent / "fixtures" / "screens-real" / "claude-dialog-tall.ansi"


def test_a_dialog_above_a_block_of_blank_lines_is_a_permission_dialog():
    raw = SCREEN.read_text(encoding="utf-8")
    assert raw.count("\n") >= 45 and "Do you want to proceed?" in raw
    seen = classify_screen(raw, "claude")
    assert seen.reason == "permission_dialog"
    assert seen.input_text == ""


def test_the_same_dialog_without_its_marker_is_a_menu():
    raw = SCREEN.read_text(encoding="utf-8").replace("Do you want to proceed?", "Pick one")
    assert classify_screen(raw, "claude").reason == "menu"
