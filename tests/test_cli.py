"""The `leadgate` command: thin over library calls, with exit codes scripts can rely on."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from cli import main
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
    assert "ok   default v3: 1/1 cases pass" in result.output
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


def test_decide_why_verify_replay_export_erase(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADGATE_DB", str(tmp_path / "cli.db"))
    monkeypatch.setenv("LEADGATE_RULESETS", str(RULESETS))
    lead = {
        "lead_id": "L9",
        "profile": {
            "email": "kim@acme.io",
            "country": "US",
            "industry": "software",
            "seniority": "vp",
            "employees": 120,
        },
        "events": [
            {"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "d1"},
            {
                "type": "content_download",
                "at": "2026-11-20T09:00:00Z",
                "properties": {"content": "whitepaper"},
            },
            {"type": "pricing_page_view", "at": "2026-11-22T09:00:00Z"},
        ],
    }
    first = json.loads(run("decide", "--at", AT, "-", input=json.dumps(lead)).output)
    second = run(
        "decide", "--at", "2026-11-23T11:00:00Z", "-", input='{"lead_id": "L9", "answers": {"budget": "yes"}}'
    )
    assert json.loads(second.output)["stage"] == "sql"

    why = run("why", "L9")
    assert why.exit_code == 0
    # Handed off to sales at 10:00, due 10:30, nobody acted by 11:00: the second decision escalates it.
    assert "Route: sales_escalation → sales" in why.output and "budget: unknown → met" in why.output
    assert first["stage"] == "mql"
    assert json.loads(run("why", "L9", "--json").output)["lead_id"] == "L9"
    assert run("why", "nobody").exit_code == 1

    assert run("audit", "verify").output.strip() == "chain intact"
    replayed = run("audit", "replay")
    assert replayed.exit_code == 0 and "2 replayed, 2 identical, 0 different" in replayed.output
    assert f"identical {first['decision_id']}" in run("audit", "replay", first["decision_id"]).output

    lines = run("audit", "export", "--format", "jsonl", "--lead", "L9").output.splitlines()
    assert [json.loads(x)["decision_id"] for x in lines][0] == first["decision_id"]
    assert "kim@acme.io" not in "".join(lines)
    assert "L9" in run("audit", "list", "--stage", "sql").output
    assert json.loads(run("audit", "timeline", "L9").output)[0]["changes"]["stage"] == {
        "from": "mql",
        "to": "sql",
    }

    erased = run("audit", "erase", "L9", "--by", "dpo")
    assert erased.exit_code == 0 and "erased 1 personal value(s) of L9" in erased.output
    assert run("audit", "verify").exit_code == 0


def test_verify_exits_non_zero_on_tampering(tmp_path, monkeypatch):
    import contextlib
    import sqlite3

    monkeypatch.setenv("LEADGATE_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("LEADGATE_RULESETS", str(RULESETS))
    run("decide", "--at", AT, "-", input='{"lead_id": "L1", "profile": {"country": "US"}}')
    with contextlib.closing(sqlite3.connect(tmp_path / "t.db")) as conn, conn:  # closed, not only committed
        conn.execute("UPDATE decisions SET stage = 'sql'")
    result = run("audit", "verify")
    assert result.exit_code == 1 and "the decision it records was edited" in result.output


def test_every_command_closes_the_audit_connections_it_opens(tmp_path, monkeypatch):
    """Closed when the command ends, also when it fails: Python 3.13 warns of each one left to the GC."""
    from audit import AuditTrail

    opened = []
    real_init = AuditTrail.__init__

    def tracked(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(AuditTrail, "__init__", tracked)
    monkeypatch.setenv("LEADGATE_DB", str(tmp_path / "c.db"))
    monkeypatch.setenv("LEADGATE_RULESETS", str(RULESETS))
    run("decide", "--at", AT, "-", input='{"lead_id": "L1", "profile": {"country": "US"}}')
    created = run("keys", "create", "--name", "n", "--scope", "review").output.split()[2]
    commands = [
        ("keys", "list"),
        ("keys", "revoke", created),
        ("keys", "revoke", "no-such-key"),  # fails: exit 1
        ("why", "L1"),
        ("why", "nobody"),  # fails: exit 1
        ("audit", "list"),
        ("audit", "timeline", "L1"),
        ("audit", "export", "--format", "csv"),
        ("audit", "verify"),
        ("audit", "replay"),
        ("report", "funnel"),
        ("sla",),
    ]
    for command in commands:
        CliRunner().invoke(main, list(command))
    assert len(opened) >= len(commands) + 2
    left_open = [trail for trail in opened if _is_open(trail)]
    assert left_open == []


def _is_open(trail) -> bool:
    import sqlite3

    try:
        trail.db.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return False
    return True


def test_every_command_ends_a_library_error_the_same_way(tmp_path):
    """One handler (the `leadgate` group) for every package's errors: `error: …` on stderr, exit 1,
    no traceback, whichever command met it (an unknown key, event, lead or ruleset)."""
    db = str(tmp_path / "cli.db")
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"lead_id": "L-1", "profile": {"country": "US"}}))
    for args in (
        ("keys", "revoke", "nosuchkey", "--db", db),
        ("deliveries", "replay", "evt_nope", "--db", db),
        ("why", "L-nobody", "--db", db),
        ("evaluate", str(lead), "--ruleset", "nosuchruleset", "--dir", str(RULESETS)),
    ):
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output, (args, result.output)
