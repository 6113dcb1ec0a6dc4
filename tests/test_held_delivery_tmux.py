"""Held delivery end to end on an isolated tmux server: a member pane that runs a plain shell
is never typed into; the background worker delivers the preview once the stand-in agent runs
in that pane, then exits when idle."""

from __future__ import annotations

import sqlite3

import pytest

from broker.clock import new_id, now
from tests.plugins.tmux_server import wait_log

pytestmark = pytest.mark.tmux


def rows(db, sql, *params):
    con = sqlite3.connect(db.path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


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
    director_pane = tmux_server.spawn("claude")
    tmux_server.wait_for(director_pane, "standin-claude")
    env = tmux_server.env(
        director_pane,
        CAFLEET_DATABASE_URL=fresh_db.url,
        CAFLEET_DELIVERY_AUTOSTART="1",
        CAFLEET_DELIVERY_IDLE_EXIT="3",
    )
    made = fresh_db.run("--json", "session", "create", env=env)
    assert made.code == 0, made.err
    sid, director = made.json["session_id"], made.json["director"]["agent_id"]
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
    task_id = rows(fresh_db, "SELECT task_id FROM tasks WHERE context_id=?", member)[0][0]
    tmux_server.wait_until(lambda: rows(fresh_db, "SELECT pid FROM delivery_workers"), 15,
                           "a background worker holds the lease")  # fmt: skip
    log = fresh_db.path.parent / "delivery-worker.log"
    assert log.stat().st_mode & 0o777 == 0o600

    # The worker keeps offering; the shell pane never receives the body.
    tmux_server.wait_until(
        lambda: int(rows(fresh_db, "SELECT attempts FROM task_deliveries WHERE task_id=?",
                         task_id)[0][0]) >= 3,
        10, "retries",
    )  # fmt: skip
    assert not pwned.exists()
    assert body not in tmux_server.capture(shell_pane)
    state = rows(fresh_db, "SELECT state, reason FROM task_deliveries WHERE task_id=?", task_id)
    assert state == [("held", "agent_not_running")]

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
        lambda: rows(fresh_db, "SELECT state FROM task_deliveries WHERE task_id=?", task_id)[0][0]
        in ("offered", "seen"),
        10, "delivered",
    )  # fmt: skip
    assert not pwned.exists()
    lines = [e["text"] for e in events if e["event"] == "line"]
    assert sum(body in line for line in lines) == 1  # exactly once

    # Nothing is held any more: the worker leaves after its idle time.
    tmux_server.wait_until(lambda: not rows(fresh_db, "SELECT pid FROM delivery_workers"), 20,
                           "the worker exits when idle")  # fmt: skip
    assert "nothing held for 3 s; exiting" in log.read_text()


def test_a_menu_held_past_the_timeout_is_escalated_once_and_never_answered(
    fresh_db, tmux_server, tmp_path
):
    director_log = tmp_path / "director.log"
    member_log = tmp_path / "member.log"
    director_pane = tmux_server.spawn("claude", env={"STANDIN_LOG": str(director_log)})
    tmux_server.wait_for(director_pane, "standin-claude")
    env = tmux_server.env(
        director_pane,
        CAFLEET_DATABASE_URL=fresh_db.url,
        CAFLEET_DELIVERY_AUTOSTART="1",
        CAFLEET_DELIVERY_IDLE_EXIT="2",
        CAFLEET_DELIVERY_HOLD_TIMEOUT="1.5",
    )
    made = fresh_db.run("--json", "session", "create", env=env)
    assert made.code == 0, made.err
    sid, director = made.json["session_id"], made.json["director"]["agent_id"]
    admin = made.json["administrator_agent_id"]
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
        return rows(
            fresh_db,
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
    held_task = rows(fresh_db, "SELECT task_id FROM tasks WHERE context_id=?", member)[0][0]
    tmux_server.wait_until(
        lambda: int(rows(fresh_db, "SELECT attempts FROM task_deliveries WHERE task_id=?",
                         held_task)[0][0]) >= 6,
        15, "more retries",
    )  # fmt: skip
    assert len(notes()) == 1
    member_events = [e["event"] for e in wait_log(member_log, lambda ev: ev)]
    assert "choice" not in member_events and "line" not in member_events
    assert "Which option do you prefer?" in tmux_server.capture(member_pane)
    state = rows(
        fresh_db, "SELECT state, reason, escalated_at FROM task_deliveries WHERE task_id=?",
        held_task,
    )  # fmt: skip
    assert state[0][:2] == ("held", "menu") and state[0][2] is not None
    # the member loses its placement (as deregistration does): the retries end
    con = sqlite3.connect(fresh_db.path)
    with con:
        con.execute("DELETE FROM agent_placements WHERE agent_id=?", (member,))
    con.close()
    tmux_server.wait_until(lambda: not rows(fresh_db, "SELECT pid FROM delivery_workers"), 20,
                           "the worker exits once the member is gone")  # fmt: skip
    assert rows(fresh_db, "SELECT state, reason FROM task_deliveries WHERE task_id=?",
                held_task) == [("failed", "recipient_gone")]  # fmt: skip
