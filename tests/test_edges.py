"""The edge inputs of issue 12: overflowing and future times, lead ids, hostile text on screens.

Times that overflow when converted to UTC are refused with 422 naming the field, in every body and
query parameter; events dated after the evaluation time plus the clock skew are refused; lead ids
keep to their character set; the review pages isolate bidi text; the CLI escapes control characters.
"""

from __future__ import annotations

import json

import pytest

from api.state import trail
from audit import AuditTrail
from audit.keys import create
from tests.conftest import AT, RULESETS
from tests.test_cli import run

OVERFLOWS = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.fixture
def call(tmp_path, make_app):
    app = make_app(db=str(tmp_path / "e.db"), rulesets=str(RULESETS))
    with app.app_context():
        key = create(trail(), "ops", "admin")[1]
    client = app.test_client()

    def call(method, path, body=None):
        return getattr(client, method)(path, json=body, headers={"Authorization": f"Bearer {key}"})

    assert call("post", "/v1/decisions", {"lead_id": "E-1", "profile": {"country": "US"}}).status_code == 201
    return call


def refused(response, field):
    assert response.status_code == 422, response.json
    assert field in response.json["errors"], response.json
    return response.json


@pytest.mark.parametrize("when", OVERFLOWS)
def test_overflowing_times_are_422_in_every_body_and_query(call, when):
    event = {"type": "email_open", "at": when}
    refused(call("post", "/v1/decisions", {"lead_id": "E-2", "events": [event]}), "events[0].at")
    refused(call("post", "/v1/preview", {"lead_id": "E-1", "events": [event]}), "events[0].at")
    batch = call("post", "/v1/decisions/batch", {"items": [{"lead_id": "E-3", "events": [event]}]})
    assert batch.status_code == 422 and any(k.endswith("events[0].at") for k in batch.json["errors"])
    refused(call("post", "/v1/leads/E-1/outcomes", {"type": "accepted", "at": when}), "outcome.at")
    refused(call("get", f"/v1/sla?at={when.replace('+', '%2B')}"), "at")
    refused(call("get", f"/v1/reports/funnel?since={when.replace('+', '%2B')}"), "since")
    refused(call("get", f"/v1/reports/funnel?until={when.replace('+', '%2B')}"), "until")


def test_events_and_outcomes_from_the_future_are_refused(call):
    future = {"type": "demo_request", "at": "2099-01-01T00:00:00Z"}
    body = refused(call("post", "/v1/decisions", {"lead_id": "E-4", "events": [future]}), "events[0].at")
    assert "after the evaluation time" in body["errors"]["events[0].at"][0]
    refused(
        call("post", "/v1/leads/E-1/outcomes", {"type": "accepted", "at": "2099-01-01T00:00:00Z"}),
        "outcome.at",
    )
    assert call("get", "/v1/leads/E-4").status_code == 404  # nothing was recorded
    # within the clock skew (5 minutes by default) an event is accepted
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert (
        call("post", "/v1/decisions", {"lead_id": "E-5", "events": [{**future, "at": soon}]}).status_code
        == 201
    )


@pytest.mark.parametrize(
    "lead_id", ["a/b", "a b", "", "x" * 129, "é", "a\x1b[31m", "a\u202eb", "a\n", "../x", "a?b", "a#b"]
)
def test_lead_ids_outside_the_character_set_are_refused(call, lead_id):
    refused(call("post", "/v1/decisions", {"lead_id": lead_id}), "lead_id")


@pytest.mark.parametrize("lead_id", ["L-1", "crm:123", "ana@acme.io", "a+b", "x" * 128, "v1.2_3"])
def test_lead_ids_in_the_character_set_are_reachable(call, lead_id):
    assert call("post", "/v1/decisions", {"lead_id": lead_id}).status_code == 201
    assert call("get", f"/v1/leads/{lead_id}").status_code == 200


def test_the_review_stylesheet_isolates_bidi_text(call):
    css = (RULESETS.parent / "api" / "static" / "review.css").read_text()
    assert "unicode-bidi: isolate" in css and "td," in css


def test_control_characters_are_escaped_in_cli_output(tmp_path, monkeypatch):
    db = tmp_path / "c.db"
    monkeypatch.setenv("LEADGATE_DB", str(db))
    lead = {
        "lead_id": "C-1",
        "channel": "x\x1b[2J\x07\u202eevil",
        "profile": {"company": "Acme\x1b]0;pwned\x07"},
    }
    decided = run("decide", "--dir", str(RULESETS), "--at", AT, "-", input=json.dumps(lead))
    assert decided.exit_code == 0, decided.output
    with AuditTrail(db) as trail:
        create(trail, "name\x1b[2J\u202e", "decide")
    for args in (
        ("why", "C-1"),
        ("audit", "list"),
        ("why", "C-1", "--json"),
        ("audit", "timeline", "C-1"),
        ("keys", "list"),
    ):
        out = run(*args).output
        assert out and not any(c in out for c in "\x1b\x07\u202e"), (args, out)
    assert "\\u202eevil" in run("audit", "timeline", "C-1").output  # shown escaped
    assert "name\\u001b[2J\\u202e" in run("keys", "list").output
    with AuditTrail(db) as trail:
        assert trail.lead("C-1")["channel"] == lead["channel"]  # stored as sent: only the display escapes


@pytest.mark.parametrize("when", OVERFLOWS)
def test_overflowing_times_on_the_command_line_are_refused(tmp_path, monkeypatch, when):
    monkeypatch.setenv("LEADGATE_DB", str(tmp_path / "t.db"))
    for args in (
        ("sla", "--at", when),
        ("audit", "list", "--since", when),
        ("audit", "replay", "--until", when),
    ):
        result = run(*args)
        assert result.exit_code == 2 and "years 1 to 9999" in result.output, (args, result.output)
