"""``cafleet doctor``: the calling tmux pane's identifiers (cli.md §4.6)."""

import os


def doctor(call, out) -> None:
    session_name, window_id, pane_id = call.caller
    env_pane = os.environ.get("TMUX_PANE", "")
    if out.json_mode:
        out.json(
            {
                "tmux": {
                    "session_name": session_name,
                    "window_id": window_id,
                    "pane_id": pane_id,
                    "tmux_pane_env": env_pane,
                }
            }
        )
        return
    out.text(
        "\n".join(
            [
                "tmux:",
                f"  session_name:  {session_name}",
                f"  window_id:     {window_id}",
                f"  pane_id:       {pane_id}",
                f"  TMUX_PANE:     {env_pane}",
            ]
        )
    )
