"""The decision an evaluation adds up to: stage, scores, route and hand-off, questions, every reason.

Built once the rules stopped firing, from the slots, totals and reasons of the `Run` (actions.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from .actions import VERDICT_KINDS, Run
from .times import format_time


def _due(run: Run, route) -> datetime:
    """When a hand-off on this route must be answered: the SLA from now, in business hours if asked."""
    if route.business_hours:
        return run.plan.shape.business_hours.add(run.at, route.sla_minutes)
    return run.at + timedelta(minutes=route.sla_minutes)


def _handoff_times(run: Run, route, is_lead: bool, now: str) -> tuple[str | None, str | None]:
    """(due_at, handed_off_at): a hand-off keeps its first due time while the lead stays on its route;
    a new route starts a new SLA from now."""
    if not (route.sla_minutes and is_lead):
        return None, None
    current = run.facts.get("handoff")
    if current is not None and current["route"] == route.id:
        return current["due_at"], current["at"]
    return format_time(_due(run, route)), now


def decision(run: Run, identity: dict) -> dict:
    """The decision document for a run whose rules have all fired."""
    model, slots = run.model, run.slots
    stage = slots["stage"]
    is_lead = run.kind_of.get(stage) not in VERDICT_KINDS
    route_id = slots["route"]
    if not is_lead:
        route_id = (
            run.verdict_route
            or model.defaults[
                "disqualified_route" if run.kind_of[stage] == "disqualified" else "not_a_lead_route"
            ]
        )
    elif route_id == "none":
        route_id = model.defaults["route"]
        run.reasons.append(
            {
                "rule": "@default-route",
                "description": "No routing rule placed the lead",
                "effects": [{"type": "route", "route": route_id, "applied": True}],
            }
        )
    route = model.routes[route_id]
    evaluated_at = format_time(run.at)
    due_at, handed_off_at = _handoff_times(run, route, is_lead, evaluated_at)
    answers = run.facts["answers"]
    questions = []
    if is_lead:
        for q in model.questions:
            if q.id in answers:
                continue
            open_item = q.item is not None and slots[f"qual:{q.item}"] == "unknown"
            if (q.auto and open_item) or q.id in run.asked:
                questions.append(q.to_dict())
    return {
        "lead_id": run.facts["lead_id"],
        "ruleset": identity,
        "is_lead": is_lead,
        "stage": stage,
        "status_reason": run.status_reason,
        "funnel": slots["funnel"],
        "scores": dict(run.totals),
        "grades": {k: v for k, v in run.grades.items() if v is not None},
        "fit": slots["fit"],
        "ready": bool(slots["ready"]),
        "quadrant": slots["quadrant"],
        "qualification": {item: slots[f"qual:{item}"] for item in model.qualification},
        "tags": sorted(k[4:] for k, v in slots.items() if k.startswith("tag:") and v is True),
        "route": {
            "id": route.id,
            "destination": route.destination,
            "team": route.team,
            "track": route.track,
            "sla_minutes": route.sla_minutes if is_lead else None,
            "due_at": due_at,
            "handed_off_at": handed_off_at,
            "next_step": next_step(route, questions),
        },
        "next_questions": questions,
        "reasons": run.reasons,
        "evaluated_at": evaluated_at,
    }


def next_step(route, questions: list) -> dict:
    """The route's next step; one that asks questions when none is left becomes the route's
    `next_step_when_answered` (or `none` with the same text): ask_questions always comes with questions."""
    step = dict(route.next_step)
    if step["action"] == "ask_questions" and not questions:
        return dict(route.next_step_when_answered or {**step, "action": "none"})
    return step


def canonical(decision: dict) -> str:
    return json.dumps(decision, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
