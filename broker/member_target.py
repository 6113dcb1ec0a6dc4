"""The target checks every member command shares (cli.md §4.5 step 4)."""

from __future__ import annotations

from dataclasses import dataclass

from broker.conf import host_id
from broker.exceptions import CafleetError
from broker.ids import resolve_agent
from broker.models import Agent, Placement
from broker.services import PREFIX_HINT, is_short_prefix, require_active_agent


@dataclass
class Target:
    """A member that passed the §4.5 step-4 checks."""

    member: Agent
    placement: Placement

    @property
    def member_id(self) -> str:
        return self.member.agent_id

    @property
    def pane(self) -> str | None:
        return self.placement.tmux_pane_id


def member_target(
    *,
    session_id: str,
    agent_ref: str,
    member_ref: str,
    action: str | None = "send",
    deleting: bool = False,
) -> Target:
    """The shared target checks of cli.md §4.5 step 4, in order, then the acting agent.

    After the same-Director check, ``--agent-id`` must still be active: a deregistered
    Director cannot drive, read or delete its former members (issue 11 item 9).

    ``action`` (``capture`` or ``send``) names what a pending placement cannot do; ``None``
    (``member delete``) accepts a pending placement. ``deleting`` selects ``member delete``'s
    wording for a missing placement.
    """
    director_id = resolve_agent(session_id, agent_ref)
    member_id = resolve_agent(session_id, member_ref)
    member = require_active_agent(session_id, member_id)  # unknown session named first
    placement = Placement.objects.filter(agent_id=member_id).first()
    if placement is None:
        if deleting:
            raise CafleetError(
                f"agent {member_id} has no placement; use `cafleet agent deregister` instead"
            )
        raise CafleetError(
            f"agent {member_id} has no placement row; it was not spawned via "
            "`cafleet member create`."
        )
    if placement.director_agent_id != director_id:
        if is_short_prefix(agent_ref):
            raise CafleetError(f"id prefix '{agent_ref}' is too short; {PREFIX_HINT}.")
        raise CafleetError(
            f"agent {member_id} is not a member of your team "
            f"(director_agent_id={placement.director_agent_id})."
        )
    # A deregistered Director keeps its members' placements: it may not act on them.
    require_active_agent(
        session_id,
        director_id,
        error=f"Director agent '{director_id}' not found or not active in session '{session_id}'.",
    )
    here = host_id()
    if not placement.is_on_this_host(here):
        raise CafleetError(
            f"member {member_id} runs on host '{placement.host_id}', not on this host "
            f"('{here}'); run this command on '{placement.host_id}'."
        )
    if action is not None and not placement.tmux_pane_id:
        raise CafleetError(
            f"member {member_id} has no pane yet (pending placement) — nothing to {action}."
        )
    return Target(member=member, placement=placement)
