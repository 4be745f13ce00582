"""Outcomes from sales: recorded and chained, decided on at once, hand-offs and their SLA."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api.state import registry, trail
from audit import AuditTrail, outcomes
from audit.keys import create
from audit.replay import replay
from cli import main
from engine import FactsError
from service.decide import decide, evaluator, now
from service.outcomes import report_outcome
from tests.conftest import RULESETS
from tests.postgres import secrets_for

VP = {
    "lead_id": "O-1",
    "profile": {
        "email": "ana@acme.io",
        "country": "US",
        "industry": "software",
        "employees": 200,
        "seniority": "vp",
        "department": "marketing",
    },
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "demo-1"}],
    "answers": {"budget": "yes"},
}
T0 = "2026-11-23T10:00:00Z"  # the hand-off: sales_handoff, due 30 minutes later


@pytest.fixture
def app(backend_app):
    return backend_app  # on SQLite and on PostgreSQL (tests/postgres.py)


@pytest.fixture
def auth(app):
    with app.app_context():
        return {"Authorization": f"Bearer {create(trail(), 'crm', 'admin')[1]}"}


def handed_off(app, lead=VP, at=T0) -> dict:
    with app.app_context():
        reply, _ = decide(registry().get("default"), trail(), lead, at=at)
    assert reply["route"]["id"] == "sales_handoff" and reply["route"]["due_at"] == "2026-11-23T10:30:00Z"
    return reply


def test_an_accepted_hand_off_is_recorded_chained_and_decided_on(app, auth):
    handed_off(app)
    client = app.test_client()
    reply = client.post(
        "/v1/leads/O-1/outcomes", json={"type": "accepted", "at": "2026-11-23T10:12:00Z"}, headers=auth
    )
    assert reply.status_code == 201, reply.json
    assert reply.json["outcome"]["type"] == "accepted" and reply.json["outcome"]["source"] == "api"
    decision = reply.json["decision"]
    assert decision["stage"] == "accepted" and "sales-accepted" in [r["rule"] for r in decision["reasons"]]
    listed = client.get("/v1/leads/O-1/outcomes", headers=auth).json["outcomes"]
    assert [o["type"] for o in listed] == ["accepted"]
    with app.app_context():
        kinds = [r["kind"] for r in trail()._read("SELECT kind FROM chain ORDER BY seq")]
        assert kinds.count("outcome") == 1 and kinds[-1] == "decision"
        assert trail().verify() == []
        # The decision made from the outcome replays identically: its facts hold the outcome.
        assert replay(trail(), decision["decision_id"], evaluator(registry()))["identical"]
        record = trail().decision(decision["decision_id"])
        assert record["channel"] == "outcome" and record["facts"]["outcomes"][0]["type"] == "accepted"


def test_a_rejection_needs_a_declared_reason_and_recycles_the_lead(app, auth):
    handed_off(app)
    client = app.test_client()
    refused = client.post("/v1/leads/O-1/outcomes", json={"type": "rejected"}, headers=auth)
    assert refused.status_code == 422 and refused.json["code"] == "invalid_facts"
    assert "not_a_fit" in refused.json["errors"]["outcome.reason"][0]
    typo = client.post(
        "/v1/leads/O-1/outcomes", json={"type": "rejected", "reason": "no_budgets"}, headers=auth
    )
    assert "did you mean 'no_budget'" in typo.json["errors"]["outcome.reason"][0]
    with app.app_context():
        assert trail()._read("SELECT count(*) AS n FROM outcomes")[0]["n"] == 0  # nothing half-recorded
    reply = client.post(
        "/v1/leads/O-1/outcomes", json={"type": "rejected", "reason": "not_a_fit"}, headers=auth
    )
    assert reply.status_code == 201
    decision = reply.json["decision"]
    assert decision["stage"] == "recycled" and decision["route"]["id"] == "recycled_nurture"
    # The lead comes back: a new demo request after the rejection is decided on its merits again.
    again = client.post(
        "/v1/decisions",
        json={
            "lead_id": "O-1",
            # now: the latest event (one dated after the evaluation time is refused, issue 12)
            "events": [{"type": "demo_request", "at": now(), "id": "demo-2"}],
        },
        headers=auth,
    ).json
    assert again["route"]["destination"] == "sales"


def test_won_makes_a_customer_and_unknown_leads_or_types_are_refused(app, auth):
    handed_off(app)
    client = app.test_client()
    won = client.post("/v1/leads/O-1/outcomes", json={"type": "won", "amount": 48000}, headers=auth).json
    assert won["decision"]["stage"] == "customer" and won["decision"]["route"]["id"] == "account_management"
    assert won["outcome"]["amount"] == 48000
    assert client.post("/v1/leads/nobody/outcomes", json={"type": "won"}, headers=auth).status_code == 404
    bad = client.post("/v1/leads/O-1/outcomes", json={"type": "signed"}, headers=auth)
    assert bad.status_code == 422 and "type" in bad.json["errors"]
    amount = client.post("/v1/leads/O-1/outcomes", json={"type": "accepted", "amount": 5}, headers=auth)
    assert amount.json["errors"]["outcome.amount"] == ["only won takes an amount"]


def test_sla_lists_overdue_hand_offs_and_the_time_to_first_action(app, auth):
    handed_off(app)
    handed_off(app, {**VP, "lead_id": "O-2"})
    handed_off(app, {**VP, "lead_id": "O-3"})
    with app.app_context():
        ruleset = registry().get("default")
        report_outcome(
            ruleset,
            trail(),
            "O-1",
            {"type": "contacted", "at": "2026-11-23T10:10:00Z"},
            at="2026-11-23T10:10:00Z",
        )
        report_outcome(
            ruleset,
            trail(),
            "O-2",
            {"type": "accepted", "at": "2026-11-23T10:50:00Z"},
            at="2026-11-23T10:50:00Z",
        )
    report = app.test_client().get("/v1/sla?at=2026-11-23T11:00:00Z", headers=auth).json
    assert [(o["lead_id"], o["minutes_overdue"]) for o in report["overdue"]] == [("O-3", 30.0)]
    team = report["teams"]["account-executives"]
    assert (team["handoffs"], team["acted_in_time"], team["acted_late"], team["overdue"]) == (3, 1, 1, 1)
    assert team["median_minutes_to_first_action"] == 30.0  # 10 and 50 minutes
    bad = app.test_client().get("/v1/sla?at=yesterday", headers=auth)
    assert bad.status_code == 422 and "at" in bad.json["errors"]


def test_sla_escalate_re_routes_overdue_hand_offs(app, tmp_path):
    handed_off(app)
    db = app.config["LEADGATE_DB"]
    env = {"LEADGATE_DB": db, "LEADGATE_RULESETS": str(RULESETS)}
    result = CliRunner().invoke(main, ["sla", "--escalate", "--at", "2026-11-23T11:00:00Z"], env=env)
    assert result.exit_code == 0, result.output
    assert "decided O-1 again: route sales_escalation" in result.output
    with AuditTrail(db, secrets=secrets_for(db)) as trail_:
        report = outcomes.sla(trail_, "2026-11-23T11:00:00Z")
    # the escalation is a new hand-off, to the sales managers, due in 60 minutes: not overdue yet
    assert report["overdue"] == [] and report["teams"]["sales-managers"]["open"] == 1


def test_import_checks_every_row_first_and_records_all(app, tmp_path):
    handed_off(app)
    handed_off(app, {**VP, "lead_id": "O-2"})
    db = app.config["LEADGATE_DB"]
    env = {"LEADGATE_DB": db, "LEADGATE_RULESETS": str(RULESETS)}
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "lead_id,type,at,reason,amount\n"
        "O-1,accepted,2026-11-23T10:05:00Z,,\n"
        "O-2,rejected,2026-11-23T10:06:00Z,too_expensive,\n"
        "nobody,won,2026-11-23T10:07:00Z,,100\n"
        "O-1,won,2026-11-24T10:07:00Z,,lots\n"
    )
    result = CliRunner().invoke(main, ["outcomes", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert f"{bad}:3: reason: rejected needs a reason from the ruleset" in result.output
    assert (
        f"{bad}:4: no lead 'nobody'" in result.output
        and f"{bad}:5: amount 'lots' is not a number" in result.output
    )
    assert "nothing recorded" in result.output
    with AuditTrail(db, secrets=secrets_for(db)) as trail_:
        assert trail_._read("SELECT count(*) AS n FROM outcomes")[0]["n"] == 0

    good = tmp_path / "good.csv"
    good.write_text(
        "lead_id,type,at,reason,amount,note\n"
        "O-1,accepted,2026-11-23T10:05:00Z,,,called back\n"
        "O-2,rejected,2026-11-23T10:06:00Z,no_budget,,\n"
        "O-1,won,2026-11-25T10:00:00Z,,48000,\n"
    )
    result = CliRunner().invoke(main, ["outcomes", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "3 outcomes recorded" in result.output
    with AuditTrail(db, secrets=secrets_for(db)) as trail_:
        stages = {r["lead_id"]: r["stage"] for r in trail_._read("SELECT lead_id, stage FROM leads")}
        assert stages == {"O-1": "customer", "O-2": "recycled"}
        assert trail_.verify() == []


def test_outcome_facts_are_checked_by_the_engine(default):
    with pytest.raises(FactsError) as err:
        default.evaluate({"lead_id": "x", "outcomes": [{"type": "lost", "at": T0, "reason": "weather"}]}, T0)
    assert "outcomes[0].reason" in err.value.errors
