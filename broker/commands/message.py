"""``cafleet message send|broadcast|poll|ack|cancel|show`` (cli.md §4.4)."""

import time

from broker.cli_support import read_body
from broker.clock import normalise_timestamp
from broker.conf import max_text_len
from broker.exceptions import ValidationError
from broker.output import task_json, task_text

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


# ------------------------------------------------------------------------------ validators
def check_body(call) -> tuple[str, int]:
    """send / broadcast: the body (§4.4.1), then the output limit."""
    return read_body(call.options), max_text_len()


def check_poll(call) -> tuple[str | None, int]:
    """poll: ``--since`` normalised, then the output limit."""
    raw = call.options["since"]
    since = None
    if raw is not None:
        since = normalise_timestamp(raw)
        if since is None:
            raise ValidationError(
                f"Invalid value for '--since': '{raw}' is not an ISO-8601 timestamp."
            )
    return since, max_text_len()


def check_limit(call) -> int:
    """ack / cancel / show: the output limit."""
    return max_text_len()


# ------------------------------------------------------------------------------ handlers
def send(call, out) -> None:
    from broker.delivery import delivery_json, send_summary
    from broker.services import message_send

    opts = call.options
    text, limit = call.checked
    task, notified = message_send(
        **call.acting, to_ref=opts["to"], text=text, limit=limit, tmux=call.tmux
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


def broadcast(call, out) -> None:
    from broker.services import message_broadcast

    opts = call.options
    text, limit = call.checked
    summary, recipients, delivered = message_broadcast(
        **call.acting, text=text, limit=limit, tmux=call.tmux
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


def poll(call, out) -> None:
    from broker.delivery import delivery_json
    from broker.services import message_poll, require_session_member

    opts = call.options
    since, limit = call.checked
    agent_id = require_session_member(call.session_id, call.agent_id)
    query = dict(
        agent_id=agent_id, include_all=opts["all"], since=since, page_size=opts["page_size"]
    )
    waiter = None
    if opts["wait"]:
        from broker.database import InboxWaiter

        # Listening starts before the first query, so no message slips in between.
        deadline = time.monotonic() + opts["wait"]
        waiter = InboxWaiter(agent_id, interval=POLL_INTERVAL)
    tasks = message_poll(**query)
    if not tasks and waiter is not None:
        while not tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            waiter.wait(remaining)
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


def _task_command(call, out, service, header: str | None = None) -> None:
    """ack / cancel / show: one task by --task-id, rendered with an optional header."""
    opts = call.options
    limit = call.checked
    task = service(**call.acting, task_ref=opts["task_id"])
    _render(
        out, task, full=opts["full"], limit=limit, header=header, quiet=opts.get("quiet", False)
    )


def ack(call, out) -> None:
    from broker.services import message_ack

    _task_command(call, out, message_ack, "Message acknowledged.")


def cancel(call, out) -> None:
    from broker.services import message_cancel

    _task_command(call, out, message_cancel, "Task canceled.")


def show(call, out) -> None:
    """The task render, plus its delivery: a ``delivery`` key in JSON, a line in text (the
    last line; with ``--full`` the line before ``text:``, so the full body stays last)."""
    from broker.delivery import delivery_json, delivery_line, delivery_of
    from broker.services import message_show

    opts = call.options
    limit = call.checked
    task = message_show(**call.acting, task_ref=opts["task_id"])
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
    elif line:  # after the render, whose first line stays the task header
        body = f"{body}\n{line}"
    out.text(body)
