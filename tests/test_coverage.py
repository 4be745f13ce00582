"""Production coverage: rules that fire on recorded decisions, rules that never do, conditions never true."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from audit import AuditTrail
from cli import main
from engine import Registry, compile_source
from service import diff
from service.coverage import coverage, since_time
from service.decide import decide
from tests.conftest import AT, mini_source

RULES = [
    {
        "id": "r-always",
        "description": "Every lead downloaded",
        "when": {"event": "content_download"},
        "then": {"points": {"engagement": 10}},
    },
    {
        "id": "r-some",
        "description": "Big companies",
        "when": {"profile.employees": {"gte": 50}},
        "then": {"points": {"fit": 60}},
    },
    {
        "id": "r-never",
        "description": "A country nobody is in",
        "when": {"profile.country": "ZZ"},
        "then": {"points": {"fit": 5}},
    },
    {
        "id": "r-dead-part",
        "description": "Big, from a channel nobody uses",
        "when": {"profile.employees": {"gte": 50}, "channel": "fax"},
        "then": {"ready": True},
    },
]
LEADS = [
    {
        "lead_id": f"C{n}",
        "channel": "form",
        "profile": {"employees": size, "country": "US"},
        "events": [
            {"type": "content_download", "at": "2026-11-20T10:00:00Z", "properties": {"content": "ebook"}}
        ],
    }
    for n, size in enumerate([10, 80, 500, 20])
]


@pytest.fixture
def trail(tmp_path):
    compiled = compile_source(mini_source(RULES), "mini.yaml")
    opened = AuditTrail(tmp_path / "cov.db", durability="normal")
    for lead in LEADS:
        decide(compiled, opened, lead, at=AT)
    decide(compiled, opened, {**LEADS[0], "lead_id": "P1", "channel": "fax"}, at=AT, kind="preview")
    yield opened
    opened.close()


def test_each_rule_is_counted_and_dead_rules_and_conditions_are_named(trail):
    report = coverage(Registry(), trail, "2026-11-01T00:00:00Z")
    assert report["decisions"] == 4  # the preview is not a production decision
    [v] = report["rulesets"]
    assert v["ruleset"]["name"] == "mini" and v["leads"] == 4
    fired = {r["rule"]: (r["fired"], r["share"]) for r in v["rules"]}
    assert fired == {"r-always": (4, 1.0), "r-some": (2, 0.5), "r-never": (0, 0.0), "r-dead-part": (0, 0.0)}
    assert v["never_fired"] == ["r-never", "r-dead-part"]
    assert v["fired_for_every_lead"] == ["r-always"]
    assert v["conditions_never_true"] == [
        {"rule": "r-never", "condition": "profile.country is ZZ"},
        {"rule": "r-dead-part", "condition": "channel is fax"},  # its employees test was true twice
    ]


def test_the_window_bounds_the_decisions(trail):
    assert coverage(Registry(), trail, "2026-11-24T00:00:00Z")["rulesets"] == []
    assert coverage(Registry(), trail, None, "2026-11-23T10:00:00Z")["decisions"] == 0  # until is exclusive


def test_spans_count_back_from_now():
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert since_time("30d", now) == "2026-10-30T12:00:00Z"
    assert since_time("12h", now) == "2026-11-29T00:00:00Z"
    assert since_time("2w", now) == "2026-11-15T12:00:00Z"
    assert since_time("2026-11-01", now) == "2026-11-01T00:00:00Z"


def test_the_cli_prints_coverage_as_text_and_json(trail):
    runner = CliRunner()
    args = ["rulesets", "coverage", "--since", "2026-11-01T00:00:00Z", "--db", trail.path]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert (
        "never fired: r-never, r-dead-part" in text.output and "  r-dead-part: channel is fax" in text.output
    )
    data = json.loads(runner.invoke(main, [*args, "--json"]).output)
    assert data["rulesets"][0]["fired_for_every_lead"] == ["r-always"]
    bad = runner.invoke(main, ["rulesets", "coverage", "--since", "last month", "--db", trail.path])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_the_review_page_shows_coverage(tmp_path, make_app):
    from api.state import registry
    from api.state import trail as app_trail
    from audit.keys import create
    from tests.conftest import RULESETS
    from tests.test_review import sign_in

    app = make_app(db=str(tmp_path / "page.db"), rulesets=str(RULESETS), secure_cookies=0)
    with app.app_context():
        decide(
            registry().get("default"),
            app_trail(),
            {"lead_id": "CV", **{k: LEADS[1][k] for k in ("profile", "events")}},
        )
        key = create(app_trail(), "ana", "review")[1]
    client = app.test_client()
    assert sign_in(client, key).status_code == 302
    page = client.get("/review/coverage?since=30d")
    assert page.status_code == 200
    assert "1 decisions recorded" in page.text and "<code>competitor</code>" in page.text  # never fired
    assert "not a window" in client.get("/review/coverage?since=soon").text


def test_the_decision_diff_has_a_coverage_section():
    base = mini_source(RULES)
    head = mini_source([*RULES[:2], {**RULES[2], "when": {"profile.country": "US"}}, RULES[3]], version=2)
    leads = [(lead["lead_id"], lead, AT, None) for lead in LEADS]
    report = diff.markdown(diff.run(base, head, leads, workers=1), "main", "head", "four leads")
    section = report.split("### Rule coverage on these 4 leads", 1)[1]
    assert "| never fire | `r-never`, `r-dead-part` | `r-dead-part` |" in section
    assert "| fire for every lead | `r-always` | `r-always`, `r-never` |" in section
