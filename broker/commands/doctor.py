"""``cafleet doctor``: the calling tmux pane's identifiers (cli.md §4.6), and whether
cafleet's hooks are installed and whether Claude settings deny ``cafleet`` (docs/hooks.md)."""

import os


def hooks_report() -> dict:
    """Hooks in the user's Claude settings, and deny rules that would refuse cafleet."""
    from broker.hooksettings import (
        default_settings_file,
        denied_rules,
        installed_events,
        settings_files,
    )

    path = default_settings_file()
    return {
        "settings_file": path,
        "installed": bool(installed_events(path)),
        "denied": [{"file": f, "rule": r} for f, r in denied_rules(settings_files())],
    }


def doctor(call, out) -> None:
    session_name, window_id, pane_id = call.caller
    env_pane = os.environ.get("TMUX_PANE", "")
    hooks = hooks_report()
    if out.json_mode:
        out.json(
            {
                "tmux": {
                    "session_name": session_name,
                    "window_id": window_id,
                    "pane_id": pane_id,
                    "tmux_pane_env": env_pane,
                },
                "hooks": hooks,
            }
        )
        return
    installed = "yes" if hooks["installed"] else "no ('cafleet hooks install' adds them)"
    denied = "; ".join(f"{d['file']}: {d['rule']}" for d in hooks["denied"]) or "no"
    out.text(
        "\n".join(
            [
                "tmux:",
                f"  session_name:  {session_name}",
                f"  window_id:     {window_id}",
                f"  pane_id:       {pane_id}",
                f"  TMUX_PANE:     {env_pane}",
                "hooks:",
                f"  settings:      {hooks['settings_file']}",
                f"  installed:     {installed}",
                f"  cafleet denied: {denied}",
            ]
        )
    )
