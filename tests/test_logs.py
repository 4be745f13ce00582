"""One JSON line per request, with the request id the reply echoes and the decision keeps, and nothing
personal or secret in it."""

from __future__ import annotations

import json
import time

import pytest

from audit import AuditTrail
from audit.keys import create
from tests.server import Server

EMAIL = "jane.doe@acme.io"
LEAD = {
    "lead_id": "LOG-1",
    "profile": {"email": EMAIL, "first_name": "Jane", "country": "US", "employees": 80},
    "events": [{"type": "demo_request", "at": "2026-11-22T10:00:00Z"}],
}


def lines(server: Server, count: int) -> list[dict]:
    """The server's log lines, once `count` are written (workers write as they answer)."""
    deadline = time.monotonic() + 10
    while True:
        found = [json.loads(line) for line in server.out.read_text().splitlines() if line.startswith("{")]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("logs") / "logs.db", workers=2) as running:
        yield running


def test_a_decision_s_line_names_its_request_key_and_decision_never_its_secrets(server):
    before = len(lines(server, 0))
    status, reply, headers = server.request("POST", "/v1/decisions", LEAD, {"X-Request-Id": "crm-sync:42.a"})
    assert status == 201 and headers["X-Request-Id"] == "crm-sync:42.a"
    record = server.request("GET", f"/v1/decisions/{reply['decision_id']}")[1]
    assert record["request_id"] == "crm-sync:42.a"  # stored with the decision
    line = next(
        line
        for line in lines(server, before + 2)
        if line.get("request_id") == "crm-sync:42.a" and line["method"] == "POST"
    )
    assert line["path"] == "/v1/decisions" and line["status"] == 201
    assert line["decision_ids"] == [reply["decision_id"]]
    assert line["key_id"] == server.key.split("_")[1] and isinstance(line["latency_ms"], float)
    assert {"time", "level", "endpoint"} <= set(line) and "code" not in line
    text = server.out.read_text()
    assert EMAIL not in text and "Jane" not in text and server.key not in text


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", "<script>", "-starts-with-dash", "ünïcode", ""],
)
def test_an_unusable_request_id_is_replaced_by_one_made_here(server, given):
    status, reply, headers = server.request(
        "POST", "/v1/decisions", {**LEAD, "lead_id": "LOG-2"}, {"X-Request-Id": given}
    )
    made = headers["X-Request-Id"]
    assert status == 201 and made.startswith("req_") and made != given
    assert server.request("GET", f"/v1/decisions/{reply['decision_id']}")[1]["request_id"] == made
    assert given not in server.out.read_text() or given == ""


def test_an_error_line_has_its_code_and_field_names_never_what_was_sent(server):
    body = {"lead_id": "LOG-3", "profile": {"email": EMAIL, "employees": f"many, ask {EMAIL}"}}
    status, reply, headers = server.request("POST", "/v1/decisions", body, {"X-Request-Id": "bad-facts-1"})
    assert status == 422 and reply["code"] == "invalid_facts"
    line = next(line for line in lines(server, 1) if line.get("request_id") == "bad-facts-1")
    assert line["status"] == 422 and line["code"] == "invalid_facts"
    assert line["error_fields"] == sorted(reply["errors"]) and "decision_ids" not in line
    assert EMAIL not in server.out.read_text()


def test_a_field_named_by_the_caller_is_not_logged_by_its_name(server):
    body = {"lead_id": "LOG-4", "profile": {EMAIL: 1, "employees": 3}, "0612345678": 1}
    status, reply, _ = server.request("POST", "/v1/decisions", body, {"X-Request-Id": "odd-keys-1"})
    assert status == 422 and "0612345678" in reply["errors"]  # the reply names it to the caller
    line = next(line for line in lines(server, 1) if line.get("request_id") == "odd-keys-1")
    assert "?" in line["error_fields"]
    text = server.out.read_text()
    assert "0612345678" not in text and EMAIL not in text


def test_every_decision_of_a_batch_keeps_the_request_id(server):
    items = [{**LEAD, "lead_id": f"LOG-B{i}"} for i in range(3)]
    status, reply, headers = server.request(
        "POST", "/v1/decisions/batch", {"items": items}, {"X-Request-Id": "batch-7"}
    )
    assert status == 201
    ids = [d["decision_id"] for d in reply["decisions"]]
    with AuditTrail(server.db) as trail:
        assert [trail.decision(i)["request_id"] for i in ids] == ["batch-7"] * 3
    line = next(line for line in lines(server, 1) if line.get("request_id") == "batch-7")
    assert line["decision_ids"] == ids


def test_refusals_are_logged_with_their_code_and_no_key_text(server):
    status, _, headers = server.request(
        "GET", "/v1/rulesets", headers={"Authorization": "Bearer lg_nope_secret"}
    )
    assert status == 401 and headers["X-Request-Id"].startswith("req_")
    line = next(line for line in lines(server, 1) if line.get("request_id") == headers["X-Request-Id"])
    assert line["code"] == "unauthorized" and line["key_id"] is None
    assert "lg_nope_secret" not in server.out.read_text()


def test_every_reply_of_the_app_carries_a_request_id(make_app, tmp_path):
    app = make_app(db=str(tmp_path / "t.db"))
    with app.app_context():
        from api.state import trail

        key = create(trail(), "ops", "admin")[1]
    client = app.test_client()
    for path in ("/healthz", "/v1/rulesets", "/nowhere", "/openapi.json"):
        response = client.get(path, headers={"Authorization": f"Bearer {key}", "X-Request-Id": "r-1"})
        assert response.headers["X-Request-Id"] == "r-1", path
    assert client.get("/v1/rulesets").headers["X-Request-Id"].startswith("req_")


def test_a_web_page_may_read_the_request_id_of_its_form_s_replies(make_app, tmp_path):
    app = make_app(db=str(tmp_path / "f.db"))
    with app.app_context():
        from api.state import trail

        form = create(trail(), "site", "form", ["https://www.example.com"])[1]
    reply = app.test_client().post(
        "/v1/decisions",
        json={"profile": {"country": "US"}},
        headers={
            "Authorization": f"Bearer {form}",
            "Origin": "https://www.example.com",
            "X-Request-Id": "f-1",
        },
    )
    assert reply.status_code == 201 and reply.headers["X-Request-Id"] == "f-1"
    assert "X-Request-Id" in reply.headers["Access-Control-Expose-Headers"]
