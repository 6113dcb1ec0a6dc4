"""Delivery states: what became of each unicast task's inline preview (docs/delivery-states.md).

Every unicast task (broadcast delivery rows included) has one ``Delivery`` row, written in
the same transaction as the task, in state ``owed`` (with a reason when no preview applies:
no pane, sent to oneself). After the commit the preview is tried
through ``tmux.deliver_preview`` (the tmux layer's gate decides whether typing is safe) and
the outcome is recorded:

    owed ──► held (reason) ──► offered (channel, time) ──► seen (time)
      │         │                                           ▲
      │         └──► failed (recipient gone)                │ poll / show / ack
      └──► owed + reason (not applicable: no pane, self)    │

Every change is one conditional UPDATE whose WHERE clause names the states it may leave, so
a later, slower writer never moves a row backwards (a preview that finishes after the agent
polled leaves the row ``seen``). Acknowledgement and cancellation stay on the task.

The tmux calls never run inside a transaction and never touch the database: previews of a
broadcast run in a thread pool (one pane's previews in order, in one thread) and their
outcomes are recorded afterwards by the calling thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import CharField, Count, F, IntegerField, Value
from django.db.models.functions import Cast, Coalesce

from broker import agentstate
from broker.clock import now
from broker.conf import host_id
from broker.delivery_lease import ensure_worker
from broker.models import Delivery, DeliveryState, Placement, Task, TaskState
from broker.tmux import REASON_TEXT

CHANNEL_KEYS = "keys"
#: Channels: keystroke preview, hook additionalContext, background waiter (docs/hooks.md).
CHANNELS = (CHANNEL_KEYS, "hook", "wake")
# Reasons the tmux layer gives for a held or failed preview (DELIVERY-INTERFACE), in words.
REASON_WORDS = {
    **REASON_TEXT,
    # Set by this module: no preview applies, or the recipient left.
    "no_pane": "no pane",
    "self": "sent to yourself",
    "no_tmux": "tmux not found",
    "recipient_gone": "recipient gone",
    "migrated": "recorded before delivery states existed",
    "other_host": "waiting for the worker of the pane's host",
    # Set from the recipient's hook-reported state (docs/hooks.md).
    "hook": "waiting for the agent's next hook",
    "hook_wait": "the agent's waiter will wake it",
}
# A failed preview with one of these reasons is final: the recipient is gone.
GONE_REASONS = frozenset({"pane_gone", "recipient_gone"})
# Previews of one broadcast typed at the same time (each pane has its own typist lock).
MAX_PARALLEL = 32
OPEN_STATES = (DeliveryState.OWED, DeliveryState.HELD)
# Held because the recipient's pane belongs to another host (``Placement.host_id``).
OTHER_HOST = "other_host"


def reason_words(reason: str | None) -> str:
    if not reason:
        return ""
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def _bump():
    """``attempts + 1`` on a TEXT column."""
    return Cast(Cast(F("attempts"), IntegerField()) + Value(1), output_field=CharField())


# ------------------------------------------------------------------------------ creation
def owed_rows(task_ids, stamp: str) -> list[Delivery]:
    return [
        Delivery(task_id=tid, state=DeliveryState.OWED, attempts="0", updated_at=stamp)
        for tid in task_ids
    ]


def create_owed(task_ids, stamp: str) -> None:
    """Owed rows for freshly inserted unicast tasks; call inside the tasks' transaction."""
    Delivery.objects.bulk_create(owed_rows(task_ids, stamp))


# ------------------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class Outcome:
    """One preview attempt's result, normalised from the tmux layer's ``Delivery``."""

    status: str  # "delivered" | "held" | "failed" | "skipped"
    reason: str | None = None
    verified: bool = False


def normalise(result) -> Outcome:
    """The tmux layer's answer as an ``Outcome`` (a bare bool, as simple test doubles
    return, counts as delivered / a tmux error)."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, bool):
        return Outcome("delivered") if result else Outcome("held", "tmux_error")
    status = getattr(result, "status", None)
    reason = getattr(result, "reason", None)
    verified = bool(getattr(result, "verified", False))
    if status == "delivered":
        return Outcome("delivered", None, verified)
    if status == "failed" and reason in GONE_REASONS:
        return Outcome("failed", reason)
    # "held", and any failure that may pass later (a tmux error), are retried.
    return Outcome("held", reason or "tmux_error")


@dataclass
class Job:
    """One preview to type: built from the database, typed without touching it."""

    task_id: str
    pane_id: str
    coding_agent: str
    payload: str


def call_preview(tmux, job: Job) -> Outcome:
    """``tmux.deliver_preview`` for one job. Never raises."""
    try:
        result = tmux.deliver_preview(job.pane_id, job.payload, coding_agent=job.coding_agent)
        return normalise(result)
    except Exception:  # a preview never fails the command
        return Outcome("held", "tmux_error")


def run_jobs(tmux, jobs: list[Job], *, parallel: int = MAX_PARALLEL) -> dict[str, Outcome]:
    """Type every job; panes in parallel, one pane's jobs in order (oldest first).

    Once a pane holds a preview, its later jobs in this batch are held with the same
    reason without being tried, so they never overtake the held one.
    """
    by_pane: dict[str, list[Job]] = {}
    for job in jobs:
        by_pane.setdefault(job.pane_id, []).append(job)

    def one_pane(pane_jobs: list[Job]) -> list[tuple[str, Outcome]]:
        done = []
        blocked: Outcome | None = None
        for job in pane_jobs:
            outcome = blocked or call_preview(tmux, job)
            if outcome.status != "delivered":
                blocked = outcome
            done.append((job.task_id, outcome))
        return done

    groups = list(by_pane.values())
    results: dict[str, Outcome] = {}
    if len(groups) <= 1:
        for group in groups:
            results.update(one_pane(group))
        return results
    from concurrent.futures import ThreadPoolExecutor  # only a broadcast needs threads

    with ThreadPoolExecutor(max_workers=min(parallel, len(groups))) as pool:
        for done in pool.map(one_pane, groups):
            results.update(done)
    return results


def record(outcomes: dict[str, Outcome], *, stamp: str | None = None) -> None:
    """Write outcomes: one conditional UPDATE per distinct outcome, in one transaction."""
    if not outcomes:
        return
    stamp = stamp or now()
    groups: dict[Outcome, list[str]] = {}
    for task_id, outcome in outcomes.items():
        groups.setdefault(outcome, []).append(task_id)
    with transaction.atomic():
        for outcome, task_ids in groups.items():
            _apply(outcome, task_ids, stamp)


def _apply(outcome: Outcome, task_ids: list[str], stamp: str) -> int:
    rows = Delivery.objects.filter(task_id__in=task_ids)
    if outcome.status == "skipped":
        return rows.filter(state=DeliveryState.OWED).update(reason=outcome.reason, updated_at=stamp)
    changes = _changes(outcome, stamp)
    return rows.filter(state__in=OPEN_STATES).update(**changes, attempts=_bump(), updated_at=stamp)


def _changes(outcome: Outcome, stamp: str) -> dict:
    """The columns one tried preview sets besides ``attempts`` and ``updated_at``."""
    if outcome.status == "delivered":
        # A verified preview was seen on the screen; otherwise it is only offered.
        seen = {"state": DeliveryState.SEEN, "seen_at": stamp} if outcome.verified else {}
        return {
            "state": DeliveryState.OFFERED,
            "reason": None,
            "channel": CHANNEL_KEYS,
            "offered_at": stamp,
            **seen,
        }
    if outcome.status == "failed":
        return {"state": DeliveryState.FAILED, "reason": outcome.reason}
    return {
        "state": DeliveryState.HELD,
        "reason": outcome.reason,
        "held_since": Coalesce(F("held_since"), Value(stamp)),
    }


def mark_seen(task_ids, *, stamp: str | None = None) -> int:
    """The agent polled, was shown or acknowledged these tasks: one UPDATE."""
    task_ids = list(task_ids)
    if not task_ids:
        return 0
    stamp = stamp or now()
    return (
        Delivery.objects.filter(task_id__in=task_ids)
        .exclude(state=DeliveryState.SEEN)
        .update(state=DeliveryState.SEEN, seen_at=stamp, updated_at=stamp)
    )


def mark_gone(task_ids, reason: str, *, stamp: str | None = None) -> int:
    """Stop retrying: the recipient is deregistered or has no pane any more."""
    task_ids = list(task_ids)
    if not task_ids:
        return 0
    stamp = stamp or now()
    return Delivery.objects.filter(task_id__in=task_ids, state__in=OPEN_STATES).update(
        state=DeliveryState.FAILED, reason=reason, updated_at=stamp
    )


# ------------------------------------------------------------------------------ previews
def build_jobs(
    tasks: list[Task], *, sender_id: str, limit: int, tmux
) -> tuple[list[Job], dict[str, Outcome]]:
    """Jobs for the tasks that can get a preview; ``skipped`` outcomes for the rest."""
    skipped: dict[str, Outcome] = {}
    recipients = {t.context_id for t in tasks}
    placements = dict(
        (aid, (pane, agent, host))
        for aid, pane, agent, host in Placement.objects.filter(
            agent_id__in=recipients, tmux_pane_id__isnull=False
        ).values_list("agent_id", "tmux_pane_id", "coding_agent", "host_id")
    )
    here = host_id()
    have_tmux = tmux is not None and bool(tmux.tmux_binary())
    hooked = agentstate.routes(set(placements) - {sender_id})
    held_since = (
        dict(
            Delivery.objects.filter(
                task_id__in=[t.task_id for t in tasks if t.context_id in hooked]
            ).values_list("task_id", "held_since")
        )
        if hooked
        else {}
    )
    jobs = []
    for task in tasks:
        if task.context_id == sender_id:
            skipped[task.task_id] = Outcome("skipped", "self")
            continue
        placed = placements.get(task.context_id)
        if placed is None:
            skipped[task.task_id] = Outcome("skipped", "no_pane")
            continue
        pane, coding_agent, owner = placed
        if owner not in ("", here):
            # Another host's pane: its own worker types the preview (issue 13).
            skipped[task.task_id] = Outcome("held", OTHER_HOST)
            continue
        route = hooked.get(task.context_id)
        if route and not (
            route in agentstate.HOOK_REASONS and agentstate.grace_over(held_since.get(task.task_id))
        ):
            # The recipient's hooks hand it over (or it is gone): no keystroke now.
            skipped[task.task_id] = Outcome("held", route)
            continue
        if not have_tmux:
            skipped[task.task_id] = Outcome("skipped", "no_tmux")
            continue
        payload = tmux.preview_payload(
            task.task_id, task.from_agent_id, task.status_timestamp, task.text, limit
        )
        jobs.append(Job(task.task_id, pane, coding_agent, payload))
    return jobs, skipped


@dataclass
class Plan:
    """The previews of freshly written tasks: their owed rows (a reason already set where no
    preview applies) and the jobs to type once the tasks are committed."""

    rows: list[Delivery]
    jobs: list[Job]


def plan_previews(tasks: list[Task], *, sender_id: str, limit: int, tmux, stamp: str) -> Plan:
    """Decide, before the tasks are written, which previews to type (one SELECT)."""
    jobs, skipped = build_jobs(tasks, sender_id=sender_id, limit=limit, tmux=tmux)
    rows = owed_rows([t.task_id for t in tasks], stamp)
    for row in rows:
        outcome = skipped.get(row.task_id)
        if outcome is not None:
            row.reason = outcome.reason
            if outcome.status == "held":  # another host's pane: that host's worker types it
                row.state = DeliveryState.HELD
                row.held_since = stamp
    return Plan(rows, jobs)


def insert_planned(plan: Plan) -> None:
    """The plan's owed rows; call inside the tasks' transaction."""
    Delivery.objects.bulk_create(plan.rows)


def preview_planned(tmux, plan: Plan) -> dict[str, Delivery]:
    """After the commit: type the plan's previews, record the outcomes (one transaction)
    and return ``{task_id: Delivery}`` as stored. Tasks without a preview cost nothing
    more. When a delivery is left held, a background delivery worker is started
    (``broker.delivery_lease.ensure_worker``)."""
    rows = {row.task_id: row for row in plan.rows}
    if not plan.jobs:
        return rows
    record(run_jobs(tmux, plan.jobs))
    typed = Delivery.objects.filter(task_id__in=[job.task_id for job in plan.jobs])
    rows.update({row.task_id: row for row in typed})
    if any(r.state == DeliveryState.HELD and r.reason != OTHER_HOST for r in rows.values()):
        ensure_worker()
    return rows


def delivery_of(task: Task) -> Delivery | None:
    """The task's delivery row, or None (broadcast summaries, and tasks written without
    one, have none)."""
    try:
        return task.delivery
    except Delivery.DoesNotExist:
        return None


def delivery_json(task: Task) -> dict | None:
    row = delivery_of(task)
    return None if row is None else row.as_dict()


def is_delivered(delivery: Delivery | None) -> bool:
    return delivery is not None and delivery.state in (DeliveryState.OFFERED, DeliveryState.SEEN)


def send_summary(delivery: Delivery | None) -> str:
    """The words after ``Message sent.`` in text mode."""
    if delivery is None:
        return "No pane to preview."
    if is_delivered(delivery):
        return "Preview delivered."
    if delivery.state == DeliveryState.HELD:
        return f"Preview held: {reason_words(delivery.reason)}."
    if delivery.state == DeliveryState.FAILED:
        return f"Preview not delivered: {reason_words(delivery.reason)}."
    if delivery.reason == "self":
        return "No preview (sent to yourself)."
    if delivery.reason == "no_tmux":
        return "No preview: tmux not found."
    return "No pane to preview."


def delivery_line(delivery: Delivery | None) -> str | None:
    """One text line for ``message show``: state, reason in words, channel and times."""
    if delivery is None:
        return None
    parts = [f"delivery: {delivery.state}"]
    if delivery.reason:
        parts.append(f"({reason_words(delivery.reason)})")
    if delivery.channel:
        parts.append(f"via {delivery.channel}")
    if delivery.state == DeliveryState.HELD and delivery.held_since:
        parts.append(f"since {delivery.held_since}")
    if delivery.offered_at:
        parts.append(f"offered {delivery.offered_at}")
    if delivery.seen_at:
        parts.append(f"seen {delivery.seen_at}")
    return " ".join(parts)


def held_counts(agent_ids) -> dict[str, int]:
    """Held deliveries of unacknowledged tasks, per recipient."""
    rows = (
        Task.objects.filter(
            context_id__in=list(agent_ids),
            status_state=TaskState.INPUT_REQUIRED,
            delivery__state=DeliveryState.HELD,
        )
        .values("context_id")
        .annotate(n=Count("task_id"))
    )
    return {r["context_id"]: r["n"] for r in rows}
