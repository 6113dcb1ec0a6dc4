"""``cafleet doctor`` (cli.md §4.6, acceptance 220-222): the real CLI in a subprocess,
inside and outside an isolated tmux server. doctor never touches the database."""

import json

import pytest

pytestmark = pytest.mark.tmux


def doctor(file_db, server, *argv, pane=None, **env):
    return file_db.run(*argv, "doctor", env=server.env(pane, **env))


def test_text_output_inside_tmux(file_db, tmux_server):
    res = doctor(file_db, tmux_server)
    assert (res.code, res.err) == (0, "")
    pane = tmux_server.first_pane
    assert res.out == (
        "tmux:\n"
        f"  session_name:  {tmux_server.session}\n"
        f"  window_id:     {tmux_server.window}\n"
        f"  pane_id:       {pane}\n"
        f"  TMUX_PANE:     {pane}\n"
    )
    assert not file_db.path.exists()  # no database access, nothing created


def test_json_output_is_pinned_to_tmux_pane(file_db, tmux_server):
    window, pane = tmux_server.new_window()
    res = doctor(file_db, tmux_server, "--json", "--session-id", "not-even-a-session", pane=pane)
    assert res.code == 0, res.err
    assert (
        res.out
        == json.dumps(
            {
                "tmux": {
                    "session_name": tmux_server.session,
                    "window_id": window,
                    "pane_id": pane,
                    "tmux_pane_env": pane,
                }
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    pretty = doctor(file_db, tmux_server, "--json", "--pretty")
    assert json.loads(pretty.out)["tmux"]["pane_id"] == tmux_server.first_pane
    assert pretty.out.startswith('{\n  "tmux": {\n')


def test_outside_tmux(file_db, tmux_server):
    res = doctor(file_db, tmux_server, TMUX=None)
    assert (res.code, res.out, res.err) == (
        1,
        "",
        "Error: cafleet doctor must be run inside a tmux session\n",
    )
    res = doctor(file_db, tmux_server, TMUX="")
    assert res.err == "Error: cafleet doctor must be run inside a tmux session\n"
    res = doctor(file_db, tmux_server, TMUX_PANE=None)
    assert (res.code, res.out, res.err) == (
        1,
        "",
        "Error: TMUX_PANE is not set; not running inside a tmux pane\n",
    )
    res = doctor(file_db, tmux_server, "--json", TMUX_PANE=None)
    assert res.err == (
        '{"error":"TMUX_PANE is not set; not running inside a tmux pane","exit_code":1}\n'
    )


def test_tmux_missing_and_stale_pane(file_db, tmux_server, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    res = doctor(file_db, tmux_server, PATH=str(empty))
    assert (res.code, res.err) == (1, "Error: tmux binary not found on PATH\n")
    res = doctor(file_db, tmux_server, pane="%98765")
    assert (res.code, res.out) == (1, "")
    # Depending on the tmux version a stale pane is a failed call, or a call that succeeds
    # with empty fields; both are pane-lookup errors (cli.md §4.6).
    lines = res.err.splitlines()
    if lines[0].startswith("Error: tmux command failed:"):
        assert lines[0] == (
            "Error: tmux command failed: tmux display-message -p -t %98765 "
            "#{session_name}|#{window_id}|#{pane_id}"
        )
        assert lines[1].startswith("stderr: ")
    else:
        assert lines == ["Error: unexpected tmux display-message output: '||'"]
