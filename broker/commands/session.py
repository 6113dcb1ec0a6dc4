"""``cafleet session create|list|show|delete`` (cli.md §4.2)."""

from broker.cli_support import reject_controls
from broker.exceptions import CafleetError
from broker.output import field_line

NOT_IN_TMUX = "cafleet session create must be run inside a tmux session"


def check_label(call) -> None:
    reject_controls("--label", call.options["label"])


def session_pane(call) -> tuple[str, str, str]:
    """The caller's pane; every tmux failure is the one "must be run inside" error."""
    tmux = call.tmux
    try:
        tmux.require_tmux()
        return tmux.caller_pane()
    except (CafleetError, tmux.TmuxError):
        raise CafleetError(NOT_IN_TMUX) from None


def create(call, out) -> None:
    from broker.services import session_create

    opts = call.options
    session, director, admin, placement = session_create(
        label=opts["label"], coding_agent=opts["coding_agent"], caller=call.caller
    )
    if out.json_mode:
        out.json(
            {
                "session_id": session.session_id,
                "label": session.label,
                "created_at": session.created_at,
                "administrator_agent_id": admin.agent_id,
                "director": {
                    "agent_id": director.agent_id,
                    "name": director.name,
                    "description": director.description,
                    "registered_at": director.registered_at,
                    "placement": placement.as_dict(),
                },
            }
        )
        return
    pane = f"{placement.tmux_session}:{placement.tmux_window_id}:{placement.tmux_pane_id}"
    out.text(
        "\n".join(
            [
                session.session_id,
                director.agent_id,
                field_line("label:            ", session.label),
                f"created_at:       {session.created_at}",
                "director_name:    Director",
                f"pane:             {pane}",
                f"administrator:    {admin.agent_id}",
            ]
        )
    )


def list_(call, out) -> None:
    from broker.services import session_list

    rows = session_list()
    if out.json_mode:
        out.json(rows)
        return
    if not rows:
        out.text("No sessions found.")
        return
    lines = [f"{'SESSION_ID':<40} {'LABEL':<20} {'AGENTS':<8} CREATED_AT"]
    for row in rows:
        lines.append(
            f"{row['session_id']:<40} {row['label'] or '':<20} "
            f"{row['agent_count']:<8} {row['created_at']}"
        )
    out.text("\n".join(lines))


def show(call, out) -> None:
    from broker.services import session_get

    session = session_get(call.options["session_ref"])
    if out.json_mode:
        out.json(
            {
                "session_id": session.session_id,
                "label": session.label,
                "created_at": session.created_at,
                "deleted_at": session.deleted_at,
                "director_agent_id": session.director_agent_id,
            }
        )
        return
    lines = [
        f"session_id: {session.session_id}",
        field_line("label:      ", session.label),
        f"created_at: {session.created_at}",
    ]
    if session.is_deleted:
        lines.append(f"deleted_at: {session.deleted_at}")
    out.text("\n".join(lines))


def delete(call, out) -> None:
    from broker.services import session_delete

    session, count = session_delete(session_ref=call.options["session_ref"])
    out.text(f"Deleted session {session.session_id}. Deregistered {count} agents.")
