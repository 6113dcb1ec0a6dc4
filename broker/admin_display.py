"""Display helpers shared by the admin pages (``broker.admin*``) and the custom admin views
(``broker.admin_views``): times in the viewer's zone, state labels, body previews, links."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from broker.models import STATE_WORDS, AgentStatus, MemberEvent, MemberEventKind

#: One word per state on every page (``Task.state_word``): never ``input_required``.
STATE_LABELS = STATE_WORDS


# ------------------------------------------------------------------------------ display
def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def local_text(value: str | None) -> str:
    """A stored timestamp in the viewer's time zone (the ``tz`` cookie), seconds precision."""
    parsed = parse_ts(value)
    if parsed is None:
        return value or ""
    return timezone.localtime(parsed).strftime("%Y-%m-%d %H:%M:%S %Z")


def show_time(value: str | None):
    """``<time>`` element: local time as text, the stored UTC string as tooltip."""
    if not value:
        return "—"
    return format_html('<time datetime="{}" title="{}">{}</time>', value, value, local_text(value))


def utc_stamp(moment: datetime) -> str:
    """A datetime in the stored timestamp form (data-model.md §1), for string comparisons."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def state_label(task) -> str:
    return task.state_word


def delivery_label(task) -> str:
    """The preview's delivery state in words (docs/delivery-states.md), or "" for a row
    without one (a broadcast summary)."""
    from broker.delivery import delivery_of, reason_words

    row = delivery_of(task)
    if row is None:
        return ""
    if row.state == "held":
        return f"held: {reason_words(row.reason)}"
    if row.state == "failed":
        return f"failed: {reason_words(row.reason)}"
    if row.state == "owed" and row.reason:
        return f"owed ({reason_words(row.reason)})"
    return row.state


def delivery_badge(task):
    label = delivery_label(task)
    if not label:
        return ""
    state = label.split(":")[0].split(" ")[0]
    return format_html(
        '<span class="cafleet-preview cafleet-preview-{}" title="inline preview">{}</span>',
        state,
        label,
    )


def preview(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def admin_url(obj, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def changelist_url(model, **params) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def agent_kind(agent, director_id: str | None = None) -> str:
    """Director / Administrator / member / agent, as the admin shows it.

    ``member``: the agent's placement names a Director, or, once deregistered (the
    placement is gone), a ``created`` member event names it.
    """
    if agent.is_administrator:
        return "Administrator"
    if director_id is None:
        director_id = agent.session.director_agent_id
    if director_id == agent.agent_id:
        return "Director"
    placement = placement_of(agent)
    if placement is not None and placement.director_agent_id:
        return "member"
    if agent.status == AgentStatus.DEREGISTERED and was_member(agent):
        return "member"  # its placement went with it; its member_events stay
    return "agent"


def was_member(agent) -> bool:
    """The agent was created as a member (``member_events``); lists annotate ``was_member``."""
    known = getattr(agent, "was_member", None)
    if known is not None:
        return bool(known)
    return MemberEvent.objects.filter(
        agent_id=agent.agent_id, event=MemberEventKind.CREATED
    ).exists()


def placement_of(agent):
    """The agent's placement, or None (the reverse one-to-one raises when there is none)."""
    try:
        return agent.placement
    except ObjectDoesNotExist:
        return None


def link(url: str | None, text):
    return format_html('<a href="{}">{}</a>', url, text) if url else text


def agent_link(agent, missing: str):
    """A link to the agent's page named after it, or ``missing`` when there is no agent."""
    return link(admin_url(agent), agent.name) if agent else missing


def time_column(field: str, description: str, *, sortable: bool = True):
    """A ModelAdmin column showing the timestamp ``field`` with :func:`show_time`."""

    @admin.display(description=description, ordering=field if sortable else None)
    def column(model_admin, obj):
        return show_time(getattr(obj, field))

    return column
