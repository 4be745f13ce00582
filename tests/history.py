"""A generated history for tests: leads in every quadrant, with outcomes drawn from known rates.

Each report must recover the rates the history was built from (tests/test_reports.py); the review
pages use the same history to have something to show.
"""

from __future__ import annotations

import random

from audit import AuditTrail
from engine import CompiledRuleset
from service.decide import decide
from service.outcomes import report_outcome

GOOD_FIT = {
    "country": "US",
    "industry": "software",
    "employees": 200,
    "seniority": "vp",
    "department": "marketing",
}
POOR_FIT = {"country": "ES", "industry": "education", "employees": 30, "seniority": "individual"}
READY = {"type": "demo_request"}
NOT_READY = {"type": "content_download", "properties": {"content": "ebook"}}
# quadrant -> (share of leads, profile, event, P(won)); good fit + ready is handed off to sales, which
# rejects REJECTED of those hand-offs and wins WON_IF_ACCEPTED of the rest.
QUADRANTS = {
    "good_fit_ready": (0.30, GOOD_FIT, READY, None),
    "good_fit_not_ready": (0.30, GOOD_FIT, NOT_READY, 0.10),
    "poor_fit_ready": (0.15, POOR_FIT, READY, 0.05),
    "poor_fit_not_ready": (0.25, POOR_FIT, NOT_READY, 0.01),
}
REJECTED = 0.20
WON_IF_ACCEPTED = 0.40
REJECTION_REASONS = {"not_a_fit": 0.5, "bad_timing": 0.3, "no_budget": 0.2}
N = 1500  # leads in the shared test history


def expected_conversion(quadrant: str) -> float:
    won = QUADRANTS[quadrant][3]
    return (1 - REJECTED) * WON_IF_ACCEPTED if won is None else won


def build(trail: AuditTrail, ruleset: CompiledRuleset, n: int, seed: int = 7) -> dict[str, str]:
    """Record n leads and their outcomes; returns lead_id -> the quadrant it was generated for."""
    rng = random.Random(seed)
    names, weights = list(QUADRANTS), [q[0] for q in QUADRANTS.values()]
    truth = {}
    for i in range(n):
        quadrant = rng.choices(names, weights)[0]
        _, profile, event, won_rate = QUADRANTS[quadrant]
        lead_id = f"H-{i:05d}"
        day = f"2026-10-{1 + i % 28:02d}"
        lead = {
            "lead_id": lead_id,
            "channel": rng.choice(["demo_form", "chatbot", "import"]),
            "profile": {**profile, "email": f"p{i}@company{i % 97}.com"},
            "events": [{**event, "at": f"{day}T09:00:00Z", "id": f"e{i}"}],
        }
        decide(ruleset, trail, lead, at=f"{day}T10:00:00Z")
        truth[lead_id] = quadrant

        for kind, hour, extra in _outcomes(rng, won_rate):
            outcome = {"type": kind, "at": f"{day}T{hour:02d}:00:00Z", **extra}
            report_outcome(ruleset, trail, lead_id, outcome, at=outcome["at"], source="import")
    return truth


def _outcomes(rng: random.Random, won_rate: float | None) -> list[tuple[str, int, dict]]:
    """(type, hour, extra) of what sales reports about one lead."""
    if won_rate is None:  # handed off to sales
        if rng.random() < REJECTED:
            reason = rng.choices(list(REJECTION_REASONS), list(REJECTION_REASONS.values()))[0]
            return [("rejected", 11, {"reason": reason})]
        if rng.random() < WON_IF_ACCEPTED:
            return [("accepted", 11, {}), ("won", 15, {"amount": rng.choice([12000, 24000, 48000])})]
        return [
            ("accepted", 11, {}),
            ("lost", 15, {"reason": rng.choice(["price", "competitor", "no_decision"])}),
        ]
    if rng.random() < won_rate:
        return [("won", 15, {"amount": rng.choice([12000, 24000, 48000])})]
    return []
