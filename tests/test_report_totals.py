"""Issue 14: reports add up — over generated histories, every report's rows sum to its stated totals
and the reports agree with each other on the counts they share.

Before the fix `leadgate report matrix` said "over 5 leads" while its rows summed to 4 (contacts that
are not leads were left out silently), and `report rejections` said "handed off 2, rejected 0" where
the matrix counted 1 rejected lead (sales rejected a lead whose snapshot decision was no hand-off).
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import AuditTrail, reports
from cli import main
from service.decide import decide
from service.outcomes import report_outcome
from service.reports import build
from tests.history import GOOD_FIT, NOT_READY, POOR_FIT, READY

PROFILES = {
    "good": GOOD_FIT,
    "poor": POOR_FIT,
    "outside": {**GOOD_FIT, "country": "BR"},  # not a lead: outside the market
    "student": {**GOOD_FIT, "seniority": "student"},
}
EVENTS = {"ready": [READY], "not_ready": [NOT_READY], "none": []}
OUTCOMES = {
    "accepted": {},
    "contacted": {},
    "meeting_held": {},
    "opportunity": {},
    "rejected": {"reason": "bad_timing"},
    "won": {"amount": 12000},
    "lost": {"reason": "price"},
}
STEPS = st.sampled_from([*OUTCOMES, "answer", "good", "poor"])
LEADS = st.lists(
    st.tuples(
        st.sampled_from(sorted(PROFILES)),
        st.sampled_from(sorted(EVENTS)),
        st.sampled_from(["demo_form", "chatbot", None]),
        st.lists(STEPS, max_size=5),
    ),
    min_size=1,
    max_size=8,
)
START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(trail: AuditTrail, ruleset, leads) -> None:
    """Each lead decided, then its steps ten minutes apart: outcomes, answers, a change of profile."""
    for i, (profile, events, channel, steps) in enumerate(leads):
        at = START + timedelta(days=i)
        lead_id = f"R-{i}"
        first = {
            "lead_id": lead_id,
            "channel": channel,
            "profile": {**PROFILES[profile], "email": f"p{i}@firm{i}.com"},
            "events": [{**e, "at": _iso(at - timedelta(hours=1)), "id": f"e{i}"} for e in EVENTS[events]],
        }
        decide(ruleset, trail, first, at=_iso(at))
        for step in steps:
            at += timedelta(minutes=10)
            if step in OUTCOMES:
                outcome = {"type": step, "at": _iso(at), **OUTCOMES[step]}
                report_outcome(ruleset, trail, lead_id, outcome, at=_iso(at), source="import")
                continue
            change = {
                "answer": {"answers": {"timeline": "now"}},
                "good": {"profile": GOOD_FIT},
                "poor": {"profile": POOR_FIT},
            }[step]
            decide(ruleset, trail, {"lead_id": lead_id, **change}, at=_iso(at))


def check(items: list, routes: dict) -> None:
    n = len(items)
    funnel, matrix, rejections = build("funnel", items), build("matrix", items), build("rejections", items)
    rows = [*matrix["quadrants"].values(), matrix["not_a_lead"]]
    # The matrix: its rows (with the contacts that are not leads) are every lead, shares of them all.
    assert matrix["leads"] == n == sum(r["leads"] for r in rows)
    assert abs(sum(r["share"] or 0 for r in rows) - (1 if n else 0)) < 0.001
    totals = {k: sum(r[k] for r in rows) for k in ("accepted", "rejected", "won", "lost")}
    assert totals == {k: sum(getattr(x, k) for x in items) for k in totals}
    # The funnel: the leads now at each stage are every lead; each step reads the counts reached.
    assert sum(funnel["now"].values()) == n
    for step in funnel["steps"]:
        assert (step["from_count"], step["to_count"]) == (
            funnel["reached"][step["from"]],
            funnel["reached"][step["to"]],
        )
        assert step["to_count"] <= step["from_count"] <= n
    # Every conversion table: the same leads and the same counts as the matrix.
    for by in reports.DIMENSIONS:
        groups = build("conversion", items, by)["groups"].values()
        assert sum(g["leads"] for g in groups) == n, by
        assert {k: sum(g[k] for g in groups) for k in totals} == totals, by
    # Rejections: the matrix's rejected leads, split by whether the snapshot handed them off.
    assert rejections["rejected"] == totals["rejected"]
    assert (
        rejections["handed_off_rejected"] + rejections["rejected_without_hand_off"] == rejections["rejected"]
    )
    assert rejections["handed_off_rejected"] <= rejections["handed_off"] <= n
    assert sum(rejections["reasons"].values()) == rejections["rejections"] >= rejections["rejected"]
    by_route = build("conversion", items, "route")["groups"]
    handed = sum(
        g["leads"] for route, g in by_route.items() if routes[route].destination in ("sales", "qualification")
    )
    assert rejections["handed_off"] == handed
    for rule in build("rules", items)["rules"]:
        assert 0 < rule["fired"] <= n


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(leads=LEADS)
def test_every_report_adds_up_and_agrees_with_the_others(default, leads):
    with tempfile.TemporaryDirectory() as tmp, AuditTrail(Path(tmp) / "r.db", durability="normal") as trail:
        record(trail, default, leads)
        check(reports.leads(trail), default.model.routes)


def test_the_shared_history_adds_up(history_db, default):
    check(reports.leads(history_db[1]), default.model.routes)


def test_matrix_over_5_leads_has_rows_summing_to_5_and_rejections_agree(tmp_path, default):
    """The issue's file: one contact not a lead, one lead rejected after it left the hand-off."""
    path = tmp_path / "r.db"
    with AuditTrail(path, durability="normal") as trail:
        record(
            trail,
            default,
            [
                ("good", "ready", "demo_form", ["accepted"]),
                ("good", "ready", "demo_form", ["poor", "rejected"]),
                ("good", "ready", "chatbot", []),
                ("poor", "not_ready", None, []),
                ("outside", "ready", None, []),
            ],
        )
    run = CliRunner()
    env = {"LEADGATE_DB": str(path)}
    matrix = run.invoke(main, ["report", "matrix"], env=env).output
    assert matrix.startswith("matrix report over 5 leads")
    counts = [
        (int(m.group(1)), int(m.group(2)))
        for m in re.finditer(r"^\w+_\w+\s+(\d+)\s+\d+\s+(\d+)", matrix, re.MULTILINE)
    ]
    assert len(counts) == 5 and sum(n for n, _ in counts) == 5, matrix
    rejected = sum(r for _, r in counts)
    assert rejected == 1
    text = run.invoke(main, ["report", "rejections"], env=env).output
    assert f"leads rejected in all {rejected}" in text and "rejected without a hand-off 1" in text, text
