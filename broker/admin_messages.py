"""Admin pages of messages (tasks) and placements; registered when ``broker.admin`` loads."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import CharField, OuterRef, Subquery
from django.utils.html import format_html, format_html_join

from broker.admin_base import (
    AgeFilter,
    InboxFilter,
    MessageSessionFilter,
    MessageStateFilter,
    OutboxFilter,
    PlacementColumns,
    ReadOnlyAdmin,
)
from broker.admin_display import (
    admin_url,
    delivery_badge,
    link,
    preview,
    show_time,
    state_label,
    time_column,
)
from broker.models import Agent, Placement, Task, TaskType


# ------------------------------------------------------------------------------ messages
class PreviewStateFilter(admin.ChoicesFieldListFilter):
    """The inline preview's state, titled so that it is not a second "By state"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "inline preview"


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    # Seven columns, so that the body keeps a readable width at 1400 px with the side bar
    # and the filters open: the type and the inline preview go under the state, the last
    # change under the creation time (the message's own page shows each on its own line).
    list_display = (
        "short_id",
        "sender",
        "recipient",
        "state_cell",
        "time_cell",
        "body_preview",
        "session_link",
    )
    list_display_links = ("short_id",)
    list_filter = (
        MessageStateFilter,
        ("delivery__state", PreviewStateFilter),
        "type",
        MessageSessionFilter,
        AgeFilter,
        InboxFilter,
        OutboxFilter,
    )
    search_fields = ("text", "^task_id")
    list_select_related = ("context", "context__session")
    ordering = ("-created_at", "-task_id")
    fields = (
        "task_id",
        "session_link",
        "kind",
        "state",
        "preview_state",
        "sender",
        "recipient",
        "created",
        "last_change",
        "origin",
        "body",
        "broadcast_group",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        sender = Agent.objects.filter(agent_id=OuterRef("from_agent_id")).values("name")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("context", "context__session", "delivery")
            .annotate(from_name=Subquery(sender, output_field=CharField()))
        )

    class Media:
        # The messages list refreshes itself like the timeline (cafleet/changelist.js, with
        # the loop both share in cafleet/refresh.js).
        js = ("cafleet/refresh.js", "cafleet/changelist.js")

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": "Messages (tasks)", **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description="id", ordering="task_id")
    def short_id(self, obj):
        return obj.task_id[:8]

    @admin.display(description="from")
    def sender(self, obj):
        name = getattr(obj, "from_name", None)
        if name is None:
            return obj.from_agent_id[:8]
        return link(admin_url(Agent(agent_id=obj.from_agent_id)), name)

    @admin.display(description="to")
    def recipient(self, obj):
        if obj.type == TaskType.BROADCAST_SUMMARY:
            return "everyone (broadcast)"
        return link(admin_url(obj.context), obj.context.name)

    @admin.display(description="type", ordering="type")
    def kind(self, obj):
        if obj.type == TaskType.BROADCAST_SUMMARY:
            return "broadcast summary"
        return "broadcast" if obj.origin_task_id else "unicast"

    @admin.display(description="state", ordering="status_state")
    def state(self, obj):
        label = state_label(obj)
        return format_html('<span class="cafleet-state cafleet-state-{}">{}</span>', label, label)

    @admin.display(description="preview", ordering="delivery__state")
    def preview_state(self, obj):
        return delivery_badge(obj) or "—"

    created = time_column("created_at", "created")

    last_change = time_column("status_timestamp", "last change")

    @admin.display(description="state", ordering="status_state")
    def state_cell(self, obj):
        kind = self.kind(obj)
        badge = delivery_badge(obj)
        return format_html(
            "{}{}{}",
            self.state(obj),
            format_html(' <span class="cafleet-kind">{}</span>', kind) if kind != "unicast" else "",
            format_html('<br><span class="cafleet-quiet">preview:</span> {}', badge)
            if badge
            else "",
        )

    @admin.display(description="time", ordering="created_at")
    def time_cell(self, obj):
        if obj.status_timestamp == obj.created_at:
            return show_time(obj.created_at)
        return format_html(
            '{}<br><span class="cafleet-quiet">changed</span> {}',
            show_time(obj.created_at),
            show_time(obj.status_timestamp),
        )

    @admin.display(description="body")
    def body_preview(self, obj):
        return preview(obj.text)

    @admin.display(description="session")
    def session_link(self, obj):
        session = obj.context.session
        return format_html(
            '<a href="{}">{}</a> (<a href="{}">timeline</a>)',
            admin_url(session),
            str(session),
            admin_url(session, "timeline"),
        )

    @admin.display(description="broadcast id")
    def origin(self, obj):
        return obj.origin_task_id or "—"

    @admin.display(description="body")
    def body(self, obj):
        return format_html('<pre class="cafleet-body">{}</pre>', obj.text)

    @admin.display(description="broadcast group")
    def broadcast_group(self, obj):
        if not obj.origin_task_id:
            return "— (not a broadcast)"
        rows = (
            Task.objects.filter(origin_task_id=obj.origin_task_id)
            .select_related("context")
            .order_by("type", "context__name", "task_id")
        )
        lines = format_html_join(
            "",
            '<tr{}><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    ' class="cafleet-current"' if row.pk == obj.pk else "",
                    admin_url(row),
                    row.task_id[:8],
                    "summary" if row.type == TaskType.BROADCAST_SUMMARY else "delivery",
                    "everyone" if row.type == TaskType.BROADCAST_SUMMARY else row.context.name,
                    format_html("{} ({})", state_label(row), show_time(row.status_timestamp)),
                )
                for row in rows
            ),
        )
        return format_html(
            '<table class="cafleet-group"><thead><tr><th>id</th><th>row</th>'
            "<th>recipient</th><th>state</th></tr></thead><tbody>{}</tbody>"
            "</table>",
            lines,
        )


# ------------------------------------------------------------------------------ placements
@admin.register(Placement)
class PlacementAdmin(PlacementColumns, ReadOnlyAdmin):
    list_display = (
        "agent_link",
        "session_link",
        "director",
        "tmux_session",
        "tmux_window_id",
        "pane",
        "coding_agent",
        "created",
    )
    list_filter = ("coding_agent",)
    search_fields = ("agent__name", "tmux_pane_id", "tmux_session")
    list_select_related = ("agent", "agent__session", "director_agent")
    ordering = ("-created_at",)

    @admin.display(description="agent", ordering="agent__name")
    def agent_link(self, obj):
        return link(admin_url(obj.agent), obj.agent.name)

    @admin.display(description="session")
    def session_link(self, obj):
        return link(admin_url(obj.agent.session), str(obj.agent.session))

    created = time_column("created_at", "created")
