"""DecisionRequestSchema takes a plainly valid body without marshmallow walking it (api/schemas.py
`plainly_valid`), and that shortcut never changes what is accepted or what comes out:

- for every body the shortcut takes, marshmallow's own load gives the same result, keys in the same order;
- every body marshmallow refuses, the shortcut leaves to marshmallow (so its errors are unchanged);
- the bench's generated leads all take the shortcut (it is the common case, not a dead branch).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from api.schemas import DecisionRequestSchema, plainly_valid
from bench.leads import generate
from tests.conftest import AT

SCHEMA = DecisionRequestSchema()


def marshmallows_load(body):
    return super(DecisionRequestSchema, SCHEMA).load(body)


def _same_as_marshmallow(body) -> bool:
    """True when the shortcut took the body; asserts that marshmallow loads it the same way."""
    fast = plainly_valid(body)
    try:
        slow = marshmallows_load(body)
    except ValidationError:
        assert fast is None, body
        return False
    if fast is None:
        return False
    assert fast == slow
    assert list(fast) == list(slow)
    for section in ("profile", "answers"):
        if section in fast:  # declared fields in marshmallow's order (unknown ones it adds in set order)
            declared = [k for k in slow[section] if k in SCHEMA.fields[section].schema.fields]
            assert list(fast[section])[: len(declared)] == declared
    for a, b in zip(fast.get("events") or [], slow.get("events") or [], strict=True):
        assert list(a) == list(b)
    return True


def test_generated_leads_take_the_shortcut_and_load_as_marshmallow_does():
    # As bench/http.py sends them: a stage is leadgate's to keep, never sent.
    bodies = [{k: v for k, v in body.items() if k != "previous_stage"} for body in generate(300, 5)]
    assert all(_same_as_marshmallow(body) for body in bodies)
    assert SCHEMA.load(bodies[0]) == marshmallows_load(bodies[0])


TEXT = st.one_of(st.text(max_size=5), st.sampled_from(["", "a" * 65, "x" * 201, "L-1\n", "page_view", "Ab"]))
ANY = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.floats(allow_nan=False), TEXT)
EVENT = st.one_of(
    ANY,
    st.dictionaries(
        st.sampled_from(["type", "at", "id", "properties", "extra"]),
        st.one_of(ANY, st.dictionaries(st.one_of(TEXT), ANY, max_size=2)),
        max_size=5,
    ),
)
BODY = st.dictionaries(
    st.sampled_from(["lead_id", "lead_token", "channel", "profile", "events", "answers", "ruleset", "other"]),
    st.one_of(
        ANY,
        st.lists(EVENT, max_size=3),
        st.dictionaries(st.sampled_from(["name", "version", "country", "employees", "zz"]), ANY, max_size=3),
    ),
    max_size=7,
)

# Nearly valid bodies: each field mostly right, sometimes wrong in one of the ways marshmallow refuses.
SECTION = st.dictionaries(st.sampled_from(["country", "employees", "budget", "zz"]), ANY, max_size=3)
NEARLY_VALID = st.fixed_dictionaries(
    {"lead_id": st.sampled_from(["L1", "L1", "L-1\n", "", 5])},
    optional={
        "channel": st.sampled_from(["web", None, "x" * 101, 3]),
        "lead_token": st.sampled_from(["t", "", None]),
        "profile": SECTION,
        "answers": SECTION,
        "events": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["page_view", "demo_request", "Bad", "x\n"]),
                    "at": st.sampled_from([AT, 5]),
                },
                optional={
                    "id": st.sampled_from(["e1", "e2", "", None, "x" * 201]),
                    "properties": st.one_of(
                        st.none(), st.dictionaries(st.sampled_from(["a", "b"]), ANY, max_size=2)
                    ),
                },
            ),
            max_size=3,
        ),
        "ruleset": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["default", "", "x" * 65, 3]),
                "version": st.sampled_from([1, 0, True, 2.0, None]),
            },
        ),
    },
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(BODY, NEARLY_VALID))
def test_any_body_loads_as_marshmallow_loads_it(body):
    _same_as_marshmallow(body)


@pytest.mark.parametrize(
    "body",
    [
        {"lead_id": "L-1\n"},  # marshmallow's Regexp matches at the start, as re.match: $ before a newline
        {"lead_id": "L1", "ruleset": {"version": True}},
        {"lead_id": "L1", "ruleset": {"name": "default", "version": 2}},
        {"lead_id": "L1", "channel": None, "profile": {"zz": 1, "country": None}},
        {"lead_id": "L1", "events": [{"type": "page_view", "at": "x", "properties": {"a": [1]}}]},
        {"lead_id": "L1", "events": [{"type": "Page", "at": "x"}]},
        {"lead_id": "L1", "events": [{"type": "page_view", "at": "x", "id": None}]},
        {"lead_id": 5},
        ["not", "an", "object"],
    ],
)
def test_edge_bodies_load_as_marshmallow_loads_them(body):
    _same_as_marshmallow(body)
