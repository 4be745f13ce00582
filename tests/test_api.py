"""The HTTP API through Flask's test client: the contract, errors in one shape, access, idempotency."""

from __future__ import annotations

import contextlib
import json

import pytest

from api.state import trail
from audit.backends import is_postgres
from audit.keys import create, revoke
from tests.postgres import eventually, unreachable

LEAD = {
    "lead_id": "L-1001",
    "channel": "demo_form",
    "profile": {
        "email": "ana@acme.io",
        "country": "US",
        "industry": "software",
        "employees": 200,
        "seniority": "vp",
        "department": "marketing",
    },
    "events": [
        {"type": "content_download", "at": "2026-11-20T10:00:00Z", "properties": {"content": "whitepaper"}},
        {"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z"},
        {"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "form-77"},
    ],
    "answers": {"budget": "yes"},
}
CONTRACT = {
    "decision_id",
    "lead_id",
    "ruleset",
    "is_lead",
    "stage",
    "funnel",
    "scores",
    "grades",
    "fit",
    "ready",
    "quadrant",
    "qualification",
    "route",
    "next_questions",
    "reasons",
    "evaluated_at",
}


@pytest.fixture
def app(backend_app):
    return backend_app  # every test here runs on SQLite and on PostgreSQL (tests/postgres.py)


@pytest.fixture
def keys(app):
    with app.app_context():
        return {scope: create(trail(), f"{scope} key", scope)[1] for scope in ("decide", "review", "admin")}


@pytest.fixture
def client(app, keys):
    class Client:
        def __init__(self, c):
            self.c = c

        def call(self, method, url, scope="admin", **kwargs):
            headers = kwargs.pop("headers", {})
            if scope:
                headers["Authorization"] = f"Bearer {keys[scope]}"
            return getattr(self.c, method)(url, headers=headers, **kwargs)

        def post(self, url, body=None, **kwargs):
            return self.call("post", url, json=body, **kwargs)

        def get(self, url, **kwargs):
            return self.call("get", url, **kwargs)

    return Client(app.test_client())


def assert_error(response, status, code):
    assert response.status_code == status, response.json
    assert response.json["status"] == status and response.json["code"] == code
    assert isinstance(response.json["message"], str) and response.json["message"]


# -- decisions ------------------------------------------------------------------------------------


def test_post_decision_returns_the_contract_and_a_location(client):
    r = client.post("/v1/decisions", LEAD, scope="decide")
    assert r.status_code == 201
    assert set(r.json) >= CONTRACT
    assert (r.json["stage"], r.json["route"]["id"], r.json["quadrant"]) == (
        "sql",
        "sales_handoff",
        "good_fit_ready",
    )
    assert r.headers["Location"] == f"/v1/decisions/{r.json['decision_id']}"
    record = client.get(r.headers["Location"], scope="review").json
    assert record["decision"] == r.json and record["client"] is not None


def test_a_reply_that_carries_its_stored_json_is_sent_as_that_text(client, monkeypatch):
    """The write path may hand back the JSON text it recorded (`body`): the API sends it unchanged,
    never dumping the reply a second time (so what is recorded is byte for byte what is returned)."""
    import api.decisions
    from service.decide import decide

    sent = []

    class Stored(dict):
        def __init__(self, value):
            super().__init__(value)
            self.body = json.dumps(value, indent=1)  # not what jsonify would make of it

    def deciding(*args, **kwargs):
        reply, replayed = decide(*args, **kwargs)
        sent.append(Stored(reply))
        return sent[-1], replayed

    monkeypatch.setattr(api.decisions, "decide", deciding)
    r = client.post("/v1/decisions", LEAD, scope="decide")
    assert r.status_code == 201 and r.get_data(as_text=True) == sent[0].body
    assert r.headers["Location"] == f"/v1/decisions/{sent[0]['decision_id']}"


def test_a_chatbot_sends_one_answer_per_call_and_gets_the_next_question(client):
    first = client.post(
        "/v1/decisions",
        {
            "lead_id": "chat-1",
            "channel": "chatbot",
            "profile": {"email": "li@globex.com", "country": "DE", "employees": 80},
            "events": [{"type": "free_trial", "at": "2026-11-22T10:00:00Z"}],
        },
        scope="decide",
    ).json
    asked = [q["id"] for q in first["next_questions"]]
    assert asked[:2] == ["timeline", "budget"]
    second = client.post(
        "/v1/decisions", {"lead_id": "chat-1", "answers": {"timeline": "now"}}, scope="decide"
    ).json
    assert [q["id"] for q in second["next_questions"]] == ["budget", "authority"]
    assert second["qualification"]["timeline"] == "met" and second["qualification"]["need"] == "met"
    questions = client.get("/v1/leads/chat-1/questions", scope="decide").json
    assert [q["id"] for q in questions["questions"]] == ["budget", "authority"]


def test_idempotency_key_returns_the_first_decision_and_refuses_another_body(client, app):
    headers = {"Idempotency-Key": "form-submit-1"}
    first = client.post("/v1/decisions", LEAD, headers=dict(headers))
    again = client.post("/v1/decisions", LEAD, headers=dict(headers))
    assert (
        again.status_code == 201
        and again.json == first.json
        and again.headers["Idempotent-Replayed"] == "true"
    )
    with app.app_context():
        assert trail()._read("SELECT count(*) AS n FROM decisions")[0]["n"] == 1
    other = client.post("/v1/decisions", {**LEAD, "channel": "other"}, headers=dict(headers))
    assert_error(other, 409, "idempotency_conflict")


def test_an_event_sent_twice_counts_once(client):
    client.post("/v1/decisions", LEAD)
    again = client.post("/v1/decisions", {"lead_id": "L-1001", "events": LEAD["events"]}).json
    lead = client.get("/v1/leads/L-1001").json
    assert len(lead["facts"]["events"]) == 3
    assert (
        again["scores"]["engagement"]
        == client.get("/v1/leads/L-1001/why").json["scores"]["engagement"]["total"]
    )


def test_batch_records_every_lead_or_none(client, app):
    items = [LEAD, {**LEAD, "lead_id": "L-2"}, {"lead_id": "L-1001", "answers": {"timeline": "now"}}]
    r = client.post("/v1/decisions/batch", {"items": items}, scope="decide")
    assert r.status_code == 201
    assert [d["lead_id"] for d in r.json["decisions"]] == ["L-1001", "L-2", "L-1001"]
    assert r.json["decisions"][2]["qualification"]["timeline"] == "met"  # saw the first item's facts
    bad = client.post(
        "/v1/decisions/batch",
        {"items": [{**LEAD, "lead_id": "L-3"}, {"lead_id": "L-4", "profile": {"employees": "x"}}]},
    )
    assert_error(bad, 422, "invalid_facts")
    assert "items[1].profile.employees" in bad.json["errors"]  # the item is named by its index
    with app.app_context():
        assert (
            trail()._read("SELECT count(*) AS n FROM decisions WHERE lead_id IN ('L-3', 'L-4')")[0]["n"] == 0
        )


def test_batch_limit(app, client):
    app.config["LEADGATE_BATCH_LIMIT"] = 2
    assert_error(client.post("/v1/decisions/batch", {"items": [LEAD] * 3}), 413, "batch_too_large")


def test_preview_changes_nothing(client):
    client.post("/v1/decisions", {"lead_id": "P-1", "profile": {"country": "US"}})
    preview = client.post(
        "/v1/preview", {"lead_id": "P-1", "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}]}
    )
    assert preview.status_code == 200 and preview.json["funnel"] == "bofu"
    lead = client.get("/v1/leads/P-1").json
    assert lead["facts"]["events"] == [] and lead["latest_decision"]["funnel"] == "tofu"
    assert client.get(f"/v1/decisions/{preview.json['decision_id']}").json["kind"] == "preview"


def test_a_ruleset_version_can_be_pinned(client):
    version = client.get("/v1/rulesets/default").json["active_version"]
    r = client.post("/v1/decisions", {**LEAD, "ruleset": {"name": "default", "version": version}})
    assert r.json["ruleset"]["version"] == version
    assert_error(
        client.post("/v1/decisions", {**LEAD, "ruleset": {"name": "default", "version": 9}}),
        422,
        "unknown_ruleset",
    )


# -- reading --------------------------------------------------------------------------------------


def test_lead_timeline_why_and_rulesets(client):
    client.post("/v1/decisions", {**LEAD, "events": LEAD["events"][:1], "answers": {}})
    client.post("/v1/decisions", LEAD)
    lead = client.get("/v1/leads/L-1001", scope="review").json
    assert lead["stage"] == "sql" and lead["facts"]["profile"]["email"].startswith("pii:")
    page = client.get("/v1/leads/L-1001/decisions?limit=1", scope="review").json
    assert len(page["items"]) == 1 and page["items"][0]["changes"]["route"]["to"] == "sales_handoff"
    older = client.get(
        f"/v1/leads/L-1001/decisions?limit=1&before={page['next_before']}", scope="review"
    ).json
    assert older["items"][0]["changes"] == {"first": True} and older["next_before"] is None
    why = client.get("/v1/leads/L-1001/why", scope="review").json
    assert why["routed_by"]["rule"] == "route-sales" and "Route: sales_handoff" in why["text"]
    listed = client.get("/v1/rulesets", scope="review").json["rulesets"]
    assert "default" in {r["name"] for r in listed}
    default = client.get("/v1/rulesets/default", scope="review").json
    assert default["versions"][0]["owners"]["sales"]["name"] and "rules:" in default["source"]
    assert [q["id"] for q in default["versions"][0]["questions"]][0] == "need"


@pytest.mark.parametrize(
    "url",
    [
        "/v1/decisions/dec_nope",
        "/v1/leads/nobody",
        "/v1/leads/nobody/decisions",
        "/v1/leads/nobody/why",
        "/v1/leads/nobody/questions",
        "/v1/rulesets/nope",
        "/v1/nowhere",
    ],
)
def test_not_found(client, url):
    assert_error(client.get(url), 404, "not_found")


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "lead_id"),
        ({"lead_id": 5}, "lead_id"),
        ({"lead_id": "x", "colour": "red"}, "colour"),
        (
            {"lead_id": "x", "events": [{"type": "Demo Request!", "at": "2026-11-23T10:00:00Z"}]},
            "events[0].type",
        ),
        ({"lead_id": "x", "events": [{"type": "demo_request"}]}, "events[0].at"),
        ({"lead_id": "x", "profile": "US"}, "profile"),
        ({"lead_id": "x", "ruleset": {"version": "2"}}, "ruleset.version"),
    ],
)
def test_invalid_request_names_the_field(client, body, field):
    r = client.post("/v1/decisions", body)
    assert_error(r, 422, "invalid_request")
    assert field in r.json["errors"], r.json


@pytest.mark.parametrize(
    "data",
    [
        b"[1]",
        b'"a lead"',
        b"{",
        b"",
        b'{"lead_id": "x", "colour": "red", "events": [{"type": "Demo!"}, 3], "ruleset": {"version": "2"}}',
        b'{"lead_id": 5, "profile": "US", "answers": [], "events": {}}',
    ],
)
def test_a_decision_refuses_a_body_as_the_schema_wrapped_views_do(client, data):
    """POST /v1/decisions parses without flask-smorest's wrappers (api/parsing.py `served_directly`);
    POST /v1/preview, with the same schema, still through them: the same bad body, the same reply."""
    replies = [
        client.call("post", url, data=data, headers={"Content-Type": "application/json"})
        for url in ("/v1/decisions", "/v1/preview")
    ]
    assert replies[0].status_code == replies[1].status_code in (400, 422)
    assert replies[0].json == replies[1].json, replies[0].json


def test_a_decision_is_parsed_by_the_schema_object_its_document_names(app, client, monkeypatch):
    view = app.view_functions["decisions.post_decision"]
    (argument,) = view._apidoc["arguments"]["parameters"]
    loads = []
    real = argument["schema"].load
    monkeypatch.setattr(argument["schema"], "load", lambda data, **kw: loads.append(data) or real(data, **kw))
    assert client.post("/v1/decisions", LEAD, scope="decide").status_code == 201
    assert loads == [LEAD]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"lead_id": "x", "profile": {"employees": "many"}}, "profile.employees"),
        ({"lead_id": "x", "profile": {"contry": "US"}}, "profile.contry"),
        ({"lead_id": "x", "answers": {"budget": "maybe"}}, "answers.budget"),
        ({"lead_id": "x", "events": [{"type": "page_view", "at": "last week"}]}, "events[0].at"),
        ({"lead_id": "x", "events": [{"type": "demo", "at": "2026-11-23T10:00:00Z"}]}, "events[0].type"),
    ],
)
def test_invalid_facts_name_the_field(client, body, field):
    r = client.post("/v1/decisions", body)
    assert_error(r, 422, "invalid_facts")
    assert field in r.json["errors"], r.json


@pytest.mark.parametrize(
    "data, message",
    [
        ("{bad", "not valid JSON"),
        ('{"lead_id": NaN}', "NaN is not allowed"),
        ('{"lead_id": Infinity}', "Infinity"),
        ("[" * 50_000 + "]" * 50_000, "nested more than 32 levels"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_json_is_a_400(client, data, message):
    r = client.call("post", "/v1/decisions", data=data.encode("latin-1"), content_type="application/json")
    assert_error(r, 400, "malformed_json")
    assert message in r.json["message"]


def test_other_statuses_share_the_shape(client, app):
    assert_error(
        client.call(
            "post", "/v1/decisions", data="lead_id=x", content_type="application/x-www-form-urlencoded"
        ),
        415,
        "unsupported_media_type",
    )
    assert_error(client.call("delete", "/v1/decisions"), 405, "method_not_allowed")
    big = json.dumps({"lead_id": "x", "channel": "y" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    r = client.call("post", "/v1/decisions", data=big, content_type="application/json")
    assert_error(r, 413, "payload_too_large")
    assert str(app.config["MAX_CONTENT_LENGTH"]) in r.json["message"]
    assert_error(
        client.post("/v1/decisions", LEAD, headers={"Idempotency-Key": ""}), 400, "invalid_idempotency_key"
    )


@contextlib.contextmanager
def storage_failing(app):
    """The audit store refuses writes: a read-only SQLite file, or a PostgreSQL server out of reach."""
    db = app.config["LEADGATE_DB"]
    if is_postgres(db):
        with unreachable(db):
            yield
        return
    with app.app_context():
        trail().db.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        with app.app_context():
            trail().db.execute("PRAGMA query_only = OFF")


def test_storage_failure_is_a_503_with_retry_after_and_no_decision(client, app):
    client.post("/v1/decisions", LEAD)
    with storage_failing(app):
        r = client.post("/v1/decisions", {**LEAD, "lead_id": "L-new"})
        assert_error(r, 503, "storage_unavailable")
        assert r.headers["Retry-After"] == "2" and "decision_id" not in r.json
    # once the store is back (the pool reconnects with a backoff), the same request is decided, once
    assert eventually(lambda: client.post("/v1/decisions", {**LEAD, "lead_id": "L-new"}).status_code == 201)
    with app.app_context():
        assert trail()._read("SELECT count(*) AS n FROM decisions WHERE lead_id = 'L-new'")[0]["n"] == 1
        assert trail().verify() == []


# -- access ---------------------------------------------------------------------------------------


def test_keys_and_scopes(client, app, keys):
    assert_error(client.post("/v1/decisions", LEAD, scope=None), 401, "unauthorized")
    r = client.call(
        "post", "/v1/decisions", scope=None, json=LEAD, headers={"Authorization": "Bearer lg_nope"}
    )
    assert_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(
        client.call(
            "post",
            "/v1/decisions",
            scope=None,
            json=LEAD,
            headers={"Authorization": f"Basic {keys['admin']}"},
        ),
        401,
        "unauthorized",
    )
    assert_error(client.get("/v1/leads/L-1001/why", scope="decide"), 403, "forbidden")
    assert_error(client.post("/v1/decisions", LEAD, scope="review"), 403, "forbidden")
    tampered = keys["decide"][:-2] + ("AA" if not keys["decide"].endswith("AA") else "BB")
    assert_error(
        client.call(
            "post", "/v1/decisions", scope=None, json=LEAD, headers={"Authorization": f"Bearer {tampered}"}
        ),
        401,
        "unauthorized",
    )
    with app.app_context():
        revoke(trail(), keys["decide"].split("_")[1])
    assert_error(client.post("/v1/decisions", LEAD, scope="decide"), 401, "unauthorized")


def test_every_decision_records_the_key_that_asked(client, keys):
    r = client.post("/v1/decisions", LEAD, scope="decide")
    assert client.get(f"/v1/decisions/{r.json['decision_id']}").json["client"] == keys["decide"].split("_")[1]


def test_every_v1_endpoint_requires_a_key(app):
    scoped = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "_leadgate_scope", None)
    }
    v1 = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/v1")}
    assert v1 == scoped - {"/metrics"}  # /metrics needs an admin key too (api/metrics.py)


# -- probes and docs ------------------------------------------------------------------------------


def test_probes_openapi_and_docs_page(client):
    assert client.get("/healthz", scope=None).json == {"status": "ok"}
    ready = client.get("/readyz", scope=None).json
    assert ready["status"] == "ok" and ready["database"] == "ok" and ready["rulesets"]["default"] == 3
    spec = client.get("/openapi.json", scope=None).json
    assert spec["openapi"].startswith("3.") and "/v1/decisions" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = client.get("/docs", scope=None)
    assert page.status_code == 200 and b"/v1/decisions/batch" in page.data
    assert b"<script" not in page.data and b"http" not in page.data.replace(b'href="/', b"")


def test_readyz_fails_without_rulesets(make_app, tmp_path):
    app = make_app(db=str(tmp_path / "a.db"), rulesets=str(tmp_path))
    assert app.test_client().get("/readyz").status_code == 503
