"""Custom admin views: the session timeline (with its send form) and the one-time login link.

Every write goes through the same services as the CLI (``broker.services``); the display
helpers are ``broker.admin_display``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache

from broker import loginlink
from broker.admin_display import (
    admin_url,
    agent_kind,
    changelist_url,
    delivery_badge,
    preview,
    show_time,
    state_label,
)
from broker.clock import normalise_timestamp
from broker.exceptions import CafleetError
from broker.models import AgentStatus, MemberEvent, Session, Task, TaskState, TaskType

#: How many events the timeline shows per page (newest page first, each in time order).
TIMELINE_PAGE = 200
#: Longest body shown inline in the timeline; the message's own page has all of it.
TIMELINE_BODY_CUT = 2000
#: Auto-refresh period of the timeline, in milliseconds.
TIMELINE_REFRESH_MS = 5000
BROADCAST = "*"


# ------------------------------------------------------------------------------ login link
@never_cache
def login_link(request, token: str):
    """Log the browser in once with a token printed by ``cafleet server``.

    Only a GET spends the token; any other method (a link previewer's HEAD, say) is sent
    to the login page with the token untouched.
    """
    login_page = reverse("admin:login") + "?next=" + reverse("admin:index")
    if request.method != "GET":
        return HttpResponseRedirect(login_page)
    user_pk = loginlink.redeem(token)
    user = None
    if user_pk is not None:
        user = get_user_model().objects.filter(pk=user_pk, is_active=True, is_staff=True).first()
    if user is None:
        messages.error(
            request,
            "This login link was already used or has expired. Restart "
            "'cafleet server' for a new one, or log in with a password.",
        )
        return HttpResponseRedirect(login_page)
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, f"Logged in as {user.get_username()} with a one-time link.")
    return HttpResponseRedirect(reverse("admin:index"))


# ------------------------------------------------------------------------------ send form
class SendForm(forms.Form):
    to = forms.ChoiceField(label="To")
    text = forms.CharField(
        label="Message", strip=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 90})
    )

    def __init__(self, *args, recipients=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [
            ("", "— choose —"),
            (BROADCAST, "Everyone (broadcast)"),
            *recipients,
        ]

    def clean_text(self) -> str:
        from broker.conf import max_body_bytes

        # Browsers send textarea line breaks as CRLF; the CLI sends what it is given (LF).
        text = self.cleaned_data["text"].replace("\r\n", "\n")
        if not text:
            raise forms.ValidationError("The message may not be empty.")
        try:
            limit = max_body_bytes()
        except CafleetError as exc:
            raise forms.ValidationError(exc.message) from None
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise forms.ValidationError(
                f"The message is {size} bytes; the limit is {limit} bytes (CAFLEET_MAX_BODY_BYTES)."
            )
        return text


def send_as_administrator(session: Session, administrator, to: str, text: str) -> tuple[Task, str]:
    """Send through the CLI's services. Returns the new row (the summary for a broadcast)
    and the success message. Raises CafleetError."""
    from broker import tmux
    from broker.conf import max_text_len
    from broker.services import message_broadcast, message_send

    limit = max_text_len()
    if to == BROADCAST:
        summary, count, delivered = message_broadcast(
            session_id=session.session_id,
            agent_ref=administrator.agent_id,
            text=text,
            limit=limit,
            tmux=tmux,
        )
        return summary, (
            f"Broadcast {summary.task_id[:8]} sent to {count} recipient"
            f"{'' if count == 1 else 's'} ({delivered} inline preview"
            f"{'' if delivered == 1 else 's'})."
        )
    task, notified = message_send(
        session_id=session.session_id,
        agent_ref=administrator.agent_id,
        to_ref=to,
        text=text,
        limit=limit,
        tmux=tmux,
    )
    return task, (
        f"Message {task.task_id[:8]} sent{' with an inline preview' if notified else ''}."
    )


# ------------------------------------------------------------------------------ timeline
@dataclass
class Event:
    kind: str  # sent | broadcast | acknowledged | canceled | member-created | member-deleted
    ts: str
    task: Task | None  # None for a member event
    actor: object = None
    target: object = None
    deliveries: list = field(default_factory=list)
    text: str | None = None  # the body; for a broadcast, its deliveries' body
    member: object = None  # the MemberEvent of a member event

    @property
    def key(self) -> str:
        return self.task.task_id if self.task is not None else f"m{self.member.pk:020d}"

    @property
    def body(self) -> str:
        text = self.task.text if self.text is None else self.text
        return text if len(text) <= TIMELINE_BODY_CUT else text[:TIMELINE_BODY_CUT] + "…"

    @property
    def cut(self) -> bool:
        text = self.task.text if self.text is None else self.text
        return len(text) > TIMELINE_BODY_CUT

    @property
    def short(self) -> str:
        return preview(self.task.text, 120)

    @property
    def time(self):
        return show_time(self.ts)

    @property
    def state(self) -> str:
        return state_label(self.task)

    @property
    def url(self) -> str:
        return admin_url(self.task) if self.task is not None else ""

    @property
    def preview(self):
        return delivery_badge(self.task) if self.kind == "sent" else ""


@dataclass
class Delivery:
    task: Task
    recipient: object
    state: str

    @property
    def preview(self):
        return delivery_badge(self.task)


class Who:
    """An agent as the timeline names it (also for ids that are not in the session)."""

    def __init__(self, agent_id: str, agent=None, kind: str = ""):
        self.agent_id = agent_id
        self.agent = agent
        self.kind = kind

    @property
    def name(self) -> str:
        return self.agent.name if self.agent is not None else agent_id8(self.agent_id)

    @property
    def url(self) -> str | None:
        return admin_url(self.agent) if self.agent is not None else None

    @property
    def html(self):
        label = self.kind or "unknown agent"
        if self.agent is None:
            return format_html('<span class="cafleet-who" title="{}">{}</span>', label, self.name)
        return format_html(
            '<a class="cafleet-who" href="{}" title="{}, {}">{}</a>{}',
            self.url,
            label,
            self.agent_id,
            self.name,
            format_html(' <span class="cafleet-kind">{}</span>', self.kind)
            if self.kind in ("Director", "Administrator") and self.kind != self.name
            else "",
        )


def agent_id8(agent_id: str) -> str:
    return agent_id[:8] if agent_id else "?"


def build_timeline(
    session: Session, agents: dict, *, before: str | None = None, page: int | None = None
) -> tuple[list[Event], str | None]:
    """The newest ``page`` events before ``before``, in time order, and the ``before``
    value of the next older page (None when there is none).

    Events: each unicast or broadcast when it was sent (a broadcast is one event carrying
    its deliveries), each acknowledgement or cancellation when it happened, and each
    member's creation and deletion (``member_events``).
    """
    page = page or TIMELINE_PAGE
    kinds = {aid: agent_kind(a, session.director_agent_id) for aid, a in agents.items()}

    def who(agent_id: str) -> Who:
        return Who(agent_id, agents.get(agent_id), kinds.get(agent_id, ""))

    rows = Task.objects.filter(context__session_id=session.session_id)
    sends = rows.filter(Q(origin_task_id__isnull=True) | Q(type=TaskType.BROADCAST_SUMMARY))
    changes = rows.filter(
        type=TaskType.UNICAST, status_state__in=[TaskState.COMPLETED, TaskState.CANCELED]
    )
    if before:
        sends = sends.filter(created_at__lt=before)
        changes = changes.filter(status_timestamp__lt=before)
    sent = list(sends.select_related("delivery").order_by("-created_at", "-task_id")[: page + 1])
    changed = list(changes.order_by("-status_timestamp", "-task_id")[: page + 1])
    member_rows = MemberEvent.objects.filter(agent__session_id=session.session_id)
    if before:
        member_rows = member_rows.filter(at__lt=before)
    member_events = list(member_rows.order_by("-at", "-id")[: page + 1])

    def between(kind: str, ts: str, task: Task, actor_id: str, target_id: str) -> Event:
        return Event(kind, ts, task, actor=who(actor_id), target=who(target_id))

    events: list[Event] = []
    for task in sent:
        sender, recipient = task.from_agent_id, task.context_id
        if task.type == TaskType.BROADCAST_SUMMARY:
            events.append(Event("broadcast", task.created_at, task, actor=who(sender)))
        else:
            events.append(between("sent", task.created_at, task, sender, recipient))
    for task in changed:
        sender, recipient = task.from_agent_id, task.context_id
        ts = task.status_timestamp
        if task.status_state == TaskState.COMPLETED:  # the recipient acknowledges
            events.append(between("acknowledged", ts, task, recipient, sender))
        else:  # the sender cancels
            events.append(between("canceled", ts, task, sender, recipient))
    # A send sorts before the ack/cancel that shares its timestamp.
    for row in member_events:
        events.append(
            Event(
                f"member-{row.event}",
                row.at,
                None,
                actor=who(row.director_agent_id),
                target=who(row.agent_id),
                member=row,
            )
        )
    # At one timestamp: a member's creation, then sends, then acks/cancels, then deletions.
    order = {
        "member-created": 0,
        "sent": 1,
        "broadcast": 1,
        "acknowledged": 2,
        "canceled": 2,
        "member-deleted": 3,
    }
    events.sort(key=lambda e: (e.ts, order[e.kind], e.key), reverse=True)
    older = None
    if len(events) > page:
        events = events[:page]
        older = events[-1].ts
    events.reverse()

    summaries = {e.task.task_id: e for e in events if e.kind == "broadcast"}
    if summaries:
        for task in (
            Task.objects.filter(origin_task_id__in=list(summaries), type=TaskType.UNICAST)
            .select_related("delivery")
            .order_by("task_id")
        ):
            summaries[task.origin_task_id].deliveries.append(
                Delivery(task, who(task.context_id), state_label(task))
            )
        for event in summaries.values():
            event.deliveries.sort(key=lambda d: (d.recipient.name.lower(), d.task.task_id))
            if event.deliveries:
                event.text = event.deliveries[0].task.text
    return events, older


def timeline_view(request, model_admin, object_id: str):
    session = Session.objects.select_related("director_agent").filter(pk=unquote(object_id)).first()
    if session is None:
        raise Http404("No such session.")
    if not model_admin.has_view_permission(request, session):
        raise PermissionDenied
    agent_rows = list(
        session.agents.select_related("placement").order_by("registered_at", "agent_id")
    )
    agents = {a.agent_id: a for a in agent_rows}
    administrator = next(
        (a for a in agent_rows if a.is_administrator and a.status == AgentStatus.ACTIVE), None
    )
    may_send = request.user.has_perm("cafleet.add_task")
    can_send = may_send and administrator is not None and not session.is_deleted
    recipients = [
        (a.agent_id, f"{a.name} ({agent_kind(a, session.director_agent_id)}, {a.agent_id[:8]})")
        for a in agent_rows
        if a.status == AgentStatus.ACTIVE and a is not administrator
    ]
    here = reverse("admin:cafleet_session_timeline", args=[session.pk])

    form = None
    if request.method == "POST":
        if not may_send:
            raise PermissionDenied
        if not can_send:
            messages.error(request, "This session is deleted; its Administrator cannot send.")
            return redirect(here)
        form = SendForm(request.POST, recipients=recipients)
        if form.is_valid():
            try:
                task, note = send_as_administrator(
                    session, administrator, form.cleaned_data["to"], form.cleaned_data["text"]
                )
            except CafleetError as exc:
                form.add_error(None, exc.message)
            else:
                model_admin.log_addition(
                    request, task, "Sent from the session timeline as the Administrator."
                )
                messages.success(request, note)
                # Back to the page with the same recipient chosen (Post/Redirect/Get).
                return redirect(f"{here}?{urlencode({'to': form.cleaned_data['to']})}#send")
    elif can_send:
        initial = {}
        if request.GET.get("to") in {BROADCAST, *(aid for aid, _ in recipients)}:
            initial["to"] = request.GET["to"]
        form = SendForm(initial=initial, recipients=recipients)

    before = (
        normalise_timestamp(request.GET.get("before", "")) if request.GET.get("before") else None
    )
    events, older = build_timeline(session, agents, before=before)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Timeline: {session}",
        "subtitle": None,
        "session": session,
        "session_url": admin_url(session),
        "events": events,
        "older": older,
        "before": before,
        "here": here,
        "form": form,
        "can_send": can_send,
        "administrator": administrator,
        "refresh_ms": TIMELINE_REFRESH_MS if before is None else 0,
        "refresh_seconds": TIMELINE_REFRESH_MS // 1000,
        "agents_url": changelist_url(
            session.agents.model, session__session_id__exact=session.session_id
        ),
        "messages_url": changelist_url(Task, session=session.session_id),
        "page_size": TIMELINE_PAGE,
    }
    if request.GET.get("fragment") == "1":
        response = TemplateResponse(request, "cafleet/admin/timeline_events.html", context)
        response["X-Cafleet-Timeline"] = "1"
        return response
    return TemplateResponse(request, "cafleet/admin/timeline.html", context)
