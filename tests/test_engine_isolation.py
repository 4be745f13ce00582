"""Evaluations are isolated, thread-safe, deterministic and fail loudly (durable_rules_notes.md)."""

from __future__ import annotations

import json
import random
import threading

import pytest

from engine import Deployment, EvaluationError, Registry
from engine.decision import canonical
from tests.conftest import AT, RULESETS, lead, with_version


def sample_leads(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    types = [
        "email_open",
        "page_view",
        "pricing_page_view",
        "content_download",
        "demo_request",
        "free_trial",
        "webinar_attended",
        "unsubscribe",
    ]
    out = []
    for i in range(n):
        events = [
            {
                "type": rnd.choice(types),
                "at": f"2026-{rnd.randint(8, 11):02d}-{rnd.randint(1, 20):02d}T10:00:00Z",
                "properties": {"content": rnd.choice(["whitepaper", "ebook"])},
            }
            for _ in range(rnd.randint(0, 8))
        ]
        out.append(
            lead(
                lead_id=f"L{i}",
                events=events,
                profile={
                    "email": f"p{i}@{rnd.choice(['acme.io', 'gmail.com', 'globex.com'])}",
                    "country": rnd.choice(["US", "DE", "BR", "GB"]),
                    "employees": rnd.choice([5, 40, 300, 9000]),
                    "seniority": rnd.choice(["vp", "manager", "individual", "director"]),
                    "industry": "software",
                },
                answers=rnd.choice([{}, {"budget": "yes", "talk_to_sales": "yes"}, {"budget": 500}]),
            )
        )
    return out


def test_no_fact_leaks_from_one_lead_to_the_next(default):
    rich = lead(
        lead_id="rich",
        profile={"email": "a@acme.io", "country": "US", "seniority": "vp", "employees": 300},
        events=[{"type": "demo_request", "at": AT}],
        answers={"budget": "yes"},
    )
    empty = lead(lead_id="empty")
    alone = canonical(default.evaluate(empty, AT).decision)
    default.evaluate(rich, AT)
    assert canonical(default.evaluate(empty, AT).decision) == alone


def test_the_same_inputs_give_the_same_decision_and_reasons(default):
    for facts in sample_leads(50):
        first = default.evaluate(facts, AT)
        again = default.evaluate(json.loads(json.dumps(first.facts)), AT)
        assert canonical(again.decision) == canonical(first.decision)
        assert again.facts == first.facts


def test_event_order_in_the_request_does_not_matter(default):
    facts = sample_leads(20, seed=3)[-1]
    facts["events"] = [
        {"type": "page_view", "at": f"2026-11-{d:02d}T00:00:00Z", "id": f"e{d}"} for d in range(1, 9)
    ]
    shuffled = dict(facts, events=list(reversed(facts["events"])))
    assert canonical(default.evaluate(facts, AT).decision) == canonical(
        default.evaluate(shuffled, AT).decision
    )


def test_concurrent_threads_get_exactly_the_serial_results(default):
    # The stock durable_rules Host steals in-flight actions from its timer threads; leadgate drives
    # the C module itself with no such threads, so results under threads equal serial results.
    leads = sample_leads(300)
    expected = [canonical(default.evaluate(f, AT).decision) for f in leads]
    got: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(offset: int):
        try:
            for _ in range(3):
                for i in range(offset, len(leads), 6):
                    got[i] = canonical(default.evaluate(leads[i], AT).decision)
                    assert got[i] == expected[i], f"lead {i} differs under threads"
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert [got[i] for i in range(len(leads))] == expected
    assert not [t for t in threading.enumerate() if "Timer" in type(t).__name__]


def test_more_evaluations_than_durable_rules_live_session_limit(mini):
    # durable_rules holds at most 1,024 live sessions per ruleset: each evaluation must delete its own.
    rs = mini(
        [{"id": "r", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": 5}}}]
    )
    for i in range(1500):
        assert (
            rs.evaluate(lead(lead_id=f"L{i}", profile={"country": "US"}), AT).decision["scores"]["fit"] == 5.0
        )


def test_two_versions_of_one_ruleset_live_side_by_side():
    source = with_version((RULESETS / "default.yaml").read_text(), 1)
    v2 = with_version(source, 2).replace(
        "when: {profile.industry: {in_list: target_industries}}\n    then: {points: {fit: 15}}",
        "when: {profile.industry: {in_list: target_industries}}\n    then: {points: {fit: 25}}",
    )
    registry = Registry()
    v1 = registry.compile(source, "default.yaml")
    registry.deploy(Deployment(active={"default": registry.compile(v2, "default.yaml")}, candidates=[v1]))
    facts = lead(profile={"industry": "software", "country": "US"}, events=[{"type": "free_trial", "at": AT}])
    assert registry.get("default", 1).evaluate(facts, AT).decision["scores"]["fit"] == 25.0
    assert registry.get("default", 2).evaluate(facts, AT).decision["scores"]["fit"] == 35.0
    assert registry.get("default").version == 2
    assert registry.get("default", 1).digest != registry.get("default", 2).digest


def test_compiling_the_same_source_twice_reuses_the_compiled_ruleset():
    registry = Registry()
    source = (RULESETS / "default.yaml").read_text()
    reformatted = "# a comment changes nothing\n" + source
    assert registry.compile(source, "a.yaml") is registry.compile(reformatted, "b.yaml")


def test_an_exception_in_an_action_fails_the_evaluation_and_the_ruleset_keeps_working(mini, monkeypatch):
    # durable_rules swallows exceptions raised in actions and carries on; leadgate must not.
    rs = mini(
        [{"id": "r", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": 5}}}]
    )
    from engine.actions import Run

    def broken(self, *args):
        raise ZeroDivisionError("boom")

    with monkeypatch.context() as m:
        m.setattr(Run, "_points", broken)
        with pytest.raises(EvaluationError, match="boom") as err:
            rs.evaluate(lead(profile={"country": "US"}), AT)
        assert err.value.rule == "r"
    assert rs.evaluate(lead(profile={"country": "US"}), AT).decision["scores"]["fit"] == 5.0
