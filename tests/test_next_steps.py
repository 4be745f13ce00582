"""Issue 14: a next step fits the decision it comes with.

Before the fix a decision whose next step was `ask_questions` could come with an empty
`next_questions` (route `bring_in_authority`), and the not-a-lead route thanked a lead that downloaded
nothing for "your download". `rulesets validate` now warns about both, and the shipped rulesets have
no such warning.
"""

from __future__ import annotations

import re
import shutil

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from engine.cases import cases_path
from engine.probe import leads_of_cases, probe
from tests.conftest import AT, RULESETS
from tests.history import POOR_FIT

POOR_FIT_READY = {
    "lead_id": "P-1",
    "profile": {**POOR_FIT, "email": "lee@school.edu"},
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
}


def test_bring_in_authority_with_authority_answered_no_longer_asks_nothing(default):
    for answer in ("decision_maker", "influencer", "user"):
        lead = {
            **POOR_FIT_READY,
            "answers": {"authority": answer, "need": "yes", "timeline": "now", "budget": "yes"},
        }
        decision = default.evaluate(lead, AT).decision
        assert decision["route"]["id"] == "bring_in_authority"
        step = decision["route"]["next_step"]
        assert step["action"] != "ask_questions" or decision["next_questions"], (
            answer,
            decision["next_questions"],
        )
    asked = default.evaluate(POOR_FIT_READY, AT).decision
    assert asked["route"]["next_step"]["action"] == "ask_questions"
    assert [q["id"] for q in asked["next_questions"]][-1] == "authority"


def test_not_a_lead_route_does_not_thank_for_a_download_never_made(default):
    decision = default.evaluate({"lead_id": "N-1", "profile": {"country": "US"}}, AT).decision
    assert decision["route"]["id"] == "not_a_lead"
    assert not re.search(r"download", decision["route"]["next_step"]["text"], re.IGNORECASE)


SHIPPED = {name: leads_of_cases(RULESETS / f"{name}.cases.yaml") for name in ("default", "doggie-delights")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_ask_questions_always_comes_with_questions(registry, data):
    name = data.draw(st.sampled_from(sorted(SHIPPED)))
    compiled = registry.get(name)
    _, facts, at = data.draw(st.sampled_from(SHIPPED[name]))
    answers = {
        q.id: data.draw(st.sampled_from(q.answers))
        for q in compiled.model.questions
        if q.answers and data.draw(st.booleans())
    }
    decision = compiled.evaluate({**facts, "answers": answers}, at).decision
    if decision["route"]["next_step"]["action"] == "ask_questions":
        assert decision["next_questions"], (name, facts["lead_id"], answers, decision["route"]["id"])


def test_shipped_rulesets_have_no_next_step_warning(registry):
    for name, leads in SHIPPED.items():
        assert probe(registry.get(name), leads) == []
    out = CliRunner().invoke(main, ["rulesets", "validate", "--dir", str(RULESETS)])
    assert out.exit_code == 0 and "warning" not in out.output, out.output


def test_validate_warns_about_next_steps_that_do_not_fit(tmp_path):
    """The default ruleset as it was before the fix: both warnings, each naming a lead that shows it."""
    shutil.copy(cases_path(RULESETS / "default.yaml"), tmp_path)
    source = (RULESETS / "default.yaml").read_text()
    source = re.sub(r"(?m)^    next_step_when_answered: .*\n", "", source)
    source = source.replace(
        "Thanks for your interest! We will keep you posted.", "Thanks! Your download is on its way."
    )
    (tmp_path / "default.yaml").write_text(source)
    out = CliRunner().invoke(main, ["rulesets", "validate", "--dir", str(tmp_path), "default"])
    assert out.exit_code == 0, out.output  # warnings, not problems
    warnings = [line for line in out.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, out.output
    text = "\n".join(warnings)
    for route in ("bring_in_authority", "sdr_qualification"):
        assert f"[{route}] route {route} asks questions, but case " in text
        assert "reaches it with none left to ask: give it a next_step_when_answered" in text
    assert "[not_a_lead] route not_a_lead's text says 'Your download', but case" in text
    assert "without any content_download event" in text
