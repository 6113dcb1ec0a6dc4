"""``session create`` against an isolated tmux server (acceptance 47–59)."""

import json
import sqlite3

import pytest

pytestmark = pytest.mark.tmux


def create(db, server, *argv, pane=None, **env):
    full_env = server.env(pane, CAFLEET_DATABASE_URL=db.url, **env)
    return db.run("session", "create", *argv, env=full_env)


def test_49_text_layout(fresh_db, tmux_server):
    r = create(fresh_db, tmux_server, "--label", "alpha")
    assert r.code == 0, r.err
    lines = r.lines
    assert len(lines) == 7
    con = sqlite3.connect(fresh_db.path)
    sid, director_id, created = con.execute(
        "SELECT session_id, director_agent_id, created_at FROM sessions"
    ).fetchone()
    admin = con.execute("SELECT agent_id FROM agents WHERE name='Administrator'").fetchone()[0]
    pane = f"{tmux_server.session}:{tmux_server.window}:{tmux_server.first_pane}"
    assert lines == [
        sid,
        director_id,
        "label:            alpha",
        f"created_at:       {created}",
        "director_name:    Director",
        f"pane:             {pane}",
        f"administrator:    {admin}",
    ]
    full = create(fresh_db, tmux_server, "--full")
    assert len(full.lines) == 7 and full.lines[2] == "label:"


def test_48_without_tmux_pane(fresh_db, tmux_server):
    r = create(fresh_db, tmux_server, TMUX_PANE=None)
    assert (r.code, r.err) == (
        1,
        "Error: cafleet session create must be run inside a tmux session\n",
    )
    r = create(fresh_db, tmux_server, pane="%9999")
    assert r.err == "Error: cafleet session create must be run inside a tmux session\n"
    con = sqlite3.connect(fresh_db.path)
    assert con.execute("SELECT count(*) FROM agents").fetchone() == (0,)


def test_51_to_59_json_and_rows(fresh_db, tmux_server):
    local = create(fresh_db, tmux_server, "--json")
    data = local.json
    assert list(data) == ["session_id", "label", "created_at", "administrator_agent_id", "director"]
    assert data["label"] is None
    director = data["director"]
    assert list(director) == ["agent_id", "name", "description", "registered_at", "placement"]
    assert (director["name"], director["description"]) == (
        "Director",
        "Root Director for this session",
    )
    assert director["placement"] == {
        "director_agent_id": None,
        "tmux_session": tmux_server.session,
        "tmux_window_id": tmux_server.window,
        "tmux_pane_id": tmux_server.first_pane,
        "coding_agent": "claude",
        "created_at": data["created_at"],
    }
    glob = fresh_db.run(
        "--json",
        "session",
        "create",
        env={**tmux_server.env(), "CAFLEET_DATABASE_URL": fresh_db.url},
    ).json
    assert set(glob) == set(data) and glob["director"]["placement"]["coding_agent"] == "claude"
    codex = create(fresh_db, tmux_server, "--coding-agent", "codex", "--json").json
    assert codex["director"]["placement"]["coding_agent"] == "codex"

    con = sqlite3.connect(fresh_db.path)
    sid = data["session_id"]
    admin_id = data["administrator_agent_id"]
    assert admin_id != director["agent_id"]
    assert con.execute(
        "SELECT count(*) FROM agent_placements WHERE agent_id=?", (admin_id,)
    ).fetchone() == (0,)
    card = json.loads(
        con.execute("SELECT agent_card_json FROM agents WHERE agent_id=?", (admin_id,)).fetchone()[
            0
        ]
    )
    assert card["cafleet"] == {"kind": "builtin-administrator"}
    assert card["description"] == f"Built-in administrator agent for session {sid[:8]}"
    assert con.execute(
        "SELECT director_agent_id FROM sessions WHERE session_id=?", (sid,)
    ).fetchone() == (director["agent_id"],)
    stamps = set(con.execute("SELECT created_at FROM sessions WHERE session_id=?", (sid,)))
    stamps |= set(con.execute("SELECT registered_at FROM agents WHERE session_id=?", (sid,)))
    stamps |= set(
        con.execute(
            "SELECT p.created_at FROM agent_placements p JOIN agents a "
            "ON a.agent_id=p.agent_id WHERE a.session_id=?",
            (sid,),
        )
    )
    assert stamps == {(data["created_at"],)}


def test_231_label_with_controls_refused(fresh_db, tmux_server):
    r = create(fresh_db, tmux_server, "--label", "bad\x1b]0;title\x07")
    assert r.code == 2 and r.err.endswith("Error: --label may not contain control characters.\n")


def test_47_session_create_json_error(fresh_db, tmux_server):
    r = fresh_db.run("--json", "session", "create")
    assert r.err == (
        '{"error":"cafleet session create must be run inside a tmux session","exit_code":1}\n'
    )
