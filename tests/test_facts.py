"""Lead facts are checked before they reach durable_rules; every error names its field."""

from __future__ import annotations

import math

import pytest

from engine import FactsError
from tests.conftest import AT, lead


def errors(default, facts) -> dict:
    with pytest.raises(FactsError) as err:
        default.evaluate(facts, AT)
    return err.value.errors


@pytest.mark.parametrize(
    "facts, field, message",
    [
        ({"profile": {}}, "lead_id", "must be text"),
        (lead(profile={"employees": "200"}), "profile.employees", "must be a number, not str"),
        (lead(profile={"employees": math.nan}), "profile.employees", "finite number"),
        (lead(profile={"employees": math.inf}), "profile.employees", "finite number"),
        (lead(profile={"employees": 1e300}), "profile.employees", "finite number"),
        (lead(profile={"employees": True}), "profile.employees", "must be a number, not bool"),
        (lead(profile={"contry": "US"}), "profile.contry", "unknown field (did you mean 'country'?)"),
        (lead(profile={"email_domain": "x.com"}), "profile.email_domain", "derived by leadgate"),
        (lead(profile={"tech_stack": "salesforce"}), "profile.tech_stack", "list of text"),
        (lead(profile={"country": "x" * 5000}), "profile.country", "at most 2000 characters"),
        (
            lead(answers={"budget": "maybe"}),
            "answers.budget",
            "'maybe' is not an allowed answer (yes, no, unknown, or an amount)",
        ),
        (lead(answers={"timelime": "now"}), "answers.timelime", "(did you mean 'timeline'?)"),
        (lead(events=[{"type": "demo", "at": AT}]), "events[0].type", "(did you mean 'demo_request'?)"),
        (lead(events=[{"type": "page_view", "at": "yesterday"}]), "events[0].at", "not an ISO 8601 time"),
        (
            lead(events=[{"type": "page_view", "at": AT, "propertys": {}}]),
            "events[0].propertys",
            "unknown field",
        ),
        (
            lead(events=[{"type": "page_view", "at": AT, "properties": {"Path": "/"}}]),
            "events[0].properties.Path",
            "lower case",
        ),
        (lead(previous_stage="won"), "previous_stage", "is not a stage of ruleset default"),
        ({"lead_id": "x", "extra": 1}, "extra", "unknown field"),
    ],
)
def test_bad_facts_name_the_field(default, facts, field, message):
    found = errors(default, facts)
    assert field in found, found
    assert any(message in m for m in found[field]), found[field]


def test_all_errors_are_reported_together(default):
    found = errors(default, lead(profile={"employees": "x", "country": 5}, answers={"need": 3}))
    assert set(found) == {"profile.employees", "profile.country", "answers.need"}


def test_facts_are_normalised_canonically(default):
    facts = lead(
        events=[
            {"type": "page_view", "at": "2026-11-02T12:00:00+02:00", "id": "b"},
            {"type": "page_view", "at": "2026-11-01T10:00:00", "id": "a"},
            {"type": "page_view", "at": "2026-11-02T10:00:00Z", "id": "b"},
        ],
        profile={"employees": 250.0},
    )
    normal = default.evaluate(facts, AT).facts
    assert normal["events"] == [
        {"type": "page_view", "at": "2026-11-01T10:00:00Z", "id": "a"},
        {"type": "page_view", "at": "2026-11-02T10:00:00Z", "id": "b"},
    ]
    assert normal["profile"] == {"employees": 250} and isinstance(normal["profile"]["employees"], int)


def test_free_text_answers_are_allowed_where_the_question_says_so(default):
    d = default.evaluate(lead(answers={"need": "Our board reports take two weeks to build"}), AT).decision
    assert d["qualification"]["need"] == "unknown"


def test_unicode_and_control_characters_pass_through_untouched(default):
    name = "Zoë \u202e\x01\x1f 北京"
    d = default.evaluate(lead(profile={"company": name, "job_title": "Directrice générale"}), AT)
    assert d.facts["profile"]["company"] == name


def test_nul_is_refused_where_it_is(default):
    """No store takes NUL (PostgreSQL refuses it in text; SQLite's JSON functions end a text at it)."""
    with pytest.raises(FactsError) as refused:
        default.evaluate(lead(profile={"company": "Acme\x00"}), AT)
    assert refused.value.errors == {"profile.company": ["must not hold a NUL character (\\u0000)"]}
