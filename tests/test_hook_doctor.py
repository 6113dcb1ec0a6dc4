"""``cafleet doctor`` reports cafleet's hooks and settings that deny cafleet (issue 10)."""

import json

import pytest

pytestmark = pytest.mark.tmux


def test_doctor_reports_installed_hooks_and_deny_rules(fresh_db, tmux_server, tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    settings = home / ".claude" / "settings.json"
    settings.write_text(json.dumps({"permissions": {"deny": ["Bash(cafleet:*)", "Read"]}}))
    env = tmux_server.env(HOME=str(home))
    env["CAFLEET_DATABASE_URL"] = fresh_db.url
    r = fresh_db.run("hooks", "install", env={"HOME": str(home)})
    assert r.code == 0, r.err
    res = fresh_db.run("--json", "doctor", env=env)
    assert res.code == 0, res.err
    assert json.loads(res.out)["hooks"] == {
        "settings_file": str(settings),
        "installed": True,
        "denied": [{"file": str(settings), "rule": "Bash(cafleet:*)"}],
    }
    text = fresh_db.run("doctor", env=env).out.splitlines()
    assert text[-2:] == [
        "  installed:     yes",
        f"  cafleet denied: {settings}: Bash(cafleet:*)",
    ]
