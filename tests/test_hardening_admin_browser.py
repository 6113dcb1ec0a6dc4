"""The messages list in a real browser at 1400 px (issue 11 item 19): the body column fits
in the window (nothing cut off, no sideways scrolling) and the list refreshes itself.
Uses the Chromium fixture of ``tests/test_browser_admin.py``."""

from __future__ import annotations

import pytest

from tests.conftest import make_fleet
from tests.test_browser_admin import ARTIFACTS, browser, wait_for  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = (
    "Rebase the feature branch onto main, rerun the full suite with the slow markers on, "
    "and report back which of the flaky tests still fail after three tries each."
)


def log_in(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(url + "/admin/")
    wait_for(driver, ec.presence_of_element_located((By.ID, "login-form")))
    driver.find_element(By.ID, "id_username").send_keys("operator")
    driver.find_element(By.ID, "id_password").send_keys("correct-horse-9")
    driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait_for(driver, ec.presence_of_element_located((By.ID, "user-tools")))


def test_messages_list_fits_1400px_and_refreshes_itself(
    browser,  # noqa: F811
    live_server,
    django_user_model,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from broker.services import agent_register, message_send

    fleet = make_fleet(label="a rather long session label for the list", pane="%999999")
    worker = agent_register(
        session_id=fleet.sid,
        name="worker-with-a-long-name",
        description="does work",
        skills_json=None,
    )
    message_send(
        session_id=fleet.sid, agent_ref=fleet.director, to_ref=worker.agent_id, text=LONG, limit=0
    )
    django_user_model.objects.create_superuser("operator", password="correct-horse-9")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        log_in(browser, live_server.url)
        browser.set_window_size(1400, 1000)
        browser.get(live_server.url + "/admin/cafleet/task/")
        cell = wait_for(
            browser, ec.presence_of_element_located((By.CSS_SELECTOR, "td.field-body_preview"))
        )
        assert cell.text.startswith("Rebase the feature branch onto main")
        geometry = browser.execute_script(
            "var c = arguments[0].getBoundingClientRect();"
            "var r = document.getElementById('result_list').getBoundingClientRect();"
            "return {right: c.right, left: c.left, table: r.right,"
            " viewport: document.documentElement.clientWidth,"
            " scroll: document.documentElement.scrollWidth,"
            " results: document.querySelector('#changelist .results').scrollWidth -"
            "   document.querySelector('#changelist .results').clientWidth};",
            cell,
        )
        assert geometry["right"] <= geometry["viewport"], geometry
        assert geometry["table"] <= geometry["viewport"], geometry
        assert geometry["scroll"] <= geometry["viewport"], geometry  # no sideways scrolling
        assert geometry["results"] <= 0, geometry
        assert geometry["right"] - geometry["left"] >= 150, geometry  # a usable width
        status = browser.find_element(By.ID, "cafleet-refresh-status")
        assert "Refreshes itself" in status.text
        browser.save_screenshot(str(ARTIFACTS / "admin-messages-1400.png"))

        # A message sent elsewhere shows up without a reload.
        browser.execute_script("window.cafleetMarker = 1;")
        message_send(
            session_id=fleet.sid,
            agent_ref=worker.agent_id,
            to_ref=fleet.director,
            text="done: two flaky tests left",
            limit=200,
        )
        wait_for(
            browser,
            lambda d: "done: two flaky tests left" in d.find_element(By.ID, "result_list").text,
            timeout=30,
        )
        assert browser.execute_script("return window.cafleetMarker;") == 1  # same page
        assert "last update" in browser.find_element(By.ID, "cafleet-refresh-status").text
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "admin-messages-failure.png"))
        raise
