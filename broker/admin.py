"""The Django admin: a read-only view of sessions, agents, messages and placements.

Rules (data-model.md §1, §9): nothing here adds, edits or deletes a row directly. Every
ModelAdmin and inline refuses add, change and delete permission, and the bulk
``delete_selected`` action is removed. The two writes the admin offers go through the same
services as the CLI: soft-deleting sessions (``services.session_delete``, an action on the
session list) and sending as the session's Administrator (the timeline page,
``broker.admin_views``).

Timestamps are ISO strings, so age filters are custom list filters comparing strings, and
every time is shown in the viewer's zone (``broker.middleware`` reads the ``tz`` cookie that
``static/cafleet/tz.js`` sets).
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import OuterRef
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from broker import admin_messages  # noqa: F401 - registers the message and placement pages
from broker.admin_base import (
    DeletedFilter,
    KindFilter,
    PlacementColumns,
    ReadOnlyAdmin,
    ReadOnlyInline,
    card_kind_column,
    count_rows,
    was_member_column,
)
from broker.admin_display import (
    admin_url,
    agent_kind,
    agent_link,
    changelist_url,
    link,
    placement_of,
    show_time,
    time_column,
)
from broker.admin_views import timeline_view
from broker.models import (
    ADMIN_KIND,
    Agent,
    AgentStatus,
    DeliveryState,
    Placement,
    Session,
    Task,
    TaskState,
)

admin.site.site_header = "cafleet admin"
admin.site.site_title = "cafleet admin"
admin.site.index_title = "Sessions, agents and messages"
admin.site.site_url = None  # "/" only redirects back here
# Page templates that add the time-zone script (tz.js) to the admin's own pages; model
# pages get it through ``ReadOnlyAdmin.Media``.
admin.site.index_template = "cafleet/admin/index.html"
admin.site.app_index_template = "cafleet/admin/app_index.html"
admin.site.login_template = "cafleet/admin/login.html"
admin.site.logout_template = "cafleet/admin/logged_out.html"
admin.site.password_change_template = "cafleet/admin/password_change_form.html"
admin.site.password_change_done_template = "cafleet/admin/password_change_done.html"

#: Order of cafleet's own pages on the index and in the side bar.
MODEL_ORDER = ("session", "agent", "task", "placement")
_django_app_list = admin.site.get_app_list


def _app_list(request, app_label=None):
    """cafleet's models first (in :data:`MODEL_ORDER`), then Django's Groups and Users."""
    apps = _django_app_list(request, app_label)
    for app in apps:
        if app["app_label"] == "cafleet":
            rank = {name: i for i, name in enumerate(MODEL_ORDER)}
            app["models"].sort(key=lambda m: rank.get(m["object_name"].lower(), len(rank)))
    return sorted(apps, key=lambda app: app["app_label"] != "cafleet")


admin.site.get_app_list = _app_list


# ------------------------------------------------------------------------------ sessions
class AgentColumns:
    """Agent columns shared by the agents list and a session's agents inline."""

    @admin.display(description="kind")
    def kind(self, obj):
        return agent_kind(obj)

    @admin.display(description="coding agent", ordering="placement__coding_agent")
    def coding_agent(self, obj):
        placement = placement_of(obj)
        return placement.coding_agent if placement else "—"

    @admin.display(description="pane")
    def pane(self, obj):
        placement = placement_of(obj)
        if placement is None:
            return "—"
        return placement.tmux_pane_id or "(pending)"

    registered = time_column("registered_at", "registered")

    deregistered = time_column("deregistered_at", "deregistered")

    @admin.display(description="messages")
    def mailbox(self, obj):
        return mailbox_links(obj)


class SessionAgentInline(AgentColumns, ReadOnlyInline, admin.TabularInline):
    model = Agent
    fk_name = "session"
    verbose_name = "agent"
    verbose_name_plural = "agents"
    fields = (
        "agent",
        "kind",
        "status",
        "coding_agent",
        "pane",
        "registered",
        "deregistered",
        "mailbox",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("session", "placement")
            .annotate(was_member=was_member_column())
            .order_by("registered_at", "agent_id")
        )

    @admin.display(description="name")
    def agent(self, obj):
        return link(admin_url(obj), obj.name)


class SessionPlacementInline(ReadOnlyInline, admin.TabularInline):
    """The session's placements (agent ↔ tmux pane); a placement reaches the session only
    through its agent, so this inline lists the agents that have one."""

    model = Agent
    fk_name = "session"
    verbose_name = "placement"
    verbose_name_plural = "placements"
    fields = (
        "agent",
        "director",
        "tmux_session",
        "tmux_window_id",
        "tmux_pane_id",
        "coding_agent",
        "created",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(placement__isnull=False)
            .select_related("placement", "placement__director_agent")
            .order_by("placement__created_at", "agent_id")
        )

    @admin.display(description="agent")
    def agent(self, obj):
        return link(admin_url(obj), obj.name)

    @admin.display(description="director")
    def director(self, obj):
        return agent_link(obj.placement.director_agent, "— (root Director)")

    @admin.display(description="tmux session")
    def tmux_session(self, obj):
        return obj.placement.tmux_session

    @admin.display(description="window")
    def tmux_window_id(self, obj):
        return obj.placement.tmux_window_id

    @admin.display(description="pane")
    def tmux_pane_id(self, obj):
        return obj.placement.tmux_pane_id or "(pending)"

    @admin.display(description="coding agent")
    def coding_agent(self, obj):
        return obj.placement.coding_agent

    @admin.display(description="created")
    def created(self, obj):
        return show_time(obj.placement.created_at)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = (
        "title",
        "short_id",
        "created",
        "root_director",
        "active_agents",
        "unread_messages",
        "deleted",
        "links",
    )
    list_display_links = ("title",)
    list_filter = (DeletedFilter,)
    search_fields = ("label", "^session_id")
    ordering = ("-created_at", "-session_id")
    actions = ("soft_delete",)
    inlines = (SessionAgentInline, SessionPlacementInline)
    fields = (
        "session_id",
        "label",
        "created",
        "deleted",
        "root_director",
        "administrator",
        "active_agents",
        "unread_messages",
        "links",
    )
    readonly_fields = fields
    change_form_template = "cafleet/admin/session_change_form.html"

    def get_queryset(self, request):
        active = Agent.objects.filter(session_id=OuterRef("pk"), status=AgentStatus.ACTIVE)
        unread = Task.objects.filter(
            context__session_id=OuterRef("pk"), status_state=TaskState.INPUT_REQUIRED
        )
        return (
            super()
            .get_queryset(request)
            .select_related("director_agent")
            .annotate(active_count=count_rows(active), unread_count=count_rows(unread))
        )

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/timeline/",
                self.admin_site.admin_view(self.timeline),
                name="cafleet_session_timeline",
            )
        ]
        return urls + super().get_urls()

    def timeline(self, request, object_id):
        return timeline_view(request, self, object_id)

    @admin.display(description="label", ordering="label")
    def title(self, obj):
        return obj.label or "(no label)"

    @admin.display(description="id")
    def short_id(self, obj):
        return format_html('<code title="{}">{}</code>', obj.session_id, obj.session_id[:8])

    created = time_column("created_at", "created")

    @admin.display(description="deleted", ordering="deleted_at")
    def deleted(self, obj):
        return show_time(obj.deleted_at) if obj.deleted_at else "no"

    @admin.display(description="root Director")
    def root_director(self, obj):
        return agent_link(obj.director_agent, "—")

    @admin.display(description="Administrator")
    def administrator(self, obj):
        admin_agent = (
            Agent.objects.filter(session=obj)
            .annotate(card_kind=card_kind_column())
            .filter(card_kind=ADMIN_KIND)
            .first()
        )
        return link(admin_url(admin_agent), admin_agent.name) if admin_agent else "—"

    @admin.display(description="active agents", ordering="active_count")
    def active_agents(self, obj):
        url = changelist_url(
            Agent, session__session_id__exact=obj.session_id, status__exact=AgentStatus.ACTIVE
        )
        return link(url, obj.active_count)

    @admin.display(description="unread messages", ordering="unread_count")
    def unread_messages(self, obj):
        url = changelist_url(Task, session=obj.session_id, state=TaskState.INPUT_REQUIRED)
        return link(url, obj.unread_count)

    @admin.display(description="pages")
    def links(self, obj):
        return format_html(
            '<a href="{}">timeline</a> · <a href="{}">agents</a> · <a href="{}">messages</a>',
            admin_url(obj, "timeline"),
            changelist_url(Agent, session__session_id__exact=obj.session_id),
            changelist_url(Task, session=obj.session_id),
        )

    # -- the soft-delete action (same effect as 'cafleet session delete') ------------------
    def has_soft_delete_permission(self, request):
        return request.user.has_perm("cafleet.change_session")

    @admin.action(
        description="Soft-delete selected sessions (as 'cafleet session delete')",
        permissions=["soft_delete"],
    )
    def soft_delete(self, request, queryset):
        from broker.services import session_delete

        sessions = list(queryset.order_by("created_at", "session_id"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Soft-delete sessions?",
                "subtitle": None,
                "sessions": sessions,
                "live": [s for s in sessions if not s.is_deleted],
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "cafleet/admin/session_soft_delete.html", context)
        deleted = agents = 0
        for session in sessions:
            _, count = session_delete(session_ref=session.session_id)
            if not session.is_deleted:
                deleted += 1
                agents += count
                self.log_change(request, session, f"Soft-deleted; {count} agents deregistered.")
        self.message_user(
            request,
            f"Soft-deleted {deleted} session{'' if deleted == 1 else 's'}; "
            f"{agents} agent{'' if agents == 1 else 's'} deregistered.",
            messages.SUCCESS if deleted else messages.WARNING,
        )
        return None


# ------------------------------------------------------------------------------ agents
def mailbox_links(agent):
    return format_html(
        '<a href="{}">inbox</a> · <a href="{}">sent</a>',
        changelist_url(Task, inbox=agent.agent_id),
        changelist_url(Task, outbox=agent.agent_id),
    )


class AgentPlacementInline(PlacementColumns, ReadOnlyInline, admin.StackedInline):
    model = Placement
    fk_name = "agent"
    verbose_name = "placement"
    verbose_name_plural = "placement"
    fields = ("director", "tmux_session", "tmux_window_id", "pane", "coding_agent", "created")
    readonly_fields = fields

    created = time_column("created_at", "created", sortable=False)


@admin.register(Agent)
class AgentAdmin(AgentColumns, ReadOnlyAdmin):
    list_display = (
        "name",
        "session_link",
        "kind",
        "status",
        "coding_agent",
        "pane",
        "registered",
        "unread",
        "held",
        "mailbox",
    )
    list_filter = (KindFilter, "status", "placement__coding_agent", "session")
    search_fields = ("name", "description", "^agent_id")
    list_select_related = ("session", "placement")
    ordering = ("-registered_at", "-agent_id")
    inlines = (AgentPlacementInline,)
    fields = (
        "agent_id",
        "name",
        "description",
        "kind",
        "status",
        "session_link",
        "registered",
        "deregistered",
        "unread",
        "held",
        "mailbox",
        "send",
        "card",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        unread = Task.objects.filter(
            context_id=OuterRef("pk"), status_state=TaskState.INPUT_REQUIRED
        )
        held = unread.filter(delivery__state=DeliveryState.HELD)
        # select_related here replaces list_select_related (the ChangeList skips its own).
        return (
            super()
            .get_queryset(request)
            .select_related("session", "placement")
            .annotate(
                unread_count=count_rows(unread),
                held_count=count_rows(held),
                was_member=was_member_column(),
            )
        )

    @admin.display(description="session", ordering="session__created_at")
    def session_link(self, obj):
        return link(admin_url(obj.session), str(obj.session))

    @admin.display(description="unread", ordering="unread_count")
    def unread(self, obj):
        return link(
            changelist_url(Task, inbox=obj.agent_id, state=TaskState.INPUT_REQUIRED),
            obj.unread_count,
        )

    @admin.display(description="held previews", ordering="held_count")
    def held(self, obj):
        return obj.held_count

    @admin.display(description="send")
    def send(self, obj):
        if obj.status != AgentStatus.ACTIVE or obj.is_administrator:
            return "—"
        url = admin_url(obj.session, "timeline") + f"?to={obj.agent_id}#send"
        return link(url, "send a message as the Administrator")

    @admin.display(description="agent card")
    def card(self, obj):
        return format_html(
            '<pre class="cafleet-body">{}</pre>', json.dumps(obj.card, ensure_ascii=False, indent=2)
        )
