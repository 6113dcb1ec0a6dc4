"""``cafleet doctor``: the calling tmux pane's identifiers (cli.md §4.6)."""

import os

from broker.cli_support import tmux_module


def doctor(parsed, out) -> None:
    from broker.members import caller_pane, tmux_guard

    tmux = tmux_module()
    tmux_guard(tmux)
    session_name, window_id, pane_id = caller_pane(tmux)
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


HANDLERS = {"": doctor}
