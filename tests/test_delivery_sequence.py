"""The safe-delivery sequence of broker.tmux against a simulated pane (no tmux server).

Pins the tmux calls of the gate, the bracketed paste through a private named buffer, the
separate Enter and the bounded Enter re-send (docs/delivery.md), and the reasons a refused
gate gives. The simulated pane draws screens the way the real clients do, so the real
classifier reads them.
"""

import os
import re
import stat
import threading

import pytest

from broker import tmux
from tests.delivery_sim import PaneSim, install

PAYLOAD = "[cafleet msg 1234abcd from 5678ef01 T0]\nhello there"
BUFFER = re.compile(r"cafleet-[0-9a-f]{16}")


@pytest.fixture
def sim(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("TMUX", "/tmp/cafleet-sim-sock,1,0")
    return install(monkeypatch, PaneSim("%7"))


def facts_call(pane="%7"):
    return ["display-message", "-p", "-t", pane, tmux._FACTS]


def test_happy_path_sequence(sim):
    result = tmux.deliver_preview("%7", PAYLOAD, coding_agent="claude")
    assert result == tmux.Delivery("delivered", None, True)
    assert bool(result) is True
    calls = sim.calls
    name = calls[2][2]
    assert BUFFER.fullmatch(name)
    assert calls == [
        facts_call(),
        ["capture-pane", "-p", "-e", "-J", "-t", "%7"],
        ["load-buffer", "-b", name, "-"],
        ["paste-buffer", "-p", "-d", "-b", name, "-t", "%7"],
        ["capture-pane", "-p", "-e", "-J", "-t", "%7"],
        ["send-keys", "-t", "%7", "Enter"],
        ["capture-pane", "-p", "-e", "-J", "-t", "%7"],
        ["capture-pane", "-p", "-e", "-J", "-t", "%7"],  # empty twice in a row: verified
    ]
    assert sim.inputs[2] == PAYLOAD  # the text goes through stdin, never as an argument
    assert not any(PAYLOAD.split("\n")[1] in " ".join(c) for c in calls)
    assert sim.submitted == [PAYLOAD]
    assert sim.buffers == {}  # -d deleted the buffer


def test_each_delivery_uses_a_fresh_buffer_name(sim):
    tmux.deliver_preview("%7", PAYLOAD)
    tmux.deliver_preview("%7", PAYLOAD)
    names = [c[2] for c in sim.calls if c[0] == "load-buffer"]
    assert len(set(names)) == 2


def test_copy_mode_is_left_first_and_escape_is_never_sent(sim):
    sim.in_mode = True
    assert tmux.deliver_preview("%7", PAYLOAD).verified is True
    assert sim.calls[1] == ["send-keys", "-t", "%7", "-X", "cancel"]
    assert not any("Escape" in c or "Esc" in c for c in sim.calls)
    assert sim.submitted == [PAYLOAD]


@pytest.mark.parametrize("command", ["bash", "sh", "zsh", "vim", "python3", "codex"])
def test_not_the_agent_holds_and_types_nothing(sim, command):
    sim.command = command
    result = tmux.deliver_preview("%7", PAYLOAD, coding_agent="claude")
    assert result == tmux.Delivery("held", "agent_not_running", False)
    assert bool(result) is False
    assert sim.keystrokes == []


def test_not_the_agent_leaves_a_mode_alone(sim):
    sim.command, sim.in_mode = "bash", True
    tmux.deliver_preview("%7", PAYLOAD)
    assert sim.in_mode is True and sim.keystrokes == []


def test_permission_dialog_holds_and_is_never_answered(sim):
    sim.dialog = True
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("held", "permission_dialog", False)
    assert result.reason_text == "waiting for permission"
    assert sim.keystrokes == [] and sim.submitted == []


@pytest.mark.parametrize("draft", ["hello wor", "!", "line one\nline two"])
def test_draft_holds_and_is_never_merged(sim, draft):
    sim.draft = draft
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert (result.status, result.reason) == ("held", "draft")
    assert sim.keystrokes == [] and sim.draft == draft and sim.submitted == []


def test_busy_claude_still_gets_the_text(sim):
    """Claude Code queues input typed while it works and sends it as the next turn."""
    sim.busy = True
    result = tmux.deliver_preview("%7", PAYLOAD, coding_agent="claude")
    assert result == tmux.Delivery("delivered", None, True)
    assert sim.submitted == [PAYLOAD]


def test_busy_codex_is_held(sim):
    """Codex takes an Enter while it works as a steer that drops its running answer."""
    sim.backend = sim.command = "codex"
    sim.busy = True
    assert tmux.deliver_preview("%7", PAYLOAD, coding_agent="codex") == tmux.Delivery(
        "held", "busy"
    )
    assert sim.keystrokes == []
    sim.busy = False
    assert tmux.deliver_preview("%7", PAYLOAD, coding_agent="codex").verified is True
    assert sim.submitted == [PAYLOAD]


def test_busy_unknown_backend_is_held(sim, monkeypatch):
    sim.busy = True
    monkeypatch.setitem(tmux.HOLD_WHEN_BUSY, "claude", True)
    assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("held", "busy", False)
    assert sim.keystrokes == []


def test_pane_gone_fails_for_good(sim):
    sim.gone = True
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("failed", "pane_gone", False)
    assert tmux.pane_gate("%7", "claude") == tmux.Delivery("failed", "pane_gone", False)


def test_stale_pane_id_answered_with_empty_fields_is_gone(sim, monkeypatch):
    real = sim.__call__

    def stale(args, **kw):
        if args[0] == "display-message":
            sim.calls.append(list(args))
            return "\t\t\t\t\n"
        return real(args, **kw)

    monkeypatch.setattr(tmux, "run", stale)
    assert tmux.deliver_preview("%7", PAYLOAD).reason == "pane_gone"


def test_swallowed_enter_is_sent_again(sim):
    sim.swallow_enters = 1
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("delivered", None, True)
    enters = [c for c in sim.calls if c == ["send-keys", "-t", "%7", "Enter"]]
    assert len(enters) == 2
    assert sim.submitted == [PAYLOAD]
    assert len([c for c in sim.calls if c[0] == "paste-buffer"]) == 1  # text typed once


def test_enter_resend_is_bounded(sim, monkeypatch):
    monkeypatch.setattr(tmux, "ENTER_WAIT", 0.0)
    sim.swallow_enters = 10
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("delivered", None, False)
    enters = [c for c in sim.calls if c == ["send-keys", "-t", "%7", "Enter"]]
    assert len(enters) == tmux.ENTER_TRIES == 3


def test_slow_client_is_waited_for_not_re_entered(sim):
    sim.lag = 3  # the screen shows each keystroke three captures late
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("delivered", None, True)
    enters = [c for c in sim.calls if c == ["send-keys", "-t", "%7", "Enter"]]
    assert len(enters) == 1
    assert sim.submitted == [PAYLOAD]


def test_a_redraw_caught_halfway_does_not_stop_the_enter(sim):
    sim.glitch = ["", "\u2500" * 40 + "\n\u276f"]  # blank, then a half-drawn box
    assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("delivered", None, True)
    assert sim.submitted == [PAYLOAD]


def test_gate_looks_again_at_a_half_drawn_screen(sim):
    sim._stale = ["", "\u2500" * 40]  # the first two frames show no input box
    assert tmux.deliver_preview("%7", PAYLOAD).verified is True
    assert sim.submitted == [PAYLOAD]


def test_gate_holds_a_menu_that_stays(sim, monkeypatch):
    monkeypatch.setattr(tmux, "GATE_SETTLE", 0.03)
    sim.glitch = []
    sim._stale = ["Pick one\n\u276f 1. Alpha\n  2. Beta\nEnter to select"] * 1000
    assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("held", "menu")
    assert sim.keystrokes == []


def test_a_frozen_client_still_gets_its_enter(sim, monkeypatch):
    """The screen never changes after the paste (the client reads nothing): the Enter is
    queued behind the paste, as measured on the real clients."""
    monkeypatch.setattr(tmux, "PASTE_SHOW_WAIT", 0.0)
    sim.lag = 1
    assert tmux.deliver_preview("%7", PAYLOAD).verified is True
    assert sim.submitted == [PAYLOAD]


def test_a_dialog_that_opens_as_the_text_arrives_is_never_answered(sim, monkeypatch):
    monkeypatch.setattr(tmux, "PASTE_SHOW_WAIT", 0.05)
    sim.dialog_on_paste = True
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("delivered", None, False)
    assert not any(c[-1] == "Enter" for c in sim.calls)
    assert sim.submitted == []


def test_long_payload_is_cut_to_800_characters(sim):
    payload = "[cafleet msg 1234abcd from 5678ef01 T0]\n" + "x" * 2000
    assert tmux.deliver_preview("%7", payload).verified is True
    typed = sim.inputs[[c[0] for c in sim.calls].index("load-buffer")]
    assert len(typed) == tmux.PREVIEW_MAX_CHARS == 800
    assert typed.endswith("x\u2026") and typed.startswith(payload[:60])
    assert tmux.fit_preview("short") == "short"


@pytest.mark.parametrize(
    ("verb", "reason"),
    [
        ("display-message", "tmux_error"),
        ("capture-pane", "tmux_error"),
        ("load-buffer", "tmux_error"),
        ("paste-buffer", "tmux_error"),
        ("send-keys", "tmux_error"),
    ],
)
def test_any_tmux_failure_is_reported_never_raised(sim, verb, reason):
    sim.fail[verb] = "server exited unexpectedly"
    result = tmux.deliver_preview("%7", PAYLOAD)
    assert result == tmux.Delivery("failed", reason, False)
    if verb == "paste-buffer":
        assert sim.calls[-1][:2] == ["delete-buffer", "-b"]  # no private buffer left behind


def test_unexpected_exception_is_reported(sim, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("anything")

    monkeypatch.setattr(tmux, "capture_screen", boom)
    assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("failed", "tmux_error", False)


def test_without_tmux_nothing_runs(sim, monkeypatch):
    monkeypatch.setattr(tmux, "tmux_binary", lambda: None)
    assert tmux.deliver_preview("%7", PAYLOAD).status == "failed"
    assert sim.calls == []


def test_pane_gate_types_nothing(sim):
    assert tmux.pane_gate("%7", "claude") == tmux.Delivery("delivered", None, False)
    assert sim.keystrokes == []
    sim.draft = "half"
    assert tmux.pane_gate("%7", "claude") == tmux.Delivery("held", "draft", False)


def test_agent_gate_checks_only_the_process(sim):
    sim.dialog = True
    assert tmux.agent_gate("%7", "claude").status == "delivered"
    assert [c[0] for c in sim.calls] == ["display-message"]
    sim.command = "bash"
    assert tmux.agent_gate("%7", "claude").reason == "agent_not_running"


def test_exec_and_poll_trigger_paste_their_text(sim):
    assert tmux.send_exec("%7", "  ls | wc -l  ").verified is True
    sid, mid = "S" * 36, "M" * 36
    assert tmux.poll_trigger("%7", sid, mid).verified is True
    assert sim.submitted == [
        "! ls | wc -l",
        f"cafleet --session-id {sid} message poll --agent-id {mid}",
    ]
    assert [c[0] for c in sim.keystrokes] == ["paste-buffer", "send-keys"] * 2


def test_exec_is_gated(sim):
    sim.dialog = True
    result = tmux.send_exec("%7", "rm -rf build")
    assert (result.status, result.reason) == ("held", "permission_dialog")
    assert sim.keystrokes == []


# --- typist lock ------------------------------------------------------------------------------


def test_runtime_dir_and_lock_file_are_private(sim, tmp_path):
    lock = tmux.TypistLock("%7")
    assert lock.acquire() is True
    try:
        directory = os.path.dirname(lock.path)
        assert directory == str(tmp_path / "cafleet")
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o600
    finally:
        lock.release()


def test_runtime_dir_refuses_a_shared_directory(sim, tmp_path):
    shared = tmp_path / "cafleet"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(OSError):
        tmux.runtime_dir()
    assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("failed", "tmux_error", False)
    assert sim.keystrokes == []


def test_lock_is_per_pane_and_server(sim, monkeypatch):
    first = tmux.TypistLock("%7", wait=0.05)
    assert first.acquire()
    try:
        assert tmux.TypistLock("%7", wait=0.05).acquire() is False
        other_pane = tmux.TypistLock("%8", wait=0.05)
        assert other_pane.acquire() is True
        other_pane.release()
        monkeypatch.setenv("TMUX", "/tmp/another-server,2,0")
        other_server = tmux.TypistLock("%7", wait=0.05)
        assert other_server.acquire() is True
        other_server.release()
    finally:
        first.release()
    again = tmux.TypistLock("%7", wait=0.05)
    assert again.acquire() is True
    again.release()


def test_a_held_lock_holds_the_delivery(sim, monkeypatch):
    monkeypatch.setattr(tmux, "LOCK_WAIT", 0.05)
    other = tmux.TypistLock("%7")
    assert other.acquire()
    try:
        assert tmux.deliver_preview("%7", PAYLOAD) == tmux.Delivery("held", "busy", False)
        assert sim.calls == []  # not even the gate ran
    finally:
        other.release()


def test_two_threads_never_interleave(sim):
    results = []

    def send(i):
        results.append(tmux.deliver_preview("%7", f"[cafleet msg {i}]\nbody {i}"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.verified for r in results)
    assert sorted(sim.submitted) == sorted(f"[cafleet msg {i}]\nbody {i}" for i in range(4))
    verbs = [c[0] for c in sim.calls if c[0] in ("paste-buffer", "send-keys")]
    assert verbs == ["paste-buffer", "send-keys"] * 4


# --- foreground process names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "agent", "expected"),
    [
        (("/root/.cache/x/node_modules/.bin/claude",), "claude", True),
        (("/x/@anthropic-ai/claude-code/bin/claude.exe", "--name", "w"), "claude", True),
        (("node", "/x/node_modules/.bin/codex", "--ask-for-approval", "never"), "codex", True),
        (("node", "/x/@openai/codex/bin/codex.js"), "codex", True),
        (("/usr/bin/python3", "/repo/tests/bin/claude", "--name", "w"), "claude", True),
        (("python3.11", "/repo/tests/bin/codex"), "codex", True),
        (("-bash",), "claude", False),
        (("/bin/sh", "-c", "claude"), "claude", False),
        (("vim", "claude"), "claude", False),
        (("node", "/x/server.js"), "codex", False),
        (("/usr/bin/claude-helper",), "claude", False),
    ],
)
def test_program_names(argv, agent, expected):
    assert (agent in tmux._program_names(argv)) is expected
