"""What rules mean: conditions, points, chaining, stages, routes and questions, on small rulesets."""

from __future__ import annotations

import pytest

from tests.conftest import AT, lead


def R(rid, when, then, **extra):
    return {"id": rid, "description": f"rule {rid}", "when": when, "then": then, **extra}


def fired(decision) -> list[str]:
    return [r["rule"] for r in decision["reasons"]]


def effects(decision, rule) -> list[dict]:
    return next(r["effects"] for r in decision["reasons"] if r["rule"] == rule)


# -- conditions -----------------------------------------------------------------------------------


def test_missing_field_fails_every_comparison_but_not_its_negation(mini):
    rs = mini(
        [
            R("ne", {"profile.country": {"ne": "US"}}, {"tag": "ne"}),
            R("not-eq", {"not": {"profile.country": "US"}}, {"tag": "not_eq"}),
            R("absent", {"profile.country": {"exists": False}}, {"tag": "absent"}),
        ]
    )
    assert rs.evaluate(lead(), AT).decision["tags"] == ["absent", "not_eq"]
    assert rs.evaluate(lead(profile={"country": "FR"}), AT).decision["tags"] == ["ne", "not_eq"]
    assert rs.evaluate(lead(profile={"country": "US"}), AT).decision["tags"] == []


def test_membership_lists_and_any(mini):
    rs = mini(
        [
            R("eu", {"profile.country": {"in_list": "eu"}}, {"tag": "eu"}),
            R(
                "any",
                {"any": [{"profile.employees": {"gte": 1000}}, {"profile.industry": "bank"}]},
                {"tag": "big"},
            ),
        ],
        lists={"eu": ["FR", "DE"]},
    )
    assert rs.evaluate(lead(profile={"country": "DE", "industry": "bank"}), AT).decision["tags"] == [
        "big",
        "eu",
    ]
    assert rs.evaluate(lead(profile={"country": "US", "employees": 5}), AT).decision["tags"] == []


@pytest.mark.parametrize("title", ["Head of Growth", "Chief Revenue Officer", "VP, Sales", "sales DIRECTOR"])
def test_regex_finds_what_durable_rules_own_regex_misses(mini, title):
    # durable_rules' $mt is an anchored match with false negatives on exactly these titles.
    rs = mini(
        [R("senior", {"profile.job_title": {"matches": r"\b(head|chief|vp|director)\b"}}, {"tag": "senior"})]
    )
    assert rs.evaluate(lead(profile={"job_title": title}), AT).decision["tags"] == ["senior"]
    assert rs.evaluate(lead(profile={"job_title": "Headhunter"}), AT).decision["tags"] == []


def test_list_field_contains_ignores_case(mini):
    rs = mini([R("crm", {"profile.tech_stack": {"contains": "salesforce"}}, {"tag": "crm"})])
    assert rs.evaluate(lead(profile={"tech_stack": ["Slack", "SalesForce"]}), AT).decision["tags"] == ["crm"]
    assert rs.evaluate(lead(profile={"tech_stack": []}), AT).decision["tags"] == []


def test_exists_on_a_list_field_sees_the_list(mini):
    # Regression: lists never reach the engine's lead fact, so `exists: true` on one never held.
    rs = mini(
        [
            R("has-stack", {"profile.tech_stack": {"exists": True}}, {"tag": "has_stack"}),
            R("no-stack", {"profile.tech_stack": {"exists": False}}, {"tag": "no_stack"}),
        ]
    )
    assert rs.evaluate(lead(profile={"tech_stack": ["slack"]}), AT).decision["tags"] == ["has_stack"]
    assert rs.evaluate(lead(profile={"tech_stack": []}), AT).decision["tags"] == ["has_stack"]
    assert rs.evaluate(lead(profile={"country": "US"}), AT).decision["tags"] == ["no_stack"]


def test_text_and_amount_answers_never_compare_across_types(mini):
    rs = mini(
        [
            R("big", {"answers.budget": {"gte": 5000}}, {"tag": "big"}),
            R("yes", {"answers.budget": "yes"}, {"tag": "yes"}),
        ]
    )
    assert rs.evaluate(lead(answers={"budget": 7000}), AT).decision["tags"] == ["big"]
    # In durable_rules "yes" > 5000 is true; text answers live under another key so it never is here.
    assert rs.evaluate(lead(answers={"budget": "yes"}), AT).decision["tags"] == ["yes"]


def test_aggregates_count_and_days_since(mini):
    rs = mini(
        [
            R("active", {"count": {"event": "page_view", "within_days": 7, "gte": 2}}, {"tag": "active"}),
            R("quiet", {"days_since": {"event": "any", "gte": 30}}, {"tag": "quiet"}),
            R("never", {"count": {"event": ["demo_request", "free_trial"], "eq": 0}}, {"tag": "never_asked"}),
        ]
    )
    recent = [
        {"type": "page_view", "at": "2026-11-22T10:00:00Z"},
        {"type": "page_view", "at": "2026-11-20T10:00:00Z"},
    ]
    assert rs.evaluate(lead(events=recent), AT).decision["tags"] == ["active", "never_asked"]
    old = [
        {"type": "page_view", "at": "2026-10-01T10:00:00Z"},
        {"type": "free_trial", "at": "2026-10-02T10:00:00Z"},
    ]
    assert rs.evaluate(lead(events=old), AT).decision["tags"] == ["quiet"]


def test_not_of_an_event_means_no_such_event(mini):
    rs = mini([R("no-demo", {"not": {"event": "demo_request"}}, {"tag": "no_demo"})])
    assert rs.evaluate(lead(), AT).decision["tags"] == ["no_demo"]
    assert rs.evaluate(lead(events=[{"type": "demo_request", "at": AT}]), AT).decision["tags"] == []


# -- points ---------------------------------------------------------------------------------------


def test_per_event_points_decay_with_age_and_stop_at_the_cap(mini):
    rs = mini([R("opens", {"event": "email_open"}, {"points": {"engagement": 4}, "per": "event", "cap": 10})])
    events = [
        {"type": "email_open", "at": t, "id": f"o{i}"}
        for i, t in enumerate(
            ["2026-11-23T10:00:00Z", "2026-11-13T10:00:00Z", "2026-11-03T10:00:00Z", "2026-10-24T10:00:00Z"]
        )
    ]
    d = rs.evaluate(lead(events=events[1:3]), AT).decision
    # half-life 10 days: 4 × 0.5 (10 days) + 4 × 0.25 (20 days)
    assert d["scores"]["engagement"] == 3.0
    (points,) = effects(d, "opens")
    assert [e["points"] for e in points["events"]] == [1.0, 2.0]
    (points,) = effects(rs.evaluate(lead(events=events), AT).decision, "opens")
    assert points["points"] == 7.5 and "capped_from" not in points  # 4 + 2 + 1 + 0.5, under the cap
    fresh = [{"type": "email_open", "at": AT, "id": f"n{i}"} for i in range(5)]
    d = rs.evaluate(lead(events=events + fresh), AT).decision
    (points,) = effects(d, "opens")
    assert (points["capped_from"], points["points"], d["scores"]["engagement"]) == (27.5, 10.0, 10.0)


def test_once_rules_count_the_freshest_event_and_events_with_the_same_id_count_once(mini):
    rs = mini([R("demo", {"event": "demo_request"}, {"points": {"engagement": 20}})])
    events = [
        {"type": "demo_request", "at": "2026-11-13T10:00:00Z", "id": "d1"},
        {"type": "demo_request", "at": "2026-11-13T10:00:00Z", "id": "d1"},
        {"type": "demo_request", "at": "2026-11-03T10:00:00Z", "id": "d2"},
    ]
    d = rs.evaluate(lead(events=events), AT).decision
    assert d["scores"]["engagement"] == 10.0  # 20 × 0.5: the freshest demo request is 10 days old
    assert fired(d).count("demo") == 1


def test_negative_points_and_score_limits_show_in_the_reasons(mini):
    rs = mini(
        [
            R("unsub", {"event": "unsubscribe"}, {"points": {"engagement": -15}, "decay": False}),
            R("huge", {"profile.employees": {"gte": 1}}, {"points": {"fit": 80}}),
            R("huge2", {"profile.employees": {"gte": 1}}, {"points": {"fit": 70}}),
        ]
    )
    d = rs.evaluate(
        lead(profile={"employees": 10}, events=[{"type": "unsubscribe", "at": "2026-01-01T00:00:00Z"}]), AT
    ).decision
    assert d["scores"] == {"fit": 100.0, "engagement": 0.0}
    assert effects(d, "unsub")[0]["points"] == -15.0  # decay: false keeps the full penalty
    assert effects(d, "@limit.engagement")[0]["points"] == 15.0
    assert effects(d, "@limit.fit")[0]["points"] == -50.0
    # Every score is the sum of the points in its reasons.
    for score, total in d["scores"].items():
        listed = sum(
            e["points"]
            for r in d["reasons"]
            for e in r["effects"]
            if e["type"] == "points" and e["score"] == score
        )
        assert round(listed, 2) == total


# -- chaining and layers --------------------------------------------------------------------------


def test_rules_reading_a_score_run_after_every_rule_adding_to_it_whatever_their_priority(mini):
    rs = mini(
        [
            R("mql", {"score": {"fit": {"gte": 50}}}, {"stage": "mql"}, priority=0),
            R("a", {"profile.employees": {"gte": 1}}, {"points": {"fit": 30}}, priority=900),
            R("b", {"profile.country": "US"}, {"points": {"fit": 30}}, priority=999),
        ]
    )
    d = rs.evaluate(lead(profile={"employees": 5, "country": "US"}), AT).decision
    assert d["stage"] == "mql"
    assert fired(d).index("mql") > fired(d).index("b")


def test_forward_chaining_sql_builds_on_the_stage_mql_just_set(mini):
    rs = mini(
        [
            R(
                "sql",
                {"stage": "mql", "qualification": {"budget": "met"}},
                {"stage": "sql", "ready": True},
                priority=1,
            ),
            R("mql", {"event": "demo_request"}, {"stage": "mql"}, priority=900),
            R("route", {"quadrant": "poor_fit_ready"}, {"route": "sales"}),
        ]
    )
    d = rs.evaluate(lead(events=[{"type": "demo_request", "at": AT}], answers={"budget": "yes"}), AT).decision
    assert d["stage"] == "sql"
    assert d["quadrant"] == "poor_fit_ready" and d["route"]["id"] == "sales"
    assert fired(d) == ["answer-budget-met", "mql", "sql", "@matrix", "route"]


def test_stages_only_move_forward_and_a_refused_move_is_a_reason(mini):
    rs = mini([R("to-mql", {"profile.country": "US"}, {"stage": "mql"})])
    d = rs.evaluate(lead(profile={"country": "US"}, previous_stage="sql"), AT).decision
    assert d["stage"] == "sql"
    assert effects(d, "to-mql") == [
        {
            "type": "stage",
            "from": "sql",
            "to": "mql",
            "applied": False,
            "note": "stages only move forward: already sql",
        }
    ]


def test_recycling_moves_back_and_the_lead_can_move_forward_again(mini):
    rs = mini(
        [
            R("cold", {"stage": "mql", "days_since": {"event": "any", "gte": 90}}, {"recycle": "went cold"}),
            R("warm", {"event": "demo_request", "within_days": 7}, {"stage": "mql"}),
        ]
    )
    old = [{"type": "page_view", "at": "2026-06-01T00:00:00Z"}]
    d = rs.evaluate(lead(events=old, previous_stage="mql"), AT).decision
    assert d["stage"] == "recycled"
    d = rs.evaluate(
        lead(events=[*old, {"type": "demo_request", "at": AT}], previous_stage="recycled"), AT
    ).decision
    assert d["stage"] == "mql"


def test_verdicts_win_and_non_leads_are_routed_by_the_defaults(mini):
    rs = mini(
        [
            R("spam", {"profile.company": "test"}, {"disqualify": "spam"}, priority=1),
            R("quiet", {"count": {"event": "any", "eq": 0}}, {"not_a_lead": "no interest"}, priority=2),
            R("route", {"profile.company": {"exists": True}}, {"route": "sales"}),
        ]
    )
    d = rs.evaluate(lead(profile={"company": "test"}), AT).decision
    assert (d["is_lead"], d["stage"], d["status_reason"], d["route"]["id"]) == (
        False,
        "disqualified",
        "spam",
        "out",
    )
    assert effects(d, "quiet")[0]["applied"] is False
    assert effects(d, "route")[0] == {
        "type": "route",
        "route": "sales",
        "applied": False,
        "note": "the lead is disqualified",
    }
    assert d["next_questions"] == [] and d["route"]["due_at"] is None
    d = rs.evaluate(lead(profile={"company": "Acme"}), AT).decision
    assert (d["stage"], d["route"]["id"]) == ("not_a_lead", "nurture")


def test_first_route_in_priority_order_wins_and_the_default_route_applies_otherwise(mini):
    rs = mini(
        [
            R("late", {"profile.country": "US"}, {"route": "nurture"}, priority=50),
            R("early", {"profile.country": "US"}, {"route": "sales"}, priority=10),
        ]
    )
    d = rs.evaluate(lead(profile={"country": "US"}), AT).decision
    assert d["route"]["id"] == "sales" and d["route"]["due_at"] == "2026-11-23T10:15:00Z"
    assert effects(d, "late")[0]["note"] == "kept 'sales' set by early"
    d = rs.evaluate(lead(profile={"country": "FR"}), AT).decision
    assert d["route"]["id"] == "nurture" and "@default-route" in fired(d)


# -- questions ------------------------------------------------------------------------------------


def test_next_questions_shrink_as_answers_arrive_and_rules_can_ask_more(mini):
    rs = mini([R("bofu", {"event": "pricing_page_view"}, {"funnel": "bofu", "ask": "talk_to_sales"})])
    assert [q["id"] for q in rs.evaluate(lead(), AT).decision["next_questions"]] == ["budget", "authority"]
    d = rs.evaluate(lead(answers={"budget": 500}), AT).decision
    assert d["qualification"]["budget"] == "unmet"  # an amount under met_at_least
    assert [q["id"] for q in d["next_questions"]] == ["authority"]
    d = rs.evaluate(
        lead(
            answers={"budget": "yes", "authority": "user"}, events=[{"type": "pricing_page_view", "at": AT}]
        ),
        AT,
    ).decision
    assert d["qualification"] == {"budget": "met", "authority": "unmet"}
    assert [q["id"] for q in d["next_questions"]] == ["talk_to_sales"]


def test_an_answer_settles_an_item_before_any_inference(mini):
    rs = mini([R("exec", {"profile.seniority": "c_level"}, {"qualify": {"authority": "met"}}, priority=0)])
    d = rs.evaluate(lead(profile={"seniority": "c_level"}, answers={"authority": "user"}), AT).decision
    assert d["qualification"]["authority"] == "unmet"
    assert effects(d, "exec")[0]["note"] == "kept 'unmet' set by answer-authority-unmet"


@pytest.mark.parametrize(
    ("at", "due"),
    [
        ("2026-11-23T15:00:00Z", "2026-11-23T15:30:00Z"),  # Monday 10:00 in New York: plain 30 minutes
        ("2026-11-23T21:50:00Z", "2026-11-24T14:20:00Z"),  # Monday 16:50: 10 minutes today, 20 on Tuesday
        ("2026-11-28T15:00:00Z", "2026-11-30T14:30:00Z"),  # Saturday: from Monday's opening
        ("2026-11-23T03:00:00Z", "2026-11-23T14:30:00Z"),  # before opening: from the opening
    ],
)
def test_an_sla_in_business_hours_stops_the_clock_outside_them(mini, at, due):
    rs = mini(
        [R("hot", {"profile.country": "US"}, {"route": "sales"})],
        business_hours={"timezone": "America/New_York", "start": "09:00", "end": "17:00"},
        routes={
            "sales": {
                "destination": "sales",
                "sla_minutes": 30,
                "business_hours": True,
                "next_step": {"action": "book_meeting", "text": "Book"},
            },
            "nurture": {"destination": "nurture", "next_step": {"action": "thank_you", "text": "Thanks"}},
            "out": {"destination": "disqualified", "next_step": {"action": "none", "text": "-"}},
        },
    )
    facts = lead(profile={"country": "US"}, events=[{"type": "demo_request", "at": "2026-11-01T00:00:00Z"}])
    assert rs.evaluate(facts, at).decision["route"]["due_at"] == due
