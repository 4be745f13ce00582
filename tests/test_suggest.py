"""Suggestions from outcomes: explained, refused on small samples, written as a reviewable new version."""

from __future__ import annotations

import difflib
import sys

import pytest
from click.testing import CliRunner

from audit import reports
from cli import main
from engine import compile_source
from service.suggest import Suggestion, SuggestionRefused, _write, suggest
from tests.conftest import RULESETS

AT = "2026-11-24T00:00:00Z"  # the history runs through October: most leads have settled


@pytest.fixture(scope="module")
def items(history_db):
    return reports.leads(history_db[1])


def test_it_learns_which_rules_find_won_leads(default, items):
    result = suggest(default, items, AT)
    points = {p["rule"]: p for p in result.points}
    # In the history, demo requests convert and e-book downloads and small companies do not.
    assert points["eng-demo-request"]["coefficient"] > 0 and points["eng-demo-request"]["suggested"] > 0
    assert points["eng-other-content"]["coefficient"] < 0 and points["eng-other-content"]["suggested"] < 0
    assert points["fit-company-size-small"]["suggested"] < 0 < points["fit-senior-executive"]["suggested"]
    # Rules that never fired for enough leads keep their points and are not fitted.
    assert points["eng-webinar-attended"] == {
        **points["eng-webinar-attended"],
        "coefficient": None,
        "suggested": 12,
    }
    (engagement,) = [t for t in result.thresholds if t["score"] == "engagement"]
    assert engagement["f1_suggested"] > engagement["f1_current"]
    assert set(result.handoff) == {"current", "proposed"}
    assert result.handoff["current"]["precision"] == pytest.approx(0.32, abs=0.05)


def test_the_proposal_is_the_next_version_with_only_the_numbers_changed(default, items):
    result = suggest(default, items, AT)
    proposed = compile_source(result.source, "default.yaml")
    assert proposed.version == default.version + 1
    changed = [
        line
        for line in difflib.unified_diff(
            default.source.splitlines(), result.source.splitlines(), lineterm="", n=0
        )
        if line.startswith("+") and not line.startswith("+++")
    ]
    moved = sum(p["suggested"] != p["current"] for p in result.points)
    rethresholded = {t["rule"] for t in result.thresholds if t["suggested"] != t["current"]}
    assert len(changed) == 1 + moved + len(rethresholded)  # version, points lines, threshold lines
    assert changed[0] == f"+version: {default.version + 1}"
    points = {(r.id, s): v for r in proposed.model.rules for s, v in (r.then.get("points") or {}).items()}
    assert all(points[(p["rule"], p["score"])] == p["suggested"] for p in result.points)


def test_it_refuses_small_samples(default, items):
    with pytest.raises(SuggestionRefused, match="at least 5000"):
        suggest(default, items, AT, min_sample=5000)
    with pytest.raises(SuggestionRefused, match="30 of each"):
        suggest(default, [x for x in items if not x.won][:400], AT)


def test_the_command_prints_and_writes_the_proposal(history_db, tmp_path):
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    (rulesets / "default.yaml").write_text((RULESETS / "default.yaml").read_text())
    env = {"LEADGATE_DB": str(history_db[0])}
    args = ["rulesets", "suggest", "--dir", str(rulesets), "--at", AT]
    shown = CliRunner().invoke(main, args, env=env)
    assert shown.exit_code == 0, shown.output
    assert "logistic regression" in shown.output and "hand-off to sales: precision" in shown.output
    written = CliRunner().invoke(main, [*args, "--write"], env=env)
    assert written.exit_code == 0 and "leadgate rulesets diff --base HEAD" in written.output
    before = compile_source((RULESETS / "default.yaml").read_text(), "default.yaml").version
    assert compile_source((rulesets / "default.yaml").read_text(), "default.yaml").version == before + 1
    refused = CliRunner().invoke(main, [*args, "--min-sample", "99999"], env=env)
    assert refused.exit_code == 1 and "no suggestion" in refused.output


def test_the_edit_keeps_comments_and_touches_only_the_number(default):
    """Written through ruamel.yaml's positions: a comment on the edited line and the wrapped lists survive."""
    line = "    then: {points: {engagement: 30}, funnel: bofu, ready: true, qualify: {need: met}}"
    source = default.source.replace(line, line + "  # agreed with sales in Q3")
    assert source != default.source
    compiled = compile_source(source, "default.yaml")
    change = {"rule": "eng-demo-request", "score": "engagement", "current": 30, "suggested": 42.5}
    written = _write(compiled, Suggestion(ruleset={}, labelled=0, won=0, points=[change]))
    expected = source.replace(line, line.replace("engagement: 30", "engagement: 42.5"))
    assert written == expected.replace(
        f"version: {compiled.version}\n", f"version: {compiled.version + 1}\n", 1
    )


def test_without_scikit_learn_it_says_how_to_install_it(default, items, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import fails as if not installed
    with pytest.raises(SuggestionRefused, match=r"pip install -e '\.\[suggest\]'"):
        suggest(default, items, AT)
