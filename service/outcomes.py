"""What sales report about a lead, and what happens when nobody acts on a hand-off in time.

An outcome (accepted, rejected, won, lost…) is recorded and the lead decided again with it, both in one
write transaction; `leadgate sla --escalate` decides again every lead whose hand-off is overdue, so
the ruleset's escalation rules can re-route it, and tells the breach once. Both decide through the
same steps as service.decide.
"""

from __future__ import annotations

import time
from datetime import timedelta

from audit import AuditTrail, NotFound, merge_facts, outcomes
from engine import CompiledRuleset, FactsError
from engine.facts import format_time, outcome_problems, parse_time
from engine.teams import Teams

from . import metrics
from .decide import CLOCK_SKEW, assigned, check_time, decide, item_of, now


def outcome_problems_at(outcome: dict, model, at: str, clock_skew: int = CLOCK_SKEW) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with an outcome reported at `at`, which it may not follow
    by more than the clock skew allowed between the caller's clock and ours."""
    problems = outcome_problems(outcome, model)
    late = parse_time(at, "at") + timedelta(seconds=clock_skew)
    if not problems and parse_time(outcome["at"], "outcome.at") > late:
        problems = [
            (
                "at",
                f"{outcome['at']} is later than now ({at}, clock skew allowed: {clock_skew} s): "
                "report an outcome once it happened",
            )
        ]
    return problems


def report_outcome(
    ruleset: CompiledRuleset,
    trail: AuditTrail,
    lead_id: str,
    outcome: dict,
    *,
    client: str | None = None,
    source: str = "api",
    note: str | None = None,
    at: str | None = None,
    teams: Teams | None = None,
    clock_skew: int = CLOCK_SKEW,
) -> dict:
    """Record what sales reported about a lead and decide the lead again with it: {outcome, decision}.

    Both are recorded in one transaction, or neither; an unknown lead is NotFound, a wrong outcome
    (type, reason not declared by the ruleset, amount) a FactsError naming the field.
    """
    told, at = at, at or now()
    outcome = {k: v for k, v in outcome.items() if v is not None}
    outcome.setdefault("at", at)
    problems = outcome_problems_at(outcome, ruleset.model, at, clock_skew)
    if problems:
        raise FactsError({f"outcome.{k}" if k else "outcome": [m] for k, m in problems})
    outcome["at"] = format_time(parse_time(outcome["at"], "outcome.at"))
    writing = time.perf_counter()
    with trail.unit_of_work() as uow:
        known = uow.lead_state(lead_id)
        if known.facts is None:
            raise NotFound("lead", lead_id)
        at = told or now()  # under the write lock: after any decision another worker just recorded
        check_time(known.known_at, lead_id, at)
        recorded = uow.record_outcome(lead_id, outcome, client, source, note)
        started = time.perf_counter()
        request = {"lead_id": lead_id, "channel": "outcome", "outcome": outcome}
        facts = merge_facts(uow.lead_state(lead_id).facts, {"lead_id": lead_id, "channel": "outcome"})
        evaluation = assigned(uow, teams, ruleset.evaluate(facts, at), ruleset)
        item = item_of(ruleset, evaluation, request, "decision", client, time.perf_counter() - started)
        result = {"outcome": recorded, "decision": uow.record(**item)}
    metrics.decided([result["decision"]], [item["latency_ms"] / 1000], time.perf_counter() - writing)
    return result


def escalate_overdue(
    ruleset_of,
    trail: AuditTrail,
    at: str | None = None,
    client: str | None = None,
    teams: Teams | None = None,
) -> list[dict]:
    """Decide again every lead whose hand-off is overdue, so that escalation rules can re-route it.

    `ruleset_of(name)` gives the ruleset that decides a lead (the one that last decided it).
    """
    at = at or now()
    decisions = []
    for item in outcomes.overdue(trail, at)[0]:  # every one, however old (no window, no limit)
        lead = trail.lead(item["lead_id"])
        request = {"lead_id": item["lead_id"], "channel": "sla"}
        ruleset = ruleset_of(lead["ruleset_name"])
        with trail.unit_of_work() as uow:  # the breach is told if and only if the escalation is recorded
            uow.sla_breached(item, lead["ruleset_name"], at)
            decisions.append(decide(ruleset, trail, request, at=at, client=client, teams=teams)[0])
    return decisions
