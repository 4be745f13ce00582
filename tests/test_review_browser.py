"""The review pages in a real browser: Debian's headless Chromium, driven by Selenium, against a real
`leadgate serve` filled with a generated history.

It signs in, filters the decisions, opens a lead and checks its "why" against GET /v1/leads/{id}/why,
opens a decision and sees its replay match, opens the rulesets and the funnel, and signs out. Every
page is saved as a full-page screenshot at 1280 and 390 px wide in test-artefacts/review/, and at
390 px nothing may be wider than the screen.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from audit import AuditTrail
from audit.keys import create
from engine.cases import cases_path, run_cases
from tests import history
from tests.conftest import RULESETS
from tests.server import ROOT, Server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTEFACTS = ROOT / "test-artefacts" / "review"
WIDTHS = (1280, 390)
MAX_SHOT_HEIGHT = 6000  # px: the longest pages (a ruleset's source) are cut there
LEADS = 300
LEAD = {
    "lead_id": "L-REVIEW-1",
    "channel": "demo_form",
    "profile": {
        "email": "ana@acme.io",
        "company": "Acme <Analytics>",
        "country": "US",
        "industry": "software",
        "employees": 200,
        "seniority": "vp",
        "department": "marketing",
    },
    "events": [
        {"type": "content_download", "at": "2026-11-20T10:00:00Z", "properties": {"content": "whitepaper"}},
        {"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "form-77"},
    ],
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, default):
    db = tmp_path_factory.mktemp("review-browser") / "review.db"
    # The shipped default, Secure cookies: Chromium treats http://127.0.0.1 as a secure context.
    srv = Server(db, workers=2)
    trail = AuditTrail(db, durability="normal")
    try:
        history.build(trail, default, LEADS)
        srv.review_key = create(trail, "ops reviewer", "review")[1]
    finally:
        trail.close()
    with srv:
        for body in (LEAD, {"lead_id": LEAD["lead_id"], "answers": {"timeline": "now", "budget": "yes"}}):
            status, reply, _ = srv.request("POST", "/v1/decisions", body)
            assert status == 201, reply
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: run `make browser` (make test does) to install Debian's "
            "chromium and chromium-driver."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={WIDTHS[0]},900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Pages:
    """The browser on the review pages, with a full-page screenshot of each at every width."""

    def __init__(self, driver, base: str):
        self.driver, self.base = driver, base
        shutil.rmtree(ARTEFACTS, ignore_errors=True)
        ARTEFACTS.mkdir(parents=True)

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def follow(self, selector: str) -> None:
        """Click something that loads a new page, and wait until it has."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        def gone(_):
            # Stale, or (a chromedriver race under load) "Node ... does not belong to the document": gone either way.
            try:
                page.is_enabled()
            except WebDriverException:
                return True
            return False

        page = self.css("html")
        self.css(selector).click()
        wait = WebDriverWait(self.driver, 10)
        wait.until(gone)
        # The old document is gone once the new one starts loading: wait until it has loaded, or a
        # lookup can land on a node the loading page replaces ("Node ... does not belong to the document").
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base)

    def _width(self, width: int) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def look(self, name: str) -> None:
        """Screenshot the page at each width; at the narrow one, nothing may overflow sideways."""
        for width in WIDTHS:
            self._width(width)
            scroll, inner = self.driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert inner == width
            if width < 600:
                wide = self.driver.execute_script(
                    "return [...document.querySelectorAll('body *')]"
                    ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
                    ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
                )
                assert scroll <= inner, f"{name} overflows at {width} px: {scroll} > {inner}: {wide}"
            size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(size["height"], MAX_SHOT_HEIGHT),
                        "scale": 1,
                    },
                },
            )
            (ARTEFACTS / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
        self._width(WIDTHS[0])


def refuse(*args, **kwargs):
    raise ConnectionRefusedError("connection refused here")


def test_review_pages_in_a_browser(server, browser, default):
    pages = Pages(browser, f"http://127.0.0.1:{server.port}")

    # Every page needs a session: the browser lands on the sign-in form, which remembers where it was going.
    pages.go("/review/decisions")
    assert pages.path().startswith("/review/sign-in?next=")
    pages.look("01-sign-in")
    pages.css("#key").send_keys(server.key.replace("lg_", "lg_x", 1))
    pages.follow("form.stacked button")
    assert "unknown or revoked" in pages.css("#sign-in-error").text
    pages.css("#key").send_keys(server.review_key)
    pages.follow("form.stacked button")
    assert pages.path() == "/review/decisions"
    assert "ops reviewer" in pages.css(".who").text
    pages.look("02-decisions")

    # Filter: good fit and ready, from the demo form; every row shown says so.
    from selenium.webdriver.support.select import Select

    Select(pages.css("#quadrant")).select_by_value("good_fit_ready")
    pages.css("#channel").send_keys("demo_form")
    pages.follow("#apply")
    assert "quadrant=good_fit_ready" in pages.path() and "channel=demo_form" in pages.path()
    rows = pages.all("#decisions tbody tr")
    assert rows
    assert {r.find_element("css selector", ".quadrant .badge").get_attribute("data-value") for r in rows} == {
        "good_fit_ready"
    }
    assert {r.find_element("css selector", ".channel").text for r in rows} == {"demo_form"}
    pages.look("03-decisions-filtered")

    # Search a lead by its id and open it.
    pages.go("/review/decisions")
    pages.css("#lead_id").send_keys(LEAD["lead_id"])
    pages.follow("#apply")
    links = pages.all("#decisions .lead-link")
    assert len(links) == 2 and {a.text for a in links} == {LEAD["lead_id"]}
    pages.follow("#decisions .lead-link")
    assert pages.css("#lead-id").text == LEAD["lead_id"]

    # Its why is the API's.
    status, why, _ = server.request("GET", f"/v1/leads/{LEAD['lead_id']}/why")
    assert status == 200
    assert pages.css("#why-stage").get_attribute("data-value") == why["stage"]
    assert pages.css("#why-route").text == why["route"]["id"]
    assert pages.css("#why-quadrant").get_attribute("data-value") == why["quadrant"]
    for name, score in why["scores"].items():
        assert float(pages.css(f"#score-{name}-total").get_attribute("data-total")) == score["total"]
    assert "Acme <Analytics>" in pages.css("#profile").text  # shown as text, not markup
    # Lead text is bidi-isolated: an RTL override (U+202E) in a value reorders its own cell only.
    isolation = pages.driver.execute_script(
        "return [...document.querySelectorAll('#profile td, #profile dd, #lead-id')]"
        ".map(e => getComputedStyle(e).unicodeBidi)"
    )
    assert isolation and set(isolation) == {"isolate"}, isolation
    assert len(pages.all("#timeline li.decision")) == 2
    pages.look("04-lead")

    # Why not another route: the page answers as GET /v1/leads/{id}/why-not does.
    Select(pages.css("#why-not-target")).select_by_value("route:nurture_accelerate")
    pages.follow("#why-not button")
    status, why_not, _ = server.request(
        "GET", f"/v1/leads/{LEAD['lead_id']}/why-not?route=nurture_accelerate"
    )
    assert status == 200 and why_not["rules"]
    shown = [e.text for e in pages.all("#why-not-rules .first-failed")]
    assert shown == [r["first_failed"]["detail"] for r in why_not["rules"] if r["first_failed"]]
    pages.look("04b-why-not")

    # Its latest decision, replayed: identical.
    pages.follow("#why-decision")
    assert pages.path() == f"/review/decisions/{why['decision_id']}"
    assert pages.css("#replay-result").text.startswith("Identical.")
    assert len(pages.all("#reasons tbody tr")) >= 5
    pages.look("05-decision")

    # The reviewer disagrees: the override form records it, and the lead's timeline shows it.
    Select(pages.css("#override-route")).select_by_value("nurture_accelerate")
    pages.css("#override-reason").send_keys("Not ready: <asked for pricing only>")
    pages.follow("#override-form button")
    assert pages.path() == f"/review/leads/{LEAD['lead_id']}#timeline"
    assert "Not ready: <asked for pricing only>" in pages.css("#timeline li.override").text
    pages.look("05b-override")
    pages.go(f"/review/decisions/{why['decision_id']}")
    assert "Not ready: <asked for pricing only>" in pages.css(".override-recorded").text

    # The ruleset version links to its source at that digest.
    pages.follow(".kv a[href^='/review/sources/']")
    assert pages.path() == f"/review/sources/{why['ruleset']['digest']}"
    assert "name: default" in pages.css("#source").text
    pages.look("06-source")

    # Whether the cases pass is what `leadgate rulesets test` says.
    cases = run_cases(default, cases_path(RULESETS / "default.yaml"))
    verdict = "pass" if cases.passed else "fail"
    pages.follow("nav a[href='/review/rulesets']")
    assert [b.text for b in pages.all("#ruleset-default .cases .badge")] == [verdict]
    pages.look("07-rulesets")
    pages.follow("#ruleset-default h2 a")
    assert pages.css(f"#version-{default.version} .cases").text.startswith(
        f"{verdict} {sum(r.passed for r in cases.results)}/{len(cases.results)} cases"
    )
    pages.look("08-ruleset")

    # Webhooks to the shipped destination, refused (whatever listens on its port on this machine): listed.
    from audit import deliveries as queue
    from service.config import load_config
    from service.deliver import Deliverer

    trail = AuditTrail(server.db)
    try:
        deliverer = Deliverer(load_config(environ={}, db=str(server.db), delivery_attempts=1), trail)
        deliverer.connections.post = refuse
        deliverer.step()
        deliverer.close()
        failed = queue.failing(trail)
    finally:
        trail.close()
    assert failed and {d["status"] for d in failed} == {"dead"}
    pages.follow("nav a[href='/review/deliveries']")
    assert len(pages.all("#deliveries tbody tr")) == len(failed)
    assert "connection refused here" in pages.css("#deliveries tbody tr .error").text
    assert not pages.all("#deliveries button")  # a review key sees them; an admin key retries
    pages.look("09-deliveries")

    pages.follow("nav a[href='/review/funnel']")
    assert int(pages.css("#lead-count").text) == LEADS + 1
    assert len(pages.all("#matrix svg .cell")) == 4
    assert pages.all("#stages svg rect") and pages.all("#fit-bands svg rect") and pages.all("#sla svg rect")
    pages.look("10-funnel")

    # Coverage: the last 30 days hold the two decisions made for LEAD; the history was decided in October 2026.
    pages.follow("nav a[href='/review/coverage']")
    assert pages.css("#coverage-total").text.startswith("2 decisions recorded since")
    pages.go("/review/coverage?since=2026-10-01T00:00:00Z")
    assert not pages.css("#coverage-total").text.startswith("0 decisions")
    assert pages.all(f"#coverage-default-{default.version} .never-fired li")
    pages.look("10-coverage")

    pages.follow("#sign-out")
    assert pages.path() == "/review/sign-in?signed_out=1"
    pages.go("/review/funnel")
    assert pages.path().startswith("/review/sign-in")
