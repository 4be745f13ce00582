"""Issue 14: evaluating at a time T sees only what was recorded at or before T, or is refused.

Before the fix `leadgate decide --at <an earlier time>` on a lead saw an outcome recorded later
("Stage: sql, set by sales-rejected…"). leadgate now refuses such a time with a clear error; replays
and diffs re-evaluate each stored decision's own facts at its own time, which therefore never hold
anything later.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit import AuditTrail
from audit.replay import replay_range
from cli import main
from engine import FactsError
from service.decide import TooEarly, decide, evaluator
from service.outcomes import report_outcome
from tests.test_handoff_due import FIRST, LEAD


@pytest.fixture
def trail(tmp_path):
    trail = AuditTrail(tmp_path / "t.db", durability="normal")
    yield trail
    trail.close()


def _lead_file(tmp_path, facts) -> str:
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(facts))
    return str(path)


def test_decide_at_an_earlier_time_does_not_see_a_later_outcome(tmp_path, trail, default):
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    report_outcome(
        default,
        trail,
        LEAD,
        {"type": "rejected", "reason": "bad_timing", "at": "2026-11-23T11:00:00Z"},
        at="2026-11-23T11:00:00Z",
    )
    rows = len(trail._read("SELECT id FROM decisions"))
    db = str(tmp_path / "t.db")
    out = CliRunner().invoke(
        main, ["decide", "--db", db, "--at", "2026-11-23T10:30:00Z", _lead_file(tmp_path, {"lead_id": LEAD})]
    )
    assert out.exit_code == 1
    assert (
        "recorded at 2026-11-23T11:00:00Z, later than the evaluation time 2026-11-23T10:30:00Z" in out.output
    )
    assert "sales-rejected" not in out.output
    assert len(trail._read("SELECT id FROM decisions")) == rows  # nothing recorded
    # At or after the outcome, the decision sees it.
    out = CliRunner().invoke(
        main, ["decide", "--db", db, "--at", "2026-11-23T11:00:00Z", _lead_file(tmp_path, {"lead_id": LEAD})]
    )
    assert out.exit_code == 0, out.output
    assert "sales-rejected" in out.output


def test_decide_before_the_last_decision_is_refused(trail, default):
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    with pytest.raises(TooEarly, match="Decide at 2026-11-23T10:00:00Z or later"):
        decide(default, trail, {"lead_id": LEAD, "answers": {"timeline": "now"}}, at="2026-11-23T09:59:59Z")
    with pytest.raises(TooEarly):
        decide(default, trail, {"lead_id": LEAD}, at="2026-11-23T09:00:00Z", kind="preview")
    # The same moment written another way is not earlier.
    decide(default, trail, {"lead_id": LEAD}, at="2026-11-23T10:00:00+00:00")


def test_an_outcome_dated_after_the_evaluation_time_is_refused(trail, default):
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    with pytest.raises(FactsError) as exc:
        report_outcome(
            default,
            trail,
            LEAD,
            {"type": "accepted", "at": "2026-11-23T12:00:00Z"},
            at="2026-11-23T11:00:00Z",
        )
    assert "later than now" in exc.value.errors["outcome.at"][0]


def test_an_api_decision_before_a_recorded_one_is_a_409_naming_the_time(app, trail):
    from api.state import registry
    from api.state import trail as app_trail
    from audit.keys import create

    with app.app_context():
        key = create(app_trail(), "k", "decide")[1]
        decide(registry().get("default"), app_trail(), FIRST, at="2099-01-01T00:00:00Z")  # a clock far ahead
    r = app.test_client().post(
        "/v1/decisions", json={"lead_id": LEAD}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 409 and r.json["code"] == "evaluation_time_too_early", r.json
    assert "2099-01-01T00:00:00Z" in r.json["message"] and list(r.json["errors"]) == ["at"]


def test_every_recorded_decision_replays_from_what_was_known_at_its_time(trail, default, registry):
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    report_outcome(
        default, trail, LEAD, {"type": "accepted", "at": "2026-11-23T10:10:00Z"}, at="2026-11-23T10:20:00Z"
    )
    decide(default, trail, {"lead_id": LEAD, "answers": {"timeline": "now"}}, at="2026-11-23T10:30:00Z")
    for row in trail._read("SELECT id, evaluated_at FROM decisions"):
        for o in trail.decision(row["id"])["facts"].get("outcomes", []):
            assert o["at"] <= row["evaluated_at"]
    results = list(replay_range(trail, evaluator(registry)))
    assert len(results) == 3 and all(r["identical"] for r in results), results


def test_an_import_with_an_outcome_in_the_future_records_nothing(tmp_path, trail, default):
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    csv = tmp_path / "o.csv"
    csv.write_text(
        f"lead_id,type,at\n{LEAD},accepted,2026-11-23T10:05:00Z\n{LEAD},won,2999-01-01T00:00:00Z\n"
    )
    out = CliRunner().invoke(main, ["outcomes", "import", "--db", str(tmp_path / "t.db"), str(csv)])
    assert out.exit_code == 1 and f"{csv}:3: at: 2999-01-01T00:00:00Z is later than now" in out.output
    assert trail._read("SELECT count(*) AS n FROM outcomes")[0]["n"] == 0
