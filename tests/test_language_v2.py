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
    # file:line:column of the key, so an editor jumps to it
    file, line, column = problem.split(":")[:3]
    text = mini_source([R("r1", {"tag": ["a", "b"]}, {"tag": "c"})]).splitlines()[int(line) - 1]
    assert file == "r.yaml" and text[int(column) - 1 :].startswith("tag:")
    assert "is not of type" not in problem


def test_in_list_inside_where_matches_text_and_is_not_called_a_number(mini):
    rs = mini(
        [R("rival", {"event": "page_view", "where": {"referrer": {"in_list": "rivals"}}}, {"tag": "rival"})],
        lists={"rivals": ["rival.io", "competitor.com"]},
    )
    hit = lead(events=[{"type": "page_view", "at": AT, "properties": {"referrer": "rival.io"}}])
    miss = lead(events=[{"type": "page_view", "at": AT, "properties": {"referrer": "ok.com"}}])
    assert rs.evaluate(hit, AT).decision["tags"] == ["rival"]
    assert rs.evaluate(miss, AT).decision["tags"] == []
    (problem,) = problems(
        [R("r1", {"event": "page_view", "where": {"referrer": {"in_list": "rivalz"}}}, {"tag": "x"})],
        lists={"rivals": ["rival.io"]},
    )
    assert "unknown list 'rivalz' (did you mean 'rivals'?)" in problem and "number" not in problem


# -- event where: named lists, starts_with, contains, matches; domains ------------------------------


def _views(*paths):
    return [{"type": "page_view", "at": AT, "properties": {"path": p}} for p in paths]


def test_where_starts_with_contains_and_matches_ignore_case_and_count_too(mini):
    rs = mini(
        [
            R(
                "docs",
                {"event": "page_view", "where": {"path": {"starts_with": ["/docs/", "/guides/"]}}},
                {"tag": "docs"},
            ),
            R("api", {"event": "page_view", "where": {"path": {"contains": "api"}}}, {"tag": "api"}),
            R(
                "v2",
                {"event": "page_view", "where": {"path": {"matches": r"/v[0-9]+/"}}},
                {"tag": "versioned"},
            ),
            R(
                "two-docs",
                {"count": {"event": "page_view", "where": {"path": {"starts_with": "/docs/"}}, "gte": 2}},
                {"tag": "two_docs"},
            ),
            R(
                "no-docs",
                {"not": {"event": "page_view", "where": {"path": {"starts_with": "/docs/"}}}},
                {"tag": "no_docs"},
            ),
        ]
    )
    tags = lambda *paths: rs.evaluate(lead(events=_views(*paths)), AT).decision["tags"]  # noqa: E731
    assert tags("/Docs/API/v2/x") == ["api", "docs", "versioned"]
    assert tags("/docs/a", "/docs/b") == ["docs", "two_docs"]
    assert tags("/pricing") == ["no_docs"]
    assert tags("/guides/start") == ["docs", "no_docs"]


def test_a_star_in_an_exact_value_is_refused_with_starts_with_as_the_fix():
    (problem,) = problems([R("r1", {"event": "page_view", "where": {"path": "/docs/*"}}, {"tag": "x"})])
    assert "[r1]" in problem and "holds a *, but values compare exactly" in problem
    assert "use starts_with: '/docs/'" in problem


def test_domain_lists_match_subdomains(mini):
    rs = mini(
        [
            R("rival", {"profile.email_domain": {"in_domain_list": "rivals"}}, {"disqualify": "Competitor"}),
            R("site", {"profile.website": {"in_domain_list": "rivals"}}, {"tag": "rival_site"}),
            R(
                "ref",
                {"event": "page_view", "where": {"referrer": {"in_domain_list": "rivals"}}},
                {"tag": "rival_ref"},
            ),
        ],
        lists={"rivals": ["rival.io"]},
    )
    for email in ("ana@rival.io", "ana@eu.rival.io", "Ana@EU.Rival.IO"):
        assert rs.evaluate(lead(profile={"email": email}), AT).decision["stage"] == "disqualified", email
    for email in ("ana@notrival.io", "ana@rival.io.example.com"):
        assert rs.evaluate(lead(profile={"email": email}), AT).decision["stage"] == "lead", email
    d = rs.evaluate(
        lead(
            profile={"website": "https://www.rival.io/about"},
            events=[{"type": "page_view", "at": AT, "properties": {"referrer": "https://blog.rival.io/x"}}],
        ),
        AT,
    ).decision
    assert d["tags"] == ["rival_ref", "rival_site"]


def test_text_fields_take_starts_with_and_contains(mini):
    rs = mini(
        [
            R("head", {"profile.job_title": {"starts_with": "head of"}}, {"tag": "head"}),
            R("growth", {"profile.job_title": {"contains": ["growth", "demand"]}}, {"tag": "growth"}),
        ]
    )
    assert rs.evaluate(lead(profile={"job_title": "Head of Growth"}), AT).decision["tags"] == [
        "growth",
        "head",
    ]
    assert rs.evaluate(lead(profile={"job_title": "VP Demand Gen"}), AT).decision["tags"] == ["growth"]
    assert rs.evaluate(lead(), AT).decision["tags"] == []


# -- counting other events, met_at_most, items settled by several questions -----------------------


def test_count_of_every_event_except_some_types(mini):
    rs = mini(
        [
            R(
                "only-trial",
                {
                    "all": [
                        {"event": "free_trial"},
                        {"count": {"event": "any", "except": ["free_trial"], "eq": 0}},
                    ]
                },
                {"tag": "only_trial"},
            )
        ]
    )
    trial = {"type": "free_trial", "at": AT}
    assert rs.evaluate(lead(events=[trial]), AT).decision["tags"] == ["only_trial"]
    assert rs.evaluate(lead(events=[trial, {"type": "email_open", "at": AT}]), AT).decision["tags"] == []
    (problem,) = problems(
        [R("r1", {"count": {"event": "free_trial", "except": ["page_view"], "eq": 0}}, {"tag": "x"})]
    )
    assert "except needs `event: any`" in problem


TAG_US = R("us", {"profile.country": "US"}, {"tag": "us"})
DAYS = {
    "id": "decide_in_days",
    "item": "timeline",
    "text": "In how many days will you decide?",
    "answers": ["not_sure"],
    "amount": True,
    "met_at_most": 90,
}


@pytest.mark.parametrize("days, status", [(30, "met"), (90, "met"), (91, "unmet"), ("not_sure", "unknown")])
def test_met_at_most_settles_an_item_by_a_small_enough_amount(mini, days, status):
    rs = mini(
        [TAG_US],
        qualification={**BASE["qualification"], "timeline": {}},
        questions=[*BASE["questions"], DAYS],
    )
    d = rs.evaluate(lead(answers={"decide_in_days": days}), AT).decision
    assert d["qualification"]["timeline"] == status


def test_met_at_least_and_at_most_together_make_a_range(mini):
    q = {**DAYS, "met_at_least": 7}
    rs = mini(
        [TAG_US], qualification={**BASE["qualification"], "timeline": {}}, questions=[*BASE["questions"], q]
    )
    assert [
        rs.evaluate(lead(answers={"decide_in_days": n}), AT).decision["qualification"]["timeline"]
        for n in (3, 7, 90, 91)
    ] == ["unmet", "met", "met", "unmet"]
    reasons = rs.evaluate(lead(answers={"decide_in_days": 3}), AT).decision["reasons"]
    assert reasons[0]["description"] == "Answered decide_in_days with < 7, > 90: timeline is unmet"


def test_an_item_is_settled_by_either_of_two_questions_and_neither_is_asked_once_it_is(mini):
    budget_range = {
        "id": "budget_range",
        "item": "budget",
        "text": "Roughly what budget?",
        "answers": ["under_1k", "1k_to_10k", "over_10k"],
        "met": ["1k_to_10k", "over_10k"],
        "unmet": ["under_1k"],
    }
    rs = mini([TAG_US], questions=[*BASE["questions"], budget_range])
    first = rs.evaluate(lead(), AT).decision
    assert {"budget", "budget_range"} <= {q["id"] for q in first["next_questions"]}
    d = rs.evaluate(lead(answers={"budget_range": "over_10k"}), AT).decision
    assert d["qualification"]["budget"] == "met"
    assert not {"budget", "budget_range"} & {q["id"] for q in d["next_questions"]}
    # Both answered and disagreeing: the question listed first wins, and the reasons say so.
    both = rs.evaluate(lead(answers={"budget": "no", "budget_range": "over_10k"}), AT).decision
    assert both["qualification"]["budget"] == "unmet"
    effect = next(r for r in both["reasons"] if r["rule"] == "answer-budget_range-met")["effects"][0]
    assert effect["applied"] is False and "answer-budget-unmet" in effect["note"]


# -- custom event types ----------------------------------------------------------------------------

EVENTS = {
    "feature_used": {
        "description": "A trial user used a product feature",
        "properties": {
            "feature": {"type": "string"},
            "times": {"type": "number"},
            "admin": {"type": "boolean"},
        },
    },
    "workspace_created": {"description": "A trial workspace was created"},
}


def test_declared_event_types_work_in_conditions_points_counts_and_decay(mini):
    rs = mini(
        [
            R("workspace", {"event": "workspace_created"}, {"points": {"engagement": 10}, "funnel": "mofu"}),
            R(
                "dashboards",
                {"event": "feature_used", "where": {"feature": "dashboards", "times": {"gte": 3}}},
                {"points": {"engagement": 5}, "per": "event", "cap": 12},
            ),
            R(
                "busy",
                {"count": {"event": "feature_used", "where": {"admin": True}, "gte": 2}},
                {"tag": "busy"},
            ),
            R("fresh", {"days_since": {"event": "workspace_created", "lte": 7}}, {"tag": "fresh"}),
        ],
        events=EVENTS,
    )
    use = lambda feature, times, days, admin=False: {  # noqa: E731
        "type": "feature_used",
        "at": f"2026-11-{23 - days:02d}T10:00:00Z",
        "properties": {"feature": feature, "times": times, "admin": admin},
    }
    facts = lead(
        events=[
            {"type": "workspace_created", "at": "2026-11-13T10:00:00Z"},
            use("dashboards", 5, 0, admin=True),
            use("dashboards", 3, 10, admin=True),
            use("dashboards", 1, 0),
            use("exports", 9, 0),
        ]
    )
    d = rs.evaluate(facts, AT).decision
    # 10 points for a 10-day-old workspace with a 10-day half-life: 5; dashboards 5 (fresh) + 2.5 (10 days).
    assert d["scores"]["engagement"] == 12.5 and d["funnel"] == "mofu"
    dash = next(r for r in d["reasons"] if r["rule"] == "dashboards")["effects"][0]
    assert [e["points"] for e in dash["events"]] == [2.5, 5.0]
    assert d["tags"] == ["busy"]  # the workspace is 10 days old: not fresh


def test_undeclared_event_types_and_properties_are_refused_naming_the_declared_ones(mini):
    from engine import FactsError

    rs = mini([R("w", {"event": "workspace_created"}, {"tag": "w"})], events=EVENTS)
    with pytest.raises(FactsError) as refused:
        rs.evaluate(lead(events=[{"type": "feature_use", "at": AT}]), AT)
    message = refused.value.errors["events[0].type"][0]
    assert "'feature_use' is not an event type of ruleset mini (did you mean 'feature_used'?)" in message
    assert "its own: feature_used, workspace_created" in message
    with pytest.raises(FactsError) as refused:
        rs.evaluate(
            lead(events=[{"type": "feature_used", "at": AT, "properties": {"feature": 3, "tims": 2}}]), AT
        )
    errors = refused.value.errors
    assert errors["events[0].properties.feature"] == ["must be text, not int"]
    assert (
        "feature_used has no property 'tims' (did you mean 'times'?)"
        in errors["events[0].properties.tims"][0]
    )
    # The standard types stay open: any property, as before.
    assert rs.evaluate(lead(events=[{"type": "page_view", "at": AT, "properties": {"x": 1}}]), AT)


@pytest.mark.parametrize(
    "when, says",
    [
        ({"event": "feature_usd"}, "unknown event type 'feature_usd' (did you mean 'feature_used'?)"),
        (
            {"event": "feature_used", "where": {"feture": "x"}},
            "the event has no property 'feture' (did you mean 'feature'?)",
        ),
        (
            {"event": "feature_used", "where": {"times": "many"}},
            "property times is a number, but 'many' is not",
        ),
        (
            {"event": "feature_used", "where": {"times": {"starts_with": "1"}}},
            "property times is a number: `starts_with` needs text",
        ),
        (
            {"count": {"event": "feature_used", "where": {"admin": "yes"}, "gte": 1}},
            "property admin is true or false, but 'yes' is not",
        ),
    ],
)
def test_conditions_on_declared_events_are_checked_against_their_declaration(when, says):
    (problem,) = problems([R("r1", when, {"tag": "x"})], events=EVENTS)
    assert says in problem, problem


def test_a_declared_event_may_not_reuse_a_standard_name():
    (problem,) = problems(
        [R("r1", {"profile.country": "US"}, {"tag": "x"})], events={"page_view": {"description": "mine"}}
    )
    assert "'page_view' is a standard event type already" in problem


# -- computed values (CEL) -------------------------------------------------------------------------

SEATS_Q = {**SEATS, "answers": ["not_sure"]}
COMPUTED = {
    "budget_per_seat_month": {
        "description": "Budget per seat and month",
        "type": "number",
        "expr": "answers.budget / answers.seats / 12.0",
    },
    "days_to_audit": {
        "description": "Days until the next audit",
        "type": "number",
        "expr": "days_until(answers.next_audit)",
    },
    "min_budget": {
        "description": "Least budget for the seats",
        "type": "number",
        "expr": "answers.seats * 300.0",
    },
}
AUDIT_FIELDS = {"answers": {"next_audit": {"type": "date", "description": "Date of the next audit"}}}


def _computed_rs(mini, rules, **extra):
    return mini(
        rules,
        questions=[*BASE["questions"], SEATS_Q],
        fields=AUDIT_FIELDS,
        computed=COMPUTED,
        **extra,
    )


def test_computed_values_are_usable_in_conditions_and_shown_in_reasons_with_their_inputs(mini):
    rs = _computed_rs(
        mini,
        [
            R("cheap", {"computed.budget_per_seat_month": {"lt": 20}}, {"tag": "cheap_seats"}),
            R("audit-soon", {"computed.days_to_audit": {"gte": 0, "lte": 90}}, {"tag": "audit_soon"}),
        ],
    )
    d = rs.evaluate(lead(answers={"budget": 1200, "seats": 10, "next_audit": "2027-01-22"}), AT).decision
    assert d["tags"] == ["audit_soon", "cheap_seats"]
    reason = next(r for r in d["reasons"] if r["rule"] == "@computed.budget_per_seat_month")
    assert reason["description"] == "Budget per seat and month = answers.budget / answers.seats / 12.0"
    assert reason["effects"] == [
        {
            "type": "computed",
            "name": "budget_per_seat_month",
            "value": 10.0,
            "inputs": {"answers.budget": 1200, "answers.seats": 10},
        }
    ]
    audit = next(r for r in d["reasons"] if r["rule"] == "@computed.days_to_audit")["effects"][0]
    assert audit["value"] == 59.5833  # from 2026-11-23 10:00 to 2027-01-22 00:00 UTC
    # A missing or non-numeric input leaves the value missing: no comparison holds, and the reason says why.
    d = rs.evaluate(lead(answers={"budget": "yes", "seats": 10}), AT).decision
    assert d["tags"] == []
    effect = next(r for r in d["reasons"] if r["rule"] == "@computed.budget_per_seat_month")["effects"][0]
    assert effect["value"] is None and effect["note"] == "could not be computed from these inputs"
    effect = next(r for r in d["reasons"] if r["rule"] == "@computed.min_budget")["effects"][0]
    assert effect["value"] == 3000.0 and effect["inputs"] == {"answers.seats": 10}
    # A value none of whose inputs were given says nothing about the lead: it is not listed.
    assert "@computed.days_to_audit" not in [r["rule"] for r in d["reasons"]]
    d = rs.evaluate(lead(answers={"budget": 1200}), AT).decision
    effect = next(r for r in d["reasons"] if r["rule"] == "@computed.budget_per_seat_month")["effects"][0]
    assert effect["note"] == "missing: answers.seats"
    assert effect["inputs"] == {"answers.budget": 1200, "answers.seats": None}


def test_days_since_and_division_by_zero(mini):
    rs = mini(
        [
            R("old", {"computed.since": {"gt": 30}}, {"tag": "old"}),
            R("ratio", {"computed.ratio": {"exists": True}}, {"tag": "ratio"}),
        ],
        fields={"profile": {"founded": {"type": "date"}, "a": {"type": "number"}, "b": {"type": "number"}}},
        computed={
            "since": {"type": "number", "expr": "days_since(profile.founded)"},
            "ratio": {"type": "number", "expr": "profile.a / profile.b"},
        },
    )
    d = rs.evaluate(lead(profile={"founded": "2026-01-01", "a": 1, "b": 0}), AT).decision
    assert d["tags"] == ["old"]  # 1 / 0.0 is infinite: not a value, so `ratio` is missing


def test_a_question_threshold_can_be_a_computed_value(mini):
    budget = {**BASE["questions"][0], "met_at_least": "computed.min_budget"}
    rs = mini(
        [R("us", {"profile.country": "US"}, {"tag": "us"})],
        questions=[budget, *BASE["questions"][1:], SEATS_Q],
        fields=AUDIT_FIELDS,
        computed=COMPUTED,
    )
    q = lambda **a: rs.evaluate(lead(answers=a), AT).decision["qualification"]["budget"]  # noqa: E731
    assert q(budget=3000, seats=10) == "met"
    assert q(budget=2999, seats=10) == "unmet"
    assert q(budget=2999) == "unknown"  # no seats: no threshold
    d = rs.evaluate(lead(answers={"budget": 3000, "seats": 10}), AT).decision
    met = next(r for r in d["reasons"] if r["rule"] == "answer-budget-met")
    assert met["description"] == "Answered budget with yes, ≥ computed.min_budget: budget is met"


def test_routes_can_be_chosen_on_a_computed_value(mini):
    rs = _computed_rs(
        mini,
        [R("big", {"computed.min_budget": {"gte": 3000}}, {"route": "sales"})],
    )
    assert rs.evaluate(lead(answers={"seats": 10}), AT).decision["route"]["id"] == "sales"
    assert rs.evaluate(lead(answers={"seats": 2}), AT).decision["route"]["id"] == "nurture"


@pytest.mark.parametrize(
    "computed, says",
    [
        (
            {"x": {"type": "number", "expr": "answers.budget / 12"}},
            "numbers are decimals here: write 12.0, not 12",
        ),
        (
            {"x": {"type": "number", "expr": "answers.seatz * 2.0"}},
            "unknown 'answers.seatz' (did you mean 'answers.seats'?)",
        ),
        (
            {"x": {"type": "string", "expr": "answers.seats * 2.0"}},
            "gives number, but the value is declared as string",
        ),
        ({"x": {"type": "number", "expr": "answers.seats *"}}, "is not valid CEL"),
        ({"x": {"type": "number", "expr": "size([1.0].map(v, v))"}}, "loops over lists"),
        ({"x": {"type": "number", "expr": "y + 1.0"}}, "unknown name 'y'"),
        (
            {"x": {"type": "number", "expr": "computed.y"}, "y": {"type": "number", "expr": "computed.x"}},
            "read each other in a circle",
        ),
    ],
)
def test_computed_values_are_checked_by_validate(computed, says):
    found = problems(
        [R("r1", {"profile.country": "US"}, {"tag": "x"})],
        questions=[*BASE["questions"], SEATS_Q],
        computed=computed,
    )
    assert any(says in p for p in found), found


def test_a_condition_on_an_unknown_computed_value_gets_did_you_mean():
    (problem,) = problems(
        [R("r1", {"computed.min_budgt": {"gte": 1}}, {"tag": "x"})],
        questions=[*BASE["questions"], SEATS_Q],
        fields=AUDIT_FIELDS,
        computed=COMPUTED,
    )
    assert "unknown computed value 'computed.min_budgt' (did you mean 'computed.min_budget'?)" in problem


# -- not-a-lead routes chosen by reason ------------------------------------------------------------

CAREERS = {
    "destination": "nurture",
    "track": "careers",
    "next_step": {"action": "thank_you", "text": "See our jobs page"},
}


def test_a_verdict_rule_may_choose_the_route_for_its_reason(mini):
    rs = mini(
        [
            R(
                "job-seeker",
                {"event": "careers_page_view"},
                {"not_a_lead": "Looking for a job", "route": "careers"},
            ),
            R("outside", {"profile.country": "FR"}, {"not_a_lead": "Outside our market"}),
            R("rival", {"profile.email_domain": "rival.io"}, {"disqualify": "Competitor"}),
        ],
        routes={**BASE["routes"], "careers": CAREERS},
    )
    job = rs.evaluate(lead(events=[{"type": "careers_page_view", "at": AT}]), AT).decision
    assert (job["stage"], job["route"]["id"], job["status_reason"]) == (
        "not_a_lead",
        "careers",
        "Looking for a job",
    )
    effect = next(r for r in job["reasons"] if r["rule"] == "job-seeker")["effects"][-1]
    assert effect == {
        "type": "route",
        "route": "careers",
        "applied": True,
        "note": "route for this not_a_lead",
    }
    assert (
        rs.evaluate(lead(profile={"country": "FR"}), AT).decision["route"]["id"] == "nurture"
    )  # the default
    # Disqualification wins, and with it its own (default) route.
    both = rs.evaluate(
        lead(profile={"email": "a@rival.io"}, events=[{"type": "careers_page_view", "at": AT}]), AT
    ).decision
    assert (both["stage"], both["route"]["id"]) == ("disqualified", "out")


def test_a_verdict_route_must_fit_the_verdict():
    found = problems(
        [
            R("a", {"profile.country": "FR"}, {"not_a_lead": "Outside", "route": "sales"}),
            R("b", {"profile.country": "DE"}, {"disqualify": "Nope", "route": "nurture"}),
        ]
    )
    assert any("[a] a not-a-lead is never handed to sales" in p for p in found)
    assert any(
        "[b] a disqualified contact's route must have destination disqualified, not nurture" in p
        for p in found
    )


# -- the shipped product-led ruleset, through the real server --------------------------------------


def test_product_led_ships_with_at_least_thirty_cases(registry):
    from engine.cases import cases_path, run_cases
    from tests.conftest import RULESETS

    report = run_cases(registry.get("product-led"), cases_path(RULESETS / "product-led.yaml"))
    assert report.failures() == [] and report.unexercised == []
    assert len(report.results) >= 30


def test_product_events_through_the_real_server(tmp_path):
    from tests.server import Server

    pin = {"name": "product-led"}
    events = [
        {"type": "trial_signup", "at": "2026-11-16T09:00:00Z", "properties": {"plan": "team"}},
        {"type": "teammate_invited", "at": "2026-11-16T10:00:00Z", "properties": {"count": 5}},
        {"type": "usage_limit_reached", "at": "2026-11-22T09:00:00Z", "properties": {"limit": "rows"}},
    ]
    profile = {"email": "ana@brightcart.co.uk", "country": "GB", "industry": "ecommerce", "employees": 300}
    with Server(tmp_path / "pl.db", workers=1) as server:
        status, body, _ = server.request(
            "POST",
            "/v1/decisions",
            {"lead_id": "pl-http", "ruleset": pin, "profile": profile, "events": events},
        )
        assert status == 201, body
        assert body["ruleset"]["name"] == "product-led" and body["stage"] == "pql"
        assert "pql-team-at-limit" in [r["rule"] for r in body["reasons"]]
        # An event type the ruleset does not declare is refused, naming the ones it does.
        status, body, _ = server.request(
            "POST",
            "/v1/decisions",
            {
                "lead_id": "pl-http",
                "ruleset": pin,
                "events": [{"type": "feature_use", "at": "2026-11-22T09:00:00Z"}],
            },
        )
        assert status == 422 and body["code"] == "invalid_facts", body
        (message,) = body["errors"]["events[0].type"]
        assert "did you mean 'feature_used'?" in message and "trial_signup" in message
        # A declared property of the wrong type is refused too, naming the field.
        bad = {"type": "teammate_invited", "at": "2026-11-22T09:00:00Z", "properties": {"count": "five"}}
        status, body, _ = server.request(
            "POST", "/v1/decisions", {"lead_id": "pl-2", "ruleset": pin, "events": [bad]}
        )
        assert status == 422 and body["errors"]["events[0].properties.count"] == ["must be a number, not str"]
        # The default ruleset does not know product events: the fence is per ruleset.
        status, body, _ = server.request(
            "POST",
            "/v1/decisions",
            {"lead_id": "pl-3", "events": [{"type": "trial_signup", "at": "2026-11-22T09:00:00Z"}]},
        )
        assert status == 422 and "not an event type of ruleset default" in body["errors"]["events[0].type"][0]


# -- business hours per team (teams.yaml) ------------------------------------------------------------

TEAM_HOURS = """\
version: 1
teams:
  sdr:
    hours: {timezone: Europe/London, days: [mon, tue, wed, thu, fri], start: "08:30", end: "17:00"}
    members:
      - {id: tom, name: Tom Berg}
  account-executives:
    - {id: sam, name: Sam}
"""
SDR_LEAD = {
    "lead_id": "sdr-1",
    "profile": {
        "email": "maya@northdata.ca",
        "country": "CA",
        "industry": "saas",
        "employees": 120,
        "job_title": "Head of Analytics",
        "department": "analytics",
    },
    "events": [{"type": "free_trial", "at": "2026-11-22T10:00:00Z"}],
}


def test_a_team_with_its_own_hours_counts_the_sla_in_them_and_replays_identically(
    tmp_path, default, registry, make_trail
):
    from audit.replay import replay
    from engine.teams import load_teams
    from service.decide import decide, evaluator

    trail = make_trail(tmp_path / "h.db", durability="normal")
    # Monday 10:00 UTC: 05:00 in New York (the ruleset's hours), 10:00 in London (the team's).
    reply, _ = decide(default, trail, SDR_LEAD, at=AT, teams=load_teams(TEAM_HOURS))
    assert reply["route"]["id"] == "sdr_qualification" and reply["route"]["team"] == "sdr"
    assert reply["route"]["due_at"] == "2026-11-23T14:00:00Z"  # 240 London business minutes from 10:00
    assert reply["assignment"]["hours"] == {
        "team": "sdr",
        "timezone": "Europe/London",
        "ruleset_due_at": "2026-11-23T18:00:00Z",  # 09:00 + 4 h in New York
    }
    assert replay(trail, reply["decision_id"], evaluator(registry))["identical"] is True
    # Without hours of its own, the team works the ruleset's hours.
    plain = load_teams(
        TEAM_HOURS.replace(
            '    hours: {timezone: Europe/London, days: [mon, tue, wed, thu, fri], start: "08:30", end: "17:00"}\n',
            "",
        )
    )
    reply, _ = decide(default, trail, {**SDR_LEAD, "lead_id": "sdr-2"}, at=AT, teams=plain)
    assert reply["route"]["due_at"] == "2026-11-23T18:00:00Z" and "hours" not in reply["assignment"]


@pytest.mark.parametrize(
    "hours, says",
    [
        ('{timezone: Europe/Londn, start: "09:00", end: "17:00"}', "unknown time zone 'Europe/Londn'"),
        (
            '{timezone: Europe/London, start: "17:00", end: "09:00"}',
            "business hours must end after they start",
        ),
        (
            '{timezone: Europe/London, start: "9am", end: "17:00"}',
            'start is a time of day in quotes, such as "09:00"',
        ),
        (
            '{timezone: Europe/London, start: "09:00", end: "17:00", days: [monday]}',
            "days is a list of mon, tue",
        ),
    ],
)
def test_team_hours_are_checked_with_file_and_line(hours, says):
    from engine import RulesetError
    from engine.teams import load_teams

    text = f"version: 1\nteams:\n  sdr:\n    hours: {hours}\n    members:\n      - {{id: tom, name: Tom}}\n"
    with pytest.raises(RulesetError) as refused:
        load_teams(text)
    (problem,) = refused.value.problems
    assert problem.line == 4 and says in problem.message, problem


def test_team_hours_reach_the_reply_through_the_real_server(tmp_path):
    import shutil

    from tests.conftest import RULESETS
    from tests.server import Server

    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    shutil.copy(RULESETS / "default.yaml", rulesets)
    shutil.copy(RULESETS / "default.cases.yaml", rulesets)
    (rulesets / "teams.yaml").write_text(TEAM_HOURS)
    with Server(tmp_path / "hours.db", workers=1, rulesets=rulesets) as server:
        status, body, _ = server.request("POST", "/v1/decisions", SDR_LEAD)
        assert status == 201, body
        assert body["assignment"]["hours"]["timezone"] == "Europe/London"
        assert body["route"]["due_at"] == _london_due(body["evaluated_at"])


def _london_due(evaluated_at: str) -> str:
    from engine.facts import format_time, parse_time
    from engine.hours import parse

    hours = parse({"timezone": "Europe/London", "start": "08:30", "end": "17:00"})
    return format_time(hours.add(parse_time(evaluated_at, "at"), 240))


def test_cases_can_expect_computed_values(mini):
    from engine.cases import compare

    rs = _computed_rs(mini, [R("us", {"profile.country": "US"}, {"tag": "us"})])
    d = rs.evaluate(lead(answers={"budget": 1200, "seats": 10}), AT).decision
    assert compare({"computed": {"budget_per_seat_month": 10, "min_budget": 3000}}, d, []) == []
    assert compare({"computed": {"budget_per_seat_month": 11}}, d, []) == [
        "computed.budget_per_seat_month: expected 11, got 10.0"
    ]
    assert compare({"computed": {"days_to_audit": None}}, d, []) == []
