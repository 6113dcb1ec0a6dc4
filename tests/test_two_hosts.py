"""Many hosts on one PostgreSQL registry (issue 13 point 4): two isolated tmux servers stand
for two machines, each with its own ``CAFLEET_HOST_ID`` and its own delivery worker.

Messages cross between them; every preview is typed by the worker of the host that owns the
recipient's pane, never by the sender's side, and the sender's command returns without
waiting for the other host. Member commands against the other host's pane are refused with
an error naming that host."""

from __future__ import annotations

import signal
import subprocess

import pytest

from broker.clock import new_id, now
from tests.conftest import CAFLEET
from tests.plugins.tmux_server import isolated_server, received_lines, require_tmux, wait_log

pytestmark = [pytest.mark.postgres, pytest.mark.tmux, pytest.mark.e2e]


@pytest.fixture
def other_tmux_server():
    """A second isolated tmux server (the second host), made like ``tmux_server``."""
    require_tmux()
    with isolated_server("cft-b-") as server:
        yield server


def host_env(server, pane, url, host):
    return server.env(
        pane,
        CAFLEET_DATABASE_URL=url,
        CAFLEET_HOST_ID=host,
        CAFLEET_DELIVERY_AUTOSTART="0",
        CAFLEET_DELIVERY_IDLE_EXIT="120",
    )


def add_member_on(db, sid, director, pane, window, host) -> str:
    """A member whose pane lives on ``host`` (as ``member create`` run there records it)."""
    member = new_id()
    stamp = now()
    db.execute(
        "INSERT INTO agents (agent_id,session_id,name,description,status,registered_at,"
        "deregistered_at,agent_card_json) VALUES (?,?,?,?,?,?,NULL,?)",
        member, sid, "remote", "a member on host b", "active", stamp, '{"name":"remote"}',
    )  # fmt: skip
    db.execute(
        "INSERT INTO agent_placements (agent_id,director_agent_id,tmux_session,tmux_window_id,"
        "tmux_pane_id,coding_agent,created_at,host_id) VALUES (?,?,?,?,?,?,?,?)",
        member, director, "cafleet-test", window, pane, "claude", stamp, host,
    )  # fmt: skip
    return member


def start_worker(env) -> subprocess.Popen:
    return subprocess.Popen(
        [CAFLEET, "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the worker this test started
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode()


def test_two_hosts_share_one_registry_and_type_only_their_own_panes(
    tmux_server, other_tmux_server, tmp_path, request
):
    from tests.conftest import postgres_db

    db = postgres_db(request, initialised=True)
    a, b = tmux_server, other_tmux_server
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    director_pane = a.spawn("claude", env={"STANDIN_LOG": str(log_a)})
    a.wait_for(director_pane, "standin-claude")
    window_b, member_pane = b.new_window("env", f"STANDIN_LOG={log_b}", "claude")
    b.wait_for(member_pane, "standin-claude")
    env_a = host_env(a, director_pane, db.url, "host-a")
    env_b = host_env(b, b.first_pane, db.url, "host-b")

    made = db.run("--json", "session", "create", env=env_a)
    assert made.code == 0, made.err
    sid, director = made.json["session_id"], made.json["director"]["agent_id"]
    assert db.rows("SELECT host_id FROM agent_placements WHERE agent_id=?", director) == [
        ("host-a",)
    ]
    member = add_member_on(db, sid, director, member_pane, window_b, "host-b")

    workers = [start_worker(env_a), start_worker(env_b)]
    try:

        def send_across(sender, to, text, env, log):
            """Stored at once, the preview left to the worker of the recipient's host."""
            sent = db.run(
                "--session-id", sid, "message", "send", "--agent-id", sender, "--to", to,
                "--text", text, env=env,
            )  # fmt: skip
            assert sent.code == 0, sent.err
            assert (
                sent.lines[0]
                == "Message sent. Preview held: waiting for the worker of the pane's host."
            )
            wait_log(log, lambda ev: any(text in e.get("text", "") for e in ev), timeout=20)

        # A → B: typed into the member's pane by host b's worker.
        to_b = "to the member on host b"
        send_across(director, member, to_b, env_a, log_b)
        # B → A: typed into the Director's pane by host a's worker.
        to_a = "back to the director on host a"
        send_across(member, director, to_a, env_b, log_a)

        def recorded():  # each worker records its outcome once the preview is verified
            states = dict(
                db.rows(
                    "SELECT t.text, d.state FROM tasks t JOIN task_deliveries d USING (task_id)"
                )
            )
            return {states[to_b], states[to_a]} <= {"offered", "seen"}

        a.wait_until(recorded, 15, "both deliveries recorded as delivered")

        # Each preview arrived once, on its own side only.
        lines_a, lines_b = received_lines(log_a), received_lines(log_b)
        assert sum(to_a in line for line in lines_a) == 1
        assert sum(to_b in line for line in lines_b) == 1
        assert not any(to_b in line for line in lines_a)
        assert not any(to_a in line for line in lines_b)

        # Member commands from host a against host b's pane: refused, nothing typed there.
        for argv in (
            ["member", "capture", "--agent-id", director, "--member-id", member],
            ["member", "send-input", "--agent-id", director, "--member-id", member,
             "--freetext", "hello"],
            ["member", "delete", "--agent-id", director, "--member-id", member],
        ):  # fmt: skip
            r = db.run("--session-id", sid, *argv, env=env_a)
            assert (r.code, r.out) == (1, ""), (argv, r.out, r.err)
            assert r.err == (
                f"Error: member {member} runs on host 'host-b', not on this host ('host-a'); "
                "run this command on 'host-b'.\n"
            )
        assert b.pane_alive(member_pane)
        assert not any("hello" in line for line in received_lines(log_b))
        # ...and on host b the same capture works.
        env_b_director = {**env_b, "CAFLEET_HOST_ID": "host-b"}
        r = db.run(
            "--session-id", sid, "member", "capture", "--agent-id", director,
            "--member-id", member, env=env_b_director,
        )  # fmt: skip
        assert r.code == 0, r.err
        assert "standin-claude" in r.out

        # Each host has its own worker lease.
        keys = sorted(k.split(":", 1)[0] for (k,) in db.rows("SELECT key FROM delivery_workers"))
        assert keys == ["host-a", "host-b"]
    finally:
        errors = [stop(w) for w in workers]
    assert all("Traceback" not in e for e in errors), errors


@pytest.mark.parametrize("value", ["-x", "a b", "x" * 64, "host/1", "é"])
def test_bad_host_id_fails_before_anything_is_written(fresh_db, value):
    r = fresh_db.run("--json", "session", "list", env={"CAFLEET_HOST_ID": value})
    assert r.code == 1
    assert r.err_json["error"] == (
        f"invalid value for CAFLEET_HOST_ID: '{value}' (expected 1-63 letters, digits, "
        "'.', '_' or '-', starting with a letter or digit)."
    )


def test_host_id_defaults_to_the_host_name(monkeypatch):
    import socket

    from broker.conf import host_id

    monkeypatch.setattr(socket, "gethostname", lambda: "build-07.example.org")
    assert host_id({}) == "build-07.example.org"
    assert host_id({"CAFLEET_HOST_ID": "box"}) == "box"
    monkeypatch.setattr(socket, "gethostname", lambda: "odd name")
    assert host_id({}) == "localhost"
