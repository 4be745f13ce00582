"""Fuzzing the whole HTTP API from its own OpenAPI document, with schemathesis.

Every operation in /openapi.json gets generated requests, valid and invalid, sent with an admin key:
no reply may be a 500; every reply must match the status codes, content types, headers and body
schemas the document promises; every error must be in the one error shape; an undocumented method
must be a 405 and a request without the key a 401. Generation is derandomized with no example
database, so CI sends the same inputs on every run (`--hypothesis-show-statistics` counts them).

Two defects the fuzzer found are pinned below by regression tests: answers that are amounts must be
documented as numbers too, and an invalid event must be refused even when its id is already known.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import allow_header_conformance, ignored_auth

from api import create_app, state
from api.state import trail
from audit.keys import create
from tests.conftest import RULESETS

MAX_EXAMPLES = 30  # per operation and generation mode: about 1,000 requests in all, some seconds

_dir = Path(tempfile.mkdtemp(prefix="leadgate-fuzz-"))
atexit.register(shutil.rmtree, _dir, ignore_errors=True)
app = create_app(db=str(_dir / "fuzz.db"), rulesets=str(RULESETS))
client = app.test_client()
with app.app_context():
    KEY = create(trail(), "fuzz", "admin")[1]

# Known leads, decisions and rulesets, so that generated reads also reach the 200 replies and their schemas.
SEED = {
    "lead_id": "L-fuzz",
    "channel": "demo_form",
    "profile": {"email": "ana@acme.io", "country": "US", "industry": "software", "employees": 200},
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "seed-1"}],
    "answers": {"budget": "yes"},
}
_seeded = client.post("/v1/decisions", json=SEED, headers={"Authorization": f"Bearer {KEY}"})
assert _seeded.status_code == 201, _seeded.json
KNOWN = {"lead_id": "L-fuzz", "decision_id": _seeded.json["decision_id"], "name": "default"}


@pytest.fixture(scope="module", autouse=True)
def _closed_after_the_module():
    yield
    state.close(app)


schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json)
schema.app = app
schema.config.update(headers={"Authorization": f"Bearer {KEY}"})
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    database="none",
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
)
# Facts are typed by the ruleset that decides, not by the document: a schema-valid body may still be
# refused with a documented 422 (an answer outside a question's choices, a ruleset not loaded).
schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "404", "409", "422"]


@schema.hook
def map_case(context, case):
    """Half of the valid requests read what exists, so that 200 replies are checked against the schema."""
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    for name, value in list((case.path_parameters or {}).items()):
        if positive and name in KNOWN and isinstance(value, str) and len(value) % 2 == 0:
            case.path_parameters[name] = KNOWN[name]
    return case


def one_error_shape(ctx, response, case):
    """Every error reply is {"status", "code", "message"[, "errors"]}, its status the HTTP status."""
    if response.status_code < 400 or response.status_code == 431:
        return None
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert set(body) <= {"status", "code", "message", "errors"}, body
    if response.status_code in (503, 429):
        assert response.headers.get("Retry-After"), response.headers
    return None


@schema.parametrize()
def test_every_operation_survives_generated_requests(case):
    # GET /v1/decisions/batch routes to GET /v1/decisions/{decision_id} (id "batch": a 404), so the
    # Allow header of the batch path rightly names GET, which the document cannot express.
    excluded = [allow_header_conformance] if case.path == "/v1/decisions/batch" else []
    # Once an operation declares a header parameter (Idempotency-Key), schemathesis takes the configured
    # key for generated credentials and calls a 201 with it "invalid auth accepted". That every
    # operation refuses a missing or wrong key is tested in tests/test_api.py.
    if (case.method, case.path) == ("POST", "/v1/decisions"):
        excluded.append(ignored_auth)
    case.call_and_validate(additional_checks=[one_error_shape], excluded_checks=excluded)


# -- defects found by fuzzing ----------------------------------------------------------------------


def test_openapi_documents_amounts_as_answers():
    budget = client.get("/openapi.json").json["components"]["schemas"]["Answers"]["properties"]["budget"]
    reply = client.post(
        "/v1/decisions",
        json={"lead_id": "L-amount", "answers": {"budget": 25000}},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert reply.status_code == 201  # the API takes an amount…
    assert budget.get("type") != "string"  # …so the document must not say text only


def test_an_invalid_event_is_refused_even_when_its_id_is_known(tmp_path, make_app):
    fresh = make_app(db=str(tmp_path / "merge.db"), rulesets=str(RULESETS))
    with fresh.app_context():
        auth = {"Authorization": f"Bearer {create(trail(), 'k', 'admin')[1]}"}
    c = fresh.test_client()
    good = {"type": "page_view", "at": "2026-11-20T10:00:00Z", "id": "e1"}
    assert c.post("/v1/decisions", json={"lead_id": "m", "events": [good]}, headers=auth).status_code == 201
    bad = {"type": "page_view", "at": "not a time", "id": "e1"}
    assert c.post("/v1/decisions", json={"lead_id": "m", "events": [bad]}, headers=auth).status_code == 422
    twice = {"lead_id": "n", "events": [{**good, "id": "e2"}, {**bad, "id": "e2"}]}
    assert c.post("/v1/decisions", json=twice, headers=auth).status_code == 422
