"""GET /v1/leads/{lead_id} and its timeline, explanation and open questions."""

from __future__ import annotations

import json

from audit import NotFound, overrides
from audit.queries import timeline
from audit.why import explain, render
from service import whynot

from . import insight_schemas, read_schemas
from .auth import requires
from .decisions import _documented
from .errors import ApiError
from .parsing import Blueprint
from .state import registry, trail

bp = Blueprint(
    "leads", __name__, url_prefix="/v1/leads", description="Leads: facts, timeline, why, questions"
)


def _latest(lead_id: str) -> dict:
    lead = trail().lead(lead_id)
    return lead, trail().decision(lead["last_decision_id"])


@bp.get("/<lead_id>")
@bp.response(200, read_schemas.LeadSchema)
@_documented(401, 403, 404)
@requires("review")
def get_lead(lead_id):
    """Current facts, stage and latest decision of a lead"""
    lead, latest = _latest(lead_id)
    return {
        "lead_id": lead_id,
        "created_at": lead["created_at"],
        "updated_at": lead["updated_at"],
        "channel": lead["channel"],
        "stage": lead["stage"],
        "facts": shown_facts(lead),
        "latest_decision": latest["decision"],
    }


def shown_facts(lead: dict) -> dict:
    """What is known of a lead as reviewers see it: personal fields stay tokens."""
    return {
        "profile": json.loads(lead["profile"]),
        "answers": json.loads(lead["answers"]),
        "events": trail().lead_facts(lead["lead_id"])["events"],
    }


@bp.get("/<lead_id>/decisions")
@bp.arguments(read_schemas.PageQuerySchema(), location="query")
@bp.response(200, read_schemas.TimelineSchema)
@_documented(401, 403, 404, 422)
@requires("review")
def get_timeline(query, lead_id):
    """The lead's decisions, newest first, with what changed between them and reviewers' overrides (paged by ?before=)"""
    page = timeline(trail(), lead_id, query["limit"], query.get("before"))
    if not page.items and query.get("before") is None:
        raise NotFound("lead", lead_id)
    overridden = overrides.by_decision(trail(), lead_id)
    items = [{**item, "overrides": overridden.get(item["decision_id"], [])} for item in page.items]
    return {"items": items, "next_before": page.next_before}


@bp.get("/<lead_id>/why")
@bp.response(200, read_schemas.WhySchema)
@_documented(401, 403, 404)
@requires("review")
def get_why(lead_id):
    """Why the lead is routed where it is: stage, route, each score rule by rule, what changed"""
    why = explain(trail(), lead_id)
    return {**why, "text": render(why)}


@bp.get("/<lead_id>/why-not")
@bp.arguments(insight_schemas.WhyNotQuerySchema(), location="query")
@bp.response(200, insight_schemas.WhyNotSchema)
@_documented(401, 403, 404, 422)
@requires("review")
def get_why_not(query, lead_id):
    """Why the lead's latest decision is not at this route, stage or quadrant, and what would get it there

    Give one of `route`, `stage` or `quadrant`. Every rule that would have led there comes with the
    conditions that held and the first that failed; each suggested answer or event was checked by
    deciding the lead again with it. An unknown route, stage or quadrant is a 422 naming the known ones.
    """
    given = [k for k in insight_schemas.TARGETS if query.get(k)]
    if len(given) != 1:
        message = "Give exactly one of route, stage or quadrant: the target to explain."
        raise ApiError(
            422, "invalid_request", message, {k: [message] for k in given or insight_schemas.TARGETS}
        )
    kind = given[0]
    answer = whynot.explain(registry(), trail(), lead_id, kind, query[kind])
    return {**answer, "text": whynot.render(answer)}


@bp.get("/<lead_id>/questions")
@bp.response(200, read_schemas.QuestionsSchema)
@_documented(401, 403, 404)
@requires("decide")
def get_questions(lead_id):
    """What a form or chatbot should ask this lead next, in order"""
    lead, latest = _latest(lead_id)
    return {
        "lead_id": lead_id,
        "stage": lead["stage"],
        "decision_id": latest["decision_id"],
        "questions": latest["decision"]["next_questions"],
    }
