"""The review pages through Flask's test client: sign-in, sessions, CSRF, filters and escaping.

The same pages in a real browser are tests/test_review_browser.py.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from api import create_app, state
from api.state import registry, trail
from audit import sessions
from audit.keys import create, revoke
from audit.why import explain
from service.decide import decide
from tests import history
from tests.conftest import AT, RULESETS, with_version

HOSTILE = "<script>alert('x')</script>"
PAGES = (
    "/review/decisions",
    "/review/decisions/dec_0",
    "/review/leads/H-00001",
    "/review/rulesets",
    "/review/rulesets/default",
    "/review/sources/sha256:0",
    "/review/funnel",
    "/review/deliveries",
)


def settings(db, **more) -> dict:
    """The app's settings on `db`: the shipped rulesets, cookies over plain http (the test client's)."""
    return {"db": str(db), "rulesets": str(RULESETS), "secure_cookies": 0, **more}


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A database with a small generated history, a hostile lead, and a key of every kind."""
    db = tmp_path_factory.mktemp("review") / "review.db"
    app = create_app(**settings(db))
    with app.app_context():
        history.build(trail(), registry().get("default"), 40)
        # Lead ids keep to their character set (issue 12); company and channel are free text.
        lead = {"lead_id": "HOSTILE-1", "profile": {"company": HOSTILE, "country": "US"}, "channel": HOSTILE}
        decide(registry().get("default"), trail(), lead)
        keys = {
            scope: create(trail(), f"{scope} <b>key</b>", scope) for scope in ("decide", "review", "admin")
        }
        revoked = create(trail(), "gone", "review")
        revoke(trail(), revoked[0].id)
        keys["revoked"] = revoked
    state.close(app)
    return db, {name: text for name, (_, text) in keys.items()}, {name: k.id for name, (k, _) in keys.items()}


@pytest.fixture(scope="module")
def app(filled):
    app = create_app(**settings(filled[0]))
    yield app
    state.close(app)


@pytest.fixture(scope="module")
def keys(filled):
    return filled[1]


def token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, key: str):
    return client.post(
        "/review/sign-in", data={"key": key, "csrf_token": token(client.get("/review/sign-in"))}
    )


@pytest.fixture
def client(app, keys):
    c = app.test_client()
    assert sign_in(c, keys["review"]).status_code == 302
    return c


# -- sign-in and sessions -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_a_session(app, page):
    r = app.test_client().get(page + "?stage=lead")
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/review/sign-in" and parse_qs(location.query)["next"] == [page + "?stage=lead"]


@pytest.mark.parametrize(
    ("which", "status", "message"),
    [
        ("wrong", 401, "unknown or revoked"),
        ("revoked", 401, "unknown or revoked"),
        ("decide", 403, "has scope decide"),
    ],
)
def test_sign_in_refuses_wrong_revoked_and_decide_keys(app, keys, which, status, message):
    c = app.test_client()
    key = keys["review"][:-4] + "AAAA" if which == "wrong" else keys[which]
    r = sign_in(c, key)
    assert r.status_code == status and message in r.text
    assert c.get("/review/decisions").status_code == 302


@pytest.mark.parametrize("scope", ["review", "admin"])
def test_review_and_admin_keys_sign_in_and_out(app, keys, scope):
    c = app.test_client()
    r = sign_in(c, keys[scope])
    assert r.status_code == 302 and r.headers["Location"] == "/review/decisions"
    page = c.get("/review/decisions")
    assert page.status_code == 200 and f"{scope} &lt;b&gt;key&lt;/b&gt;" in page.text
    r = c.post("/review/sign-out", data={"csrf_token": token(page)})
    assert r.headers["Location"] == "/review/sign-in?signed_out=1"
    assert c.get("/review/decisions").status_code == 302


def test_sign_in_returns_only_to_these_pages(app, keys):
    c = app.test_client()
    for target, landing in [
        ("/review/funnel?ruleset=default", "/review/funnel?ruleset=default"),
        ("https://evil.example/review/", "/review/decisions"),
        ("//evil.example/review/", "/review/decisions"),
        ("/v1/rulesets", "/review/decisions"),
    ]:
        page = c.get("/review/sign-in", query_string={"next": target})
        r = c.post("/review/sign-in", data={"key": keys["review"], "csrf_token": token(page), "next": target})
        assert r.headers["Location"] == landing, target


def test_a_revoked_key_is_signed_out_on_its_next_page(app):
    c = app.test_client()
    with app.app_context():
        key, text = create(trail(), "short-lived", "review")
    sign_in(c, text)
    assert c.get("/review/rulesets").status_code == 200
    with app.app_context():
        revoke(trail(), key.id)
    assert c.get("/review/rulesets").status_code == 302


def test_the_cookie_holds_only_a_session_id_and_is_locked_down(filled, make_app):
    db, keys, ids = filled
    app = make_app(db=str(db), rulesets=str(RULESETS))  # the default: secure cookies
    c, https = app.test_client(), "https://leadgate.example"
    page = c.get("/review/sign-in", base_url=https)
    r = c.post(
        "/review/sign-in",
        base_url=https,
        data={"key": keys["review"], "csrf_token": token(page)},
        headers={"Referer": f"{https}/review/sign-in"},  # Flask-WTF checks it over HTTPS
    )
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("leadgate_review=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/review", "Expires="):
        assert attribute in cookie, attribute
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    content = app.session_interface.get_signing_serializer(app).loads(value)
    assert set(content) <= {"sid", "csrf_token", "_permanent"} and len(content["sid"]) >= 40
    assert keys["review"].rsplit("_", 1)[1] not in str(content) and ids["review"] not in str(content)
    with app.app_context():  # the server keeps only the session id's hash
        stored = trail()._read("SELECT id FROM sessions WHERE key_id = ?", (ids["review"],))
    assert stored and all(content["sid"] not in r["id"] for r in stored)


def test_every_worker_and_restart_shares_the_session_secret(filled, keys, make_app):
    """Two app processes on one database sign with its secret: a session made by one works in the other."""
    first, second = make_app(**settings(filled[0])), make_app(**settings(filled[0]))
    c = first.test_client()
    sign_in(c, keys["review"])
    cookie = c.get_cookie("leadgate_review", path="/review").value
    other = second.test_client()
    other.set_cookie("leadgate_review", cookie, path="/review")
    assert other.get("/review/funnel").status_code == 200
    with first.app_context():
        assert first.secret_key == second.secret_key == sessions.secret(trail())


def test_the_json_api_stays_stateless_and_json_only(app, keys):
    c = app.test_client()
    r = c.get("/v1/rulesets", headers={"Authorization": f"Bearer {keys['review']}"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    r = c.post("/v1/decisions", data={"lead_id": "L1"}, headers={"Authorization": f"Bearer {keys['decide']}"})
    assert r.status_code == 415 and r.json["code"] == "unsupported_media_type"


# -- CSRF -----------------------------------------------------------------------------------------


def test_a_form_post_without_its_token_is_refused(app, client, keys):
    r = app.test_client().post("/review/sign-in", data={"key": keys["review"]})
    assert r.status_code == 400 and "could not be accepted" in r.text and "Set-Cookie" not in r.headers
    r = client.post("/review/sign-out", data={})
    assert r.status_code == 400
    r = client.post("/review/sign-out", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert client.get("/review/decisions").status_code == 200  # still signed in


# -- pages ----------------------------------------------------------------------------------------


def test_pages_send_a_strict_content_security_policy(client):
    r = client.get("/review/decisions")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in r.text


def test_filters_are_bound_parameters(client):
    everything = client.get("/review/decisions").text.count('class="lead-link"')
    assert everything == 50  # one full page
    for hostile in ("' OR '1'='1", '"; DROP TABLE decisions; --', "%' OR 1=1 --"):
        for name in ("lead_id", "channel", "stage", "route", "ruleset"):
            r = client.get("/review/decisions", query_string={name: hostile})
            assert r.status_code == 200 and 'id="no-decisions"' in r.text, (name, hostile)
    assert client.get("/review/decisions").text.count('class="lead-link"') == everything


def test_filters_narrow_the_list_and_page_through_it(client):
    r = client.get("/review/decisions?quadrant=good_fit_ready&kind=decision")
    rows = re.findall(r'data-value="(\w+)"', r.text)
    assert "good_fit_ready" in rows and not {"poor_fit_ready", "good_fit_not_ready"} & set(rows)
    day = client.get("/review/decisions?lead_id=H-00002&since=2026-10-03&until=2026-10-03")  # its day
    assert day.text.count('class="lead-link"') >= 1
    assert client.get("/review/decisions?lead_id=H-00002&until=2026-10-02").text.count("lead-link") == 0
    first = client.get("/review/decisions")
    older = re.search(r'href="([^"]+before=\d+[^"]*)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(older)
    assert second.status_code == 200 and "Newest" in second.text
    assert set(re.findall(r"decisions/(dec_\w+)", first.text)).isdisjoint(
        re.findall(r"decisions/(dec_\w+)", second.text)
    )


def test_bad_filter_values_are_said_not_guessed(client):
    r = client.get("/review/decisions?version=two&since=yesterday&until=9999-12-31&before=x")
    assert r.status_code == 200
    for message in ("Ruleset version must be a whole number", "From must be a date", "To must be a date"):
        assert message in r.text


def test_pages_escape_user_data(client):
    r = client.get("/review/decisions", query_string={"lead_id": "HOSTILE-1"})
    assert r.text.count('class="lead-link"') == 1
    assert HOSTILE not in r.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in r.text
    lead = client.get(
        html.unescape(re.search(r'href="(/review/leads/[^"]+)" class="lead-link"', r.text).group(1))
    )
    assert lead.status_code == 200 and HOSTILE not in lead.text
    assert lead.text.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 2  # company, channel


def test_the_lead_page_shows_the_why_of_the_api(app, client):
    with app.app_context():
        why = explain(trail(), "H-00001")
    page = client.get("/review/leads/H-00001").text
    assert f'data-value="{why["stage"]}" id="why-stage"' in page
    assert f'<b id="why-route">{why["route"]["id"]}</b>' in page
    for name, score in why["scores"].items():
        assert f'id="score-{name}-total" data-total="{score["total"]}"' in page
        for line in score["breakdown"]:
            assert line["rule"] in page
    assert 'id="timeline"' in page and "First decision for this lead." in page


def test_a_decision_page_replays_it(app, client):
    with app.app_context():
        why = explain(trail(), "H-00003")
    page = client.get(f"/review/decisions/{why['decision_id']}").text
    assert "<b>Identical.</b>" in page
    assert f'href="/review/sources/{why["ruleset"]["digest"]}"' in page
    source = client.get(f"/review/sources/{why['ruleset']['digest']}")
    assert source.status_code == 200 and "name: default" in source.text


def test_rulesets_and_funnel_pages(client):
    rulesets = client.get("/review/rulesets").text
    assert 'id="ruleset-default"' in rulesets and 'id="ruleset-doggie-delights"' in rulesets
    detail = client.get("/review/rulesets/default").text
    assert "default.cases.yaml" in detail and "No shadow decisions recorded" in detail
    funnel = client.get("/review/funnel").text
    assert funnel.count('class="cell"') == 4 and '<svg class="chart"' in funnel
    assert 'id="lead-count">41<' in funnel
    narrowed = client.get("/review/funnel?ruleset=doggie-delights").text
    assert 'id="lead-count">0<' in narrowed


@pytest.mark.parametrize(
    "page",
    ["/review/leads/nobody", "/review/decisions/dec_nope", "/review/rulesets/nope", "/review/sources/x"],
)
def test_what_does_not_exist_is_a_page_too(client, page):
    r = client.get(page)
    assert r.status_code == 404 and r.mimetype == "text/html" and "Not found" in r.text


def test_the_ruleset_page_shows_a_shadow_and_failing_cases(tmp_path, make_app):
    """A shadow candidate that calls fewer leads a good fit, and has no cases file yet."""
    directory = tmp_path / "rulesets"
    (directory / "candidates").mkdir(parents=True)
    active = (RULESETS / "default.yaml").read_text()
    (directory / "default.yaml").write_text(active)
    (directory / "default.cases.yaml").write_text((RULESETS / "default.cases.yaml").read_text())
    version = int(re.search(r"(?m)^version: (\d+)$", active).group(1)) + 1
    stricter = with_version(active, version).replace("good_at: 50", "good_at: 80", 1)
    (directory / "candidates" / f"default.v{version}.yaml").write_text(stricter)
    (directory / "candidates" / "shadows.yaml").write_text(f"default: {version}\n")
    app = make_app(**settings(tmp_path / "shadow.db", rulesets=str(directory)))
    with app.app_context():
        ruleset = registry().get("default")
        lead = {"lead_id": "S-1", "profile": history.GOOD_FIT, "events": [{**history.READY, "at": AT}]}
        decide(ruleset, trail(), lead, at=AT, shadow=registry().shadow("default"))
        key = create(trail(), "reviewer", "review")[1]
    c = app.test_client()
    sign_in(c, key)
    page = c.get("/review/rulesets/default").text
    assert f"<b>v{version}</b> in shadow of v{version - 1}" in page and "<b>1</b> disagreed" in page
    assert "good_fit_ready → poor_fit_ready" in page
    assert f'id="version-{version}"' in page and "role-shadow" in page
    assert "has no cases file" in page and 'class="badge fail"' in page
    listing = c.get("/review/rulesets").text
    assert listing.count('class="shadow"') == 1 and 'class="badge fail"' in listing


def test_the_pages_show_times_in_utc_whatever_offset_they_were_given_with():
    """The pages read times with the one time parser (engine.facts.parse_time): 12:00+02:00 is 10:00 UTC."""
    from api.review.format import when

    assert when("2026-11-23T12:00:00+02:00") == "2026-11-23 10:00 UTC"
    assert when("2026-11-23T10:00:00Z") == "2026-11-23 10:00 UTC"
    assert when("not a time") == "not a time" and when(None) == "–"
