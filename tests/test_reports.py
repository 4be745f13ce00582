"""Reports on a generated history recover the rates the history was built from."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from audit import reports
from audit.keys import create
from cli import main
from tests import history
from tests.conftest import RULESETS

N = history.N


@pytest.fixture(scope="module")
def built(history_db):
    path, trail, truth = history_db
    return path, trail, truth, reports.leads(trail)


def close(got: float, want: float, tolerance: float = 0.05) -> bool:
    return abs(got - want) <= tolerance


def test_the_matrix_recovers_each_quadrants_size_and_conversion(built):
    _, _, truth, items = built
    matrix = reports.matrix(items)
    sizes = Counter(truth.values())
    for quadrant, cell in matrix["quadrants"].items():
        assert cell["leads"] == sizes[quadrant], quadrant
        assert close(cell["conversion"], history.expected_conversion(quadrant)), (quadrant, cell)
    assert matrix["leads"] == N and matrix["warnings"] == []  # 40% poor fit, 30% good-fit-not-ready


def test_the_matrix_warns_like_the_seeds(built):
    _, _, truth, items = built
    poor = [x for x in items if truth[x.lead_id].startswith("poor")]
    assert "review the qualification process" in reports.matrix(poor)["warnings"][0]
    nurture = [x for x in items if truth[x.lead_id] == "good_fit_not_ready"]
    assert "strengthen nurture" in reports.matrix(nurture)["warnings"][0]


def test_rejections_recover_the_rate_and_the_reasons(built):
    _, _, truth, items = built
    data = reports.rejections(items)
    handed = sum(1 for q in truth.values() if q == "good_fit_ready")
    assert data["handed_off"] == handed
    assert close(data["rejection_rate"], history.REJECTED, 0.04)
    shares = {reason: n / data["rejected"] for reason, n in data["reasons"].items()}
    for reason, share in history.REJECTION_REASONS.items():
        assert close(shares[reason], share, 0.1), (reason, shares)


def test_conversion_by_route_and_win_rate(built):
    _, _, _, items = built
    groups = reports.conversion(items, "route")["groups"]
    sales = groups["sales_handoff"]
    assert close(sales["conversion"], history.expected_conversion("good_fit_ready"))
    assert close(sales["win_rate"], history.WON_IF_ACCEPTED, 0.06)  # won / (won + lost) of accepted leads
    bands = reports.conversion(items, "fit_band")["groups"]
    assert set(bands) == {"60-79", "0-19"} and bands["60-79"]["conversion"] > bands["0-19"]["conversion"]


def test_the_funnel_counts_every_customer(built):
    _, _, _, items = built
    data = reports.funnel(items)
    won = sum(x.won for x in items)
    assert data["reached"]["customer"] == won == data["now"]["customer"]
    accepted = sum(1 for x in items if x.accepted)
    assert data["reached"]["accepted"] == accepted
    step = next(s for s in data["steps"] if s["from"] == "accepted")
    assert step["to_count"] == won  # accepted → opportunity counts the customers that passed it


def test_rule_lift_shows_which_rules_earn_their_points(built):
    _, _, _, items = built
    lift = {r["rule"]: r for r in reports.rule_lift(items)}
    assert lift["eng-demo-request"]["lift"] > 2 and lift["fit-senior-executive"]["lift"] > 2
    assert lift["eng-other-content"]["lift"] < 1


def test_the_cli_and_the_api_serve_the_same_reports(built, make_app):
    path, trail, _, items = built
    env = {"LEADGATE_DB": str(path)}
    result = CliRunner().invoke(main, ["report", "matrix", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"] == reports.matrix(items)
    printed = CliRunner().invoke(main, ["report", "conversion", "--by", "route"], env=env).output
    assert "sales_handoff" in printed and "%" in printed
    app = make_app(db=str(path), rulesets=str(RULESETS))
    key = create(trail, "review", "review")[1]
    reply = app.test_client().get("/v1/reports/rules", headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 200 and reply.json["leads"] == N
    assert reply.json["data"]["rules"] == json.loads(json.dumps(reports.rule_lift(items)))
    missing = app.test_client().get("/v1/reports/nope", headers={"Authorization": f"Bearer {key}"})
    assert missing.status_code == 404


def test_the_decision_diff_says_how_the_leads_it_moves_actually_ended(built):
    from service import diff

    _, trail, _, items = built
    base = (RULESETS / "default.yaml").read_text()
    head = base.replace("    good_at: 50\n", "    good_at: 80\n", 1)  # fit 75 is no longer a good fit
    assert head != base
    result = diff.run(base, head, reports.snapshot_facts(trail), workers=1)
    moved = result.endings[("sales_handoff", "bring_in_authority")]
    handed = [x for x in items if x.snapshot["route"] == "sales_handoff"]
    assert sum(moved.values()) == len(handed)
    assert moved["won"] == sum(x.won for x in handed) and moved["rejected"] == sum(x.rejected for x in handed)
    report = diff.markdown(result, "main", "working copy", "the history")
    assert "### How the leads whose route changes actually ended" in report
    assert f"| sales_handoff | bring_in_authority | {len(handed):,} | {moved['won']:,} |" in report
