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
    """cli.md §4.2.4; ``--close-members`` first closes every live member's pane the way
    ``member delete`` does (issue 11 item 11). Without it, the member panes the session
    leaves running are listed on stderr with the command that closes each."""
    from broker.services import session_delete, session_get
    from broker.session_teardown import session_members

    session = session_get(call.options["session_ref"])
    lines = []
    if call.options["close_members"] and not session.is_deleted:
        lines = _close_members(call, out, session.session_id)
    left = [] if session.is_deleted else [t for t in session_members(session.session_id) if t.pane]
    session, count = session_delete(session_ref=session.session_id)
    lines.append(f"Deleted session {session.session_id}. Deregistered {count} agents.")
    out.text("\n".join(lines))
    if left:
        out.warn(left_running(session.session_id, left))


def _close_members(call, out, session_id: str) -> list[str]:
    from broker.session_teardown import session_close_members

    results = session_close_members(session_id=session_id, tmux=call.tmux, warn=out.warn)
    failed = [r for r in results if r.error is not None]
    if failed:
        raise CafleetError(close_failure(session_id, results), exit_code=1)
    return [f"Member {r.target.member_id} deleted: {r.status}" for r in results]


def close_failure(session_id: str, results) -> str:
    failed = [r for r in results if r.error is not None]
    lines = [
        f"session {session_id} not deleted: {len(failed)} of {len(results)} member(s) "
        "did not close."
    ]
    for r in results:
        name = f"{r.target.member_id} ({r.target.member.name})"
        if r.error is None:
            lines.append(f"  deleted:     {name}: {r.status}")
        else:
            reason = r.error.message.split("\n", 1)[0]
            lines.append(f"  not closed:  {name}: {reason}")
    lines.append(
        "Inspect with `cafleet member capture`, answer any prompt with `cafleet member "
        f"send-input`, then re-run `cafleet session delete --close-members {session_id}`; "
        "or close a wedged pane with `cafleet member delete --force`."
    )
    return "\n".join(lines)


def left_running(session_id: str, targets) -> str:
    """The stderr note for member panes that ``session delete`` left running."""
    n = len(targets)
    lines = [
        f"Warning: {n} member pane{'s' if n != 1 else ''} left running "
        "(session delete does not close panes); close "
        f"{'each' if n != 1 else 'it'} with:"
    ]
    for t in targets:
        lines.append(f"  tmux kill-pane -t {t.pane}    # {t.member.name} ({t.member_id[:8]})")
    lines.append(
        "Next time, 'cafleet session delete --close-members <session-id>' closes member "
        "panes first."
    )
    return "\n".join(lines)
