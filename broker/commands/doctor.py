"""``cafleet doctor``: the calling tmux pane's identifiers (cli.md §4.6)."""

import os

from broker.cli_support import tmux_module
from broker.exceptions import CafleetError

NOT_IN_TMUX = "cafleet member commands must be run inside a tmux session"


def tmux_guard(tmux) -> None:
    """tmux.md §2: binary on PATH, then TMUX set."""
    if not tmux.tmux_binary():
        raise CafleetError("tmux binary not found on PATH")
    if not os.environ.get("TMUX"):
        raise CafleetError(NOT_IN_TMUX)


def doctor(parsed, out) -> None:
    tmux = tmux_module()
    tmux_guard(tmux)
    try:
        session_name, window_id, pane_id = tmux.caller_pane(os.environ)
    except tmux.TmuxError as exc:
        raise CafleetError(str(exc)) from None
    env_pane = os.environ.get("TMUX_PANE", "")
    if out.json_mode:
        out.json({"tmux": {"session_name": session_name, "window_id": window_id,
                           "pane_id": pane_id, "tmux_pane_env": env_pane}})
        return
    out.text("\n".join(["tmux:", f"  session_name:  {session_name}",
                        f"  window_id:     {window_id}", f"  pane_id:       {pane_id}",
                        f"  TMUX_PANE:     {env_pane}"]))


HANDLERS = {"": doctor}

