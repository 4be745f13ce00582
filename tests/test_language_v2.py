"""Issue 16: the ruleset language as a product-led company met it — silent wrong answers, then additions.

Regression tests are named after the bug they pin; each failed before its fix.
"""

from __future__ import annotations

import pytest

from engine import check_source
from tests.conftest import AT, BASE, lead, mini_source


def R(rid, when, then, **extra):
    return {"id": rid, "description": f"rule {rid}", "when": when, "then": then, **extra}


def problems(rules, **overrides) -> list[str]:
    return [str(p) for p in check_source(mini_source(rules, **overrides), "r.yaml")]


SEATS = {"id": "seats", "text": "How many seats?", "answers": ["not_sure"], "amount": True}


# -- silent wrong results --------------------------------------------------------------------------


def test_exists_sees_an_answer_given_as_a_number(mini):
    rs = mini(
        [
            R("no-seats", {"answers.seats": {"exists": False}}, {"tag": "no_seats"}),
            R("seats", {"answers.seats": {"exists": True}}, {"tag": "seats"}),
        ],
        questions=[*BASE["questions"], SEATS],
    )
    assert rs.evaluate(lead(answers={"seats": 10}), AT).decision["tags"] == ["seats"]
    assert rs.evaluate(lead(answers={"seats": "not_sure"}), AT).decision["tags"] == ["seats"]
    assert rs.evaluate(lead(), AT).decision["tags"] == ["no_seats"]


def test_not_exists_on_a_numeric_answer_is_the_exact_negation(mini):
    rs = mini(
        [R("not-given", {"not": {"answers.seats": {"exists": True}}}, {"tag": "not_given"})],
        questions=[*BASE["questions"], SEATS],
    )
    assert rs.evaluate(lead(answers={"seats": 10}), AT).decision["tags"] == []
    assert rs.evaluate(lead(), AT).decision["tags"] == ["not_given"]


@pytest.mark.parametrize(
    "props, tags",
    [
        ({"plan": "pro"}, ["has_plan"]),
        ({"plan": 3}, ["has_plan"]),
        ({"plan": True}, ["has_plan"]),
        ({"other": "x"}, ["no_plan"]),
        ({}, ["no_plan"]),
    ],
)
def test_exists_inside_an_event_where_matches_the_property(mini, props, tags):
    rs = mini(
        [
            R("has-plan", {"event": "free_trial", "where": {"plan": {"exists": True}}}, {"tag": "has_plan"}),
            R("no-plan", {"event": "free_trial", "where": {"plan": {"exists": False}}}, {"tag": "no_plan"}),
        ]
    )
    event = {"type": "free_trial", "at": AT}
    if props:
        event["properties"] = props
    assert rs.evaluate(lead(events=[event]), AT).decision["tags"] == tags


def test_a_condition_on_an_answer_the_question_does_not_allow_is_refused():
    questions = [
        *BASE["questions"],
        {"id": "company_size", "text": "Size?", "answers": ["under_20", "20_to_200", "over_200"]},
    ]
    (problem,) = problems(
        [R("r1", {"answers.company_size": "under20"}, {"tag": "small"})], questions=questions
    )
    assert "[r1] answers.company_size: 'under20' is not one of under_20, 20_to_200, over_200" in problem
    assert "(did you mean 'under_20'?)" in problem
    (problem,) = problems(
        [R("r1", {"answers.company_size": {"in": ["over_200", "huge"]}}, {"tag": "big"})], questions=questions
    )
    assert "'huge' is not one of" in problem
    # An amount is still a fine thing to compare a question with amount: true with.
    assert problems([R("r1", {"answers.budget": {"gte": 5}}, {"tag": "x"})]) == []
    # Free-text questions take any text.
    free = [*questions[:-1], {**questions[-1], "free_text": True}]
    assert problems([R("r1", {"answers.company_size": "tiny"}, {"tag": "x"})], questions=free) == []


def test_redeclaring_a_question_under_fields_answers_with_another_type_is_refused():
    (problem,) = problems(
        [R("r1", {"answers.authority": "user"}, {"tag": "x"})],
        fields={"answers": {"authority": {"type": "number"}}},
    )
    assert "fields.answers.authority" in problem or "authority" in problem
    assert "question 'authority'" in problem and "number" in problem
    # Declaring it as text (what a question holds) is allowed: it only adds a description.
    assert (
        problems(
            [R("r1", {"answers.authority": "user"}, {"tag": "x"})],
            fields={"answers": {"authority": {"type": "string", "description": "Role"}}},
        )
        == []
    )


# -- messages a ruleset owner can act on ------------------------------------------------------------


def test_a_circle_is_reported_on_the_rules_that_form_it_not_the_first_in_alphabetical_order():
    rules = [
        R("aaa-waits", {"score": {"engagement": {"gte": 1}}}, {"tag": "waits"}),
        R("hot-bonus", {"grade": {"engagement": "hot"}}, {"points": {"engagement": 10}}),
    ]
    scores = {
        **BASE["scores"],
        "engagement": {**BASE["scores"]["engagement"], "grades": {"hot": 50, "cold": 0}},
    }
    (problem,) = problems(rules, scores=scores)
    assert "[hot-bonus]" in problem and "aaa-waits" not in problem
    assert "hot-bonus adds engagement points to the engagement total, which hot-bonus reads" in problem


def test_a_circle_through_the_matrix_names_it():
    rules = [R("ready-when-good", {"quadrant": "good_fit_not_ready"}, {"ready": True})]
    (problem,) = problems(rules)
    assert "[ready-when-good]" in problem
    assert "ready-when-good sets ready, which @matrix (fit and quadrant) reads" in problem
    assert "@matrix (fit and quadrant) sets quadrant, which ready-when-good reads" in problem


@pytest.mark.parametrize(
    "text, where, says",
    [
        ("a:\n  b: 1\n c: 2\n", "r.yaml:3:2:", "indented differently from the lines above it"),
        (
            "rules:\n  - id: x\n    when: 1\n   then: 2\n",
            "r.yaml:4:4:",
            "must start in exactly the same column",
        ),
        ("a: Thanks: we call you\n", "r.yaml:1:10:", "put text that holds ': ' in quotes"),
        ("a:\n\tb: 1\n", "r.yaml:2:1:", "a tab is used for indentation"),
        ('a: "abc\nb: 1\n', "r.yaml:1:4:", "a quote is opened but never closed"),
        ("a: 'it's'\n", "r.yaml:1:8:", "double the single quote"),
        ("a: b\nc\nd: e\n", "r.yaml:2:1:", "a line has no ':' after its key"),
    ],
)
def test_yaml_syntax_errors_are_in_plain_words_with_line_and_column(text, where, says):
    (problem,) = [str(p) for p in check_source(text, "r.yaml")]
    assert problem.startswith(where) and says in problem, problem
    assert "<block" not in problem and "scalar" not in problem


@pytest.mark.parametrize(
    "then, says",
    [
        ({"ready": False}, "[r1] then.ready can only be true, not false (leave it out instead)"),
        ({"points": {"fit": "ten"}}, "[r1] then.points.fit must be a number, not the text 'ten'"),
    ],
)
def test_shape_errors_read_as_what_to_fix(then, says):
    (problem,) = problems([R("r1", {"profile.country": "US"}, then)])
    assert says in problem and "rules.0" not in problem and "was expected" not in problem


def test_a_list_of_tags_in_a_condition_says_how_to_test_several():
    (problem,) = problems([R("r1", {"tag": ["a", "b"]}, {"tag": "c"})])
    assert "[r1] when.tag must be text, not a list; to test several tags, use `all:` or `any:`" in problem
    assert "is not of type" not in problem
