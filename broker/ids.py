"""ID arguments: full UUIDs or unique prefixes of 8+ characters (cli.md §2.7).

Prefixes are matched through an index (``broker.database.prefix_filter``: a range on SQLite,
a pattern-ops ``LIKE`` on PostgreSQL), so resolving a task prefix stays cheap in a database
of 100,000 tasks.
"""

from __future__ import annotations

import re

from broker.exceptions import CafleetError

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_ID_CHARS = re.compile(r"[0-9a-f-]+")
_HYPHENS = (8, 13, 18, 23)


def is_full_id(value: str) -> bool:
    return bool(UUID_RE.fullmatch(value))


def is_wellformed_prefix(value: str) -> bool:
    """8+ characters of hex digits, with hyphens only where a UUID has them."""
    if len(value) < 8 or len(value) > 36:
        return False
    for i, ch in enumerate(value.lower()):
        if i in _HYPHENS:
            if ch != "-":
                return False
        elif ch not in "0123456789abcdef":
            return False
    return True


def resolve(queryset, field: str, value: str | None) -> str | None:
    """Full id for ``value`` among ``queryset``'s ``field`` values, or ``value`` as typed.

    Raises the ambiguity error when a prefix matches two or more rows.
    """
    if value is None:
        return None
    if is_full_id(value):
        return value.lower()
    if len(value) < 8:
        return value
    prefix = value.lower()
    if not _ID_CHARS.fullmatch(prefix):
        return value
    from broker.database import prefix_filter

    matches = list(
        queryset.filter(**prefix_filter(field, prefix)).values_list(field, flat=True)[:1000]
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CafleetError(f"id prefix '{value}' is ambiguous ({len(matches)} matches).")
    return value


def resolve_session(value: str | None) -> str | None:
    from broker.models import Session

    return resolve(Session.objects.all(), "session_id", value)


def resolve_agent(session_id: str, value: str | None) -> str | None:
    from broker.models import Agent

    return resolve(Agent.objects.filter(session_id=session_id), "agent_id", value)


def resolve_task(session_id: str, value: str | None) -> str | None:
    from broker.models import Task

    return resolve(Task.objects.visible_in_session(session_id), "task_id", value)
