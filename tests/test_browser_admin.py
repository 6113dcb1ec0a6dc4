"""The admin in a real browser: headless Chromium driven by selenium + chromedriver against
pytest-django's ``live_server``.

The test logs in through the login form, opens a session's timeline, sends a message as
the session's Administrator, sees it appear, finds it in the messages list with state
``unread``, and watches the timeline refresh itself. The browser runs in another time zone
(``TZ``), so the page must show times in that zone once ``tz.js`` has set its cookie.
A screenshot of the timeline is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_fleet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
BROWSER_TZ = "Asia/Tokyo"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium(), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("chromium and chromedriver are needed for the browser test")
    profile = tempfile.mkdtemp(prefix="cafleet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(driver_path, env={**os.environ, "TZ": BROWSER_TZ})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def session_with_worker(label: str, worker_name: str, first_text: str, limit: int = 200):
    """A session, a plain member ``worker_name`` that the Director sent ``first_text``, and
    the superuser "operator" that :func:`log_in` logs in as; ``(fleet, worker)``."""
    from django.contrib.auth import get_user_model

    from broker.services import agent_register, message_send

    fleet = make_fleet(label=label, pane="%999999")
    worker = agent_register(
        session_id=fleet.sid, name=worker_name, description="does work", skills_json=None
    )
    message_send(
        session_id=fleet.sid,
        agent_ref=fleet.director,
        to_ref=worker.agent_id,
        text=first_text,
        limit=limit,
    )
    get_user_model().objects.create_superuser("operator", password="correct-horse-9")
    ARTIFACTS.mkdir(exist_ok=True)
    return fleet, worker


def log_in(driver, url):
    """Every page needs a login: the admin sends us to its login form; log in as operator."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(url + "/admin/")
    wait_for(driver, ec.presence_of_element_located((By.ID, "login-form")))
    assert "/admin/login/" in driver.current_url
    driver.find_element(By.ID, "id_username").send_keys("operator")
    driver.find_element(By.ID, "id_password").send_keys("correct-horse-9")
    driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait_for(driver, ec.presence_of_element_located((By.ID, "user-tools")))


def shows_up_without_reload(driver, fleet, worker, text: str, element_id: str) -> None:
    """A message sent elsewhere (worker → Director) appears in the page's ``element_id``."""
    from selenium.webdriver.common.by import By

    from broker.services import message_send

    message_send(
        session_id=fleet.sid,
        agent_ref=worker.agent_id,
        to_ref=fleet.director,
        text=text,
        limit=200,
    )
    wait_for(driver, lambda d: text in d.find_element(By.ID, element_id).text, timeout=30)


def test_send_from_the_timeline_and_find_it_unread(browser, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    from broker.models import Task, TaskState

    fleet, worker = session_with_worker("browser demo", "worker", "first task for the worker")
    body = "Please rebase onto main\nand report back."

    try:
        log_in(browser, live_server.url)
        assert browser.get_cookie("tz")["value"] == BROWSER_TZ

        # The sessions list links to the session's timeline.
        browser.get(live_server.url + "/admin/cafleet/session/")
        browser.find_element(By.LINK_TEXT, "timeline").click()
        wait_for(browser, ec.presence_of_element_located((By.ID, "cafleet-send-form")))
        assert browser.title.startswith("Timeline: browser demo")
        events = browser.find_element(By.ID, "cafleet-timeline").text
        assert "first task for the worker" in events

        # Times are in the browser's zone (Tokyo, +09:00, "JST").
        first = Task.objects.get(text="first task for the worker")
        assert first.created_at in browser.page_source  # the stored UTC string, as tooltip
        tokyo = datetime.fromisoformat(first.created_at) + timedelta(hours=9)
        assert tokyo.strftime("%Y-%m-%d %H:%M:%S JST") in events

        # Send as the Administrator to the worker.
        Select(browser.find_element(By.ID, "id_to")).select_by_value(worker.agent_id)
        browser.find_element(By.ID, "id_text").send_keys(body)
        browser.find_element(By.CSS_SELECTOR, "#cafleet-send-form [name=_send]").click()
        success = wait_for(
            browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
        )
        task = Task.objects.get(from_agent_id=fleet.admin)
        assert f"Message {task.task_id[:8]} sent" in success.text
        assert (task.context_id, task.text, task.status_state) == (
            worker.agent_id,
            body,
            TaskState.INPUT_REQUIRED,
        )
        assert "Please rebase onto main" in browser.find_element(By.ID, "cafleet-timeline").text

        # The timeline refreshes itself: a message sent elsewhere shows up without a reload.
        shows_up_without_reload(browser, fleet, worker, "rebased, all green", "cafleet-timeline")
        assert browser.find_elements(By.ID, "cafleet-send-form")  # same page, form intact
        browser.save_screenshot(str(ARTIFACTS / "admin-timeline.png"))

        # The messages list has it, unread, from the Administrator to the worker.
        browser.get(live_server.url + "/admin/cafleet/task/")
        row = wait_for(
            browser,
            ec.presence_of_element_located((By.XPATH, f"//tr[.//a[text()='{task.task_id[:8]}']]")),
        )
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "td, th")]
        assert "Administrator" in cells and "worker" in cells
        assert any(c.split("\n")[0] == "unread" for c in cells)  # state, then preview
        assert any(c.startswith("Please rebase onto main and report back.") for c in cells)

        # The unread filter keeps it; the acknowledged filter does not.
        browser.get(live_server.url + "/admin/cafleet/task/?state=input_required")
        assert task.task_id[:8] in browser.find_element(By.ID, "result_list").text
        browser.get(live_server.url + "/admin/cafleet/task/?state=completed")
        assert task.task_id[:8] not in browser.page_source
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "admin-failure.png"))
        raise
    assert (ARTIFACTS / "admin-timeline.png").stat().st_size > 10_000


def test_admin_stylesheet_is_applied(browser, live_server):
    """The login page is styled by the admin's CSS (served by the same process)."""
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/admin/")
    header = browser.find_element(By.ID, "header")
    # base.css paints the header with the admin's primary colour; unstyled it is transparent.
    assert header.value_of_css_property("background-color") not in (
        "rgba(0, 0, 0, 0)",
        "transparent",
    )
