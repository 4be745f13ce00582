"""The cases runner reports each mismatch with file, line and case id, and fails on no cases."""

from __future__ import annotations

from engine.cases import run_cases

CASES = """\
ruleset: mini
cases:
  - id: us
    at: "2026-11-23T10:00:00Z"
    facts: {lead_id: a, profile: {country: US}}
    expect: {scores: {fit: 5.0}, fired: [r1], route: nurture}
  - id: wrong
    at: "2026-11-23T10:00:00Z"
    facts: {lead_id: b, profile: {country: US}}
    expect: {scores: {fit: 6}, not_fired: [r1], stage: mql, colour: red}
"""
RULES = [
    {"id": "r1", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": 5}}},
    {"id": "r2", "description": "d", "when": {"profile.country": "FR"}, "then": {"points": {"fit": 5}}},
]


def test_mismatches_and_unexercised_rules(mini, tmp_path):
    path = tmp_path / "mini.cases.yaml"
    path.write_text(CASES)
    report = run_cases(mini(RULES), path)
    assert not report.passed
    assert [r.passed for r in report.results] == [True, False]
    failures = report.failures()
    assert failures[0].startswith(f"{path}:7: [wrong] ")
    assert [f.split("] ", 1)[1] for f in failures] == [
        "scores.fit: expected 6, got 5.0",
        "rule r1 fired",
        "stage: expected 'mql', got 'lead'",
        "unknown expectation 'colour' (known: computed, destination, due_at, fired, fit, funnel, grades, is_lead, "
        "next_questions, not_fired, quadrant, qualification, ready, route, scores, stage, status_reason, tags, team, "
        "track)",
    ]
    assert report.unexercised == ["r2"]


def test_a_ruleset_without_cases_fails(mini, tmp_path):
    path = tmp_path / "mini.cases.yaml"
    assert run_cases(mini(RULES), path).failures() == [f"{path}:1: ruleset mini has no cases file"]
    path.write_text("ruleset: mini\ncases: []\n")
    assert run_cases(mini(RULES), path).failures() == [
        f"{path}:1: no cases: every ruleset ships at least one"
    ]
