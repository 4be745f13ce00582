"""The example form in a real browser (issue 12): /demo/form under its Content-Security-Policy, with a
publishable form key made for the page's origin, through a real `leadgate serve`.

The page must work with nothing but its own hashed inline script and style: it starts a lead, shows
the next step, and sends the follow-up answers with the lead token of the first reply.
"""

from __future__ import annotations

import pytest

from audit import AuditTrail
from audit.keys import create
from tests.server import Server
from tests.test_review_browser import browser  # noqa: F401 - the headless Chromium fixture

pytestmark = pytest.mark.slow


def test_the_demo_form_works_under_its_csp_with_a_form_key(tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server = Server(tmp_path / "form.db")
    origin = f"http://127.0.0.1:{server.port}"
    trail = AuditTrail(server.db)
    key = create(trail, "demo page", "form", [origin])[1]
    trail.close()
    with server:
        browser.get(origin + "/demo/form")
        find = lambda css: browser.find_element(By.CSS_SELECTOR, css)  # noqa: E731
        find("#api-key").send_keys(key)
        find("#email").send_keys("ana@acme.io")
        Select(find("#country")).select_by_value("ES")
        Select(find("#industry")).select_by_value("other")
        find("#employees").send_keys("3")
        Select(find("#seniority")).select_by_value("individual")
        find("#submit").click()
        wait = WebDriverWait(browser, 15)
        wait.until(lambda d: find("#next-step").is_displayed())
        assert find("#step-title").text
        meta = find("#step-meta").text
        assert meta.startswith("Lead web-"), meta  # leadgate chose the id
        lead_id = meta.split()[1]
        questions = browser.find_elements(By.CSS_SELECTOR, "#questions-form select")
        if questions:  # the follow-up goes with the lead token to the same lead
            for select in questions:
                Select(select).select_by_index(1)
            browser.find_element(By.CSS_SELECTOR, "#questions-form button[type=submit]").click()
            wait.until(lambda d: find("#step-meta").text != meta)
            assert find("#step-meta").text.split()[1] == lead_id
        status, lead, _ = server.request("GET", f"/v1/leads/{lead_id}")
        assert status == 200 and lead["facts"]["profile"]["country"] == "ES"
        if questions:
            assert lead["facts"]["answers"]
        violations = [
            e for e in browser.get_log("browser") if "Content Security Policy" in e.get("message", "")
        ]
        assert violations == []
