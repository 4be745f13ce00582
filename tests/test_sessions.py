"""Review sessions end on the server: sign-out, idling and a rotated secret each refuse a copied cookie.

Through a real two-worker server: a cookie is copied before the event and replayed after it.
"""

from __future__ import annotations

import http.client
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from audit.keys import create
from cli import main
from tests.postgres import BACKENDS
from tests.server import Server


class Browser:
    """Just enough of a browser: one cookie jar, form posts with the page's CSRF token."""

    def __init__(self, server: Server, cookie: str | None = None):
        self.server, self.cookie = server, cookie

    def request(self, method: str, path: str, form: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        headers = {"Cookie": f"leadgate_review={self.cookie}"} if self.cookie else {}
        body = None
        if form is not None:
            body = "&".join(f"{k}={v}" for k, v in form.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            found = re.search(r"leadgate_review=([^;]*)", response.getheader("Set-Cookie") or "")
            if found:
                self.cookie = found.group(1) or None
            return response.status, text, response.getheader("Location")
        finally:
            conn.close()

    def token(self, path: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', self.request("GET", path)[1]).group(1)

    def sign_in(self, key: str) -> None:
        status, _, location = self.request(
            "POST", "/review/sign-in", {"key": key, "csrf_token": self.token("/review/sign-in")}
        )
        assert (status, location) == (302, "/review/decisions")

    def signed_in(self) -> bool:
        return self.request("GET", "/review/rulesets")[0] == 200


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """Two workers on a SQLite file, then on a PostgreSQL database (its key file named for the CLI too)."""
    tmp = tmp_path_factory.mktemp("sessions")
    with pytest.MonkeyPatch.context() as env:
        db = tmp / "s.db"
        if request.param == "postgresql":
            postgres = request.getfixturevalue("postgres_server")
            db = postgres.url(postgres.create())
            env.setenv("LEADGATE_SECRET_FILE", str(tmp / "s.key"))
        with Server(db, workers=2, secure_cookies=0, session_idle_minutes=5, logs=tmp) as running:
            with running.trail() as trail:
                running.review_key = create(trail, "reviewer", "review")[1]
            yield running


def test_a_copied_cookie_is_refused_after_sign_out(server):
    browser = Browser(server)
    browser.sign_in(server.review_key)
    copy = Browser(server, browser.cookie)
    assert copy.signed_in()
    status, _, _ = browser.request(
        "POST", "/review/sign-out", {"csrf_token": browser.token("/review/rulesets")}
    )
    assert status == 302 and not browser.signed_in()
    assert not copy.signed_in()


def test_an_idle_session_ends(server):
    browser = Browser(server)
    browser.sign_in(server.review_key)
    assert browser.signed_in()
    # Six minutes pass with no request (the server's idle limit is five).
    idle = (datetime.now(UTC) - timedelta(minutes=6)).isoformat().replace("+00:00", "Z")
    with server.trail() as trail:
        trail.db.execute("UPDATE sessions SET seen_at = ? WHERE ended_at IS NULL", (idle,))
    assert not browser.signed_in()
    # …while one seen four minutes ago lives on.
    browser.sign_in(server.review_key)
    recent = (datetime.now(UTC) - timedelta(minutes=4)).isoformat().replace("+00:00", "Z")
    with server.trail() as trail:
        trail.db.execute("UPDATE sessions SET seen_at = ? WHERE ended_at IS NULL", (recent,))
    assert browser.signed_in()


def test_rotating_the_session_secret_signs_everyone_out(server):
    browsers = [Browser(server) for _ in range(3)]
    for browser in browsers:
        browser.sign_in(server.review_key)
    copies = [Browser(server, b.cookie) for b in browsers]
    result = CliRunner().invoke(main, ["keys", "rotate-secret", "session", "--db", str(server.db)])
    assert result.exit_code == 0 and "session(s) ended" in result.output, result.output
    assert not any(b.signed_in() for b in browsers + copies)
    # Signing in again works, with cookies signed by the new secret in every worker.
    fresh = Browser(server)
    fresh.sign_in(server.review_key)
    assert all(fresh.signed_in() for _ in range(6))


def test_rotate_secret_refuses_a_secret_from_the_environment(tmp_path):
    result = CliRunner().invoke(
        main,
        ["keys", "rotate-secret", "session", "--db", str(tmp_path / "e.db")],
        env={"LEADGATE_SECRET_SESSION": "x" * 40},
    )
    assert result.exit_code == 1 and "comes from LEADGATE_SECRET_SESSION" in result.output
