"""What ``member create`` / ``member delete`` do for a member's hooks (docs/hooks.md): its
environment names it, its Claude settings file is written before the spawn and removed with
the member."""

from __future__ import annotations

import os


def member_env(agent, environ=os.environ) -> dict[str, str]:
    """Variables that name the member to its own ``cafleet hook`` calls, and the host id the
    Director runs under when it set one (the member's pane is on this host, so its own calls
    and any delivery worker it starts must name the host the same way: docs/deployment.md)."""
    from broker.conf import host_id_if_set

    env = {"CAFLEET_SESSION_ID": agent.session_id, "CAFLEET_AGENT_ID": agent.agent_id}
    host = host_id_if_set(environ)
    if host is not None:
        env["CAFLEET_HOST_ID"] = host
    return env


def settings_for(agent, coding_agent: str, environ=os.environ) -> str | None:
    """Write the member's hooks settings file (Claude only); its path, or None when it cannot
    be written (the member then runs without hooks and gets keystroke previews)."""
    from broker.conf import backend, database_path
    from broker.hooksettings import write_member_settings

    if coding_agent != "claude" or backend(environ) != "sqlite":
        return None  # the hook path reads SQLite only (docs/hooks.md, PostgreSQL)

    try:
        return write_member_settings(database_path(environ), agent.agent_id)
    except Exception:
        return None


def remove_settings(agent_id: str, environ=os.environ) -> None:
    """Remove the member's settings file; never raises."""
    from broker.conf import backend, database_path
    from broker.hooksettings import remove_member_settings

    if backend(environ) != "sqlite":
        return
    try:
        remove_member_settings(database_path(environ), agent_id)
    except Exception:
        pass
