"""The admin's building blocks: read-only base classes, list filters and query helpers."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
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
from django.utils import timezone

from broker.admin_display import STATE_LABELS, agent_link, utc_stamp
from broker.models import (
    ADMIN_KIND,
    Agent,
    MemberEvent,
    MemberEventKind,
    Session,
    TaskState,
    TaskType,
)


def count_rows(queryset):
    """A scalar subquery counting ``queryset``'s rows (for ``annotate``)."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def was_member_column():
    """``EXISTS`` a ``created`` member event for the row's agent: a deregistered member has
    lost its placement but is still shown as a member (``admin_display.agent_kind``)."""
    return Exists(
        MemberEvent.objects.filter(agent_id=OuterRef("agent_id"), event=MemberEventKind.CREATED)
    )


def card_kind_column():
    """The card's ``cafleet.kind`` in SQL (``broker.database.card_kind_expression``: SQLite's
    ``json_extract``, PostgreSQL's ``#>>``), '' when absent (so that ``exclude`` does not
    drop the NULLs)."""
    from broker.database import card_kind_expression

    return Coalesce(card_kind_expression(), Value(""), output_field=CharField())


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


class PlacementColumns:
    """The director and pane columns of a placement (its list and the agent's inline)."""

    @admin.display(description="director")
    def director(self, obj):
        return agent_link(obj.director_agent, "— (root Director)")

    @admin.display(description="pane")
    def pane(self, obj):
        return obj.tmux_pane_id or "(pending)"


# ------------------------------------------------------------------------------ list filters
class _Filter(admin.SimpleListFilter):
    """A list filter offering ``fixed_lookups`` (value, label pairs) unless ``lookups`` is
    overridden; ``narrow(queryset, value)`` runs only once a value is chosen."""

    fixed_lookups: tuple[tuple[str, str], ...] = ()

    def lookups(self, request, model_admin):
        return list(self.fixed_lookups)

    def queryset(self, request, queryset):
        value = self.value()
        return self.narrow(queryset, value) if value else queryset

    def narrow(self, queryset, value: str):
        return queryset


class DeletedFilter(_Filter):
    title = "state"
    parameter_name = "state"
    fixed_lookups = (("live", "live"), ("deleted", "deleted"))

    def narrow(self, queryset, value: str):
        if value == "live":
            return queryset.filter(deleted_at__isnull=True)
        if value == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class KindFilter(_Filter):
    title = "kind"
    parameter_name = "kind"
    fixed_lookups = (
        ("director", "Director"),
        ("member", "member"),
        ("administrator", "Administrator"),
        ("agent", "agent"),
    )

    def narrow(self, queryset, value: str):
        queryset = queryset.annotate(card_kind=card_kind_column())
        is_admin = Q(card_kind=ADMIN_KIND)
        is_director = Q(agent_id=F("session__director_agent_id"))
        queryset = queryset.annotate(was_member=was_member_column())
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


class MessageStateFilter(_Filter):
    title = "state"
    parameter_name = "state"
    fixed_lookups = (
        (TaskState.INPUT_REQUIRED, "unread"),
        (TaskState.COMPLETED, "acknowledged"),
        (TaskState.CANCELED, "canceled"),
    )

    def narrow(self, queryset, value: str):
        if value in STATE_LABELS:
            # Summary rows are "completed" by construction; they are not acknowledgements.
            return queryset.filter(status_state=value, type=TaskType.UNICAST)
        return queryset


class MessageSessionFilter(_Filter):
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

    def narrow(self, queryset, value: str):
        return queryset.filter(context__session_id=value)


class AgeFilter(_Filter):
    """Created within the last hour / since the viewer's local midnight / past 7 days."""

    title = "created"
    parameter_name = "age"
    fixed_lookups = (("hour", "Last hour"), ("today", "Today"), ("week", "Past 7 days"))

    def narrow(self, queryset, value: str):
        now = timezone.now()
        if value == "hour":
            since = now - timedelta(hours=1)
        elif value == "today":
            since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        elif value == "week":
            since = now - timedelta(days=7)
        else:
            return queryset
        return queryset.filter(created_at__gte=utc_stamp(since))


class _MailboxFilter(_Filter):
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

    def narrow(self, queryset, value: str):
        return queryset.filter(context_id=value, type=TaskType.UNICAST)


class OutboxFilter(_MailboxFilter):
    title = "sent by"
    parameter_name = "outbox"

    def narrow(self, queryset, value: str):
        return queryset.filter(from_agent_id=value)
