"""``cafleet member create|delete|list|capture|send-input|exec|ping`` (cli.md §4.5).

``broker.commands.dispatch`` runs the checks of cli.md §2.8 that the grammar table
declares (the validators and the tmux prerequisite below, database readiness, id
resolution); the target checks are in ``broker.members``; handlers render the result.
"""

import os

from broker.cli_support import reject_controls
from broker.exceptions import ValidationError
from broker.output import field_line


def _on_member(call) -> dict:
    """The keywords of every workflow on one member (delete, capture, send-input, exec,
    ping): who acts, where, on which member, through which tmux."""
    return {**call.acting, "member_ref": call.options["member_id"], "tmux": call.tmux}


# ------------------------------------------------------------------------------ create
def check_create(call) -> None:
    reject_controls("--name", call.options["name"])
    reject_controls("--description", call.options["description"])


def preflight(call) -> tuple[str, str, str]:
    """Reserved name, tmux guard, backend binary, caller pane (cli.md §4.5.1 steps 2-5)."""
    from broker.members import member_preflight

    opts = call.options
    return member_preflight(name=opts["name"], coding_agent=opts["coding_agent"], tmux=call.tmux)


def create(call, out) -> None:
    from broker.members import member_create

    opts = call.options
    agent, placement = member_create(
        session_id=call.session_id,
        director_ref=call.agent_id,
        name=opts["name"],
        description=opts["description"],
        coding_agent=opts["coding_agent"],
        prompt=opts.get("prompt") or (),
        caller=call.caller,
        tmux=call.tmux,
        environ=os.environ,
        warn=out.warn,
    )
    if out.json_mode:
        out.json(
            {
                "agent_id": agent.agent_id,
                "name": agent.name,
                "registered_at": agent.registered_at,
                "placement": placement.as_dict(),
            }
        )
    elif opts["full"]:
        out.text(
            "\n".join(
                [
                    "Member registered and spawned.",
                    f"  agent_id:  {agent.agent_id}",
                    field_line("  name:      ", agent.name),
                    f"  backend:   {placement.coding_agent}",
                    f"  pane_id:   {placement.tmux_pane_id}",
                    f"  window_id: {placement.tmux_window_id}",
                ]
            )
        )
    else:
        out.text(
            f"{agent.agent_id[:8]} {agent.name} backend={placement.coding_agent} "
            f"pane={placement.tmux_pane_id}"
        )


# ------------------------------------------------------------------------------ delete
def delete(call, out) -> None:
    from broker.members import member_delete

    opts = call.options
    member_id, header, status = member_delete(
        **_on_member(call), force=opts["force"], warn=out.warn
    )
    if out.json_mode:
        out.json({"agent_id": member_id, "pane_status": status})
    else:
        out.text(f"{header}\n  agent_id:  {member_id}\n  pane_id:   {status}")


# ------------------------------------------------------------------------------ list
DEFAULT_COLUMNS = (
    ("agent_id", 8),
    ("name", 8),
    ("status", 6),
    ("backend", 7),
    ("session", 7),
    ("window_id", 9),
    ("pane_id", 7),
    ("created_at", 20),
)
ACTIVITY_COLUMNS = (
    ("agent_id", 8),
    ("name", 8),
    ("status", 6),
    ("last_sent", 9),
    ("last_recv", 9),
    ("last_ack", 9),
    ("idle", 5),
    ("unread", 6),
    ("held", 4),
    ("channel", 7),
    ("state", 5),
    ("age", 3),
)


def clock_part(ts: str | None) -> str:
    """``HH:MM:SS`` of a timestamp (the 8 characters after ``T``), or ``-``."""
    if not ts:
        return "-"
    return ts.partition("T")[2][:8]


def idle_text(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def table_line(cells, widths) -> str:
    """Two leading spaces; cells left-aligned, padded and separated by two spaces.

    The last cell is not padded, so a line never ends with padding (cli.md §3.1).
    """
    padded = [str(c).ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
    return "  " + "  ".join([*padded, str(cells[-1])])


def list_row(row, activity: bool) -> list[str]:
    agent, placement = row.agent, row.placement
    head = [agent.agent_id[:8], agent.name, agent.status]  # id8, as in every text table
    if activity:
        return head + [
            clock_part(row.last_sent),
            clock_part(row.last_recv),
            clock_part(row.last_ack),
            idle_text(row.idle),
            str(row.unread),
            str(row.held),
            row.channel or "-",
            row.state or "-",
            idle_text(row.state_age),
        ]
    return head + [
        placement.coding_agent,
        placement.tmux_session,
        placement.tmux_window_id,
        placement.tmux_pane_id or "(pending)",
        placement.created_at,
    ]


def render_list(rows, activity: bool) -> str:
    if not rows:
        return "0 members."
    columns = ACTIVITY_COLUMNS if activity else DEFAULT_COLUMNS
    names = [c for c, _ in columns]
    cells = [list_row(r, activity) for r in rows]
    # Each column is as wide as its longest value (never below its minimum), so a long
    # name or tmux session name never pushes the rest of its row out of line.
    widths = [max([w] + [len(str(c[i])) for c in cells]) for i, (_, w) in enumerate(columns)]
    lines = [
        "1 member:" if len(rows) == 1 else f"{len(rows)} members:",
        table_line(names, widths),
        table_line(["-" * w for w in widths], widths),
    ]
    lines += [table_line(c, widths) for c in cells]
    return "\n".join(lines)


def list_json(row, activity: bool) -> dict:
    agent = row.agent
    data = {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "description": agent.description,
        "status": agent.status,
        "registered_at": agent.registered_at,
        "placement": row.placement.as_dict(),
    }
    if activity:
        data.update(
            last_sent=row.last_sent,
            last_recv=row.last_recv,
            last_ack=row.last_ack,
            idle=row.idle,
            unread=row.unread,
            held=row.held,
            channel=row.channel,
            state=row.state,
            state_age=row.state_age,
        )
    return data


def list_(call, out) -> None:
    from broker.member_list import member_list

    opts = call.options
    rows = member_list(**call.acting, activity=opts["activity"])
    if out.json_mode:
        out.json([list_json(r, opts["activity"]) for r in rows])
    else:
        out.text(render_list(rows, opts["activity"]))


# ------------------------------------------------------------------------------ capture
def capture(call, out) -> None:
    from broker.members_actions import member_capture

    opts = call.options
    target, content = member_capture(**_on_member(call), lines=opts["lines"], ansi=opts["ansi"])
    if out.json_mode:
        out.json(
            {
                "member_agent_id": target.member_id,
                "pane_id": target.pane,
                "lines": opts["lines"],
                "content": content,
            }
        )
    else:
        out.raw(content)


# ------------------------------------------------------------------------------ send-input
def check_send_input(call) -> None:
    """cli.md §4.5.5 validation, in order (exit 2)."""
    choice, freetext = call.options["choice"], call.options["freetext"]
    if freetext is not None and freetext.lstrip().startswith("!"):
        raise ValidationError(
            "--freetext may not start with '!' — that triggers the coding "
            "agent's shell-execution shortcut. Use 'cafleet member exec' for "
            "shell dispatch instead."
        )
    if (choice is None) == (freetext is None):
        raise ValidationError("--choice and --freetext are mutually exclusive; supply exactly one.")
    if freetext is not None and ("\n" in freetext or "\r" in freetext):
        raise ValidationError("free text may not contain newlines.")


def send_input(call, out) -> None:
    from broker.members_actions import member_send_input

    opts = call.options
    choice, freetext = opts["choice"], opts["freetext"]
    target = member_send_input(**_on_member(call), choice=choice, freetext=freetext)
    name, pane = target.member.name, target.pane
    if out.json_mode:
        action, value = ("choice", str(choice)) if freetext is None else ("freetext", freetext)
        out.json(
            {"member_agent_id": target.member_id, "pane_id": pane, "action": action, "value": value}
        )
    elif freetext is None:
        out.text(f"Sent choice {choice} to member {name} ({pane}).")
    else:
        out.text(f"Sent free text to member {name} ({pane}).")


# ------------------------------------------------------------------------------ exec
def check_exec(call) -> str:
    """cli.md §4.5.6 validation (exit 2); returns the stripped command."""
    command = call.options["command"]
    if "\n" in command or "\r" in command:
        raise ValidationError("command may not contain newlines.")
    if not command.strip():
        raise ValidationError("command may not be empty.")
    return command.strip()


def exec_(call, out) -> None:
    from broker.members_actions import member_exec

    command = call.checked
    target = member_exec(**_on_member(call), command=command)
    if out.json_mode:
        out.json({"member_agent_id": target.member_id, "pane_id": target.pane, "command": command})
    else:
        out.text(f"Sent bash command {command!r} to member {target.member.name} ({target.pane}).")


# ------------------------------------------------------------------------------ ping
def ping(call, out) -> None:
    from broker.members_actions import member_ping

    opts = call.options
    target = member_ping(**_on_member(call))
    if out.json_mode:
        out.json({"member_agent_id": target.member_id, "pane_id": target.pane})
    elif opts["quiet"]:
        out.text(target.member_id[:8])
    else:
        out.text(f"Pinged member {target.member.name} ({target.pane}) — poll keystroke dispatched.")
