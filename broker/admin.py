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
from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import (
    CharField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from broker.admin_views import (
    STATE_LABELS,
    admin_url,
    agent_kind,
    changelist_url,
    delivery_badge,
    placement_of,
    preview,
    show_time,
    state_label,
    timeline_view,
    utc_stamp,
)
from broker.models import (
    ADMIN_KIND,
    Agent,
    AgentStatus,
    DeliveryState,
    MemberEvent,
    MemberEventKind,
    Placement,
    Session,
    Task,
    TaskState,
    TaskType,
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


def _count(queryset):
    """A scalar subquery counting ``queryset``'s rows (for ``annotate``)."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _card_kind():
    """SQL ``json_extract(agent_card_json, '$.cafleet.kind')``, '' when absent (so that
    ``exclude`` does not drop the NULLs)."""
    kind = Func(
        F("agent_card_json"),
        Value("$.cafleet.kind"),
        function="json_extract",
        output_field=CharField(),
    )
    return Coalesce(kind, Value(""), output_field=CharField())


def _was_member():
    """``EXISTS`` a ``created`` member event for the row's agent (kind after deletion)."""
    return Exists(
        MemberEvent.objects.filter(agent_id=OuterRef("agent_id"), event=MemberEventKind.CREATED)
    )


def _link(url: str | None, text):
    return format_html('<a href="{}">{}</a>', url, text) if url else text


# ------------------------------------------------------------------------------ base classes
class ReadOnlyAdmin(admin.ModelAdmin):
    """View permission only: no add, no change, no delete, no bulk delete."""

    list_per_page = 100

    class Media:
        js = ("cafleet/tz.js",)
        css = {"all": ("cafleet/admin.css",)}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyInline:
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ------------------------------------------------------------------------------ list filters
class DeletedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "live"), ("deleted", "deleted")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [
            ("director", "Director"),
            ("member", "member"),
            ("administrator", "Administrator"),
            ("agent", "agent"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        queryset = queryset.annotate(card_kind=_card_kind())
        is_admin = Q(card_kind=ADMIN_KIND)
        is_director = Q(agent_id=F("session__director_agent_id"))
        queryset = queryset.annotate(was_member=_was_member())
        is_member = Q(placement__director_agent__isnull=False) | Q(was_member=True)
        if value == "administrator":
            return queryset.filter(is_admin)
        if value == "director":
            return queryset.filter(is_director).exclude(is_admin)
        if value == "member":
            return queryset.filter(is_member).exclude(is_admin | is_director)
        if value == "agent":
            return queryset.exclude(is_admin | is_director | is_member)
        return queryset


class MessageStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            (TaskState.INPUT_REQUIRED, "unread"),
            (TaskState.COMPLETED, "acknowledged"),
            (TaskState.CANCELED, "canceled"),
        ]

    def queryset(self, request, queryset):
        if self.value() in STATE_LABELS:
            # Summary rows are "completed" by construction; they are not acknowledgements.
            return queryset.filter(status_state=self.value(), type=TaskType.UNICAST)
        return queryset


class PreviewStateFilter(admin.ChoicesFieldListFilter):
    """The inline preview's state, titled so that it is not a second "By state"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "inline preview"


class MessageSessionFilter(admin.SimpleListFilter):
    title = "session"
    parameter_name = "session"

    def lookups(self, request, model_admin):
        rows = Session.objects.order_by("-created_at").values_list(
            "session_id", "label", "deleted_at"
        )
        return [
            (sid, f"{label or sid[:8]}{' (deleted)' if deleted else ''}")
            for sid, label, deleted in rows
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(context__session_id=self.value())
        return queryset


class AgeFilter(admin.SimpleListFilter):
    """Created within the last hour / since the viewer's local midnight / past 7 days."""

    title = "created"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [("hour", "Last hour"), ("today", "Today"), ("week", "Past 7 days")]

    def queryset(self, request, queryset):
        now = timezone.now()
        value = self.value()
        if value == "hour":
            since = now - timedelta(hours=1)
        elif value == "today":
            since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        elif value == "week":
            since = now - timedelta(days=7)
        else:
            return queryset
        return queryset.filter(created_at__gte=utc_stamp(since))


class _MailboxFilter(admin.SimpleListFilter):
    """Shown only while in use (links from an agent's page)."""

    def lookups(self, request, model_admin):
        value = request.GET.get(self.parameter_name)
        if not value:
            return []
        agent = Agent.objects.filter(agent_id=value).only("name").first()
        return [(value, f"{agent.name} ({value[:8]})" if agent else value[:8])]


class InboxFilter(_MailboxFilter):
    title = "inbox of"
    parameter_name = "inbox"

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(context_id=self.value(), type=TaskType.UNICAST)
        return queryset


class OutboxFilter(_MailboxFilter):
    title = "sent by"
    parameter_name = "outbox"

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(from_agent_id=self.value())
        return queryset


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

    @admin.display(description="registered", ordering="registered_at")
    def registered(self, obj):
        return show_time(obj.registered_at)

    @admin.display(description="deregistered", ordering="deregistered_at")
    def deregistered(self, obj):
        return show_time(obj.deregistered_at)

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
            .annotate(was_member=_was_member())
            .order_by("registered_at", "agent_id")
        )

    @admin.display(description="name")
    def agent(self, obj):
        return _link(admin_url(obj), obj.name)


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
        return _link(admin_url(obj), obj.name)

    @admin.display(description="director")
    def director(self, obj):
        director = obj.placement.director_agent
        return _link(admin_url(director), director.name) if director else "— (root Director)"

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
            .annotate(active_count=_count(active), unread_count=_count(unread))
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

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return show_time(obj.created_at)

    @admin.display(description="deleted", ordering="deleted_at")
    def deleted(self, obj):
        return show_time(obj.deleted_at) if obj.deleted_at else "no"

    @admin.display(description="root Director")
    def root_director(self, obj):
        director = obj.director_agent
        return _link(admin_url(director), director.name) if director else "—"

    @admin.display(description="Administrator")
    def administrator(self, obj):
        admin_agent = (
            Agent.objects.filter(session=obj)
            .annotate(card_kind=_card_kind())
            .filter(card_kind=ADMIN_KIND)
            .first()
        )
        return _link(admin_url(admin_agent), admin_agent.name) if admin_agent else "—"

    @admin.display(description="active agents", ordering="active_count")
    def active_agents(self, obj):
        url = changelist_url(
            Agent, session__session_id__exact=obj.session_id, status__exact=AgentStatus.ACTIVE
        )
        return _link(url, obj.active_count)

    @admin.display(description="unread messages", ordering="unread_count")
    def unread_messages(self, obj):
        url = changelist_url(Task, session=obj.session_id, state=TaskState.INPUT_REQUIRED)
        return _link(url, obj.unread_count)

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


class AgentPlacementInline(ReadOnlyInline, admin.StackedInline):
    model = Placement
    fk_name = "agent"
    verbose_name = "placement"
    verbose_name_plural = "placement"
    fields = ("director", "tmux_session", "tmux_window_id", "pane", "coding_agent", "created")
    readonly_fields = fields

    @admin.display(description="director")
    def director(self, obj):
        director = obj.director_agent
        return _link(admin_url(director), director.name) if director else "— (root Director)"

    @admin.display(description="pane")
    def pane(self, obj):
        return obj.tmux_pane_id or "(pending)"

    @admin.display(description="created")
    def created(self, obj):
        return show_time(obj.created_at)


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
                unread_count=_count(unread), held_count=_count(held), was_member=_was_member()
            )
        )

    @admin.display(description="session", ordering="session__created_at")
    def session_link(self, obj):
        return _link(admin_url(obj.session), str(obj.session))

    @admin.display(description="unread", ordering="unread_count")
    def unread(self, obj):
        return _link(
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
        return _link(url, "send a message as the Administrator")

    @admin.display(description="agent card")
    def card(self, obj):
        return format_html(
            '<pre class="cafleet-body">{}</pre>', json.dumps(obj.card, ensure_ascii=False, indent=2)
        )


# ------------------------------------------------------------------------------ messages
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
        # The messages list refreshes itself like the timeline (cafleet/changelist.js).
        js = ("cafleet/changelist.js",)

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
        return _link(admin_url(Agent(agent_id=obj.from_agent_id)), name)

    @admin.display(description="to")
    def recipient(self, obj):
        if obj.type == TaskType.BROADCAST_SUMMARY:
            return "everyone (broadcast)"
        return _link(admin_url(obj.context), obj.context.name)

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

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return show_time(obj.created_at)

    @admin.display(description="last change", ordering="status_timestamp")
    def last_change(self, obj):
        return show_time(obj.status_timestamp)

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
            return self.created(obj)
        return format_html(
            '{}<br><span class="cafleet-quiet">changed</span> {}',
            self.created(obj),
            self.last_change(obj),
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
class PlacementAdmin(ReadOnlyAdmin):
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
        return _link(admin_url(obj.agent), obj.agent.name)

    @admin.display(description="session")
    def session_link(self, obj):
        return _link(admin_url(obj.agent.session), str(obj.agent.session))

    @admin.display(description="director")
    def director(self, obj):
        director = obj.director_agent
        return _link(admin_url(director), director.name) if director else "— (root Director)"

    @admin.display(description="pane")
    def pane(self, obj):
        return obj.tmux_pane_id or "(pending)"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return show_time(obj.created_at)
