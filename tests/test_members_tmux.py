"""``cafleet member ...`` end to end: the real CLI in subprocesses, a real isolated tmux
server and the stand-in coding agents of ``tests/bin`` (acceptance 161-219).

Every ``cafleet`` call runs with ``TMUX``/``TMUX_PANE`` naming the test's own server (so
plain ``tmux`` reaches it) and ``CAFLEET_DATABASE_URL`` naming the test's file database.
"""

import json
import time

import pytest

from tests.members_support import DELETE_RECOVERY, default_prompt, delete_report
from tests.plugins.tmux_server import STANDIN_READY, read_log, received_lines, wait_log
from tests.tmux_support import TmuxFleet, ids

pytestmark = pytest.mark.tmux


class Fleet(TmuxFleet):
    """A session created by ``cafleet session create`` in the server's first pane."""

    def status(self, agent_id) -> str:
        return self.db.rows("SELECT status FROM agents WHERE agent_id=?", agent_id)[0][0]


@pytest.fixture
def fleet(fresh_db, tmux_server):
    return Fleet(fresh_db, tmux_server)


# ------------------------------------------------------------------------------ create / list
def test_spawn_claude_and_codex_members(fleet, tmp_path):
    server = fleet.server
    alice_log, bob_log = tmp_path / "alice.log", tmp_path / "bob.log"
    server.set_env("STANDIN_LOG", str(alice_log))
    text = fleet.member(
        "create", "--agent-id", fleet.did[:8], "--name", "alice", "--description", "first member"
    )
    assert text.code == 0, text.err
    assert text.err == ""
    aid8, name, backend, pane = text.out.split()
    assert (name, backend) == ("alice", "backend=claude")
    alice_pane = pane.removeprefix("pane=")
    aid = fleet.db.rows("SELECT agent_id FROM agents WHERE name='alice'")[0][0]
    assert aid.startswith(aid8)
    start = wait_log(alice_log, lambda ev: any(e["event"] == "start" for e in ev), timeout=15)[0]
    settings = fleet.db.path.parent / "hooks" / f"member-{aid}.json"
    assert start["argv"] == [
        "--permission-mode",
        "dontAsk",
        "--name",
        "alice",
        "--settings",  # issue 10: the member's hooks and allow rules (docs/hooks.md)
        str(settings),
        default_prompt(fleet.sid, aid, fleet.did),
    ]
    assert oct(settings.stat().st_mode & 0o777) == "0o600"
    assert "Bash(cafleet:*)" in json.loads(settings.read_text())["permissions"]["allow"]
    # -e CAFLEET_DATABASE_URL: the pane sees the caller's value, not the server's own.
    assert start["env"] == {"CAFLEET_DATABASE_URL": fleet.db.url}
    screen = server.wait_for(alice_pane, "standin-env CAFLEET_DATABASE_URL=")
    assert 'standin-claude argv=["--permission-mode", "dontAsk", "--name", "alice"' in screen
    assert f"standin-env CAFLEET_DATABASE_URL={fleet.db.url}" in screen
    server.wait_until(
        lambda: server.display(alice_pane, "#{pane_title}") == "alice", message="claude pane title"
    )

    bob = fleet.spawn(
        "bob", "--", "hi", "{agent_id}", "{{not", "a", "field}}", backend="codex", log=bob_log
    )
    bid = bob["agent_id"]
    assert list(bob) == ["agent_id", "name", "registered_at", "placement"]
    assert bob["placement"] == {
        "director_agent_id": fleet.did,
        "tmux_session": server.session,
        "tmux_window_id": server.window,
        "tmux_pane_id": bob["placement"]["tmux_pane_id"],
        "coding_agent": "codex",
        "created_at": bob["registered_at"],
    }
    start = wait_log(bob_log, lambda ev: bool(ev), timeout=15)[0]
    assert start["argv"] == [
        "--ask-for-approval",
        "never",
        "--sandbox",
        "workspace-write",
        f"hi {bid} {{not a field}}",
    ]

    # -d: the Director's pane keeps focus; all three panes share the caller's window.
    assert server.display(server.first_pane, "#{pane_active}") == "1"
    bob_pane = bob["placement"]["tmux_pane_id"]
    assert set(server.window_panes()) == {server.first_pane, alice_pane, bob_pane}
    assert fleet.db.rows("SELECT tmux_pane_id FROM agent_placements WHERE agent_id=?", aid) == [
        (alice_pane,)
    ]

    listing = fleet.member("list", "--agent-id", fleet.did)
    lines = listing.out.splitlines()
    assert lines[0] == "2 members:"
    assert lines[1].split() == [
        "agent_id",
        "name",
        "status",
        "backend",
        "session",
        "window_id",
        "pane_id",
        "created_at",
    ]
    assert lines[3].split()[:7] == [
        aid[:8],
        "alice",
        "active",
        "claude",
        server.session,
        server.window,
        alice_pane,
    ]
    assert lines[4].split()[:7] == [
        bid[:8],
        "bob",
        "active",
        "codex",
        server.session,
        server.window,
        bob_pane,
    ]
    assert all(line == line.rstrip() for line in lines)
    as_json = fleet.member("list", "--agent-id", fleet.did, json_mode=True).json
    assert [m["agent_id"] for m in as_json] == [aid, bid]


def test_create_outside_tmux_registers_nothing(fleet):
    before = fleet.db.rows("SELECT count(*) FROM agents")
    res = fleet.member(
        "create", "--agent-id", fleet.did, "--name", "x", "--description", "y", env={"TMUX": None}
    )
    assert (res.code, res.err) == (
        1,
        "Error: cafleet member commands must be run inside a tmux session\n",
    )
    res = fleet.member(
        "create",
        "--agent-id",
        fleet.did,
        "--name",
        "x",
        "--description",
        "y",
        env={"TMUX_PANE": None},
    )
    assert res.err == "Error: TMUX_PANE is not set; not running inside a tmux pane\n"
    res = fleet.member(
        "create", "--agent-id", fleet.did, "--name", "x", "--description", "y", "--", "{unknown}"
    )
    assert res.code == 1
    assert res.err.startswith("Error: prompt resolution failed: Unknown placeholder 'unknown'")
    assert fleet.db.rows("SELECT count(*) FROM agents WHERE status='active'") == before
    assert fleet.server.window_panes() == [fleet.server.first_pane]


# ------------------------------------------------------------------------------ pane actions
def test_capture_exec_ping_and_preview(fleet, tmp_path):
    server = fleet.server
    log = tmp_path / "alice.log"
    alice = fleet.spawn("alice", log=log)
    aid, pane = alice["agent_id"], alice["placement"]["tmux_pane_id"]
    server.wait_for(pane, STANDIN_READY)

    shot = fleet.member("capture", *ids(fleet, aid[:8]))
    assert shot.code == 0, shot.err
    assert "standin-claude argv=" in shot.out
    assert "\x1b" not in shot.out
    as_json = fleet.member("capture", *ids(fleet, aid), "--tail", "5", json_mode=True).json
    assert (as_json["member_agent_id"], as_json["pane_id"], as_json["lines"]) == (aid, pane, 5)
    zero = fleet.member("capture", *ids(fleet, aid), "--lines", "0")
    assert (zero.code, zero.err) == (
        1,
        "Error: capture failed: capture_pane: lines must be positive, got 0\n",
    )

    target = tmp_path / "made by exec"
    done = fleet.member("exec", *ids(fleet, aid), f"  touch '{target}' && echo exec-ok  ")
    assert done.out == (
        f"Sent bash command \"touch '{target}' && echo exec-ok\" to member alice ({pane}).\n"
    )
    server.wait_until(target.exists, timeout=10, message="file created by member exec")
    server.wait_for(pane, "exec-ok")
    wait_log(log, lambda ev: any(e["event"] == "exec" and e["rc"] == 0 for e in ev))

    pinged = fleet.member("ping", *ids(fleet, aid))
    assert pinged.out == f"Pinged member alice ({pane}) — poll keystroke dispatched.\n"
    poll = f"cafleet --session-id {fleet.sid} message poll --agent-id {aid}"
    wait_log(log, lambda ev: poll in [e.get("text") for e in ev])
    quiet = fleet.member("ping", *ids(fleet, aid), "--quiet")
    assert quiet.out == f"{aid[:8]}\n"

    sent = fleet.send(aid[:8], "hello from the director")
    assert sent.code == 0, sent.err
    assert sent.json["notification_sent"] is True
    task = sent.json["task"]
    header = f"[cafleet msg {task['id']} from {fleet.did[:8]} {task['ts']}]"
    wait_log(log, lambda ev: "hello from the director" in [e.get("text") for e in ev])
    lines = received_lines(log)
    assert lines[-2:] == [header, "hello from the director"]
    screen = fleet.member("capture", *ids(fleet, aid), "--lines", "60").out
    assert f"got: {header}" in screen
    assert "got: hello from the director" in screen

    activity = fleet.member("list", "--agent-id", fleet.did, "--activity", json_mode=True).json[0]
    assert (activity["unread"], activity["last_recv"], activity["last_sent"]) == (
        1,
        task["ts"],
        None,
    )


def test_send_input_reaches_the_menu(fleet, tmp_path):
    server = fleet.server
    server.set_env("STANDIN_MENU", "1")
    log = tmp_path / "menu.log"
    alice = fleet.spawn("alice", log=log)
    aid, pane = alice["agent_id"], alice["placement"]["tmux_pane_id"]
    server.wait_for(pane, "choice> ")
    res = fleet.member("send-input", *ids(fleet, aid), "--choice", "2")
    assert (res.code, res.out) == (0, f"Sent choice 2 to member alice ({pane}).\n")
    wait_log(
        log,
        lambda ev: (
            {"event": "choice", "value": "2"}
            in [{k: e.get(k) for k in ("event", "value")} for e in ev]
        ),
    )
    server.wait_for(pane, "chose: 2")

    server.run("send-keys", "-t", pane, "/menu", "Enter")
    server.wait_for(pane, "choice> ", count=2)
    text = "hi $HOME `id` 'q' C-c Enter ünï"
    res = fleet.member("send-input", *ids(fleet, aid), "--freetext", text, json_mode=True)
    assert res.json == {
        "member_agent_id": aid,
        "pane_id": pane,
        "action": "freetext",
        "value": text,
    }
    events = wait_log(log, lambda ev: any(e["event"] == "freetext" for e in ev))
    assert [e["text"] for e in events if e["event"] == "freetext"] == [text]


# ------------------------------------------------------------------------------ delete
def test_delete_closes_the_pane_and_force_kills(fleet):
    server = fleet.server
    alice = fleet.spawn("alice")
    bob = fleet.spawn("bob", backend="codex")
    aid, alice_pane = alice["agent_id"], alice["placement"]["tmux_pane_id"]
    bid, bob_pane = bob["agent_id"], bob["placement"]["tmux_pane_id"]
    server.wait_for(alice_pane, STANDIN_READY)

    res = fleet.member("delete", *ids(fleet, aid[:8]))
    assert (res.code, res.err) == (0, "")
    assert res.out.splitlines() == delete_report(aid, f"{alice_pane} (closed)")
    assert not server.pane_alive(alice_pane)
    assert fleet.status(aid) == "deregistered"

    res = fleet.member("delete", *ids(fleet, bid), "--force", json_mode=True)
    assert res.json == {"agent_id": bid, "pane_status": f"{bob_pane} (killed)"}
    assert not server.pane_alive(bob_pane)
    assert fleet.status(bid) == "deregistered"
    assert fleet.db.rows("SELECT count(*) FROM agent_placements") == [(1,)]  # the Director's
    assert fleet.member("list", "--agent-id", fleet.did).out == "0 members.\n"
    assert server.display(server.first_pane, "#{pane_active}") == "1"

    again = fleet.member("capture", *ids(fleet, aid))
    assert again.err == f"Error: Agent {aid} not found\n"


def test_delete_timeout_keeps_the_member_then_force(fleet):
    """The one slow test: the 15 s /exit deadline of a stand-in that ignores /exit."""
    server = fleet.server
    server.set_env("STANDIN_IGNORE_EXIT", "1")
    alice = fleet.spawn("alice")
    aid, pane = alice["agent_id"], alice["placement"]["tmux_pane_id"]
    server.wait_for(pane, STANDIN_READY)

    started = time.monotonic()
    res = fleet.member("delete", *ids(fleet, aid), timeout=90)
    elapsed = time.monotonic() - started
    assert res.code == 2
    assert res.out == ""
    assert elapsed >= 15.0
    err = res.err.splitlines()
    assert err[0] == f"Error: pane {pane} did not close within 15.0s after /exit."
    assert err[1] == f"--- pane {pane} tail (last 80 lines) ---"
    tail = err[2 : err.index("---")]
    assert "standin: ignoring /exit" in tail
    assert tail[-1] != ""  # trailing blank lines are removed
    assert err[-1] == DELETE_RECOVERY
    assert "Usage:" not in res.err
    assert server.pane_alive(pane)
    assert fleet.status(aid) == "active"

    res = fleet.member("delete", *ids(fleet, aid), "-f")
    assert res.out.splitlines() == delete_report(aid, f"{pane} (killed)", force=True)
    assert not server.pane_alive(pane)
    assert fleet.status(aid) == "deregistered"


# ------------------------------------------------------------------------------ cross-Director
def test_cross_director_commands_are_refused_without_keystrokes(fleet, tmp_path):
    server = fleet.server
    lead = fleet.register("lead", "a second director")
    log = tmp_path / "theirs.log"
    theirs = fleet.spawn("theirs", director=lead, log=log)
    mid, pane = theirs["agent_id"], theirs["placement"]["tmux_pane_id"]
    server.wait_for(pane, STANDIN_READY)
    time.sleep(0.3)
    before_screen, before_log = server.capture(pane), read_log(log)
    trap = tmp_path / "must-not-exist"

    refused = f"Error: agent {mid} is not a member of your team (director_agent_id={lead}).\n"
    for verb, extra in [
        ("capture", ()),
        ("send-input", ("--choice", "1")),
        ("send-input", ("--freetext", "hello")),
        ("exec", (f"touch {trap}",)),
        ("ping", ()),
        ("delete", ()),
        ("delete", ("--force",)),
    ]:
        res = fleet.member(verb, *ids(fleet, mid), *extra)
        assert (res.code, res.out, res.err) == (1, "", refused), verb
    assert fleet.member("list", "--agent-id", fleet.did).out == "0 members.\n"

    time.sleep(0.5)
    assert server.capture(pane) == before_screen
    assert read_log(log) == before_log
    assert not trap.exists()
    assert server.pane_alive(pane)
    assert fleet.status(mid) == "active"

    # The member's own Director may drive it.
    own = fleet.member("capture", *ids(fleet, mid, director=lead))
    assert own.code == 0 and "standin-claude" in own.out
    listing = fleet.member("list", "--agent-id", lead, json_mode=True).json
    assert [m["agent_id"] for m in listing] == [mid]
