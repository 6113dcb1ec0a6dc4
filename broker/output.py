"""Text and JSON rendering (cli.md §3). No Django imports: renderers take model rows."""

from __future__ import annotations

import json
import sys

ELLIPSIS = "…"
DESCRIPTION_CUT = 60


def cut(text: str, limit: int | None) -> str:
    """First ``limit`` codepoints + ``…`` when longer; unchanged otherwise."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + ELLIPSIS


# ------------------------------------------------------------------------------ writer
class Output:
    """Where a command writes: stdout for results, stderr for warnings."""

    def __init__(self, *, json_mode: bool = False, pretty: bool = False, stdout=None, stderr=None):
        self.json_mode = json_mode
        self.pretty = pretty
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def dumps(self, obj) -> str:
        if self.pretty:
            return json.dumps(obj, ensure_ascii=False, indent=2)
        return compact_json(obj)

    def json(self, obj) -> None:
        self.stdout.write(self.dumps(obj) + "\n")

    def text(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def raw(self, text: str) -> None:
        self.stdout.write(text)

    def warn(self, line: str) -> None:
        self.stderr.write(line + "\n")
        self.stderr.flush()


def compact_json(obj) -> str:
    """The one compact JSON form: UTF-8 kept, no spaces (output lines, stored cards)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def field_line(label: str, value) -> str:
    """``label`` already padded; no trailing spaces when the value is empty."""
    value = "" if value is None else str(value)
    return f"{label}{value}" if value else label.rstrip()


# ------------------------------------------------------------------------------ tasks
TASK_COLUMNS = (
    "task_id",
    "context_id",
    "from_agent_id",
    "to_agent_id",
    "type",
    "created_at",
    "status_state",
    "status_timestamp",
    "origin_task_id",
    "text",
)


def task_envelope(task, limit: int | None) -> dict:
    env = {
        "id": task.task_id[:8],
        "from": task.from_agent_id[:8],
        "ts": task.status_timestamp,
        "text": cut(task.text, limit),
    }
    if task.type != "unicast":
        env["kind"] = task.type
    if task.origin_task_id is not None:
        env["origin"] = task.origin_task_id[:8]
    return env


def columns(row, names: tuple[str, ...]) -> dict:
    """``{name: row.<name>}`` for ``names``, in that order."""
    return {name: getattr(row, name) for name in names}


def task_columns(task) -> dict:
    return columns(task, TASK_COLUMNS)


def task_json(task, *, full: bool, limit: int | None) -> dict:
    return task_columns(task) if full else task_envelope(task, limit)


def task_text(task, *, full: bool, limit: int | None) -> str:
    if full:
        lines = [
            f"  id:    {task.task_id}",
            f"  state: {task.status_state}",
            f"  from:  {task.from_agent_id}",
        ]
        if task.to_agent_id:
            lines.append(f"  to:    {task.to_agent_id}")
        lines.append(f"  type:  {task.type}")
        if task.text:
            lines.append(f"  text:  {task.text}")
        return "\n".join(lines)
    head = f"[{task.task_id[:8]} | from:{task.from_agent_id[:8]} | {task.status_timestamp}"
    if task.type != "unicast":
        head += f" | kind:{task.type}"
    if task.origin_task_id is not None:
        head += f" | origin:{task.origin_task_id[:8]}"
    head += "]"
    if not task.text:
        return head
    return head + "\n" + cut(task.text, limit)


# ------------------------------------------------------------------------------ agents
def agent_text(agent, *, full: bool) -> str:
    if not full:
        return f"{agent.agent_id[:8]} {agent.name} {agent.status}"
    return "\n".join(
        [
            f"  agent_id:    {agent.agent_id}",
            field_line("  name:        ", agent.name),
            field_line("  description: ", agent.description),
            f"  status:      {agent.status}",
            f"  agent_card:  {compact_json(agent.card)}",
        ]
    )


def agent_slim(agent) -> dict:
    return {
        "id": agent.agent_id[:8],
        "name": agent.name,
        "description": cut(agent.description, DESCRIPTION_CUT),
        "status": agent.status,
    }


#: ``agent show`` / ``agent list --full`` in JSON: these columns, then the parsed card.
AGENT_COLUMNS = ("agent_id", "name", "description", "status", "registered_at")


def agent_full(agent) -> dict:
    return {**columns(agent, AGENT_COLUMNS), "agent_card": agent.card}


def placement_dict(placement) -> dict | None:
    return None if placement is None else placement.as_dict()
