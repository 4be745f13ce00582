"""The shortcuts that cut the engine's CPU give what the plain ways gave (issue 15, fourth round).

- `times.seconds` is `parse_time(...).timestamp()`, or the same FactsError, for any text or value;
  `format_time` writes what the aware isoformat wrote.
- The initial facts of an evaluation are exactly the JSON the encoder writes (event facts are written
  with an f-string, and durable_rules' messages are searched for that text), for every shipped ruleset.
- The one-pass event aggregates (count, days_since) equal a scan of the events per aggregate.
- Events put in canonical order with one key per event come out as sorting twice put them.
- `bench/engine.py --against` runs, and a tree compared with itself differs on no decision.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.leads import generate
from engine import FactsError
from engine.actions import Run
from engine.eventchecks import event_order, event_time, in_order
from engine.features import EventAggregates, event_ages, where_matches
from engine.runtime import _encode
from engine.times import format_time, parse_time, seconds
from tests.conftest import AT, ROOT
from tests.test_properties import REGISTRY

RULESETS = ("default", "product-led", "doggie-delights")


def _outcome(function, value):
    try:
        return function(value)
    except FactsError as exc:
        return ("FactsError", exc.errors)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(format_time),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        st.datetimes().map(lambda d: d.isoformat() + "z"),
        st.datetimes().map(lambda d: d.isoformat()),
        st.text(max_size=30).map(lambda t: t + "Z"),
        st.text(max_size=30),
        st.none(),
        st.integers(),
    )
)
def test_seconds_is_the_timestamp_of_parse_time(value):
    assert _outcome(lambda v: seconds(v, "at"), value) == _outcome(
        lambda v: parse_time(v, "at").timestamp(), value
    )


@settings(max_examples=300, deadline=None, database=None)
@given(st.datetimes(), st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_format_time_writes_what_the_aware_isoformat_wrote(naive, offset_minutes):
    moment = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return  # outside the years 1 to 9999 in UTC: parse_time refuses such a time before this
    spec = "microseconds" if utc.microsecond else "seconds"
    assert format_time(moment) == utc.isoformat(timespec=spec)[:-6] + "Z"


def test_the_initial_facts_are_the_json_the_encoder_writes():
    at = parse_time(AT, "at")
    for name in RULESETS:
        ruleset = REGISTRY.get(name)
        checked = 0
        for raw in generate(400, 11, ruleset.model):
            try:
                facts = ruleset.normalise(raw)
            except FactsError:
                continue
            run = Run(ruleset.model, ruleset.plan, facts, at)
            run.bind("12", None, None)
            text, held = ruleset._initial_facts(run, facts, at, "12")
            assert held == _encode(json.loads("[" + held + "]"))[1:-1]
            assert text == "[" + ",".join([held, *run.held()]) + "]"
            events = [f for f in json.loads(text) if f["t"] == "ev"]
            assert [f["age"] for f in events] == [
                age
                for e, age in zip(facts["events"], event_ages(facts["events"], at), strict=True)
                if e["type"] in ruleset.plan.event_types
            ]
            checked += 1
        assert checked > 200, name


def _scan(feature, events, ages):
    """count / days_since the plain way: every event tested against the aggregate."""
    types, where, within, excluded = feature.spec
    matching = [
        age
        for event, age in zip(events, ages, strict=True)
        if (types == ("any",) and event["type"] not in excluded or event["type"] in types)
        and (within is None or age <= within)
        and (not where or where_matches(event.get("properties", {}), where))
    ]
    if feature.kind == "count":
        return len(matching)
    return min(matching) if matching else None


def test_event_aggregates_in_one_pass_equal_a_scan_per_aggregate():
    at = parse_time(AT, "at")
    for name in RULESETS:
        ruleset = REGISTRY.get(name)
        aggregates = EventAggregates(ruleset.plan.features)
        assert aggregates.features, name
        for raw in generate(400, 12, ruleset.model):
            try:
                facts = ruleset.normalise(raw)
            except FactsError:
                continue
            ages = event_ages(facts["events"], at)
            values = aggregates.values(facts["events"], ages)
            assert values == {f.name: _scan(f, facts["events"], ages) for f in aggregates.features}


def test_an_event_type_no_aggregate_admits_counts_for_none():
    ruleset = REGISTRY.get("default")
    aggregates = EventAggregates(ruleset.plan.features)
    values = aggregates.values([{"type": "no_such_type", "at": AT}], [1.0])
    for feature in aggregates.features:
        admits_any = feature.spec[0] == ("any",)
        if feature.kind == "count":
            assert values[feature.name] == (1 if admits_any else 0)
        else:
            assert values[feature.name] == (1.0 if admits_any else None)


def test_the_engine_bench_against_the_same_tree_differs_on_no_decision():
    out = subprocess.run(
        [sys.executable, "bench/engine.py", "--leads", "60", "--evaluations", "60", "--no-pin"]
        + ["--against", str(ROOT), "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if "decisions differing" in line]
    assert len(lines) == 3, out
    assert all(line.endswith("decisions differing: 0 of 60") for line in lines), out


def _sorted_twice(events: list[dict]) -> list[dict]:
    """The canonical order the plain way: by time, id and type; then by the whole order if any tie."""
    out = sorted(events, key=event_time)
    if any(a == b for a, b in itertools.pairwise(map(event_time, out))):
        out.sort(key=event_order)
    return out


_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["page_view", "email_open"]),
            "at": st.sampled_from([AT, "2026-11-22T10:00:00Z"]),
        },
        optional={
            "id": st.sampled_from(["a", "b"]),
            "properties": st.dictionaries(
                st.sampled_from(["path", "n"]), st.sampled_from(["/x", "/y", 1]), max_size=2
            ),
        },
    ),
    max_size=12,
)


@settings(max_examples=500, deadline=None, database=None)
@given(_EVENTS)
def test_in_order_is_the_order_of_sorting_by_time_then_by_the_whole_order(events):
    ordered = in_order(events)
    expected = _sorted_twice(events)
    assert ordered == expected
    assert [id(e) for e in ordered] == [
        id(e) for e in expected
    ]  # the same events, equal ones in the same order
