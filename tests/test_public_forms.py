"""Publishable form keys (issue 12): what a key that anyone can read from a web page may do.

A form key starts leads and continues only those it started, proven by a signed lead token; without a
valid one (none, expired, forged, another key's) it gets one reply whatever the lead id, so ids cannot
be probed; it sees only the public part of a decision; every other endpoint is closed to it; browsers
may use it only from its own origins.
"""

from __future__ import annotations

import time

import pytest

from api.state import trail
from audit.keys import create
from tests.conftest import RULESETS
from tests.server import Server

ORIGIN = "https://www.example.com"
PUBLIC = {
    "decision_id",
    "lead_id",
    "lead_token",
    "lead_token_expires_at",
    "route",
    "next_questions",
    "evaluated_at",
}
SECRET_LEAD = {
    "lead_id": "ACME-1",
    "profile": {"email": "ana@acme.io", "country": "US", "industry": "software", "employees": 200},
    "answers": {"budget": "yes"},
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
}


@pytest.fixture
def site(tmp_path, make_app):
    app = make_app(db=str(tmp_path / "f.db"), rulesets=str(RULESETS), lead_token_ttl=2)
    with app.app_context():
        keys = {
            "form": create(trail(), "site", "form", [ORIGIN])[1],
            "other_form": create(trail(), "other site", "form", ["https://other.example"])[1],
            "decide": create(trail(), "crm", "decide")[1],
            "review": create(trail(), "ops", "review")[1],
        }
    client = app.test_client()

    def post(body, key="form", origin=ORIGIN, path="/v1/decisions", **headers):
        if origin:
            headers["Origin"] = origin
        return client.post(path, json=body, headers={"Authorization": f"Bearer {keys[key]}", **headers})

    client.keys, client.post_as = keys, post
    assert post(SECRET_LEAD, key="decide", origin=None).status_code == 201  # a lead the site did not start
    return client


def test_a_form_key_starts_a_lead_and_gets_only_the_public_part(site):
    r = site.post_as({"profile": {"country": "US", "employees": 500}, "answers": {"budget": "yes"}})
    assert r.status_code == 201, r.json
    assert set(r.json) == PUBLIC
    assert set(r.json["route"]) == {"destination", "due_at", "next_step"}
    assert r.json["lead_id"].startswith("web-")
    # the token continues that lead: its facts accumulate
    again = site.post_as({"lead_token": r.json["lead_token"], "answers": {"authority": "decision_maker"}})
    assert again.status_code == 201 and again.json["lead_id"] == r.json["lead_id"]
    facts = site.get(
        f"/v1/leads/{r.json['lead_id']}", headers={"Authorization": f"Bearer {site.keys['review']}"}
    )
    assert facts.json["facts"]["answers"] == {"budget": "yes", "authority": "decision_maker"}


def _refusals(site, lead_id):
    """Every way a form key might reach lead `lead_id` without a valid token of its own."""
    foreign = site.post_as({}, key="other_form", origin="https://other.example").json["lead_token"]
    mine = site.post_as({}).json["lead_token"]
    forged = mine[:-4] + ("AAAA" if not mine.endswith("AAAA") else "BBBB")
    return [
        site.post_as({"lead_id": lead_id, "profile": {"country": "KP"}}),  # no token
        site.post_as({"lead_id": lead_id, "lead_token": forged}),
        site.post_as({"lead_id": lead_id, "lead_token": foreign}),  # another key's token
        site.post_as({"lead_id": lead_id, "lead_token": mine}),  # my token, for another lead
        site.post_as({"lead_id": lead_id, "lead_token": "not-a-token"}),
    ]


def test_without_a_valid_token_the_reply_is_the_same_whether_the_lead_exists_or_not(site):
    existing = [(r.status_code, r.json) for r in _refusals(site, "ACME-1")]
    missing = [(r.status_code, r.json) for r in _refusals(site, "NOBODY-9")]
    assert existing == missing
    assert all(status == 403 and body["code"] == "invalid_lead_token" for status, body in existing)
    # and the existing lead was not changed by any of it
    lead = site.get("/v1/leads/ACME-1", headers={"Authorization": f"Bearer {site.keys['review']}"}).json
    assert lead["facts"]["profile"]["country"] == "US" and lead["stage"] != "not_a_lead"


def test_an_expired_token_is_refused_like_a_forged_one(site):
    first = site.post_as({})
    time.sleep(3.1)  # LEADGATE_LEAD_TOKEN_TTL=2 in this fixture (itsdangerous counts whole seconds)
    expired = site.post_as({"lead_token": first.json["lead_token"]})
    forged = site.post_as({"lead_token": first.json["lead_token"] + "x"})
    assert expired.status_code == forged.status_code == 403
    assert expired.json == forged.json


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/preview", {"lead_id": "ACME-1"}),
        ("post", "/v1/decisions/batch", {"items": [{"lead_id": "ACME-1"}]}),
        ("post", "/v1/leads/ACME-1/outcomes", {"type": "accepted"}),
        ("get", "/v1/leads/ACME-1", None),
        ("get", "/v1/leads/ACME-1/questions", None),
        ("get", "/v1/leads/ACME-1/why", None),
        ("get", "/v1/leads/ACME-1/decisions", None),
        ("get", "/v1/leads/ACME-1/outcomes", None),
        ("get", "/v1/leads/NOBODY-9/questions", None),
        ("get", "/v1/reports/funnel", None),
        ("get", "/v1/rulesets", None),
        ("get", "/v1/sla", None),
        ("post", "/v1/admin/reload", {}),
    ],
)
def test_every_other_endpoint_is_closed_to_a_form_key(site, method, path, body):
    headers = {"Authorization": f"Bearer {site.keys['form']}", "Origin": ORIGIN}
    r = getattr(site, method)(path, json=body, headers=headers)
    assert r.status_code == 403 and r.json["code"] == "forbidden", (path, r.json)


def test_form_keys_cannot_pin_rulesets_or_replay_idempotency_keys(site):
    assert site.post_as({"ruleset": {"name": "default", "version": 1}}).status_code == 422
    r = site.post_as({}, **{"Idempotency-Key": "k1"})
    assert r.status_code == 400 and r.json["code"] == "invalid_idempotency_key"


def test_secret_keys_keep_the_full_reply(site):
    r = site.post_as({**SECRET_LEAD, "lead_id": "ACME-2"}, key="decide", origin=None)
    assert r.status_code == 201
    assert {"scores", "reasons", "stage", "assignment", "qualification"} <= set(r.json)
    assert "lead_token" not in r.json
    missing = site.post_as({"profile": {}}, key="decide", origin=None)
    assert missing.status_code == 422 and "lead_id" in missing.json["errors"]


def test_a_form_key_works_only_from_its_origins(site):
    assert site.post_as({}, origin="https://evil.example").status_code == 403
    assert site.post_as({}, origin=None).json["code"] == "origin_not_allowed"
    assert site.post_as({}, origin="https://other.example").status_code == 403  # another key's origin


def test_form_key_origins_are_checked_when_created(tmp_path, make_app):
    app = make_app(db=str(tmp_path / "o.db"), rulesets=str(RULESETS))
    with app.app_context():
        for origins in (
            [],
            ["https://x.example/path"],
            ["*"],
            ["ftp://x.example"],
            ["https://*.example.com"],
        ):
            with pytest.raises(ValueError):
                create(trail(), "site", "form", origins)
        with pytest.raises(ValueError):
            create(trail(), "crm", "decide", [ORIGIN])


def test_cors_through_the_real_server(tmp_path):
    with Server(tmp_path / "c.db") as server:
        from audit import AuditTrail

        with AuditTrail(server.db) as t:
            form = create(t, "site", "form", [ORIGIN])[1]
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        status, _, headers = server.request("OPTIONS", "/v1/decisions", headers=preflight)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert headers["Access-Control-Allow-Methods"] == "POST"
        status, body, headers = server.request(
            "OPTIONS", "/v1/decisions", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert status == 403 and body["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in headers
        auth = {"Authorization": f"Bearer {form}"}
        status, body, headers = server.request(
            "POST", "/v1/decisions", {}, headers={**auth, "Origin": ORIGIN}
        )
        assert (
            status == 201 and headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in headers["Vary"]
        )
        status, body, headers = server.request(
            "POST", "/v1/decisions", {}, headers={**auth, "Origin": "https://evil.example"}
        )
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
        # a secret key never gets CORS headers
        status, _, headers = server.request("POST", "/v1/decisions", SECRET_LEAD, headers={"Origin": ORIGIN})
        assert status == 201 and "Access-Control-Allow-Origin" not in headers
