"""``member list``: a Director's active members, with the data-model §7 activity values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from broker.ids import resolve_agent
from broker.models import Agent, AgentStatus, DeliveryState, Placement, Task, TaskState, TaskType


@dataclass
class MemberRow:
    agent: Agent
    placement: Placement
    last_sent: str | None = None
    last_recv: str | None = None
    last_ack: str | None = None
    unread: int = 0
    idle: int | None = None
    held: int = 0


def _latest(queryset, outer: str, field: str):
    """``SELECT MAX(status_timestamp) ...`` of ``queryset`` correlated on ``field``."""
    grouped = queryset.filter(**{field: OuterRef(outer)}).order_by().values(field)
    return Subquery(grouped.annotate(v=Max("status_timestamp")).values("v")[:1])


def idle_seconds(last_sent: str | None, last_recv: str | None, at: datetime) -> int | None:
    """Whole seconds since the later of the two timestamps, never below 0 (data-model §7)."""
    stamps = [s for s in (last_sent, last_recv) if s]
    if not stamps:
        return None
    latest = datetime.fromisoformat(max(stamps))
    return max(0, int((at - latest).total_seconds() // 1))


def member_list(
    *, session_id: str, agent_ref: str, activity: bool = False, at: datetime | None = None
) -> list[MemberRow]:
    """Active members whose placement names ``agent_ref`` as Director (cli.md §4.5.3).

    No session gate (an unknown id lists nothing) and no tmux. With ``activity`` the
    data-model §7 values are computed in the same SQL query through correlated aggregate
    subqueries over the two task indexes; broadcast summary rows are ignored.
    """
    director_id = resolve_agent(session_id, agent_ref)
    qs = (
        Placement.objects.filter(
            director_agent_id=director_id,
            agent__session_id=session_id,
            agent__status=AgentStatus.ACTIVE,
        )
        .select_related("agent")
        .order_by("agent__registered_at", "agent_id")
    )
    if activity:
        deliveries = Task.objects.exclude(type=TaskType.BROADCAST_SUMMARY)
        received = (
            deliveries.filter(context_id=OuterRef("agent_id")).order_by().values("context_id")
        )
        qs = qs.annotate(
            a_last_sent=_latest(deliveries, "agent_id", "from_agent_id"),
            a_last_recv=_latest(deliveries, "agent_id", "context_id"),
            a_last_ack=_latest(
                deliveries.filter(status_state=TaskState.COMPLETED), "agent_id", "context_id"
            ),
            a_unread=Coalesce(
                Subquery(
                    received.filter(status_state=TaskState.INPUT_REQUIRED)
                    .annotate(n=Count("task_id"))
                    .values("n")[:1]
                ),
                0,
            ),
            # deliveries held by the pane gate (docs/delivery-states.md), unread tasks only
            a_held=Coalesce(
                Subquery(
                    received.filter(
                        status_state=TaskState.INPUT_REQUIRED, delivery__state=DeliveryState.HELD
                    )
                    .annotate(n=Count("task_id"))
                    .values("n")[:1]
                ),
                0,
            ),
        )
    rows = []
    moment = at or datetime.now(UTC)
    for placement in qs:
        row = MemberRow(agent=placement.agent, placement=placement)
        if activity:
            row.last_sent = placement.a_last_sent
            row.last_recv = placement.a_last_recv
            row.last_ack = placement.a_last_ack
            row.unread = int(placement.a_unread or 0)
            row.held = int(placement.a_held or 0)
            row.idle = idle_seconds(row.last_sent, row.last_recv, moment)
        rows.append(row)
    return rows
