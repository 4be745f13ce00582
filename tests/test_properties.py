"""Properties of the engine that must hold for every input, checked with hypothesis.

- Evaluation is deterministic: the same facts at the same time give the same decision, whatever the
  order of the events, whichever compile of the same source evaluates them.
- An event that only ever takes points away from a score never raises that score.
- Arbitrary JSON never crashes validation: it is refused with a FactsError (or a 400 at the API's
  parser), never another exception.
- A ruleset dumped and loaded again, in any YAML layout, keeps its digest.

Generation is derandomized with no example database, so CI tries the same inputs every run.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.errors import ApiError
from api.parsing import loads
from engine import EngineError, FactsError, Registry, compile_source, digest_of
from engine.facts import normalise
from engine.files import load_directory
from engine.vocabulary import EVENT_TYPES
from engine.yamlsource import load
from tests.conftest import AT, RULESETS, mini_source

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NOW = datetime.fromisoformat(AT.replace("Z", "+00:00"))
NAMES = ["default", "doggie-delights", "product-led"]

# -- leads ----------------------------------------------------------------------------------------

PROFILE = {
    "country": st.sampled_from(["US", "DE", "FR", "GB", "ES", "IN", "BR", "JP"]),
    "industry": st.sampled_from(["software", "finance", "education", "retail", "healthcare", "other"]),
    "employees": st.integers(1, 100_000),
    "annual_revenue": st.integers(0, 10**10),
    "seniority": st.sampled_from(["c_level", "vp", "director", "manager", "individual", "student"]),
    "department": st.sampled_from(["marketing", "sales", "it", "finance", "hr"]),
    "job_title": st.sampled_from(["VP Marketing", "Student", "Head of Data", "Intern", "Chief of Staff"]),
    "email": st.sampled_from(["ana@acme.io", "test@gmail.com", "li@globex.com", "x@example.org"]),
    "company": st.sampled_from(["Acme", "test", "Globex", "Initech"]),
    "region": st.sampled_from(["US-CA", "US-AK", "HI", "Bavaria"]),
    "household_income": st.integers(0, 500_000),
    "pets": st.lists(st.sampled_from(["dog", "cat", "puppy", "senior dog"]), max_size=3),
}


def event(types=EVENT_TYPES):
    return st.builds(
        lambda kind, minutes, content: {
            "type": kind,
            "at": (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            **({"properties": {"content": content}} if content else {}),
        },
        st.sampled_from(types),
        st.integers(0, 60 * 24 * 120),
        st.sampled_from([None, "whitepaper", "ebook", "case_study", "webinar"]),
    )


_PROPERTY = {
    "number": st.integers(0, 20),
    "string": st.sampled_from(["dashboards", "rows", "hubspot", "team", "alerts"]),
    "boolean": st.booleans(),
}


def declared_event(etype):
    """An event of a ruleset's own type, with values of its declared property types."""
    return st.builds(
        lambda minutes, props: {
            "type": etype.name,
            "at": (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            **({"properties": props} if props else {}),
        },
        st.integers(0, 60 * 24 * 60),
        st.fixed_dictionaries({}, optional={k: _PROPERTY[t] for k, t in etype.properties.items()}),
    )


def leads(ruleset):
    questions = ruleset.model.questions
    answers = st.fixed_dictionaries(
        {},
        optional={
            q.id: st.sampled_from(q.answers) | (st.integers(0, 10**6) if q.amount else st.nothing())
            for q in questions
        },
    )
    profile = st.fixed_dictionaries(
        {}, optional={k: v for k, v in PROFILE.items() if k in ruleset.model.profile_fields}
    )
    return st.fixed_dictionaries(
        {
            "lead_id": st.just("P-1"),
            "profile": profile,
            "answers": answers,
            "events": st.lists(
                st.one_of(
                    event(),
                    *map(declared_event, [e for e in ruleset.model.event_types.values() if e.declared]),
                ),
                max_size=8,
            ),
        },
        optional={"channel": st.sampled_from(["demo_form", "chatbot", "import"])},
    )


def _shipped_registry():
    reg = Registry()
    assert load_directory(reg, RULESETS) == []
    return reg


REGISTRY = _shipped_registry()


def with_ruleset():
    """(name, lead) for every shipped active ruleset."""
    return st.sampled_from(NAMES).flatmap(lambda name: st.tuples(st.just(name), leads(REGISTRY.get(name))))


# -- determinism ----------------------------------------------------------------------------------


@settings(SETTINGS, max_examples=60)
@given(with_ruleset(), st.randoms(use_true_random=False))
def test_evaluation_is_deterministic(case, rnd):
    name, facts = case
    ruleset = REGISTRY.get(name)
    first = ruleset.evaluate(facts, AT).decision
    assert ruleset.evaluate(facts, AT).decision == first
    shuffled = {**facts, "events": rnd.sample(facts["events"], len(facts["events"]))}
    assert ruleset.evaluate(shuffled, AT).decision == first
    # Another compile of the same source, as a replay from the audit makes.
    again = compile_source(ruleset.source, f"{name}-again.yaml")
    assert again.evaluate(facts, AT).decision == first


# -- negative points ------------------------------------------------------------------------------


def negative_events(ruleset) -> dict[str, set[str]]:
    """Event type -> scores that every rule reading that event type only ever lowers."""
    out: dict[str, set[str]] = {}
    for rule in ruleset.model.rules:
        kind = rule.when.get("event") if set(rule.when) <= {"event", "where", "within_days"} else None
        points = rule.then.get("points", {})
        if isinstance(kind, str) and points:
            out.setdefault(kind, set()).update(s for s, p in points.items() if p < 0)
    for rule in ruleset.model.rules:  # a rule that also rewards the event disqualifies it
        if rule.when.get("event") in out:
            for score, points in rule.then.get("points", {}).items():
                if points > 0:
                    out[rule.when["event"]].discard(score)
    return {kind: scores for kind, scores in out.items() if scores}


def test_the_shipped_rulesets_have_negative_point_events():
    assert set(negative_events(REGISTRY.get("default"))) >= {
        "unsubscribe",
        "email_bounce",
        "careers_page_view",
    }


@settings(SETTINGS, max_examples=80)
@given(st.data())
def test_a_negative_point_event_never_raises_that_score(data):
    name = data.draw(st.sampled_from([n for n in NAMES if negative_events(REGISTRY.get(n))]))
    ruleset = REGISTRY.get(name)
    negatives = negative_events(ruleset)
    facts = data.draw(leads(ruleset))
    extra = data.draw(event(sorted(negatives)))
    before = ruleset.evaluate(facts, AT).decision["scores"]
    after = ruleset.evaluate({**facts, "events": [*facts["events"], extra]}, AT).decision["scores"]
    for score in negatives[extra["type"]]:
        assert after[score] <= before[score], (extra, before, after)


# -- arbitrary JSON -------------------------------------------------------------------------------

# Text from all of Unicode, lone surrogates included (JSON can escape them; they are no characters).
TEXT = st.text(
    st.characters(codec=None) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=12
)
FIELDS = st.sampled_from(
    ["lead_id", "channel", "profile", "answers", "events", "previous_stage", "email", "employees",
     "country", "tech_stack", "budget", "timeline", "id", "type", "at", "properties", "content"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS | TEXT, inner, max_size=5),
    max_leaves=25,
)
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "lead_id": JSON,
        "channel": JSON,
        "profile": st.dictionaries(FIELDS | TEXT, JSON, max_size=4),
        "answers": st.dictionaries(FIELDS | TEXT, JSON, max_size=4),
        "events": st.lists(st.dictionaries(FIELDS, JSON, max_size=5), max_size=3),
        "previous_stage": JSON,
    },
)


@settings(SETTINGS, max_examples=400)
@given(st.sampled_from(NAMES), SHAPED | JSON)
@example("default", {"lead_id": "x", "previous_stage": []})  # was a TypeError (unhashable), now named
@example("default", {"lead_id": "x", "profile": {"company": "\udc80"}})  # durable_rules and SQLite refuse it
@example("default", {"lead_id": "x", "events": [{"id": ["x"], "type": "page_view", "at": AT}]})
def test_arbitrary_json_never_crashes_validation(name, facts):
    ruleset = REGISTRY.get(name)
    try:
        normalise(ruleset.model, facts)
    except FactsError as exc:
        assert exc.errors and all(isinstance(k, str) and v for k, v in exc.errors.items())
    # A FactsError (or an EvaluationError: a 500, nothing recorded), never any other exception.
    with contextlib.suppress(EngineError):
        ruleset.evaluate(facts, AT)


@settings(SETTINGS, max_examples=300)
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_never_crash_the_api_parser(data):
    try:
        loads(data)
    except ApiError as exc:  # not JSON (400), or JSON holding NUL in a string, named (422)
        assert (exc.status, exc.code) == (400, "malformed_json") or (
            (exc.status, exc.code) == (422, "invalid_request") and b"\\u0000" in data and exc.errors
        ), exc


# -- digests --------------------------------------------------------------------------------------

DUMP = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "sort_keys": st.booleans(),
        "width": st.sampled_from([40, 80, 4096]),
        "indent": st.sampled_from([2, 4, 6]),
        "allow_unicode": st.booleans(),
    }
)


@settings(SETTINGS, max_examples=12)
@given(st.sampled_from(NAMES), DUMP)
def test_a_shipped_ruleset_dumped_and_loaded_again_keeps_its_digest(name, options):
    ruleset = REGISTRY.get(name)
    data = load(ruleset.source, "x.yaml").data
    dumped = yaml.safe_dump(data, **options)
    assert digest_of(load(dumped, "dumped.yaml").data) == ruleset.digest
    assert compile_source(dumped, f"{name}.yaml").digest == ruleset.digest


CONDITIONS = st.sampled_from(
    [
        {"profile.country": "US"},
        {"profile.employees": {"gte": 50, "lt": 5000}},
        {"profile.job_title": {"matches": r"\b(vp|chief)\b"}},
        {"event": "demo_request"},
        {"event": "content_download", "where": {"content": "whitepaper"}, "within_days": 30},
        {"any": [{"profile.country": "DE"}, {"profile.industry": "software"}]},
        {"not": {"profile.country": "FR"}},
        {"answers.budget": {"gte": 1000}},
        {"count": {"event": "page_view", "gte": 3}},
    ]
)
POINTS = st.integers(-50, 50).filter(bool) | st.floats(-50, 50, allow_nan=False).map(
    lambda x: round(x, 2)
).filter(bool)
RULES = st.lists(
    st.builds(
        lambda i, when, score, points, text: {
            "id": f"r{i}",
            "description": text,
            "when": when,
            "then": {"points": {score: points}},
        },
        st.integers(0, 10**6),
        CONDITIONS,
        st.sampled_from(["fit", "engagement"]),
        POINTS,
        st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=30),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda r: r["id"],
)


@settings(SETTINGS, max_examples=25)
@given(RULES, DUMP)
def test_a_generated_ruleset_dumped_and_loaded_again_keeps_its_digest_and_its_decisions(rules, options):
    source = mini_source(rules)
    compiled = compile_source(source, "mini.yaml")
    dumped = yaml.safe_dump(load(source, "mini.yaml").data, **options)
    again = compile_source(dumped, "mini.yaml")
    assert again.digest == compiled.digest
    facts = {
        "lead_id": "G-1",
        "profile": {"country": "US", "employees": 200, "job_title": "VP Sales"},
        "answers": {"budget": 5000},
        "events": [{"type": "demo_request", "at": "2026-11-22T10:00:00Z"}],
    }
    if not options["sort_keys"]:  # reordered keys: see the xfail below
        assert again.evaluate(facts, AT).decision == compiled.evaluate(facts, AT).decision


def test_the_same_digest_gives_the_same_decision():
    rules = [
        {
            "id": "r0",
            "description": "d",
            "when": {"profile.country": "US"},
            "then": {"points": {"engagement": -1}},
        },
        {"id": "r1", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": -1}}},
    ]
    source = mini_source(rules)
    reordered = yaml.safe_dump(load(source, "mini.yaml").data, sort_keys=True)
    first, second = compile_source(source, "mini.yaml"), compile_source(reordered, "mini.yaml")
    assert first.digest == second.digest
    facts = {"lead_id": "G-2", "profile": {"country": "US"}}
    assert first.evaluate(facts, AT).decision == second.evaluate(facts, AT).decision
