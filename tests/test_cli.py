"""The `leadgate` command: thin over library calls, with exit codes scripts can rely on."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from api.cli import main
from tests.conftest import AT, RULESETS, mini_source


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_validate_passes_on_the_shipped_rulesets():
    result = run("rulesets", "validate", "--dir", str(RULESETS))
    assert result.exit_code == 0, result.output
    assert f"ok  {RULESETS / 'default.yaml'}" in result.output


def test_validate_reports_problems_and_exits_non_zero(tmp_path):
    rules = [
        {"id": "r1", "description": "d", "when": {"profile.contry": "US"}, "then": {"points": {"fit": 5}}}
    ]
    (tmp_path / "mini.yaml").write_text(mini_source(rules))
    result = run("rulesets", "validate", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "mini.yaml:" in result.output and "[r1] unknown field 'profile.contry'" in result.output


def test_validate_refuses_a_file_named_after_another_ruleset(tmp_path):
    rules = [
        {"id": "r1", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": 5}}}
    ]
    (tmp_path / "other.yaml").write_text(mini_source(rules))
    result = run("rulesets", "validate", "--dir", str(tmp_path))
    assert result.exit_code == 1 and "must be named mini.yaml" in result.output


def test_test_runs_the_cases(tmp_path):
    shutil.copy(RULESETS / "default.yaml", tmp_path)
    (tmp_path / "default.cases.yaml").write_text(
        f'ruleset: default\ncases:\n  - id: one\n    at: "{AT}"\n    facts: {{lead_id: a}}\n'
        "    expect: {stage: not_a_lead}\n"
    )
    result = run("rulesets", "test", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "ok   default v1: 1/1 cases pass" in result.output
    assert "rules no case exercised: outside-market, competitor" in result.output


def test_test_fails_on_a_wrong_expectation(tmp_path):
    shutil.copy(RULESETS / "default.yaml", tmp_path)
    (tmp_path / "default.cases.yaml").write_text(
        f'ruleset: default\ncases:\n  - id: one\n    at: "{AT}"\n    facts: {{lead_id: a}}\n    expect: {{stage: sql}}\n'
    )
    result = run("rulesets", "test", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "default.cases.yaml:3: [one] stage: expected 'sql', got 'not_a_lead'" in result.output


def test_evaluate_prints_the_decision(tmp_path):
    lead = {
        "lead_id": "L1",
        "profile": {"email": "ana@acme.io", "country": "US"},
        "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
    }
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(lead))
    result = run("evaluate", "--dir", str(RULESETS), "--ruleset", "default", "--at", AT, str(path))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["lead_id"] == "L1" and decision["evaluated_at"] == AT and decision["funnel"] == "bofu"


def test_evaluate_names_the_bad_field(tmp_path):
    result = run(
        "evaluate",
        "--dir",
        str(RULESETS),
        "--at",
        AT,
        "-",
        input='{"lead_id": "x", "profile": {"employees": "many"}}',
    )
    assert result.exit_code == 1
    assert "profile.employees: must be a number, not str" in result.output


def test_schema_prints_the_json_schema():
    assert json.loads(run("rulesets", "schema").output)["title"] == "leadgate ruleset"
