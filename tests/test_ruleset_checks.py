"""A broken ruleset is refused with file, line, rule id and a message a person can act on."""

from __future__ import annotations

import pytest

from engine import RulesetError, check_source, compile_source
from tests.conftest import mini_source


def problems(text: str) -> list[str]:
    return [str(p) for p in check_source(text, "r.yaml")]


def one(rules, **overrides) -> list[str]:
    return problems(mini_source(rules, **overrides))


RULE = {"id": "r1", "description": "d", "when": {"profile.country": "US"}, "then": {"points": {"fit": 5}}}


def test_a_valid_ruleset_has_no_problems():
    assert one([RULE]) == []


def test_bad_yaml_names_the_line():
    assert problems("leadgate: 1\nname: [x\n") == [
        "r.yaml:2:7: not valid YAML: a […] list is not written right: separate its items with ',' and "
        "close it with ']'; quote items that hold ': ', ',' or '#' — the line reads 'name: [x'"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: &x [1]\nb: *x\n", "anchors and aliases (&, *) are not allowed"),
        ("a: 1\na: 2\n", "key 'a' appears twice"),
        (
            "a: !!python/object/apply:os.system [ls]\n",
            "tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
        ),
        ("", "the file is empty"),
    ],
)
def test_unsafe_or_ambiguous_yaml_is_refused(text, message):
    assert any(message in p for p in problems(text))


def test_yes_and_no_stay_text():
    from engine.yamlsource import load

    assert load("a: [yes, no, on, off, true]\n", "f").data == {"a": ["yes", "no", "on", "off", True]}


def test_unknown_key_gets_did_you_mean_with_line_and_rule():
    text = mini_source([{**RULE, "then": {"pionts": {"fit": 5}}}])
    (problem,) = problems(text)
    assert problem.startswith("r.yaml:")
    assert "[r1] unknown key 'pionts' in rules.0.then (did you mean 'points'?)" in problem
    line = int(problem.split(":")[1])
    assert "pionts" in text.splitlines()[line - 1]


def test_unknown_condition_field_gets_did_you_mean():
    (problem,) = one([{**RULE, "when": {"profile.contry": "US"}}])
    assert "[r1] unknown field 'profile.contry' (did you mean 'profile.country'?)" in problem


@pytest.mark.parametrize(
    "then, message",
    [
        ({"points": {"fitness": 5}}, "unknown score 'fitness' (did you mean 'fit'?)"),
        ({"stage": "mqll"}, "unknown stage 'mqll' (did you mean 'mql'?)"),
        ({"route": "sale"}, "unknown route 'sale' (did you mean 'sales'?)"),
        ({"ask": "budgt"}, "unknown question 'budgt' (did you mean 'budget'?)"),
        (
            {"qualify": {"authorty": "met"}},
            "unknown qualification item 'authorty' (did you mean 'authority'?)",
        ),
        ({"stage": "disqualified"}, "use `disqualified: <reason>`"),
        ({"cap": 5, "route": "sales"}, "cap only makes sense with points"),
    ],
)
def test_unknown_references_in_actions(then, message):
    assert any(message in p for p in one([{**RULE, "then": then}])), one([{**RULE, "then": then}])


def test_duplicate_rule_ids():
    assert any("[r1] rule id 'r1' is used twice" in p for p in one([RULE, RULE]))


def test_regex_that_does_not_compile():
    (problem,) = one([{**RULE, "when": {"profile.job_title": {"matches": "(ab"}}}])
    assert "[r1] regular expression '(ab' does not compile" in problem


def test_types_are_checked_against_the_vocabulary():
    assert any(
        "profile.country is text: `gte` needs a number field" in p
        for p in one([{**RULE, "when": {"profile.country": {"gte": 5}}}])
    )
    assert any(
        "profile.employees is a number, but '50' is not" in p
        for p in one([{**RULE, "when": {"profile.employees": "50"}}])
    )
    assert any(
        "profile.tech_stack is a list" in p for p in one([{**RULE, "when": {"profile.tech_stack": "x"}}])
    )


def test_threshold_no_lead_can_reach():
    rules = [
        RULE,
        {"id": "r2", "description": "d", "when": {"score": {"fit": {"gte": 60}}}, "then": {"stage": "mql"}},
    ]
    (problem,) = one(rules)
    assert (
        "[r2] this rule can never fire: fit needs at least 60 points but at most 5 are available" in problem
    )


def test_per_event_points_without_a_cap_make_any_threshold_reachable():
    rules = [
        {
            "id": "opens",
            "description": "d",
            "when": {"event": "email_open"},
            "then": {"points": {"engagement": 1}, "per": "event"},
        },
        {
            "id": "r2",
            "description": "d",
            "when": {"score": {"engagement": {"gte": 60}}},
            "then": {"stage": "mql"},
        },
    ]
    assert one(rules) == []


@pytest.mark.parametrize(
    "when, message",
    [
        ({"tag": "vip"}, "no rule sets tag vip"),
        ({"stage": "sql"}, "no rule moves a lead to stage sql"),
        ({"ready": True}, "no rule marks a lead ready"),
        ({"quadrant": "good_fit_ready"}, "no rule marks a lead ready"),
        (
            {"profile.employees": {"gte": 100, "lt": 50}},
            "no value of profile.employees is both ≥ 100 and < 50",
        ),
        ({"all": [{"profile.country": "US"}, {"profile.country": "FR"}]}, "profile.country cannot equal"),
    ],
)
def test_rules_that_can_never_fire(when, message):
    found = one([RULE, {"id": "never", "description": "d", "when": when, "then": {"route": "sales"}}])
    assert any(f"[never] this rule can never fire: {message}" in p for p in found), found


def test_rules_depending_on_each_other_in_a_circle_are_refused():
    rules = [
        {
            "id": "a",
            "description": "d",
            "when": {"score": {"fit": {"gte": 1}}},
            "then": {"points": {"engagement": 5}},
        },
        {
            "id": "b",
            "description": "d",
            "when": {"score": {"engagement": {"gte": 1}}},
            "then": {"points": {"fit": 5}},
        },
    ]
    (problem,) = one(rules)
    assert "depend on each other's results in a circle" in problem
    assert "a adds engagement points to the engagement total, which b reads" in problem
    assert "b adds fit points to the fit total, which a reads" in problem


def test_per_event_needs_an_event_condition():
    (problem,) = one([{**RULE, "then": {"points": {"fit": 1}, "per": "event"}}])
    assert "[r1] per: event needs exactly one event condition" in problem


def test_every_problem_is_reported_at_once():
    rules = [{**RULE, "then": {"points": {"fitness": 5}}}, {**RULE, "id": "r2", "then": {"route": "nowhere"}}]
    with pytest.raises(RulesetError) as err:
        compile_source(mini_source(rules), "r.yaml")
    assert len(err.value.problems) == 2
    assert {p.rule for p in err.value.problems} == {"r1", "r2"}


def test_fit_needs_good_at():
    scores = {"fit": {"max": 100}, "engagement": {}}
    assert any("scores.fit needs good_at" in p for p in one([RULE], scores=scores))


def test_question_answers_must_be_consistent():
    questions = [{"id": "budget", "item": "budget", "text": "?", "answers": ["yes", "no"], "met": ["si"]}]
    assert any("'si' is not one of the question's answers" in p for p in one([RULE], questions=questions))


@pytest.mark.parametrize(
    ("hours", "route_extra", "message"),
    [
        (
            {"timezone": "Mars/Olympus", "start": "09:00", "end": "17:00"},
            {},
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"timezone": "Europe/Berlin", "start": "17:00", "end": "09:00"}, {}, "must end after they start"),
        (None, {}, "business_hours: true needs a top-level business_hours"),
        ({"timezone": "UTC", "start": "09:00", "end": "17:00"}, {"sla_minutes": None}, "give the route one"),
    ],
)
def test_business_hours_mistakes(hours, route_extra, message):
    from tests.conftest import BASE

    routes = {**BASE["routes"], "sales": {**BASE["routes"]["sales"], "business_hours": True, **route_extra}}
    routes["sales"] = {k: v for k, v in routes["sales"].items() if v is not None}
    extra = {"business_hours": hours} if hours else {}
    assert any(message in p for p in one([RULE], routes=routes, **extra)), one([RULE], routes=routes, **extra)
