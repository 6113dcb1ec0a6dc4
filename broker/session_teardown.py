"""``session delete --close-members`` (issue 11 item 11): the ``member delete`` protocol for
every live member of a session, before the session is deleted.

Each member goes through :func:`broker.members.close_member` (``/exit``, wait, deregister,
rebalance), newest first, so that a member that is itself a Director goes after its own
members. The acting Director is not checked here: the session is being torn down, and a
member whose Director is already gone is closed all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker import members
from broker.conf import host_id
from broker.exceptions import CafleetError
from broker.member_target import Target
from broker.models import AgentStatus, Placement


def session_members(session_id: str) -> list[Target]:
    """Every active member of the session (an agent with a placement under a Director),
    newest first, so that a member that is itself a Director goes after its own members."""
    placements = (
        Placement.objects.filter(
            agent__session_id=session_id,
            agent__status=AgentStatus.ACTIVE,
            director_agent__isnull=False,
        )
        .select_related("agent")
        .order_by("-created_at", "-agent_id")
    )
    return [Target(member=p.agent, placement=p) for p in placements]


@dataclass
class Closed:
    """One member handled by ``session delete --close-members``."""

    target: Target
    status: str = ""  # ``<pane> (closed)``, ``(pending — no pane)``...
    error: CafleetError | None = None


def session_close_members(
    *, session_id: str, tmux, warn=members.no_warn, sleep=None, clock=None, deadline=None
) -> list[Closed]:
    """``session delete --close-members``, first part: the ``member delete`` protocol for
    every live member of the session, each in turn. A member whose pane does not close is
    reported in its :class:`Closed` and the others are still closed; the caller deletes the
    session only when every member is gone. The tmux guard runs only when a pane exists."""
    wait = members.exit_wait(sleep, clock, deadline)
    targets = session_members(session_id)
    here = host_id()
    if any(t.pane and t.placement.is_on_this_host(here) for t in targets):
        tmux.require_tmux(command="session delete --close-members")
    results = []
    for target in targets:
        if not target.placement.is_on_this_host(here):
            # Another host's pane: never touched from here (issue 13); the session stays.
            owner = target.placement.host_id
            results.append(
                Closed(
                    target,
                    f"{target.pane} (on host '{owner}', not closed)",
                    CafleetError(
                        f"member {target.member_id} runs on host '{owner}', not on this host "
                        f"('{here}'); run this command on '{owner}'."
                    ),
                )
            )
            continue
        try:
            _, _, status = members.close_member(
                target, force=False, tmux=tmux, warn=warn, wait=wait
            )
            results.append(Closed(target, status))
        except CafleetError as exc:
            results.append(Closed(target, f"{target.pane} (not closed)", exc))
    return results
