"""Held delivery end to end on an isolated tmux server: a member pane that runs a plain shell
is never typed into; the background worker delivers the preview once the stand-in agent runs
in that pane, then exits when idle."""

from __future__ import annotations

import sqlite3

import pytest

from broker.clock import new_id, now
from tests.plugins.tmux_server import wait_log

pytestmark = pytest.mark.tmux


def director_session(db, server, log=None, **delivery):
    """A stand-in claude Director pane (logging to ``log`` when given) and a session made in
    it by ``cafleet session create``, with the background worker allowed to start and the
    ``CAFLEET_DELIVERY_*`` settings given. Returns the calls' environment and the JSON."""
    pane = server.spawn("claude", env={"STANDIN_LOG": str(log)} if log else None)
    server.wait_for(pane, "standin-claude")
    settings = {f"CAFLEET_DELIVERY_{key.upper()}": value for key, value in delivery.items()}
    env = server.env(pane, CAFLEET_DATABASE_URL=db.url, CAFLEET_DELIVERY_AUTOSTART="1", **settings)
    made = db.run("--json", "session", "create", env=env)
    assert made.code == 0, made.err
    return env, made.json


def delivery(db, task_id: str, columns: str = "state, reason") -> list[tuple]:
    """The task's delivery row: the columns asked for."""
    return db.rows(f"SELECT {columns} FROM task_deliveries WHERE task_id=?", task_id)


def attempts(db, task_id: str) -> int:
    return int(delivery(db, task_id, "attempts")[0][0])


def workers(db) -> list[tuple]:
    """The background delivery worker's lease (empty when none runs)."""
    return db.rows("SELECT pid FROM delivery_workers")


def task_to(db, member: str) -> str:
    """The id of the one message sent to ``member``."""
    return db.rows("SELECT task_id FROM tasks WHERE context_id=?", member)[0][0]


def add_shell_member(db, sid: str, director: str, pane: str, window: str) -> str:
    member = new_id()
    stamp = now()
    con = sqlite3.connect(db.path)
    with con:
        con.execute(
            "INSERT INTO agents (agent_id,session_id,name,description,status,registered_at,"
            "deregistered_at,agent_card_json) VALUES (?,?,?,?,?,?,NULL,?)",
            (
                member,
                sid,
                "shelly",
                "a pane without its agent",
                "active",
                stamp,
                '{"name":"shelly"}',
            ),
        )
        con.execute(
            "INSERT INTO agent_placements (agent_id,director_agent_id,tmux_session,tmux_window_id,"
            "tmux_pane_id,coding_agent,created_at) VALUES (?,?,?,?,?,?,?)",
            (member, director, "cafleet-test", window, pane, "claude", stamp),
        )
    con.close()
    return member


def test_held_in_a_shell_pane_then_delivered_by_the_worker(fresh_db, tmux_server, tmp_path):
    env, made = director_session(fresh_db, tmux_server, idle_exit="3")
    sid, director = made["session_id"], made["director"]["agent_id"]
    window, shell_pane = tmux_server.new_window("/bin/sh")
    member = add_shell_member(fresh_db, sid, director, shell_pane, window)

    pwned = tmp_path / "pwned"
    body = f"touch {pwned}"
    sent = fresh_db.run(
        "--session-id", sid, "message", "send", "--agent-id", director, "--to", member,
        "--text", body, env=env,
    )  # fmt: skip
    assert sent.code == 0, sent.err
    assert sent.lines[0] == "Message sent. Preview held: agent not running."
    task_id = task_to(fresh_db, member)
    tmux_server.wait_until(lambda: workers(fresh_db), 15, "a background worker holds the lease")
    log = fresh_db.path.parent / "delivery-worker.log"
    assert log.stat().st_mode & 0o777 == 0o600

    # The worker keeps offering; the shell pane never receives the body.
    tmux_server.wait_until(lambda: attempts(fresh_db, task_id) >= 3, 10, "retries")
    assert not pwned.exists()
    assert body not in tmux_server.capture(shell_pane)
    assert delivery(fresh_db, task_id) == [("held", "agent_not_running")]

    # The agent starts in that pane (the test's own keystrokes into its shell): the pane
    # comes to rest and the worker delivers the preview.
    standin_log = tmp_path / "standin.log"
    tmux_server.run("send-keys", "-t", shell_pane, "-l", f"STANDIN_LOG={standin_log} exec claude")
    tmux_server.run("send-keys", "-t", shell_pane, "Enter")
    events = wait_log(
        standin_log,
        lambda ev: any(e["event"] == "line" and body in e.get("text", "") for e in ev),
        timeout=15,
    )
    started = next(e["t"] for e in events if e["event"] == "start")
    got = next(e["t"] for e in events if e["event"] == "line" and body in e.get("text", ""))
    assert got - started < 5  # the figure itself is in bench/bench_delivery.py
    tmux_server.wait_until(
        lambda: delivery(fresh_db, task_id, "state")[0][0] in ("offered", "seen"), 10, "delivered"
    )
    assert not pwned.exists()
    lines = [e["text"] for e in events if e["event"] == "line"]
    assert sum(body in line for line in lines) == 1  # exactly once

    # Nothing is held any more: the worker leaves after its idle time.
    tmux_server.wait_until(lambda: not workers(fresh_db), 20, "the worker exits when idle")
    assert "nothing held for 3 s; exiting" in log.read_text()


def test_a_menu_held_past_the_timeout_is_escalated_once_and_never_answered(
    fresh_db, tmux_server, tmp_path
):
    director_log = tmp_path / "director.log"
    member_log = tmp_path / "member.log"
    env, made = director_session(
        fresh_db, tmux_server, director_log, idle_exit="2", hold_timeout="1.5"
    )
    sid, director = made["session_id"], made["director"]["agent_id"]
    admin = made["administrator_agent_id"]
    window, member_pane = tmux_server.new_window(
        "env", f"STANDIN_LOG={member_log}", "STANDIN_MENU=1", "claude"
    )
    tmux_server.wait_for(member_pane, "Which option do you prefer?")
    member = add_shell_member(fresh_db, sid, director, member_pane, window)

    sent = fresh_db.run(
        "--session-id", sid, "message", "send", "--agent-id", director, "--to", member,
        "--text", "3", env=env,
    )  # fmt: skip
    assert sent.lines[0] == "Message sent. Preview held: menu or question open."

    def notes():
        return fresh_db.rows(
            "SELECT task_id, context_id, text FROM tasks WHERE from_agent_id=?",
            admin,
        )

    tmux_server.wait_until(lambda: notes(), 20, "an escalation")
    ((note_id, to, text),) = notes()
    assert to == director
    assert "member shelly" in text and "menu or question open" in text
    # the Director's pane got the escalation as an ordinary preview
    wait_log(director_log, lambda ev: any(
        e["event"] == "line" and "Delivery held: member shelly" in e.get("text", "") for e in ev
    ), timeout=15)  # fmt: skip
    # more passes happen; still exactly one escalation, and the menu was never answered
    held_task = task_to(fresh_db, member)
    tmux_server.wait_until(lambda: attempts(fresh_db, held_task) >= 6, 15, "more retries")
    assert len(notes()) == 1
    member_events = [e["event"] for e in wait_log(member_log, lambda ev: ev)]
    assert "choice" not in member_events and "line" not in member_events
    assert "Which option do you prefer?" in tmux_server.capture(member_pane)
    state = delivery(fresh_db, held_task, "state, reason, escalated_at")
    assert state[0][:2] == ("held", "menu") and state[0][2] is not None
    # the member loses its placement (as deregistration does): the retries end
    fresh_db.execute("DELETE FROM agent_placements WHERE agent_id=?", member)
    tmux_server.wait_until(
        lambda: not workers(fresh_db), 20, "the worker exits once the member is gone"
    )
    assert delivery(fresh_db, held_task) == [("failed", "recipient_gone")]
