"""Session, Agent, Task and Placement (``../shared/contract/data-model.md``).

Every column is TEXT: ids are application-generated UUIDv4 strings and timestamps are
32-character ISO-8601 UTC strings (``broker.clock.now``), so they sort as strings.
Nothing but placements is ever deleted; state changes are single conditional UPDATEs so
that racing writers have exactly one winner.
"""

from __future__ import annotations

import json

from django.db import models, transaction
from django.db.models import F, Q

from broker.clock import new_id, now
from broker.exceptions import CafleetError, Forbidden, InvalidState
from broker.models_base import choice_check, keyed_by
from broker.models_delivery import (
    AgentState,
    AgentStateName,
    Delivery,
    DeliveryState,
    DeliveryWorker,
)

# The delivery and hook-state models are defined in ``broker.models_delivery``.
__all__ = ["AgentState", "AgentStateName", "Delivery", "DeliveryState", "DeliveryWorker"]

ADMIN_KIND = "builtin-administrator"


def card_kind(card_json: str) -> str:
    """``builtin-administrator`` when the stored card says so (``cafleet.kind``), else
    ``user`` (data-model.md §3)."""
    try:
        card = json.loads(card_json)
    except ValueError:
        return "user"
    meta = card.get("cafleet") if isinstance(card, dict) else None
    if isinstance(meta, dict) and meta.get("kind") == ADMIN_KIND:
        return ADMIN_KIND
    return "user"


class CodingAgent(models.TextChoices):
    CLAUDE = "claude"
    CODEX = "codex"


class AgentStatus(models.TextChoices):
    ACTIVE = "active"
    DEREGISTERED = "deregistered"


class TaskType(models.TextChoices):
    UNICAST = "unicast"
    BROADCAST_SUMMARY = "broadcast_summary"


class TaskState(models.TextChoices):
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    CANCELED = "canceled"


#: The word shown for each state wherever a person reads it (admin pages, titles).
STATE_WORDS = {
    "input_required": "unread",
    "completed": "acknowledged",
    "canceled": "canceled",
}


# ------------------------------------------------------------------------------ sessions
class SessionQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)


class Session(models.Model):
    session_id = models.CharField(max_length=36, primary_key=True)
    label = models.TextField(null=True, blank=True)
    created_at = models.CharField(max_length=32)
    deleted_at = models.CharField(max_length=32, null=True, blank=True)
    director_agent = models.ForeignKey(
        "Agent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_column="director_agent_id",
    )

    objects = SessionQuerySet.as_manager()

    class Meta:
        db_table = "sessions"
        ordering = ("created_at", "session_id")

    def __str__(self):
        return self.label or self.session_id[:8]

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


# ------------------------------------------------------------------------------ agents
class AgentQuerySet(models.QuerySet):
    def in_session(self, session_id: str):
        return self.filter(session_id=session_id)

    def active(self):
        return self.filter(status=AgentStatus.ACTIVE)

    def ordered(self):
        return self.order_by("registered_at", "agent_id")

    def enroll(self, *, session_id: str, name: str, description: str, stamp: str, card=None):
        """A new active agent, its card ``{"name", "description", "skills": []}`` unless
        ``card`` is given."""
        from broker.output import compact_json

        card = card or {"name": name, "description": description, "skills": []}
        return self.create(
            agent_id=new_id(),
            session_id=session_id,
            name=name,
            description=description,
            registered_at=stamp,
            agent_card_json=compact_json(card),
        )


class Agent(models.Model):
    agent_id = models.CharField(max_length=36, primary_key=True)
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="agents", db_column="session_id"
    )
    name = models.TextField()
    description = models.TextField()
    status = models.CharField(
        max_length=16, choices=AgentStatus.choices, default=AgentStatus.ACTIVE
    )
    registered_at = models.CharField(max_length=32)
    deregistered_at = models.CharField(max_length=32, null=True, blank=True)
    agent_card_json = models.TextField()

    objects = AgentQuerySet.as_manager()

    class Meta:
        db_table = "agents"
        indexes = [models.Index(fields=["session", "status"], name="idx_agents_session_status")]
        constraints = [
            choice_check("status", AgentStatus, "agents_status_valid"),
            models.CheckConstraint(
                condition=Q(status=AgentStatus.ACTIVE, deregistered_at__isnull=True)
                | Q(status=AgentStatus.DEREGISTERED, deregistered_at__isnull=False),
                name="agents_deregistered_at_matches_status",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.agent_id[:8]})"

    @property
    def card(self) -> dict:
        try:
            value = json.loads(self.agent_card_json)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def kind(self) -> str:
        return card_kind(self.agent_card_json)

    @property
    def is_administrator(self) -> bool:
        return self.kind == ADMIN_KIND

    def is_root_director_of(self, session: Session) -> bool:
        return session.director_agent_id == self.agent_id

    def deregister(self, *, at: str | None = None, note: str = "") -> None:
        """Flip active → deregistered and drop the placement, in one transaction.

        The caller checks the root-Director / Administrator protections; this method
        guarantees the one-way transition under concurrency. A member's placement leaves a
        ``deleted`` :class:`MemberEvent` (``note``: how it ended).
        """
        stamp = at or now()
        with transaction.atomic():
            changed = Agent.objects.filter(
                agent_id=self.agent_id, status=AgentStatus.ACTIVE
            ).update(status=AgentStatus.DEREGISTERED, deregistered_at=stamp)
            if not changed:
                raise CafleetError(f"agent {self.agent_id} not found or already deregistered.")
            placements = Placement.objects.filter(agent_id=self.agent_id)
            MemberEvent.record_deleted(placements, at=stamp, note=note or "deregistered")
            placements.delete()
        self.status = AgentStatus.DEREGISTERED
        self.deregistered_at = stamp


# ------------------------------------------------------------------------------ tasks
class TaskQuerySet(models.QuerySet):
    def deliveries(self):
        """Every row but broadcast summaries."""
        return self.exclude(type=TaskType.BROADCAST_SUMMARY)

    def inbox(self, agent_id: str):
        return self.filter(context_id=agent_id).deliveries()

    def unread(self):
        return self.filter(status_state=TaskState.INPUT_REQUIRED)

    def newest_first(self):
        return self.order_by("-status_timestamp", "-task_id")

    def visible_in_session(self, session_id: str):
        """Tasks whose sender or recipient is an agent of the session."""
        members = Agent.objects.filter(session_id=session_id).values("agent_id")
        return self.filter(Q(context__session_id=session_id) | Q(from_agent_id__in=members))


class Task(models.Model):
    task_id = models.CharField(max_length=36, primary_key=True)
    context = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="inbox", db_column="context_id"
    )
    from_agent_id = models.CharField(max_length=36)
    to_agent_id = models.CharField(max_length=36, blank=True)
    type = models.CharField(max_length=24, choices=TaskType.choices, default=TaskType.UNICAST)
    created_at = models.CharField(max_length=32)
    status_state = models.CharField(
        max_length=24, choices=TaskState.choices, default=TaskState.INPUT_REQUIRED
    )
    status_timestamp = models.CharField(max_length=32)
    origin_task_id = models.CharField(max_length=36, null=True, blank=True)
    text = models.TextField()

    objects = TaskQuerySet.as_manager()

    class Meta:
        db_table = "tasks"
        indexes = [
            models.Index(
                fields=["context", "status_timestamp"], name="idx_tasks_context_status_ts"
            ),
            models.Index(
                fields=["from_agent_id", "status_timestamp"], name="idx_tasks_from_agent_status_ts"
            ),
        ]
        constraints = [
            choice_check("type", TaskType, "tasks_type_valid"),
            choice_check("status_state", TaskState, "tasks_state_valid"),
            models.CheckConstraint(
                condition=Q(type=TaskType.UNICAST)
                | Q(
                    to_agent_id="",
                    status_state=TaskState.COMPLETED,
                    origin_task_id=F("task_id"),
                    context_id=F("from_agent_id"),
                ),
                name="tasks_summary_shape",
            ),
            models.CheckConstraint(
                condition=Q(type=TaskType.BROADCAST_SUMMARY) | Q(to_agent_id=F("context_id")),
                name="tasks_unicast_addressed_to_context",
            ),
        ]

    def __str__(self):
        return f"{self.task_id[:8]} {self.kind_word} {self.state_word}"

    @classmethod
    def unicast(cls, *, to: str, sender: str, text: str, stamp: str, origin: str | None = None):
        """A new unread unicast task (not saved): ``origin`` is the broadcast summary's id
        for one of a broadcast's deliveries."""
        return cls(
            task_id=new_id(),
            context_id=to,
            from_agent_id=sender,
            to_agent_id=to,
            type=TaskType.UNICAST,
            created_at=stamp,
            status_state=TaskState.INPUT_REQUIRED,
            status_timestamp=stamp,
            origin_task_id=origin,
            text=text,
        )

    @property
    def kind_word(self) -> str:
        """``unicast``, ``broadcast`` (a delivery) or ``broadcast summary``."""
        if self.type == TaskType.BROADCAST_SUMMARY:
            return "broadcast summary"
        return "broadcast" if self.origin_task_id else "unicast"

    @property
    def state_word(self) -> str:
        """The one word every page uses for the state: ``unread``, ``acknowledged``,
        ``canceled``; a broadcast summary is ``sent``."""
        if self.type == TaskType.BROADCAST_SUMMARY:
            return "sent"
        return STATE_WORDS.get(self.status_state, self.status_state)

    def _transition(self, to_state: str, verb: str) -> None:
        """input_required → to_state as one conditional UPDATE: exactly one racer wins."""
        stamp = now()
        changed = Task.objects.filter(
            task_id=self.task_id, status_state=TaskState.INPUT_REQUIRED
        ).update(status_state=to_state, status_timestamp=stamp)
        if not changed:
            current = (
                Task.objects.filter(task_id=self.task_id)
                .values_list("status_state", flat=True)
                .first()
            )
            raise InvalidState(f"Cannot {verb} task in state {current or self.status_state}")
        self.status_state = to_state
        self.status_timestamp = stamp

    def ack(self, *, by: str) -> None:
        if self.context_id != by:
            raise Forbidden("Only the recipient can ACK a task")
        self._transition(TaskState.COMPLETED, "ACK")

    def cancel(self, *, by: str) -> None:
        if self.from_agent_id != by:
            raise Forbidden("Only the sender can cancel a task")
        self._transition(TaskState.CANCELED, "cancel")


# ------------------------------------------------------------------------------ placements
class Placement(models.Model):
    agent = keyed_by("Agent", models.CASCADE, related_name="placement", db_column="agent_id")
    director_agent = models.ForeignKey(
        Agent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="member_placements",
        db_column="director_agent_id",
    )
    tmux_session = models.TextField()
    tmux_window_id = models.TextField()
    tmux_pane_id = models.TextField(null=True, blank=True)
    coding_agent = models.CharField(
        max_length=16,
        choices=CodingAgent.choices,
        default=CodingAgent.CLAUDE,
        db_default=CodingAgent.CLAUDE,
    )
    created_at = models.CharField(max_length=32)
    # The host whose tmux server has the pane (``CAFLEET_HOST_ID`` of the command that made
    # the placement). Only a process on that host types into the pane or reads it. ''
    # (rows made before hosts were recorded) counts as every host's own.
    host_id = models.TextField(default="", db_default="", blank=True)

    class Meta:
        db_table = "agent_placements"
        indexes = [models.Index(fields=["director_agent"], name="idx_placements_director")]
        constraints = [
            choice_check("coding_agent", CodingAgent, "placements_coding_agent_valid"),
            models.CheckConstraint(
                condition=~Q(director_agent_id=F("agent_id")), name="placements_not_own_director"
            ),
        ]

    def __str__(self):
        return f"{self.agent_id[:8]} @ {self.tmux_pane_id or '(pending)'}"

    @classmethod
    def place(cls, agent, *, director_id, caller, pane_id, coding_agent, stamp) -> Placement:
        """Record where ``agent`` runs: ``caller``'s tmux session and window (its pane
        ``pane_id``, None until spawned), owned by this host (``CAFLEET_HOST_ID``)."""
        from broker.conf import host_id

        tmux_session, window_id = caller[0], caller[1]
        return cls.objects.create(
            agent=agent,
            director_agent_id=director_id,
            tmux_session=tmux_session,
            tmux_window_id=window_id,
            tmux_pane_id=pane_id,
            coding_agent=coding_agent,
            created_at=stamp,
            host_id=host_id(),
        )

    def is_on_this_host(self, host: str) -> bool:
        """True when ``host`` (this process's ``CAFLEET_HOST_ID``) owns the pane."""
        return self.host_id in ("", host)

    def as_dict(self) -> dict:
        return {
            "director_agent_id": self.director_agent_id,
            "tmux_session": self.tmux_session,
            "tmux_window_id": self.tmux_window_id,
            "tmux_pane_id": self.tmux_pane_id,
            "coding_agent": self.coding_agent,
            "created_at": self.created_at,
        }


# ------------------------------------------------------------------------------ member events
class MemberEventKind(models.TextChoices):
    CREATED = "created"
    DELETED = "deleted"


class MemberEvent(models.Model):
    """A member's creation or deletion, kept after its placement is gone (the placement is
    hard-deleted with the member): the admin timeline shows these events, and a deleted
    member is still shown as a member. Written in the same transaction as the placement's
    insert (``created``) or delete (``deleted``); ``note`` says how it ended (``%3 (closed)``,
    ``session deleted``...)."""

    id = models.AutoField(primary_key=True)
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="member_events", db_column="agent_id"
    )
    director_agent = models.ForeignKey(
        Agent,
        on_delete=models.PROTECT,
        related_name="+",
        db_column="director_agent_id",
    )
    event = models.CharField(max_length=16, choices=MemberEventKind.choices)
    at = models.CharField(max_length=32)
    tmux_pane_id = models.TextField(null=True, blank=True)
    coding_agent = models.CharField(max_length=16, choices=CodingAgent.choices)
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "member_events"
        constraints = [choice_check("event", MemberEventKind, "member_events_event_valid")]

    def __str__(self):
        return f"member {self.agent_id[:8]} {self.event}"

    @classmethod
    def record_deleted(cls, placements, *, at: str, note: str = "") -> None:
        """``deleted`` events for the members among ``placements`` (about to be deleted)."""
        cls.objects.bulk_create(
            cls(
                agent_id=p.agent_id,
                director_agent_id=p.director_agent_id,
                event=MemberEventKind.DELETED,
                at=at,
                tmux_pane_id=p.tmux_pane_id,
                coding_agent=p.coding_agent,
                note=note,
            )
            for p in placements
            if p.director_agent_id
        )
