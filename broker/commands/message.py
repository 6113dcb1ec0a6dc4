"""``cafleet message send|broadcast|poll|ack|cancel|show`` (cli.md §4.4)."""

import time

from broker.cli_support import read_body, ready_session, tmux_module
from broker.clock import normalise_timestamp
from broker.exceptions import ValidationError
from broker.output import max_text_len, task_json, task_text

POLL_INTERVAL = 0.5


def _render(
    out,
    task,
    *,
    full: bool,
    limit: int,
    header: str | None = None,
    quiet: bool = False,
    extra: dict | None = None,
) -> None:
    if out.json_mode:
        out.json({"task": task_json(task, full=full, limit=limit), **(extra or {})})
    elif quiet:
        out.text(task.task_id[:8])
    else:
        body = task_text(task, full=full, limit=limit)
        out.text(f"{header}\n{body}" if header else body)


def send(parsed, out) -> None:
    from broker.delivery import delivery_json, send_summary
    from broker.services import message_send

    opts = parsed.options
    text = read_body(opts)
    limit = max_text_len()
    session_id = ready_session(parsed)
    task, notified = message_send(
        session_id=session_id,
        agent_ref=opts["agent_id"],
        to_ref=opts["to"],
        text=text,
        limit=limit,
        tmux=tmux_module(),
    )
    _render(
        out,
        task,
        full=opts["full"],
        limit=limit,
        header=f"Message sent. {send_summary(task.delivery)}",
        quiet=opts["quiet"],
        extra={"notification_sent": notified, "delivery": delivery_json(task)},
    )


def broadcast(parsed, out) -> None:
    from broker.services import message_broadcast

    opts = parsed.options
    text = read_body(opts)
    limit = max_text_len()
    session_id = ready_session(parsed)
    summary, recipients, delivered = message_broadcast(
        session_id=session_id,
        agent_ref=opts["agent_id"],
        text=text,
        limit=limit,
        tmux=tmux_module(),
    )
    if out.json_mode:
        out.json(
            [
                {
                    "task": task_json(summary, full=opts["full"], limit=limit),
                    "notifications_sent_count": delivered,
                }
            ]
        )
    elif opts["full"]:
        out.text(task_text(summary, full=True, limit=limit))
    else:
        out.text(
            f"broadcast id={summary.task_id[:8]} recipients={recipients} delivered={delivered}"
        )


def poll(parsed, out) -> None:
    from broker.delivery import delivery_json
    from broker.services import message_poll, session_gate

    opts = parsed.options
    since = None
    if opts["since"] is not None:
        since = normalise_timestamp(opts["since"])
        if since is None:
            raise ValidationError(
                f"Invalid value for '--since': '{opts['since']}' is not an ISO-8601 timestamp."
            )
    limit = max_text_len()
    session_id = ready_session(parsed)
    agent_id = session_gate(session_id, opts["agent_id"])
    query = dict(
        agent_id=agent_id, include_all=opts["all"], since=since, page_size=opts["page_size"]
    )
    tasks = message_poll(**query)
    if not tasks and opts["wait"]:
        deadline = time.monotonic() + opts["wait"]
        while not tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(POLL_INTERVAL, remaining))
            tasks = message_poll(**query)
    full = opts["full"]
    if out.json_mode:
        out.json(
            [{**task_json(t, full=full, limit=limit), "delivery": delivery_json(t)} for t in tasks]
        )
    elif not tasks:
        out.text("No messages found.")
    else:
        out.text("\n\n".join(task_text(t, full=full, limit=limit) for t in tasks))


def _task_command(parsed, out, service, header: str | None = None) -> None:
    """ack / cancel / show: one task by --task-id, rendered with an optional header."""
    opts = parsed.options
    limit = max_text_len()
    session_id = ready_session(parsed)
    task = service(session_id=session_id, agent_ref=opts["agent_id"], task_ref=opts["task_id"])
    _render(
        out, task, full=opts["full"], limit=limit, header=header, quiet=opts.get("quiet", False)
    )


def ack(parsed, out) -> None:
    from broker.services import message_ack

    _task_command(parsed, out, message_ack, "Message acknowledged.")


def cancel(parsed, out) -> None:
    from broker.services import message_cancel

    _task_command(parsed, out, message_cancel, "Task canceled.")


def show(parsed, out) -> None:
    """The task render, plus its delivery: a ``delivery`` key in JSON, a line in text (the
    first line; with ``--full`` the line before ``text:``)."""
    from broker.delivery import delivery_json, delivery_line, delivery_of
    from broker.services import message_show

    opts = parsed.options
    limit = max_text_len()
    session_id = ready_session(parsed)
    task = message_show(session_id=session_id, agent_ref=opts["agent_id"], task_ref=opts["task_id"])
    if out.json_mode:
        out.json(
            {
                "task": {
                    **task_json(task, full=opts["full"], limit=limit),
                    "delivery": delivery_json(task),
                }
            }
        )
        return
    line = delivery_line(delivery_of(task))
    body = task_text(task, full=opts["full"], limit=limit)
    if line and opts["full"]:  # in the block, before the text (which stays last)
        head, sep, text = body.partition("\n  text:  ")
        body = f"{head}\n  {line}{sep}{text}"
    elif line:  # a first line, so the body stays last and byte-exact
        body = f"{line}\n{body}"
    out.text(body)


HANDLERS = {
    "send": send,
    "broadcast": broadcast,
    "poll": poll,
    "ack": ack,
    "cancel": cancel,
    "show": show,
}
