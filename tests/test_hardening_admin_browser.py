"""The messages list in a real browser at 1400 px (issue 11 item 19): the body column fits
in the window (nothing cut off, no sideways scrolling) and the list refreshes itself.
Uses the Chromium fixture of ``tests/test_browser_admin.py``."""

from __future__ import annotations

import pytest

from tests.test_browser_admin import (  # noqa: F401 - browser: the fixture
    ARTIFACTS,
    browser,
    log_in,
    session_with_worker,
    shows_up_without_reload,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = (
    "Rebase the feature branch onto main, rerun the full suite with the slow markers on, "
    "and report back which of the flaky tests still fail after three tries each."
)


def test_messages_list_fits_1400px_and_refreshes_itself(browser, live_server):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    fleet, worker = session_with_worker(
        "a rather long session label for the list", "worker-with-a-long-name", LONG, limit=0
    )
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
        shows_up_without_reload(browser, fleet, worker, "done: two flaky tests left", "result_list")
        assert browser.execute_script("return window.cafleetMarker;") == 1  # same page
        assert "last update" in browser.find_element(By.ID, "cafleet-refresh-status").text
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "admin-messages-failure.png"))
        raise
