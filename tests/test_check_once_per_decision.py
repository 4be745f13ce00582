"""A decision checks the facts it was sent once (issue 15): the request is checked by `normalise`, and
its checked facts are merged into the lead's stored facts (engine.merging) without a second check.

- A spy on the one check function counts its calls: one per decision, for a new lead and for a lead
  with stored facts, through `service.decide` and through the HTTP API; one per item of a batch.
- The merge gives exactly what checking the merged whole gives (`normalise(merge_facts(...))`), the
  same values in the same key order (what is recorded and hashed), over generated leads decided
  twice through a real audit trail; and the same errors when the merged whole breaks a limit.
- Stored facts another ruleset decided (fields this one does not declare) are checked as a whole, as
  before: the same problem, named the same way.
"""

from __future__ import annotations

import json
import random

import pytest

from audit import merge_facts
from bench.leads import AT as BENCH_AT
from bench.leads import generate
from engine import FactsError, runtime
from engine.values import MAX_EVENTS
from service.decide import decide, decide_batch, facts_of, merged
from tests.conftest import AT, lead


@pytest.fixture
def checks(monkeypatch):
    """The models of every facts check made (CompiledRuleset.normalise and evaluate's own check)."""
    return counted_checks(monkeypatch)


def counted_checks(monkeypatch) -> list[str]:
    """Count every check of lead facts from now on: the name of each model checked, in order."""
    calls = []
    real = runtime.normalise

    def counting(model, facts):
        calls.append(model.name)
        return real(model, facts)

    monkeypatch.setattr(runtime, "normalise", counting)
    return calls


@pytest.fixture
def trail(make_trail, tmp_path):
    return make_trail(str(tmp_path / "once.db"))


def test_a_decision_checks_its_facts_once_for_a_new_and_a_known_lead(default, trail, checks):
    first = lead(lead_id="once-1", profile={"country": "US", "employees": 120}, answers={"budget": "yes"})
    decide(default, trail, first, at=AT)
    assert checks == ["default"]
    again = lead(
        lead_id="once-1",
        profile={"employees": 300, "country": None},
        events=[{"type": "demo_request", "at": AT}, {"id": "p1", "type": "pricing_page_view", "at": AT}],
    )
    reply, _ = decide(default, trail, again, at=AT)
    assert checks == ["default", "default"]  # the stored facts were not checked again
    facts = trail.lead_state("once-1").facts
    assert facts["profile"] == {"employees": 300}
    assert [e["type"] for e in facts["events"]] == ["demo_request", "pricing_page_view"]
    assert reply["stage"]


def test_a_batch_checks_each_item_once(default, trail, checks):
    items = [
        lead(lead_id="b-1", profile={"employees": 20}),
        lead(lead_id="b-2", events=[{"type": "demo_request", "at": AT}]),
        lead(lead_id="b-1", answers={"budget": "yes"}),  # sees item 0's facts, unchecked again
    ]
    decide_batch([default] * 3, trail, items, at=AT)
    assert checks == ["default"] * 3


def test_the_api_checks_a_decision_once(app, checks):
    from api.state import trail as app_trail
    from audit.keys import create

    with app.app_context():
        secret = create(app_trail(), "decide key", "decide")[1]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    for body in (
        {"lead_id": "api-1", "profile": {"employees": 120}},
        {"lead_id": "api-1", "events": [{"type": "demo_request", "at": "2026-11-23T10:00:00Z"}]},
    ):
        before = len(checks)
        reply = client.post("/v1/decisions", json=body, headers=headers)
        assert reply.status_code == 201, reply.get_json()
        assert len(checks) - before == 1


def _old_way(ruleset, stored, sent):
    return ruleset.normalise(merge_facts(stored, sent))


@pytest.mark.parametrize("name", ["default", "product-led", "doggie-delights"])
def test_merging_checked_facts_gives_what_checking_the_merged_whole_gives(
    registry, make_trail, tmp_path, name
):
    ruleset = registry.get(name)
    trail = make_trail(str(tmp_path / f"{name}.db"))
    rng = random.Random(7)
    compared = 0
    requests = generate(60, 3, ruleset.model)
    for i, request in enumerate(requests):
        # Leads come back: a second request for an earlier lead sends more of the generated facts.
        if i >= 20 and rng.random() < 0.6:
            earlier = requests[rng.randrange(i)]
            request = {**request, "lead_id": earlier["lead_id"]}
            if rng.random() < 0.5:
                request["events"] = [*(earlier.get("events") or [])[:2], *(request.get("events") or [])]
            if rng.random() < 0.3:
                request["profile"] = {**(request.get("profile") or {}), "employees": None}
        sent = facts_of(request)
        try:
            checked = ruleset.normalise(sent)
        except FactsError:
            continue
        stored = trail.lead_state(request["lead_id"]).facts
        try:
            expected = _old_way(ruleset, stored, sent)
        except FactsError as exc:
            with pytest.raises(FactsError) as got:
                merged(ruleset, stored, sent, checked)
            assert got.value.errors == exc.errors
            continue
        facts = merged(ruleset, stored, sent, checked)
        assert json.dumps(facts) == json.dumps(expected)  # same values, same key order
        compared += stored is not None
        decide(ruleset, trail, request, at=BENCH_AT)
    assert compared >= 10


def test_too_many_events_after_the_merge_is_the_same_error(default):
    stored = default.normalise(
        lead(events=[{"id": f"s{i}", "type": "page_view", "at": AT} for i in range(MAX_EVENTS)])
    )
    sent = lead(events=[{"id": "new", "type": "demo_request", "at": AT}])
    with pytest.raises(FactsError) as old:
        _old_way(default, dict(stored), sent)
    with pytest.raises(FactsError) as new:
        merged(default, dict(stored), sent, default.normalise(sent))
    assert new.value.errors == old.value.errors == {"events": [f"at most {MAX_EVENTS} events per lead"]}


def test_stored_facts_another_ruleset_decided_are_checked_whole_as_before(registry):
    dogs, default = registry.get("doggie-delights"), registry.get("default")
    unknown = next(f for f in dogs.model.profile_fields if f not in default.model.profile_fields)
    value = {"number": 5, "boolean": True, "list": ["a"], "date": "2026-01-01"}.get(
        dogs.model.profile_fields[unknown], "text"
    )
    stored = dict(dogs.normalise(lead(profile={unknown: value})))
    sent = lead(profile={"employees": 20})
    with pytest.raises(FactsError) as old:
        _old_way(default, stored, sent)
    with pytest.raises(FactsError) as new:
        merged(default, stored, sent, default.normalise(sent))
    assert new.value.errors == old.value.errors
    assert f"profile.{unknown}" in new.value.errors
