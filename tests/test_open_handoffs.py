"""The open hand-offs are read through the seq each lead's row carries (`leads.handoff_seq`, the view
open_handoffs), not by walking every hand-off: they must be exactly the hand-offs the `handoffs` view
says are open, on both backends, and verify names a row that carries the wrong one."""

from __future__ import annotations

import re

from audit import AuditTrail, assignment, gauges, outcomes, state, unit
from service.decide import decide
from service.outcomes import report_outcome
from tests.postgres import secrets_for
from tests.test_assignment import hand_off


def fill(path, default) -> None:
    """Six leads handed off to sales; four of them escalated later (a new route: the first closes)."""
    with AuditTrail(path, secrets=secrets_for(path)) as trail:
        for i in range(6):
            decide(default, trail, hand_off(i), at="2026-11-23T10:00:00Z")
        for i in range(4):
            decide(default, trail, {"lead_id": f"A-{i}"}, at="2026-11-23T14:00:00Z")


OPEN = "SELECT id, lead_id, decision_id, route, team, at, due_at, acted_at FROM {} {} ORDER BY id"


def both(trail) -> tuple[list, list]:
    return (
        [tuple(r.values()) for r in trail._read(OPEN.format("open_handoffs", ""))],
        [tuple(r.values()) for r in trail._read(OPEN.format("handoffs", "WHERE closed_at IS NULL"))],
    )


def test_open_handoffs_are_those_the_handoffs_view_leaves_open(audit_db, default):
    fill(audit_db, default)
    with AuditTrail(audit_db, secrets=secrets_for(audit_db)) as trail:
        opened, open_in_view = both(trail)
        assert opened == open_in_view and opened  # some open, some closed by a later route
        assert trail._read("SELECT count(*) AS n FROM handoffs WHERE closed_at IS NOT NULL")[0]["n"] > 0
        # acted on by an outcome: still open, acted_at set in both
        lead_id = opened[0][1]
        report_outcome(default, trail, lead_id, {"type": "contacted"}, at="2026-11-24T12:00:00Z")
        opened, open_in_view = both(trail)
        assert opened == open_in_view and any(r[1] == lead_id and r[7] for r in opened)
        # a decision on another route closes it: gone from both, and from the gauges
        before = sum(t["open"] for t in gauges.handoffs(trail).values())
        decide(default, trail, {"lead_id": lead_id, "answers": {"budget": "no"}}, at="2026-11-25T12:00:00Z")
        decide(
            default, trail, {"lead_id": opened[-1][1], "answers": {"budget": "no"}}, at="2026-11-25T12:00:00Z"
        )
        opened, open_in_view = both(trail)
        assert opened == open_in_view
        assert sum(t["open"] for t in gauges.handoffs(trail).values()) <= before
        assert trail.verify() == []


def test_verify_names_a_lead_row_carrying_the_wrong_open_handoff(tmp_path, default):
    db = tmp_path / "audit.db"
    fill(db, default)
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        lead_id, seq = trail.db.execute(
            "SELECT lead_id, handoff_seq FROM leads WHERE handoff_seq IS NOT NULL LIMIT 1"
        ).fetchone()
        trail.db.execute("UPDATE leads SET handoff_seq = NULL WHERE lead_id = ?", (lead_id,))
        problems = [str(b) for b in trail.verify()]
    assert any(f"leads.handoff_seq of {lead_id} is None, its entries say {seq}" in m for m in problems), (
        problems
    )


# A table walked whole by a statement of a decision's path or of a scrape: what these plans must not show
# (the views' readers must search by lead, or by the open hand-offs only).
WALK = re.compile(r"^SCAN (l|d|n|o|b|leads|decisions|outcomes|personal_notes|events|handoffs_before)( |$)")


def test_the_hot_statements_search_by_lead_never_walk_a_table(tmp_path, default):
    """Regression: the `personal` view as a UNION made a decision's read of its lead walk every lead
    (0.9 s at 31,000 leads); the lead owner was looked up through the team's assignments."""
    db = tmp_path / "audit.db"
    fill(db, default)
    lead = {"lead": "A-1", "team": "account-executives", "domain": "acme.io", "period": "2026-11-23"}
    statements = {
        "state.STATE": (state.STATE, lead),
        "outcomes.OPEN_HANDOFF": (outcomes.OPEN_HANDOFF, ("A-1",)),
        "assignment.OWNERS": (assignment.OWNERS, lead),
        "unit.HEAD_ASSIGNING": (unit.HEAD_ASSIGNING, lead),
        "gauges.handoffs": ("SELECT team, due_at FROM open_handoffs WHERE acted_at IS NULL", ()),
    }
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        for name, (sql, params) in statements.items():
            plan = [r[3] for r in trail.db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert not [line for line in plan if WALK.match(line)], (name, plan)
            if name == "assignment.OWNERS":  # the lead's owner by lead, not among the team's assignments
                assert any(re.match(r"SEARCH decisions .*\(lead_id=\? AND team=\?\)", x) for x in plan), plan
