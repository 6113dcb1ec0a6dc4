"""Issue 11 items 10 and 13: ``member capture`` cleaning and ``--lines``.

10. Cleaning keeps, per line, only the text after the last carriage return (tmux.md §6
    step 2). ``tmux.run`` used to read tmux's output in text mode, whose newline translation
    turned every ``\\r`` into a line break before the cleaning saw it.
13. ``capture-pane -S -N`` returns N lines of history plus the whole visible pane, so
    ``--lines 1`` printed the full pane with its ~40 blank lines: only the last N lines
    (after dropping trailing blank lines) are returned now.
"""

import os
import stat

import pytest

from broker import tmux


@pytest.fixture
def fake_tmux_binary(tmp_path, monkeypatch):
    """A ``tmux`` on PATH that prints the bytes of ``$FAKE_TMUX_OUT`` for any command."""
    script = tmp_path / "tmux"
    script.write_text('#!/bin/sh\ncat "$FAKE_TMUX_OUT"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "out"
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TMUX_OUT", str(out))
    return out


def test_carriage_return_overwrites_within_the_line(fake_tmux_binary):
    fake_tmux_binary.write_bytes(b"loading 10%\rloading 55%\rloading 100%\nnext line\n")
    assert tmux.capture("%1", 30, ansi=False) == "loading 100%\nnext line\n"


def test_carriage_return_reaches_ansi_output_untouched(fake_tmux_binary):
    fake_tmux_binary.write_bytes(b"a\rb\x1b[1mc\x1b[0m\n")
    assert tmux.capture("%1", 30, ansi=True) == "a\rb\x1b[1mc\x1b[0m\n"
    assert tmux.capture("%1", 30, ansi=False) == "bc\n"


def test_run_keeps_carriage_returns(fake_tmux_binary):
    fake_tmux_binary.write_bytes(b"x\ry\r\nz")
    assert tmux.run(["anything"]) == "x\ry\r\nz"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (1, "three\n"),
        (2, "two\nthree\n"),
        (3, "one\ntwo\nthree\n"),
        (100, "one\ntwo\nthree\n"),
    ],
)
def test_lines_counts_from_the_last_non_blank_line(fake_tmux_binary, lines, expected):
    fake_tmux_binary.write_bytes(b"one\ntwo\nthree\n" + b"\n" * 40 + b"   \n")
    assert tmux.capture("%1", lines, ansi=False) == expected
    assert tmux.capture("%1", lines, ansi=True) == expected


def test_blank_lines_inside_are_kept_and_blank_pane_is_empty(fake_tmux_binary):
    fake_tmux_binary.write_bytes(b"a\n\nb\n\n\n")
    assert tmux.capture("%1", 3, ansi=False) == "a\n\nb\n"
    fake_tmux_binary.write_bytes(b"\n" * 50)
    assert tmux.capture("%1", 5, ansi=False) == ""


def test_line_blank_after_cleaning_counts_as_blank(fake_tmux_binary):
    fake_tmux_binary.write_bytes(b"keep\n\x1b[0m\nwiped\r   \n")
    assert tmux.capture("%1", 5, ansi=False) == "keep\n"
    assert tmux.capture("%1", 5, ansi=True) == "keep\n"


@pytest.mark.tmux
def test_real_pane_lines_one_is_one_line(tmux_env):
    server = tmux_env
    pane = server.spawn("sh", "-c", "printf 'first\\nsecond\\nlast 10%%\\rlast 100%%\\n'; sleep 60")
    server.wait_for(pane, "100%")
    assert tmux.capture(pane, 1, ansi=False) == "last 100%\n"
    assert tmux.capture(pane, 6, ansi=False) == "first\nsecond\nlast 100%\n"
    assert tmux.capture(pane, 100, ansi=True) == "first\nsecond\nlast 100%\n"
