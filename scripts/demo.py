"""A short live demonstration of cafleet (README command (a)).

Outer role (default): starts a *private* tmux server (its own socket, never the user's),
runs this script again inside its first pane as the Director, prints each line of the
Director's log as soon as it is written (:func:`follow`), then stops the server.

Director role (``--director LOG``): runs inside the pane, so ``TMUX``/``TMUX_PANE`` are set
exactly as for a real Director. It uses the default database
(``~/.local/share/cafleet/registry.db``) and the stand-in ``claude`` from ``tests/bin``
(a small REPL that behaves like a coding agent in a pane):

1. ``db init``, ``session create``;
2. ``member create`` twice (two stand-in members in new panes);
3. ``message send`` to each member: the inline preview appears in their panes;
4. each member answers through its shell (``member exec`` types ``! cafleet ... message send``);
5. the Director polls, acknowledges, broadcasts, and checks ``member list --activity``;
6. ``member delete`` both members, ``session delete``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDINS = REPO / "tests" / "bin"
CAFLEET = str(Path(sys.executable).parent / "cafleet")


class Director:
    def __init__(self, log_path: str):
        self.log = open(log_path, "a", encoding="utf-8")

    def say(self, text: str) -> None:
        self.log.write(text + "\n")
        self.log.flush()

    def run(self, *argv: str, show: bool = True) -> str:
        cmd = ["cafleet", *argv]
        if show:
            self.say(f"$ {shlex.join(cmd)}")  # before it runs: slow steps show what they do
        proc = subprocess.run([CAFLEET, *argv], capture_output=True, text=True)
        if show:
            if proc.stdout:
                self.say(proc.stdout.rstrip("\n"))
            if proc.stderr:
                self.say(proc.stderr.rstrip("\n"))
        if proc.returncode != 0:
            raise SystemExit(f"demo step failed ({proc.returncode}): {shlex.join(cmd)}")
        return proc.stdout

    def wait_for_pane(self, sid, me, member, needle, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.run(
                "--session-id",
                sid,
                "member",
                "capture",
                "--agent-id",
                me,
                "--member-id",
                member,
                "--lines",
                "40",
                show=False,
            )
            if needle in out or time.monotonic() > deadline:
                return out
            time.sleep(0.2)

    def main(self) -> None:
        self.say("== 1. database and session")
        self.run("db", "init")
        lines = self.run("session", "create", "--label", "cafleet demo").splitlines()
        sid, me = lines[0], lines[1]
        s = ("--session-id", sid)

        self.say("\n== 2. spawn two stand-in members (new panes, focus stays here)")
        members = []
        for name, role in (("Alice", "writes the code"), ("Bob", "reviews the code")):
            out = self.run(
                *s, "member", "create", "--agent-id", me, "--name", name, "--description", role
            )
            members.append((name, out.split()[0]))
        self.run(*s, "member", "list", "--agent-id", me)

        self.say("\n== 3. messages arrive as inline previews in the members' panes")
        for name, mid in members:
            self.run(
                *s,
                "message",
                "send",
                "--agent-id",
                me,
                "--to",
                mid,
                "--text",
                f"Hello {name}: please report your status.",
            )
        for name, mid in members:
            pane = self.wait_for_pane(sid, me, mid, "report your status.")
            # The stand-in agent prints every line it receives as "got: <line>".
            got = [
                line[line.index("got: ") + 5 :].rstrip()
                for line in pane.splitlines()
                if "got: " in line
            ]
            self.say(f"-- {name}'s pane received (seen with cafleet member capture):")
            self.say("\n".join("   | " + line for line in got[-2:]))

        self.say("\n== 4. members poll, acknowledge and answer (typed into their shells)")
        for name, mid in members:
            task8 = self.run(*s, "message", "poll", "--agent-id", mid, show=False).splitlines()[0][
                1:9
            ]
            answer = (
                f"cafleet --session-id {sid} message ack --agent-id {mid} --task-id "
                f"{task8} --quiet && cafleet --session-id {sid} message send "
                f"--agent-id {mid} --to {me} --quiet --text '{name}: ready.'"
            )
            self.run(*s, "member", "exec", "--agent-id", me, "--member-id", mid, answer)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            polled = self.run("--json", *s, "message", "poll", "--agent-id", me, show=False)
            if polled.count('"id"') >= 2:
                break
            time.sleep(0.3)

        self.say("\n== 5. the Director reads and acknowledges the answers")
        out = self.run(*s, "message", "poll", "--agent-id", me)
        for line in out.splitlines():
            if line.startswith("["):
                self.run(*s, "message", "ack", "--agent-id", me, "--task-id", line[1:9], "--quiet")
        self.run(
            *s, "message", "broadcast", "--agent-id", me, "--text", "Thanks all, shutting down."
        )
        self.run(*s, "member", "list", "--agent-id", me, "--activity")

        self.say(
            "\n== 6. shutdown: delete members (each /exit waits for its pane), then the session"
        )
        for _name, mid in members:
            self.run(*s, "member", "delete", "--agent-id", me, "--member-id", mid)
        self.run(*s, "member", "list", "--agent-id", me)
        self.run("session", "delete", sid)
        self.say("\nDemo finished.")


def follow(log: Path, done: Path, write, *, deadline: float, poll: float = 0.1) -> bool:
    """Copy ``log`` to ``write`` as it grows, until ``done`` exists (True) or the monotonic
    ``deadline`` passes (False). Only whole lines are written, each as soon as it is seen."""
    offset = 0
    pending = b""
    while True:
        finished = done.exists()  # checked before the last read: nothing written is missed
        try:
            with open(log, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        pending += chunk
        if b"\n" in pending:
            complete, _, pending = pending.rpartition(b"\n")
            write(complete.decode("utf-8", "replace") + "\n")
        if finished:
            if pending:
                write(pending.decode("utf-8", "replace") + "\n")
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)


def _print_now(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def outer() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cafleet-demo-"))
    sock = tmp / "sock"
    log = tmp / "demo.log"
    done = tmp / "done"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env["PATH"] = (
        f"{STANDINS}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    )
    env.pop("CAFLEET_DATABASE_URL", None)  # the embedded default database
    inner = (
        f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} --director "
        f"{shlex.quote(str(log))}; echo $? > {shlex.quote(str(done))}"
    )
    tmux = ["tmux", "-S", str(sock)]
    subprocess.run(
        [
            *tmux,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "cafleet-demo",
            "-x",
            "200",
            "-y",
            "50",
            "/bin/sh",
            "-c",
            inner,
        ],
        env=env,
        check=True,
    )
    try:
        if not follow(log, done, _print_now, deadline=time.monotonic() + 120):
            print("Error: the demo did not finish within 120 s.", file=sys.stderr)
            return 1
        status = ""
        for _ in range(100):  # "echo $? > done" creates the file before writing to it
            status = done.read_text().strip()
            if status:
                break
            time.sleep(0.02)
        return int(status or 1)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--director":
        Director(sys.argv[2]).main()
    else:
        sys.exit(outer())
