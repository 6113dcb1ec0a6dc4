"""``cafleet agent register|deregister|list|show`` (cli.md §4.3)."""

from broker.cli_support import reject_controls
from broker.output import agent_full, agent_slim, agent_text, field_line, placement_dict


def check_register(call) -> None:
    from broker.services import check_not_reserved

    reject_controls("--name", call.options["name"])
    reject_controls("--description", call.options["description"])
    check_not_reserved(call.options["name"])


def register(call, out) -> None:
    from broker.services import agent_register

    opts = call.options
    agent = agent_register(
        session_id=call.session_id,
        name=opts["name"],
        description=opts["description"],
        skills_json=opts["skills"],
    )
    if out.json_mode:
        out.json(
            {"agent_id": agent.agent_id, "name": agent.name, "registered_at": agent.registered_at}
        )
        return
    out.text(
        f"Agent registered successfully!\n  agent_id:  {agent.agent_id}\n"
        + field_line("  name:      ", agent.name)
    )


def deregister(call, out) -> None:
    from broker.services import agent_deregister

    agent_deregister(**call.acting)
    if out.json_mode:
        out.json({"status": "deregistered"})
    else:
        out.text("Agent deregistered successfully.")


def list_(call, out) -> None:
    from broker.services import agent_list

    agents = agent_list(**call.acting)
    full = call.options["full"]
    if out.json_mode:
        out.json([agent_full(a) if full else agent_slim(a) for a in agents])
    elif not agents:
        out.text("No agents found.")
    else:
        out.text("\n\n".join(agent_text(a, full=full) for a in agents))


def show(call, out) -> None:
    from broker.services import agent_show

    opts = call.options
    agent, placement = agent_show(**call.acting, target_ref=opts["target_id"])
    if not out.json_mode:
        out.text(agent_text(agent, full=opts["full"]))
        return
    if opts["full"]:
        data = agent_full(agent)
        card = data.pop("agent_card")
        data.update(kind=agent.kind, placement=placement_dict(placement), agent_card=card)
    else:
        data = agent_slim(agent)
        if placement is not None:
            data["coding_agent"] = placement.coding_agent
    out.json(data)
