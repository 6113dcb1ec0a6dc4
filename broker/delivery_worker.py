"""The delivery worker: retries held previews and escalates long holds (docs/delivery-states.md).

One worker per database and host, enforced by a lease row (``broker.delivery_lease``, which
also starts a background worker when a command leaves a delivery held). ``delivery_run`` is
the loop itself; ``cafleet deliver`` runs it in the foreground for ops and service managers.

Each pass (every ``INTERVAL`` seconds) the worker

1. offers every held delivery of an unacknowledged, uncanceled task again through
   ``tmux.deliver_preview`` (the tmux layer's gate decides; the worker never sends a key
   of its own, never Escape, never an answer to a dialog), and takes up owed deliveries
   that a command killed between its commit and its preview left behind
   (``STRANDED_AFTER``);
2. stops retrying deliveries whose recipient is gone (deregistered, placement removed, or
   the tmux layer reports the pane gone): state ``failed``;
3. escalates, exactly once (a conditional UPDATE on ``escalated_at``), every delivery held
   longer than ``CAFLEET_DELIVERY_HOLD_TIMEOUT``: the member's Director gets a message from
   the session's Administrator naming the member and the reason. Nothing is forced.

It exits once nothing has been held for ``CAFLEET_DELIVERY_IDLE_EXIT`` seconds, or when it
loses the lease.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from broker import conf
from broker.clock import now
from broker.database import notify_inbox
from broker.delivery import (
    build_jobs,
    create_owed,
    mark_gone,
    reason_words,
    record,
    run_jobs,
)
from broker.delivery_lease import (
    acquire,
    database_file,
    ensure_worker,
    heartbeat,
    lease_holder,
    lease_key,
    log_path,
    release,
    spawn_worker,
)
from broker.exceptions import CafleetError
from broker.hook_store import age
from broker.models import (
    ADMIN_KIND,
    Agent,
    AgentStatus,
    Delivery,
    DeliveryState,
    DeliveryWorker,
    Placement,
    Task,
    TaskState,
    card_kind,
)

# The lease and the background start live in ``broker.delivery_lease``; these names are
# used through this module (``cafleet deliver``).
__all__ = ["ensure_worker", "lease_holder", "log_path", "spawn_worker"]

INTERVAL = 0.5
HEARTBEAT_EVERY = 2.0
#: An ``owed`` delivery without a reason is one whose preview a command planned but has not
#: recorded: the command is still typing its fan-out, or was killed between its commit and
#: the preview, or typed it and then failed to record the outcome. After this long, and only
#: while the recipient has not polled, been shown or acknowledged the message (any of which
#: makes it ``seen``), the worker offers it again. The bound is far above the longest
#: fan-out (a 50-pane broadcast takes under a second; a hung tmux server costs a pane at
#: most about 40 s), so a second copy of a preview can only reach an agent that has left
#: the message unread for five minutes.
STRANDED_AFTER = 300.0


# ------------------------------------------------------------------------------ settings
def hold_timeout(environ=os.environ) -> float:
    return conf.delivery_hold_timeout(environ)


def idle_exit(environ=os.environ) -> float:
    return conf.delivery_idle_exit(environ)


# ------------------------------------------------------------------------------ one pass
@dataclass
class PassResult:
    tried: int = 0
    delivered: int = 0
    gone: int = 0


def _local():
    """Deliveries whose recipient's pane belongs to this host (or to no recorded host):
    each host's worker serves its own panes only (issue 13)."""
    from django.db.models import Q

    here = conf.host_id()
    return Q(task__context__placement__host_id__in=("", here)) | Q(
        task__context__placement__isnull=True
    )


def _held():
    """Held deliveries, and owed ones stranded by a command that died before its preview
    (``STRANDED_AFTER``), of unacknowledged, uncanceled tasks for this host's panes."""
    from django.db.models import Q

    stranded = Q(
        state=DeliveryState.OWED, reason__isnull=True, updated_at__lt=_cutoff(STRANDED_AFTER)
    )
    return Delivery.objects.filter(
        Q(state=DeliveryState.HELD) | stranded,
        _local(),
        task__status_state=TaskState.INPUT_REQUIRED,
    )


def retry_held(tmux, *, limit: int) -> PassResult:
    """Offer every held delivery again, oldest first; retire those whose recipient left."""
    result = PassResult()
    tasks = list(
        Task.objects.filter(
            task_id__in=_held().values("task_id"),
        )
        .select_related("context")
        .order_by("created_at", "task_id")
    )
    if not tasks:
        return result
    panes = set(
        Placement.objects.filter(
            agent_id__in={t.context_id for t in tasks}, tmux_pane_id__isnull=False
        ).values_list("agent_id", flat=True)
    )
    # Deregistration removes the placement, so "no pane" covers a deregistered recipient.
    live = [t for t in tasks if t.context.status == AgentStatus.ACTIVE and t.context_id in panes]
    gone = {t.task_id for t in tasks} - {t.task_id for t in live}
    result.gone = mark_gone(gone, "recipient_gone")
    jobs, skipped = build_jobs(live, sender_id="", limit=limit, tmux=tmux)
    outcomes = run_jobs(tmux, jobs)
    outcomes.update({k: o for k, o in skipped.items() if o.status == "held"})
    record(outcomes)
    result.tried = len(jobs)
    result.delivered = sum(1 for o in outcomes.values() if o.status == "delivered")
    return result


def _cutoff(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def escalation_text(
    member: Agent, task: Task, reason: str | None, held_since: str, director_id: str
) -> str:
    return (
        f"Delivery held: member {member.name} ({member.agent_id[:8]}) has not been shown "
        f"message {task.task_id[:8]} from {task.from_agent_id[:8]} for "
        f"{_duration(age(held_since))}: "
        f"{reason_words(reason) or 'not ready'}. Nothing was typed into its pane; the "
        "message stays queued and is offered again when the pane is ready. Look with: "
        f"cafleet --session-id {member.session_id} member capture --agent-id {director_id} "
        f"--member-id {member.agent_id}"
    )


def _administrator(session_id: str) -> Agent | None:
    for agent in Agent.objects.in_session(session_id).active():
        if card_kind(agent.agent_card_json) == ADMIN_KIND:
            return agent
    return None


def escalate(*, timeout: float) -> list[Task]:
    """One Administrator message to the Director per delivery held longer than ``timeout``.

    The claim is a conditional UPDATE on ``escalated_at IS NULL`` in the same transaction
    as the message, so a delivery is escalated exactly once whoever runs this. A member
    without an active Director (the root Director's own pane) is marked but not messaged.
    """
    sent: list[Task] = []
    due = list(
        _held()
        .filter(escalated_at__isnull=True, held_since__lte=_cutoff(timeout))
        .select_related("task", "task__context")
    )
    for delivery in due:
        task, member = delivery.task, delivery.task.context
        stamp = now()
        with transaction.atomic():
            claimed = Delivery.objects.filter(
                task_id=task.task_id, state=DeliveryState.HELD, escalated_at__isnull=True
            ).update(escalated_at=stamp)
            if not claimed:
                continue
            director_id = (
                Placement.objects.filter(agent_id=member.agent_id)
                .values_list("director_agent_id", flat=True)
                .first()
            )
            director_active = (
                director_id is not None
                and Agent.objects.filter(agent_id=director_id, status=AgentStatus.ACTIVE).exists()
            )
            admin = _administrator(member.session_id) if director_active else None
            if admin is None:
                continue
            note = Task.unicast(
                to=director_id,
                sender=admin.agent_id,
                text=escalation_text(
                    member, task, delivery.reason, delivery.held_since or stamp, director_id
                ),
                stamp=stamp,
            )
            note.save(force_insert=True)
            create_owed([note.task_id], stamp)
            notify_inbox([director_id])
        sent.append(note)
    return sent


def open_count() -> int:
    return _held().count()


# ------------------------------------------------------------------------------ the loop
def log_line(stream, line: str) -> None:
    if stream is not None:
        stream.write(f"{now()} {line}\n")
        stream.flush()


def delivery_run(
    *,
    tmux,
    limit: int = 200,
    hold: float | None = None,
    idle: float | None = None,
    interval: float = INTERVAL,
    pid: int | None = None,
    log=None,
    clock=time.monotonic,
    sleep=time.sleep,
    max_passes: int | None = None,
) -> int:
    """Run the worker until idle for ``idle`` seconds or the lease is lost.

    Raises CafleetError when a live worker already holds the lease. Returns the number of
    passes made.
    """
    hold = hold_timeout() if hold is None else hold
    idle = idle_exit() if idle is None else idle
    pid = os.getpid() if pid is None else pid
    key = lease_key()
    if not acquire(key, pid):
        holder = DeliveryWorker.objects.filter(key=key).first()
        raise CafleetError(
            "a delivery worker is already running for this database "
            f"(pid {holder.pid if holder else '?'})."
        )
    log_line(log, f"worker pid {pid} holds the lease for {key}")
    from broker.database import database_vanished

    database = database_file()
    passes = 0
    last_busy = clock()
    last_beat = clock()
    try:
        while max_passes is None or passes < max_passes:
            passes += 1
            if database_vanished():
                log_line(log, f"database {database} is gone; exiting")
                return passes
            if clock() - last_beat >= HEARTBEAT_EVERY:
                if not heartbeat(key, pid):
                    log_line(log, "lease taken over by another worker; exiting")
                    return passes
                last_beat = clock()
            result = retry_held(tmux, limit=limit)
            if result.tried or result.gone:
                log_line(
                    log,
                    f"retried {result.tried}, delivered {result.delivered}, "
                    f"recipient gone {result.gone}",
                )
            notes = escalate(timeout=hold)
            if notes:
                jobs, skipped = build_jobs(notes, sender_id="", limit=limit, tmux=tmux)
                outcomes = run_jobs(tmux, jobs)
                outcomes.update(skipped)
                record(outcomes)
                for note in notes:
                    log_line(log, f"escalated to Director {note.context_id[:8]}: {note.text}")
            if open_count():
                last_busy = clock()
            elif clock() - last_busy >= idle:
                # Release first, then look once more: a command that held a delivery just
                # now either saw no lease (and starts a worker) or committed its row before
                # this second look (and this worker stays).
                release(key, pid)
                if not open_count():
                    log_line(log, f"nothing held for {idle:g} s; exiting")
                    return passes
                if not acquire(key, pid):
                    log_line(log, "a new worker took over at idle exit; exiting")
                    return passes
                last_busy = clock()
            sleep(interval)
        return passes
    finally:
        release(key, pid)
