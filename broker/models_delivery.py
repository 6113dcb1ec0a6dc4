"""Delivery states, the delivery worker's lease and the hook-reported agent states
(docs/delivery-states.md, docs/hooks.md). Defined here, exported by ``broker.models`` (the
app's model module, which imports this one): ``from broker.models import Delivery`` works
as for every other model. Relations name their targets by model name ("Task", "Agent"), so
this module does not import ``broker.models``.
"""

from __future__ import annotations

from django.db import models

from broker.models_base import choice_check, keyed_by


class DeliveryState(models.TextChoices):
    """Where the inline preview of one unicast delivery stands (docs/delivery-states.md).

    owed → held (reason) → offered (channel, time) → seen (time). ``failed`` ends the
    retries when the recipient is gone. Acknowledgement and cancellation stay on the task.
    """

    OWED = "owed"
    HELD = "held"
    OFFERED = "offered"
    SEEN = "seen"
    FAILED = "failed"


class Delivery(models.Model):
    """One row per unicast task (broadcast delivery rows included), keyed by the task.

    Every column is TEXT in the contract's style; ``attempts`` is a decimal count kept as
    text and doubles as the row's version in conditional UPDATEs.
    """

    task = keyed_by("Task", models.PROTECT, related_name="delivery", db_column="task_id")
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.OWED
    )
    reason = models.CharField(max_length=32, null=True, blank=True)
    channel = models.CharField(max_length=16, null=True, blank=True)
    held_since = models.CharField(max_length=32, null=True, blank=True)
    offered_at = models.CharField(max_length=32, null=True, blank=True)
    seen_at = models.CharField(max_length=32, null=True, blank=True)
    attempts = models.CharField(max_length=8, default="0")
    escalated_at = models.CharField(max_length=32, null=True, blank=True)
    updated_at = models.CharField(max_length=32)

    #: The columns in ``--json`` output (``delivery``), in order.
    JSON_FIELDS = ("state", "reason", "channel", "offered_at", "seen_at")

    class Meta:
        db_table = "task_deliveries"
        indexes = [models.Index(fields=["state"], name="idx_deliveries_state")]
        constraints = [choice_check("state", DeliveryState, "deliveries_state_valid")]

    def __str__(self):
        return f"{self.task_id[:8]} {self.state}"

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.JSON_FIELDS}


class DeliveryWorker(models.Model):
    """The delivery worker's lease: one row per host and database (``key``)."""

    key = models.TextField(primary_key=True)
    pid = models.CharField(max_length=16)
    started_at = models.CharField(max_length=32)
    heartbeat_at = models.CharField(max_length=32)

    class Meta:
        db_table = "delivery_workers"

    def __str__(self):
        return f"{self.key} pid {self.pid}"


class AgentStateName(models.TextChoices):
    """What the agent's own hooks last reported (docs/hooks.md)."""

    WORKING = "working"
    WAITING_PERMISSION = "waiting_permission"
    IDLE = "idle"
    GONE = "gone"


class AgentState(models.Model):
    """The last state an agent's hooks reported, with when it began and when it was last
    confirmed. Written by ``cafleet hook`` (``broker.hook``) with plain SQL; read by the
    delivery path (``broker.agentstate``), ``member list --activity`` and the admin."""

    agent = keyed_by("Agent", models.CASCADE, related_name="hook_state", db_column="agent_id")
    state = models.CharField(max_length=24, choices=AgentStateName.choices)
    event = models.CharField(max_length=32)
    since = models.CharField(max_length=32)
    reported_at = models.CharField(max_length=32)

    class Meta:
        db_table = "agent_states"
        constraints = [choice_check("state", AgentStateName, "agent_states_state_valid")]

    def __str__(self):
        return f"{self.agent_id[:8]} {self.state}"
