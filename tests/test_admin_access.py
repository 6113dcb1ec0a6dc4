"""Admin access through the test client: login required on every URL, CSRF, the login link."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from broker import loginlink
from broker.models import Session, Task
from tests import admin_helpers
from tests.admin_helpers import LOGIN, changelist, timeline

pytestmark = pytest.mark.django_db

team = admin_helpers.team  # the shared fixture, requested by name


# ------------------------------------------------------------------------------ access
SAMPLES = ("1", "cafleet", "x")
_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")


def _concrete(pattern) -> str:
    """A path that ``pattern`` (RoutePattern or RegexPattern) matches."""
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:(\w+):)?\w+>", lambda m: "1" if m.group(1) == "int" else "x", str(pattern)
        )
    regex = pattern._regex.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    return _GROUP.sub(lambda m: next(s for s in SAMPLES if re.fullmatch(m.group(2), s)), regex)


def _sample_urls() -> list[tuple[str, str]]:
    """(URL, name) for every pattern of the URLconf, crawled from the resolver."""
    found = set()

    def walk(patterns, prefix):
        for entry in patterns:
            here = prefix + _concrete(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, here)
            elif isinstance(entry, URLPattern):
                found.add((here, entry.name or ""))

    walk(get_resolver().url_patterns, "/")
    return sorted(found)


def test_url_crawl_covers_the_admin():
    names = {name for _, name in _sample_urls()}
    assert {
        "index",
        "logout",
        "cafleet_session_timeline",
        "cafleet_task_changelist",
        "cafleet_agent_change",
        "cafleet_session_delete",
        "app_list",
        "view_on_site",
        "cafleet-login-link",
        "auth_user_changelist",
    } <= names
    assert len(_sample_urls()) > 40


def test_anonymous_requests_end_at_the_login_page(client, team):
    crawled = 0
    for url, name in _sample_urls():
        if name == "login":
            continue
        for method in (client.get, client.post):
            response = method(url, follow=True)
            assert response.status_code == 200, (url, response.status_code)
            final = response.redirect_chain[-1][0] if response.redirect_chain else url
            assert final.startswith(LOGIN), (url, final)
            assert b'id="login-form"' in response.content, url
        crawled += 1
    assert crawled > 40


def test_anonymous_timeline_and_send_redirect_to_login(client, team):
    response = client.post(timeline(team.sid), {"to": "*", "text": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")
    assert not Task.objects.filter(from_agent_id=team.admin).exists()


def test_root_redirects_to_admin(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_post_without_csrf_token_is_refused(admin_user, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(timeline(team.sid), {"to": "*", "text": "x"}).status_code == 403
    assert (
        client.post(
            changelist(Session),
            {"action": "soft_delete", "_selected_action": [team.sid], "confirm": "yes"},
        ).status_code
        == 403
    )
    assert Session.objects.get(pk=team.sid).deleted_at is None
    assert not Task.objects.filter(from_agent_id=team.admin).exists()
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(LOGIN, {"username": "admin", "password": "password"}).status_code == 403


def test_post_with_csrf_token_works(admin_user, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(timeline(team.sid)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        timeline(team.sid), {"to": team.plain, "text": "with token", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Task.objects.filter(from_agent_id=team.admin, text="with token").exists()


def test_login_page_explains_how_to_get_in(client):
    html = client.get(LOGIN).content.decode()
    assert "one-time login link" in html and "cafleet django changepassword" in html


# ------------------------------------------------------------------------------ login link
def test_login_link_logs_in_once(client, admin_user):
    token = loginlink.issue(admin_user.pk)
    url = loginlink.login_path(token)
    assert url == f"/admin/login/link/{token}/"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and page.context["user"] == admin_user

    again = Client().get(url, follow=True)
    assert again.redirect_chain[-1][0].startswith(LOGIN)
    assert b"already used or has expired" in again.content
    assert not again.context["user"].is_authenticated


def test_login_link_refuses_inactive_or_unknown_users(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="x-pw-123", is_staff=False)
    for pk in (user.pk, 999999):
        response = client.get(loginlink.login_path(loginlink.issue(pk)))
        assert response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_login_link_is_spent_only_by_get(client, admin_user):
    url = loginlink.login_path(loginlink.issue(admin_user.pk))
    for method in (client.head, client.post):
        response = method(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session
    assert client.get(url)["Location"] == "/admin/"
    assert "_auth_user_id" in client.session


def test_login_link_tokens_expire_and_are_single_use():
    clock = [1000.0]
    token = loginlink.issue(7, clock=lambda: clock[0])
    clock[0] += loginlink.VALID_SECONDS - 1
    assert loginlink.redeem(token, clock=lambda: clock[0]) == 7
    assert loginlink.redeem(token, clock=lambda: clock[0]) is None

    late = loginlink.issue(8, clock=lambda: clock[0])
    clock[0] += loginlink.VALID_SECONDS
    assert loginlink.redeem(late, clock=lambda: clock[0]) is None
    assert loginlink.redeem("", clock=lambda: clock[0]) is None
    assert loginlink.redeem("nope" * 100) is None
    assert loginlink.VALID_SECONDS == 15 * 60
