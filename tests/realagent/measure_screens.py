"""Measure the real clients' screens and write them as fixtures.

Run: ``.venv/bin/python -m tests.realagent.measure_screens claude|codex [outdir]``

Starts the client against the mock model in an isolated tmux server, walks it through
idle / draft / lone ``!`` / busy / busy with queued input / permission dialog / exited, writes
``capture-pane -p`` of each to ``<outdir>/<backend>-<state>.txt`` (default
``tests/realagent/screens``) and prints a JSON report (foreground processes, what happened to
input typed while busy, whether the dialog's command ran).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.plugins.tmux_server import TmuxTestServer
from tests.realagent.harness import CLAUDE_DIALOG, RealAgent
from tests.realagent.mockmodel import MockModel, user_messages

HERE = Path(__file__).resolve().parent
DIALOG_WORDS = (CLAUDE_DIALOG, "Would you like to run", "Allow command", "approve")


def settle(agent: RealAgent, quiet: float = 1.0, timeout: float = 10.0) -> str:
    """Wait until the screen has not changed for ``quiet`` seconds (spinners excluded is not
    attempted: a busy screen keeps changing, so this returns after ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = agent.screen()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = agent.screen()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def main(argv: list[str]) -> int:
    name = argv[0]
    outdir = Path(argv[1]) if len(argv) > 1 else HERE / "screens"
    outdir.mkdir(parents=True, exist_ok=True)
    report: dict = {"client": name}
    sockdir = Path(tempfile.mkdtemp(prefix="cfm-"))
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env["SHELL"] = "/bin/sh"
    server = TmuxTestServer(sockdir / "sock", env)
    server.start()
    model = MockModel().start()
    workdir = Path(tempfile.mkdtemp(prefix="cfw-"))
    agent = RealAgent(server, name, model, workdir)
    backend = agent.backend
    current = {"agent": agent}

    def save(state: str, text: str) -> None:
        (outdir / f"{name}-{state}.txt").write_text(text, encoding="utf-8")
        # The same screen with attributes (-e): tells a dim placeholder from typed text.
        who = current["agent"]
        if who is not None:
            ansi = server.run("capture-pane", "-p", "-e", "-t", who.pane)
            (outdir / f"{name}-{state}.ansi").write_text(ansi, encoding="utf-8")

    try:
        agent.start()
        save("idle", settle(agent, 1.5))
        report["foreground_direct"] = agent.foreground()

        agent.send_keys("hello wor", literal=True)
        agent.wait_text("hello wor", 10)
        save("draft", settle(agent))
        agent.send_keys(*["BSpace"] * 9)
        agent.wait_gone_text("hello wor", 10)
        agent.wait_idle(10)

        agent.send_keys("!", literal=True)
        save("bang", settle(agent))
        agent.send_keys("BSpace")
        time.sleep(0.5)
        save("after-bang-cleared", settle(agent))

        # -- busy, then input typed and submitted (Enter) while busy
        def busy_round(tag: str, note: str, submit_key: str) -> None:
            turns_before = model.turn_count(backend)
            model.busy(backend, 12, text=f"busy-done-{tag}")
            agent.paste(f"start the busy work {tag}")
            time.sleep(0.3)
            agent.send_keys("Enter")
            agent.wait_text("esc to interrupt", 15)
            time.sleep(1.5)
            save(f"busy{tag}", agent.screen())
            agent.send_keys(note, literal=True)
            time.sleep(0.4)
            save(f"busy{tag}-draft", agent.screen())
            agent.send_keys(submit_key)
            time.sleep(1.5)
            save(f"busy{tag}-queued", agent.screen())
            agent.wait_screen(
                lambda s: agent.is_idle(s) and "esc to interrupt" not in s,
                40,
                "idle after busy",
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not model.user_turns_containing(backend, note):
                time.sleep(0.2)
            final = settle(agent, 1.5)
            save(f"after-busy{tag}", final)
            recs = model.requests(backend)[turns_before:]
            report[f"busy{tag}"] = {
                "submit_key": submit_key,
                "note_in_user_messages": model.user_turns_containing(backend, note),
                "busy_answer_shown": f"busy-done-{tag}" in agent.server.capture(agent.pane),
                "turn_requests": len(recs),
                "last_user_message_per_request": [
                    (user_messages(backend, r.body) or [None])[-1] for r in recs
                ],
            }

        busy_round("", "queued note one", "Enter")
        if name == "codex":
            busy_round("-tab", "queued note two", "Tab")

        # -- permission dialog
        marker = agent.cwd / "dialog-marker"
        model.bash(backend, f"touch {marker}", "Create the marker file")
        agent.paste("please run the tool")
        time.sleep(0.3)
        agent.send_keys("Enter")
        agent.wait_screen(lambda s: any(w in s for w in DIALOG_WORDS), 30, "a permission dialog")
        time.sleep(1.0)
        save("dialog", agent.screen())
        report["foreground_dialog"] = agent.foreground()["tmux"]
        agent.send_keys("x", literal=True)  # typed text while the dialog is open
        time.sleep(0.5)
        save("dialog-typed", agent.screen())
        report["marker_before_enter"] = marker.exists()
        agent.send_keys("Enter")  # what the old preview's Enter would do
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and not marker.exists():
            time.sleep(0.1)
        report["marker_after_enter"] = marker.exists()
        agent.wait_screen(lambda s: agent.is_idle(s), 30, "idle after the dialog")
        save("after-dialog", settle(agent, 1.5))
        report["turns_total"] = model.turn_count(backend)
    except Exception as exc:
        report["error"] = repr(exc)
        raise
    finally:
        agent.stop()
        if "error" in report:
            print(json.dumps(report, indent=1, default=str))

    # -- started from a shell, then exited
    shell_agent = RealAgent(server, name, model, workdir / "fromshell")
    current["agent"] = shell_agent
    try:
        shell_agent.cwd.mkdir(parents=True, exist_ok=True)
        cwd = shell_agent.cwd.resolve()
        from tests.realagent.harness import client_path, write_claude_home, write_codex_home

        if name == "claude":
            write_claude_home(shell_agent.home, cwd)
        else:
            write_codex_home(shell_agent.home / ".codex", cwd, model.url)
        args = [
            "new-window",
            "-d",
            "-t",
            server.session,
            "-c",
            str(cwd),
            "-P",
            "-F",
            "#{pane_id} #{pane_pid}",
        ]
        for key, value in {**shell_agent.env(), "PS1": "$ "}.items():
            args += ["-e", f"{key}={value}"]
        args += ["bash", "--norc", "--noprofile", "-i"]
        pane, pid = server.run(*args).split()
        shell_agent.pane, shell_agent.pane_pid = pane, int(pid)
        shell_agent.wait_screen(lambda s: s.rstrip().endswith("$"), 10, "shell prompt")
        save("shell", settle(shell_agent))
        report["foreground_shell"] = shell_agent.foreground()
        cmd = " ".join([str(client_path(name)), *shell_agent.extra_args])
        shell_agent.send_keys(cmd, literal=True)
        time.sleep(0.2)
        shell_agent.send_keys("Enter")
        shell_agent.wait_idle(60)
        settle(shell_agent, 1.5)
        report["foreground_from_shell"] = shell_agent.foreground()
        shell_agent.send_keys("/quit" if name == "codex" else "/exit", literal=True)
        time.sleep(0.5)
        shell_agent.send_keys("Enter")
        shell_agent.wait_screen(
            lambda s: s.rstrip().endswith("$"), 30, "the shell prompt after exit"
        )
        save("exited", settle(shell_agent, 1.5))
        report["foreground_after_exit"] = shell_agent.foreground()["tmux"]
    finally:
        shell_agent.stop()
        model.stop()
        server.kill()
        report["requests"] = [
            {"backend": r.backend, "path": r.path, "turn": r.turn}
            for r in model.requests(turns_only=False)
        ]
        print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
