"""Issue 14: the service does exactly what its documents say — error shape, query errors, answers.

Regression tests named after the bugs they pin. The OpenAPI conformance of every reply the test
suite produces is checked by the `openapi_conformance` hook in tests/conftest.py.
"""

from __future__ import annotations

import json

import pytest

from api.state import trail
from audit.keys import create
from tests import contract

LEAD = {
    "lead_id": "L-1",
    "profile": {"email": "ana@acme.io", "country": "US", "industry": "software", "employees": 200},
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "form-77"}],
}


@pytest.fixture
def key(app):
    with app.app_context():
        return create(trail(), "admin key", "admin")[1]


@pytest.fixture
def http(app, key):
    client = app.test_client()

    def call(method, url, auth=True, **kwargs):
        headers = kwargs.pop("headers", {})
        if auth:
            headers["Authorization"] = f"Bearer {key}"
        return client.open(url, method=method, headers=headers, **kwargs)

    return call


def _shape(response, status):
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"status", "code", "message", "errors"}, body
    assert body["status"] == status and isinstance(body["errors"], dict)
    return body


@pytest.mark.parametrize(
    "status, request_args",
    [
        (400, ("POST", "/v1/decisions", {"data": "{not json", "content_type": "application/json"})),
        (400, ("POST", "/v1/decisions", {"json": LEAD, "headers": {"Idempotency-Key": ""}})),
        (401, ("GET", "/v1/rulesets", {"auth": False})),
        (404, ("GET", "/v1/decisions/dec_nothing", {})),
        (404, ("GET", "/v1/no-such-path", {})),
        (405, ("DELETE", "/v1/decisions", {})),
        (413, ("POST", "/v1/decisions", {"data": b"x" * 2_000_000, "content_type": "application/json"})),
        (415, ("POST", "/v1/decisions", {"data": "a=b", "content_type": "text/plain"})),
        (422, ("POST", "/v1/decisions", {"json": {"lead_id": ""}})),
    ],
)
def test_error_reply_without_a_field_to_blame_still_has_errors(http, status, request_args):
    method, url, kwargs = request_args
    _shape(http(method, url, **kwargs), status)


def test_forbidden_reply_has_errors(app, http):
    with app.app_context():
        review = create(trail(), "review key", "review")[1]
    r = app.test_client().post("/v1/decisions", json=LEAD, headers={"Authorization": f"Bearer {review}"})
    _shape(r, 403)


@pytest.mark.parametrize(
    "url, parameter",
    [
        ("/v1/sla?at=tomorrow", "at"),
        ("/v1/reports/conversion?by=colour", "by"),
        ("/v1/leads/L-1/decisions?limit=0", "limit"),
        ("/v1/reports/funnel?since=yesterday", "since"),
    ],
)
def test_query_parameter_error_names_the_parameter_not_the_body(http, url, parameter):
    http("POST", "/v1/decisions", json=LEAD)
    body = _shape(http("GET", url), 422)
    assert body["message"] == f"The query parameter {parameter!r} is not valid."
    assert list(body["errors"]) == [parameter]
    assert "body" not in body["message"]


def test_two_wrong_query_parameters_are_both_named(http):
    body = _shape(http("GET", "/v1/reports/conversion?by=colour&until=later"), 422)
    assert body["message"] == "The query parameters 'by', 'until' are not valid."
    assert set(body["errors"]) == {"by", "until"}


def test_unknown_answer_id_is_refused_naming_the_known_ones(http):
    body = _shape(http("POST", "/v1/decisions", json={"lead_id": "L-2", "answers": {"colour": "red"}}), 422)
    message = " ".join(body["errors"]["answers.colour"])
    for known in ("budget", "authority", "need", "timeline", "talk_to_sales"):
        assert known in message, message


def _reply_like(real, body, status=200, headers=None):
    """A reply to the same request as `real`, with another body: what a broken server might send."""
    from flask import Response

    reply = Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)
    reply.request = real.request
    return reply


def test_the_conformance_check_catches_a_missing_required_field_and_a_wrong_null(app, http):
    real = http("POST", "/v1/decisions", json=LEAD)
    assert contract.problems(app, real) == []
    body = real.get_json()
    missing = {k: v for k, v in body.items() if k != "stage"}
    # POST /v1/decisions answers oneOf (the whole decision, a form key's public part): a decision
    # without its stage is neither; a preview's reply is the whole decision alone, and names the field.
    assert contract.problems(app, _reply_like(real, missing, 201, {"Location": "/x"}))
    preview = http("POST", "/v1/preview", json=LEAD)
    assert contract.problems(app, preview) == []
    assert any(
        "'stage' is a required property" in p
        for p in contract.problems(app, _reply_like(preview, missing, 200))
    )
    wrong = {**body, "route": {**body["route"], "destination": None}}
    assert contract.problems(app, _reply_like(real, wrong, 201, {"Location": "/x"}))
    no_location = contract.problems(app, _reply_like(real, body, 201))
    assert any("Location" in p for p in no_location), no_location
    undeclared = contract.problems(app, _reply_like(real, {"status": 418, "code": "x", "message": "x"}, 418))
    assert undeclared  # neither a declared status nor the error shape (no errors)


def test_every_reply_shown_in_the_readme_matches_the_openapi_document(app):
    from tests.conftest import ROOT

    replies = list(contract.readme_replies((ROOT / "README.md").read_text()))
    shown = {(method, url.split("?")[0]) for method, url, *_ in replies}
    assert {("POST", "/v1/decisions"), ("GET", "/v1/leads/L-1001/questions")} <= shown, shown
    for reply in replies:
        assert contract.reply_problems(contract.of_app(app), *reply, source="README") == [], reply[:3]


def test_the_readme_check_catches_a_reply_that_breaks_the_document(app):
    body = {"lead_id": "L-1", "stage": "lead", "decision_id": "dec_1"}  # no questions
    found = contract.reply_problems(
        contract.of_app(app), "GET", "/v1/leads/L-1/questions", None, {}, body, "README"
    )
    assert found and "questions" in " ".join(found)


def test_a_ruleset_whose_owners_have_no_email_is_described_within_the_contract(tmp_path, make_app):
    """Owner emails are optional in ruleset files, so the reply schema may not require them."""
    from tests.conftest import mini_source

    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    rule = {
        "id": "fit-us",
        "description": "US",
        "when": {"profile.country": "US"},
        "then": {"points": {"fit": 10}},
    }
    (rulesets / "mini.yaml").write_text(mini_source([rule]))
    app = make_app(db=str(tmp_path / "m.db"), rulesets=str(rulesets), default_ruleset="mini")
    with app.app_context():
        key = create(trail(), "k", "review")[1]
    reply = app.test_client().get("/v1/rulesets/mini", headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 200 and "email" not in reply.json["versions"][0]["owners"]["sales"]
    assert contract.problems(app, reply) == []
