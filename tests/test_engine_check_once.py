"""Facts are checked once, and the engine's one reused session never carries anything between leads.

- `CompiledRuleset.normalise` is the one check: it returns `CheckedFacts`, which `evaluate` takes
  without checking again; evaluating the raw facts (checked inside) and evaluating the checked ones
  give identical decisions and facts, over a generated mix of leads for every shipped ruleset.
- Anything else is still checked: a plain dict, a copy of checked facts, facts checked by another
  ruleset (a shadow evaluates the live facts under another version).
- The session is reused from one evaluation to the next: the order in which leads are evaluated
  never changes a decision, and a session left holding a fact is replaced, not reused.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.leads import generate
from engine import CheckedFacts, FactsError, compile_source, runtime
from engine.actions import Run
from tests.conftest import AT, RULESETS, lead
from tests.test_check_once_per_decision import counted_checks
from tests.test_properties import REGISTRY, SETTINGS, with_ruleset


@settings(SETTINGS, max_examples=80)
@given(with_ruleset())
def test_checked_facts_decide_exactly_as_raw_facts(case):
    name, raw = case
    ruleset = REGISTRY.get(name)
    checked = ruleset.normalise(raw)
    assert isinstance(checked, CheckedFacts)
    through_check = ruleset.evaluate(raw, AT)
    fast = ruleset.evaluate(checked, AT)
    assert fast.decision == through_check.decision
    assert fast.facts == through_check.facts == checked


@settings(SETTINGS, max_examples=10)
@given(st.integers(0, 2**31), st.sampled_from(["default", "product-led", "doggie-delights"]))
def test_the_benchmark_mix_decides_the_same_either_way(seed, name):
    ruleset = REGISTRY.get(name)
    for raw in generate(40, seed, ruleset.model):
        try:
            checked = ruleset.normalise(raw)
        except FactsError as exc:  # the mix is made for the default ruleset: the check refuses, both ways
            with pytest.raises(FactsError) as again:
                ruleset.evaluate(raw, AT)
            assert again.value.errors == exc.errors
            continue
        assert ruleset.evaluate(checked, AT).decision == ruleset.evaluate(raw, AT).decision


def test_only_this_rulesets_own_checked_facts_skip_the_check(monkeypatch):
    default, other = REGISTRY.get("default"), REGISTRY.get("product-led")
    facts = lead(profile={"country": "US", "employees": 120}, events=[{"type": "demo_request", "at": AT}])
    checked = default.normalise(facts)
    calls = counted_checks(monkeypatch)
    default.evaluate(checked, AT)
    assert calls == []  # checked once, by normalise above
    default.evaluate(dict(checked), AT)  # a copy is a plain dict: it could have been changed
    default.evaluate(facts, AT)
    assert calls == ["default", "default"]
    other.evaluate(checked, AT)  # checked by another ruleset (as a shadow evaluates live facts)
    assert calls == ["default", "default", "product-led"]
    # Another compile of the same source has its own model: its checked facts are checked again.
    again = compile_source(default.source, "again.yaml")
    again.evaluate(checked, AT)
    assert calls[-1] == "default" and len(calls) == 4


def test_the_default_path_still_refuses_bad_facts():
    default = REGISTRY.get("default")
    with pytest.raises(FactsError) as err:
        default.evaluate(lead(profile={"employees": "many"}), AT)
    assert "profile.employees" in err.value.errors
    # A dict that merely looks checked is checked.
    with pytest.raises(FactsError):
        default.evaluate({"lead_id": "L1", "profile": {"employees": "many"}, "answers": {}, "events": []}, AT)


def test_the_order_of_evaluation_never_changes_a_decision():
    ruleset = compile_source((RULESETS / "default.yaml").read_text(), "default.yaml")
    mix = generate(300, 11)
    forward = [ruleset.evaluate(facts, AT).decision for facts in mix]
    order = list(range(len(mix)))
    random.Random(3).shuffle(order)
    for i in order:
        assert ruleset.evaluate(mix[i], AT).decision == forward[i]


def test_a_session_left_holding_a_fact_is_replaced_not_reused(monkeypatch):
    ruleset = compile_source((RULESETS / "default.yaml").read_text(), "default.yaml")
    mix = generate(30, 5)
    expected = [ruleset.evaluate(facts, AT).decision for facts in mix]
    first_session = ruleset._sid
    real_held = Run.held
    # Forget to retract the totals: the session still holds them, so it must not serve the next lead.
    monkeypatch.setattr(Run, "held", lambda run: [t for t in real_held(run) if '"score:' not in t])
    decision = ruleset.evaluate(mix[0], AT).decision
    assert decision == expected[0]
    assert ruleset._sid != first_session
    monkeypatch.undo()
    second_session = ruleset._sid
    assert [ruleset.evaluate(facts, AT).decision for facts in mix] == expected
    assert ruleset._sid == second_session  # a clean session is reused


def test_an_event_property_that_reads_like_an_event_fact_is_not_taken_for_one():
    # Actions read the matched events' indexes from durable_rules' message, which embeds our own fact
    # text: a value copying that text is escaped inside it, so it is never taken for an event.
    default = REGISTRY.get("default")
    sneaky = '{"id": "e7", "t": "ev", "sid": "1"'
    facts = lead(
        profile={"country": "US"},
        events=[
            {"type": "content_download", "at": "2026-11-20T09:00:00Z", "properties": {"content": sneaky}},
            {"type": "content_download", "at": "2026-11-21T09:00:00Z", "properties": {"content": "ebook"}},
        ],
    )
    reasons = {r["rule"]: r for r in default.evaluate(facts, AT).decision["reasons"]}
    counted = reasons["eng-other-content"]["effects"][-1]["events"]
    assert [e["at"] for e in counted] == ["2026-11-20T09:00:00Z", "2026-11-21T09:00:00Z"]


def test_a_failure_while_clearing_the_session_keeps_the_decision_and_replaces_the_session(monkeypatch):
    ruleset = compile_source((RULESETS / "default.yaml").read_text(), "default.yaml")
    mix = generate(10, 9)
    expected = [ruleset.evaluate(facts, AT).decision for facts in mix]
    before = ruleset._sid
    real = runtime.dre

    class Failing:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def retract_facts(*args):
            raise real.error("retract failed")

    monkeypatch.setattr(runtime, "dre", Failing())
    assert ruleset.evaluate(mix[0], AT).decision == expected[0]
    assert ruleset._sid != before
    monkeypatch.undo()
    assert [ruleset.evaluate(facts, AT).decision for facts in mix] == expected
