"""Unit tests of broker.tmux's member keystrokes: option choice and the free-text answer.

No tmux server is needed: ``subprocess.run`` is replaced by the recorder of
tests/test_tmux_unit.py, and the screen watch of :mod:`broker.typist` by a stub.
"""

import pytest

from broker import tmux, typist
from tests.test_tmux_unit import install_fake


@pytest.fixture
def fake(monkeypatch):
    return install_fake(monkeypatch)


# --- §7 / §8 / §9 keystrokes ------------------------------------------------------------------


def test_send_choice(fake):
    tmux.send_choice("%2", 2)
    assert fake.calls == [(["tmux", "send-keys", "-t", "%2", "2"], 10.0)]


@pytest.fixture
def no_watch(monkeypatch):
    """The screen watch of send_freetext sees no input box at once."""
    watched = []

    def watch(pane, coding_agent, done, timeout):
        watched.append((pane, coding_agent, timeout))
        return tmux.classify_screen("", coding_agent), ""

    monkeypatch.setattr(typist, "_watch", watch)
    return watched


def _calls(fake):
    """The recorded tmux calls with the random buffer name replaced by ``<buf>``."""
    out = []
    for event in fake.events:
        kind, argv = event
        out.append((kind, ["<buf>" if a.startswith("cafleet-") else a for a in argv]))
    return out


def test_send_freetext_is_4_then_a_bracketed_paste_then_enter(fake, no_watch):
    tmux.send_freetext("%2", "hi $HOME `x` Enter C-c", coding_agent="codex")
    assert _calls(fake) == [
        ("run", ["send-keys", "-t", "%2", "4"]),
        ("run", ["load-buffer", "-b", "<buf>", "-"]),
        ("run", ["paste-buffer", "-p", "-d", "-b", "<buf>", "-t", "%2"]),
        ("run", ["send-keys", "-t", "%2", "Enter"]),
    ]
    # the text never goes through send-keys, and the watch uses the member's backend
    assert not any("-l" in argv for _, argv in fake.events)
    assert {c for _, c, _ in no_watch} == {"codex"}


def test_send_freetext_resends_enter_only_while_the_text_sits_in_the_input(fake, monkeypatch):
    box = "\n".join(["─" * 40, "\u276f\u00a0still typed text", "─" * 40, "  footer"])
    seen = []

    def watch(pane, coding_agent, done, timeout):
        seen.append(timeout)
        return tmux.classify_screen(box, coding_agent), box

    monkeypatch.setattr(typist, "_watch", watch)
    tmux.send_freetext("%2", "still typed text")
    enters = [argv for _, argv in fake.events if argv == ["send-keys", "-t", "%2", "Enter"]]
    assert len(enters) == tmux.ENTER_TRIES


def test_send_freetext_empty_is_4_and_enter(fake, no_watch):
    tmux.send_freetext("%2", "")
    assert fake.events == [
        ("run", ["send-keys", "-t", "%2", "4"]),
        ("sleep", 0.12),
        ("run", ["send-keys", "-t", "%2", "Enter"]),
    ]


# ``send_exec``, ``poll_trigger`` and ``deliver_preview`` go through the pane gate and the
# bracketed-paste sequence: tests/test_delivery_sequence.py pins their tmux calls.
