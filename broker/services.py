"""Workflows that span models or reach tmux: sessions, agents and messages.

Keyword-only functions named ``<noun>_<verb>``. Database writes run inside
``transaction.atomic()`` (BEGIN IMMEDIATE, see settings); tmux is only touched after the
commit, so a slow pane never holds the write lock. The ``tmux`` parameter is the
``broker.tmux`` module or a test double with the same functions.
"""

from __future__ import annotations

import json

from django.db import transaction

from broker import delivery
from broker.clock import new_id, now
from broker.database import notify_inbox
from broker.exceptions import CafleetError, NotFound, ValidationError
from broker.ids import is_full_id, is_wellformed_prefix, resolve_agent, resolve_task
from broker.models import (
    ADMIN_KIND,
    Agent,
    AgentStatus,
    DeliveryState,
    MemberEvent,
    Placement,
    Session,
    Task,
    TaskState,
    TaskType,
    card_kind,
)

RESERVED_NAME = "administrator"
DIRECTOR_NAME = "Director"
DIRECTOR_DESCRIPTION = "Root Director for this session"


def is_reserved_name(name: str) -> bool:
    """``Administrator`` in any case, and anything that only looks like it: the name's
    skeleton (NFKC, case-folded, invisible characters and combining marks removed,
    Cyrillic/Greek lookalikes mapped to Latin, see ``broker.textnorm``) is compared."""
    from broker.textnorm import skeleton

    return name.strip().lower() == RESERVED_NAME or skeleton(name) == skeleton(RESERVED_NAME)


def check_not_reserved(name: str) -> None:
    """The checks every agent name passes (agent register, member create): not empty or
    blank (exit 2), then not the reserved name or a lookalike of it (exit 1)."""
    from broker.textnorm import strip_invisible

    if not strip_invisible(name).strip():
        raise ValidationError("--name may not be empty.")
    if is_reserved_name(name):
        raise CafleetError("the name 'Administrator' is reserved.")


def administrator_card(session_id: str) -> dict:
    return {
        "name": "Administrator",
        "description": f"Built-in administrator agent for session {session_id[:8]}",
        "skills": [],
        "cafleet": {"kind": ADMIN_KIND},
    }


# ------------------------------------------------------------------------------ sessions
def session_create(
    *, label: str | None, coding_agent: str, caller: tuple[str, str, str]
) -> tuple[Session, Agent, Agent, Placement]:
    """Session + root Director + its placement + Administrator, one timestamp, one commit."""
    tmux_session, window_id, pane_id = caller
    stamp = now()
    with transaction.atomic():
        session = Session.objects.create(session_id=new_id(), label=label, created_at=stamp)
        director = Agent.objects.enroll(
            session_id=session.session_id,
            name=DIRECTOR_NAME,
            description=DIRECTOR_DESCRIPTION,
            stamp=stamp,
        )
        placement = Placement.place(
            director,
            director_id=None,
            caller=caller,
            pane_id=pane_id,
            coding_agent=coding_agent,
            stamp=stamp,
        )
        session.director_agent = director
        session.save(update_fields=["director_agent"])
        card = administrator_card(session.session_id)
        admin = Agent.objects.enroll(
            session_id=session.session_id,
            name=card["name"],
            description=card["description"],
            stamp=stamp,
            card=card,
        )
    return session, director, admin, placement


def session_get(session_ref: str) -> Session:
    from broker.ids import resolve_session

    sid = resolve_session(session_ref)
    session = Session.objects.filter(session_id=sid).first()
    if session is None:
        raise NotFound(f"session '{session_ref}' not found.")
    return session


def session_list() -> list[dict]:
    from django.db.models import Count, Q

    rows = (
        Session.objects.live()
        .order_by("created_at", "session_id")
        .annotate(agent_count=Count("agents", filter=Q(agents__status=AgentStatus.ACTIVE)))
    )
    return [
        {
            "session_id": s.session_id,
            "label": s.label,
            "created_at": s.created_at,
            "agent_count": s.agent_count,
        }
        for s in rows
    ]


def session_delete(*, session_ref: str) -> tuple[Session, int]:
    """Soft delete + cascade (data-model.md §4.2). Returns the session and N deregistered."""
    session = session_get(session_ref)
    stamp = now()
    with transaction.atomic():
        changed = Session.objects.filter(
            session_id=session.session_id, deleted_at__isnull=True
        ).update(deleted_at=stamp)
        if not changed:
            return session, 0
        count = Agent.objects.filter(
            session_id=session.session_id, status=AgentStatus.ACTIVE
        ).update(status=AgentStatus.DEREGISTERED, deregistered_at=stamp)
        placements = Placement.objects.filter(agent__session_id=session.session_id)
        MemberEvent.record_deleted(placements, at=stamp, note="session deleted")
        placements.delete()
    return session, count


# ------------------------------------------------------------------------------ gates
# One function per kind of check (cli.md §2.8 step 7), each named by what it requires.
def require_live_session(session_id: str, *, prefix: str = "") -> Session:
    """The session exists and is not deleted."""
    session = Session.objects.filter(session_id=session_id).first()
    if session is None:
        raise NotFound(f"{prefix}Session '{session_id}' not found.")
    if session.is_deleted:
        raise CafleetError(f"{prefix}session {session_id} is deleted")
    return session


PREFIX_HINT = "an id prefix needs at least 8 characters"


def is_short_prefix(value: str | None) -> bool:
    """A value that can never match (cli.md §2.7 rule 4): not a full id, under 8 characters."""
    return value is not None and not is_full_id(value) and len(value) < 8


def check_session_known(session_id: str) -> None:
    """``session '<sid>' not found.`` (the ``SESSION_ID`` wording) for a ``--session-id``
    that names no session, live or deleted, so an unknown session is not blamed on an agent."""
    if not Session.objects.filter(session_id=session_id).exists():
        hint = f"; {PREFIX_HINT}" if is_short_prefix(session_id) else ""
        raise NotFound(f"session '{session_id}' not found{hint}.")


def explain_unknown_agent(session_id: str, agent_ref: str) -> None:
    """Before reporting that the acting agent is unknown: say so when the real cause is the
    session, or an id prefix too short to match anything."""
    check_session_known(session_id)
    if is_short_prefix(agent_ref):
        raise CafleetError(f"id prefix '{agent_ref}' is too short; {PREFIX_HINT}.")


def require_session_member(session_id: str, agent_ref: str) -> str:
    """The acting agent belongs to the session (any status). Returns its full id."""
    agent_id = resolve_agent(session_id, agent_ref)
    if not Agent.objects.filter(agent_id=agent_id, session_id=session_id).exists():
        explain_unknown_agent(session_id, agent_ref)
        raise CafleetError(f"agent {agent_id} is not a member of session {session_id}.")
    return agent_id


def require_active_agent(session_id: str, agent_id: str, *, error: str | None = None) -> Agent:
    """The agent is active in the session; else ``error`` (the caller's wording for its
    role: sender, director) or ``Agent <id> not found``. Returns the agent."""
    agent = Agent.objects.in_session(session_id).active().filter(agent_id=agent_id).first()
    if agent is None:
        check_session_known(session_id)  # an unknown session is named, not the agent
        if not error:
            raise NotFound(f"Agent {agent_id} not found")
        if is_short_prefix(agent_id):  # an acting agent typed too short: say so
            error = f"{error.rstrip('.')} ({PREFIX_HINT})."
        raise CafleetError(error)
    return agent


# ------------------------------------------------------------------------------ agents


def agent_register(
    *, session_id: str, name: str, description: str, skills_json: str | None
) -> Agent:
    """The caller checked the name (``check_not_reserved``, a step-3 validation)."""
    skills = []
    if skills_json is not None:
        try:
            skills = json.loads(skills_json)
        except ValueError as exc:
            raise CafleetError(f"Invalid JSON in --skills: {exc}") from None
    require_live_session(session_id)
    card = {"name": name, "description": description, "skills": skills}
    return Agent.objects.enroll(
        session_id=session_id, name=name, description=description, stamp=now(), card=card
    )


def agent_deregister(*, session_id: str, agent_ref: str) -> Agent:
    agent_id = require_session_member(session_id, agent_ref)
    agent = Agent.objects.select_related("session").get(agent_id=agent_id)
    if agent.is_root_director_of(agent.session):
        raise CafleetError(
            "cannot deregister the root Director; use 'cafleet session delete' instead."
        )
    if agent.is_administrator:
        raise CafleetError("Administrator cannot be deregistered")
    if agent.status != AgentStatus.ACTIVE:
        raise CafleetError(f"agent {agent_id} not found or already deregistered.")
    agent.deregister()
    return agent


def agent_list(*, session_id: str, agent_ref: str) -> list[Agent]:
    require_session_member(session_id, agent_ref)
    return list(Agent.objects.in_session(session_id).active().ordered())


def agent_show(*, session_id: str, agent_ref: str, target_ref: str) -> tuple[Agent, object]:
    require_session_member(session_id, agent_ref)
    target = require_active_agent(session_id, resolve_agent(session_id, target_ref))
    placement = Placement.objects.filter(agent_id=target.agent_id).first()
    return target, placement


# ------------------------------------------------------------------------------ messages
def _sender_missing(agent_id: str) -> str:
    return f"Sender agent not found or not active in session: {agent_id}"


def message_send(
    *, session_id: str, agent_ref: str, to_ref: str, text: str, limit: int, tmux=None
) -> tuple[Task, bool]:
    sender_id = resolve_agent(session_id, agent_ref)
    to_id = resolve_agent(session_id, to_ref)
    if to_id == to_ref and not is_full_id(to_ref) and not is_wellformed_prefix(to_ref):
        raise CafleetError(f"Invalid destination format: {to_ref}")
    require_active_agent(session_id, sender_id, error=_sender_missing(sender_id))
    dest = (
        Agent.objects.filter(agent_id=to_id, status=AgentStatus.ACTIVE)
        .values_list("session_id", flat=True)
        .first()
    )
    if dest is None:
        raise NotFound(f"Destination agent not found: {to_id}")
    if dest != session_id:
        raise CafleetError(f"Destination agent not in session: {to_id}")
    stamp = now()
    task = Task.unicast(to=to_id, sender=sender_id, text=text, stamp=stamp)
    plan = delivery.plan_previews([task], sender_id=sender_id, limit=limit, tmux=tmux, stamp=stamp)
    with transaction.atomic():
        task.save(force_insert=True)
        delivery.insert_planned(plan)
        notify_inbox([to_id])
    task.delivery = delivery.preview_planned(tmux, plan)[task.task_id]
    return task, delivery.is_delivered(task.delivery)


def message_broadcast(
    *, session_id: str, agent_ref: str, text: str, limit: int, tmux=None
) -> tuple[Task, int, int]:
    """N delivery rows + 1 summary in one transaction; previews after commit.

    Returns (summary, recipients N, previews delivered K).
    """
    sender_id = resolve_agent(session_id, agent_ref)
    require_active_agent(session_id, sender_id, error=_sender_missing(sender_id))
    stamp = now()
    summary_id = new_id()
    with transaction.atomic():
        candidates = (
            Agent.objects.in_session(session_id)
            .active()
            .exclude(agent_id=sender_id)
            .ordered()
            .values_list("agent_id", "agent_card_json")
        )
        recipients = [aid for aid, card in candidates if card_kind(card) != ADMIN_KIND]
        deliveries = [
            Task.unicast(to=aid, sender=sender_id, text=text, stamp=stamp, origin=summary_id)
            for aid in recipients
        ]
        summary = Task(
            task_id=summary_id,
            context_id=sender_id,
            from_agent_id=sender_id,
            to_agent_id="",
            type=TaskType.BROADCAST_SUMMARY,
            created_at=stamp,
            status_state=TaskState.COMPLETED,
            status_timestamp=stamp,
            origin_task_id=summary_id,
            text=f"Broadcast sent to {len(recipients)} recipients",
        )
        plan = delivery.plan_previews(
            deliveries, sender_id=sender_id, limit=limit, tmux=tmux, stamp=stamp
        )
        Task.objects.bulk_create([*deliveries, summary])
        delivery.insert_planned(plan)
        notify_inbox(recipients)
    rows = delivery.preview_planned(tmux, plan)
    delivered = sum(1 for row in rows.values() if delivery.is_delivered(row))
    return summary, len(recipients), delivered


def message_poll(
    *, agent_id: str, include_all: bool, since: str | None, page_size: int | None
) -> list[Task]:
    qs = Task.objects.inbox(agent_id)
    if not include_all:
        qs = qs.unread()
    if since is not None:
        qs = qs.filter(status_timestamp__gte=since)
    qs = qs.newest_first().select_related("delivery")
    if page_size is not None:
        qs = qs[:page_size]
    tasks = list(qs)
    _seen(tasks)
    return tasks


def _seen(tasks: list[Task]) -> None:
    """The recipient was shown these tasks: their deliveries become ``seen`` (one UPDATE),
    and the rows in hand say so too."""
    stamp = now()
    fresh = []
    for task in tasks:
        row = delivery.delivery_of(task)
        if row is not None and row.state != DeliveryState.SEEN:
            fresh.append(task.task_id)
            row.state, row.seen_at, row.updated_at = DeliveryState.SEEN, stamp, stamp
    delivery.mark_seen(fresh, stamp=stamp)


def find_task(session_id: str, task_ref: str) -> Task:
    task_id = resolve_task(session_id, task_ref)
    task = (
        Task.objects.visible_in_session(session_id)
        .filter(task_id=task_id)
        .select_related("delivery")
        .first()
    )
    if task is None:
        raise NotFound(f"Task {task_id} not found")
    return task


def message_ack(*, session_id: str, agent_ref: str, task_ref: str) -> Task:
    agent_id = require_session_member(session_id, agent_ref)
    task = find_task(session_id, task_ref)
    task.ack(by=agent_id)
    _seen([task])
    return task


def message_cancel(*, session_id: str, agent_ref: str, task_ref: str) -> Task:
    agent_id = require_session_member(session_id, agent_ref)
    task = find_task(session_id, task_ref)
    task.cancel(by=agent_id)
    return task


def message_show(*, session_id: str, agent_ref: str, task_ref: str) -> Task:
    """Any agent of the session may read the task; the recipient reading it has seen it."""
    agent_id = require_session_member(session_id, agent_ref)
    task = find_task(session_id, task_ref)
    if task.context_id == agent_id:
        _seen([task])
    return task
