"""Reviewers' overrides: recorded and chained, shown on the timeline, counted by rule, turned into cases."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner

from api.state import registry, trail
from audit.keys import create
from cli import main
from engine.cases import run_cases
from service.decide import decide
from tests.conftest import AT, RULESETS
from tests.test_review import sign_in, token

GOOD_FIT_NOT_READY = {
    "channel": "form",
    "profile": {
        "email": "ana.perez@acme.io",
        "first_name": "Ana",
        "country": "US",
        "industry": "software",
        "employees": 200,
        "seniority": "vp",
        "department": "marketing",
    },
    "events": [{"type": "free_trial", "at": "2026-11-22T10:00:00Z"}],
}
POOR_FIT = {
    "channel": "form",
    "profile": {"email": "bo@tiny.io", "country": "ES", "employees": 4},
    "events": [
        {"type": "content_download", "at": "2026-11-22T10:00:00Z", "properties": {"content": "ebook"}}
    ],
}


@pytest.fixture
def served(audit_db, make_app):
    """Decided leads on each backend (tests/postgres.py): (app, keys, decision ids, audit location)."""
    db = audit_db
    app = make_app(db=str(db), rulesets=str(RULESETS), secure_cookies=0)
    with app.app_context():
        ids = {}
        for n in range(3):
            # Each its own email: leads sharing one address share its personal token.
            lead = {"lead_id": f"G{n}", **GOOD_FIT_NOT_READY}
            lead["profile"] = {**lead["profile"], "email": f"ana.perez{n}@acme.io"}
            ids[f"G{n}"] = decide(registry().get("default"), trail(), lead, at=AT)[0]["decision_id"]
        ids["P0"] = decide(registry().get("default"), trail(), {"lead_id": "P0", **POOR_FIT}, at=AT)[0][
            "decision_id"
        ]
        keys = {s: create(trail(), f"{s} person", s)[1] for s in ("decide", "review", "admin")}
    return app, keys, ids, db


def post(app, key, decision_id, body):
    return app.test_client().post(
        f"/v1/decisions/{decision_id}/overrides", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def test_an_override_is_recorded_chained_and_tamper_evident(served):
    app, keys, ids, db = served
    r = post(app, keys["review"], ids["G0"], {"route": "sales_handoff", "reason": "VP on a trial: call now"})
    assert r.status_code == 201, r.json
    body = r.json
    assert body["decided_route"] == "sdr_qualification" and body["expected_route"] == "sales_handoff"
    assert body["reviewer"].startswith("review person (") and body["seq"] > 0
    assert "route-qualification-team" in body["rules"] and not any(x.startswith("@") for x in body["rules"])
    with app.app_context():
        assert trail().verify() == []
    timeline = app.test_client().get(
        "/v1/leads/G0/decisions", headers={"Authorization": f"Bearer {keys['review']}"}
    )
    [item] = timeline.json["items"]
    assert [o["override_id"] for o in item["overrides"]] == [body["override_id"]]
    with app.app_context():  # edited behind the service's back
        trail().db.execute("UPDATE overrides SET reason = 'nothing' WHERE id = ?", (body["override_id"],))
        broken = trail().verify()
    assert any(body["override_id"] in b and "override it records was edited" in b for b in broken), broken
    with app.app_context():  # a row slipped in beside the chain is named too
        trail().db.execute(
            "INSERT INTO overrides (id, seq, decision_id, lead_id, at, decided_route, decided_stage, reason) "
            "VALUES ('ovr_forged', 999, ?, 'G0', '2026-11-23T10:00:00Z', 'x', 'y', 'forged')",
            (ids["G0"],),
        )
        assert any("ovr_forged" in b for b in trail().verify())


@pytest.mark.parametrize(
    "body, code, named",
    [
        ({"route": "sales", "reason": "x"}, "unknown_target", "sales_handoff"),
        ({"stage": "won", "reason": "x"}, "unknown_target", "customer"),
        ({"route": "sdr_qualification", "reason": "x"}, "invalid_override", "already has route"),
        ({"route": "sales_handoff"}, "invalid_request", "reason"),
        ({"route": "sales_handoff", "reason": ""}, "invalid_request", "reason"),
        ({"reason": "wrong"}, "invalid_override", "route or the stage"),
        ({"route": "sales_handoff", "reason": "x", "by": "me"}, "invalid_request", "by"),
        ({"route": "sales_handoff", "reason": "x" * 2001}, "invalid_request", "reason"),
        ({"route": ["sales_handoff"], "reason": "x"}, "invalid_request", "route"),
    ],
)
def test_bad_overrides_are_refused_naming_the_problem(served, body, code, named):
    app, keys, ids, _ = served
    r = post(app, keys["review"], ids["G0"], body)
    assert r.status_code == 422 and r.json["code"] == code, r.json
    assert named in str(r.json)


def test_overrides_need_review_scope_and_a_known_decision(served):
    app, keys, ids, _ = served
    assert post(app, keys["decide"], ids["G0"], {"route": "sales_handoff", "reason": "x"}).status_code == 403
    r = post(app, keys["admin"], "dec_nope", {"route": "sales_handoff", "reason": "x"})
    assert r.status_code == 404 and r.json["code"] == "not_found"


def test_the_review_form_records_an_override_and_the_timeline_shows_it(served):
    app, keys, ids, _ = served
    client = app.test_client()
    assert sign_in(client, keys["review"]).status_code == 302
    page = client.get(f"/review/decisions/{ids['G1']}")
    assert page.status_code == 200 and 'id="override-form"' in page.text
    form = {"route": "sales_handoff", "stage": "", "reason": "Asked for a call <b>twice</b>"}
    assert (
        client.post(f"/review/decisions/{ids['G1']}/overrides", data=form).status_code == 400
    )  # no CSRF token
    done = client.post(f"/review/decisions/{ids['G1']}/overrides", data={**form, "csrf_token": token(page)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/review/leads/G1#timeline")
    lead = client.get("/review/leads/G1").text
    assert "Overridden by review person" in lead and "Asked for a call &lt;b&gt;twice&lt;/b&gt;" in lead
    wrong = client.post(
        f"/review/decisions/{ids['G1']}/overrides",
        data={"route": "nowhere", "reason": "x", "csrf_token": token(page)},
    )
    assert wrong.status_code == 422 and "unknown route &#39;nowhere&#39;" in wrong.text


def test_the_report_names_the_rules_most_involved_by_route(served):
    app, keys, ids, db = served
    for lead in ("G0", "G1", "G2"):
        assert (
            post(
                app, keys["review"], ids[lead], {"route": "sales_handoff", "reason": "trial VPs are hot"}
            ).status_code
            == 201
        )
    assert (
        post(
            app, keys["review"], ids["P0"], {"stage": "disqualified", "reason": "a one-person shop"}
        ).status_code
        == 201
    )
    result = CliRunner().invoke(main, ["report", "overrides", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output

    data = json.loads(result.output)["data"]
    assert data["overrides"] == 4
    group = data["by_route"]["sdr_qualification → sales_handoff"]
    assert group["overrides"] == 3 and group["reasons"] == {"trial VPs are hot": 3}
    top = {r["rule"]: r["overrides"] for r in group["rules"]}
    assert top["route-qualification-team"] == 3 and top["eng-free-trial"] == 3
    assert data["by_route"]["nurture_low_touch → stage disqualified"]["overrides"] == 1
    text = CliRunner().invoke(main, ["report", "overrides", "--db", str(db)]).output
    assert "sdr_qualification → sales_handoff: 3 overridden" in text and re.search(
        r"route-qualification-team +3 +100.0%", text
    )


def test_overridden_decisions_become_cases_that_fail_until_a_version_agrees(served, tmp_path, default):
    app, keys, ids, db = served
    post(
        app, keys["review"], ids["G0"], {"route": "sdr_qualification", "stage": "mql", "reason": "first try"}
    )
    post(app, keys["review"], ids["G0"], {"route": "sales_handoff", "reason": "on second thought: sales"})
    post(app, keys["review"], ids["P0"], {"stage": "disqualified", "reason": "one-person shop"})
    out = tmp_path / "default.overrides.cases.yaml"
    result = CliRunner().invoke(
        main, ["rulesets", "cases-from-overrides", "--ruleset", "default", "--db", str(db), "--out", str(out)]
    )
    assert result.exit_code == 0 and "wrote 2 case(s)" in result.output, result.output
    text = out.read_text()
    assert "Ana" not in text and "ana.perez" not in text and "someone@acme.io" in text  # no personal data
    doc = yaml.safe_load(text)
    assert [c["expect"] for c in doc["cases"]] == [{"route": "sales_handoff"}, {"stage": "disqualified"}]
    report = run_cases(default, out)  # the engine's own runner reads them: they fail as the reviewers said
    assert not report.problems and len(report.results) == 2
    assert [r.failures for r in report.results] == [
        ["route: expected 'sales_handoff', got 'sdr_qualification'"],
        ["stage: expected 'disqualified', got 'lead'"],
    ]


def test_through_the_real_server(tmp_path):
    """gunicorn workers: an override and a why-not through HTTP, each worker reading what the other wrote."""
    from tests.server import Server

    with Server(tmp_path / "real.db", workers=2) as server:
        lead = {"lead_id": "R-1", **GOOD_FIT_NOT_READY}
        status, decided, _ = server.request("POST", "/v1/decisions", lead)
        assert status == 201, decided
        url = f"/v1/decisions/{decided['decision_id']}/overrides"
        status, body, _ = server.request("POST", url, {"route": "sales_handof", "reason": "typo"})
        assert (
            status == 422
            and body["code"] == "unknown_target"
            and "did you mean 'sales_handoff'" in body["message"]
        )
        status, body, _ = server.request("POST", url, {"route": "sales_handoff", "reason": "trial VP"})
        assert status == 201 and body["expected_route"] == "sales_handoff"
        for _ in range(4):  # whichever worker answers
            status, why_not, _ = server.request("GET", "/v1/leads/R-1/why-not?route=sales_handoff")
            assert status == 200 and "answering talk_to_sales with yes" in why_not["changes_text"]
        status, body, _ = server.request(
            "POST", url, {"route": "sales_handoff", "reason": "x"}, headers={"Authorization": ""}
        )
        assert status == 401
