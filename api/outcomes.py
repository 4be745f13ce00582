"""Feedback from sales: POST/GET /v1/leads/{lead_id}/outcomes, and GET /v1/sla for hand-offs past due."""

from __future__ import annotations

from flask import current_app, g

from audit import NotFound, outcomes
from service.decide import now
from service.idempotency import once
from service.outcomes import report_outcome

from . import feedback_schemas
from .auth import requires
from .decisions import REPLAYED, _documented, idempotency_key
from .parsing import Blueprint
from .state import registry, trail

bp = Blueprint("outcomes", __name__, url_prefix="/v1", description="Outcomes and SLA: the feedback loop")


def ruleset_of_lead(lead_id: str):
    """The active version of the ruleset that last decided the lead."""
    try:
        name = trail().lead(lead_id)["ruleset_name"]
    except NotFound:
        name = current_app.config["LEADGATE_DEFAULT_RULESET"]
    return registry().get(name)


@bp.post("/leads/<lead_id>/outcomes")
@bp.arguments(feedback_schemas.OutcomeRequestSchema())
@bp.response(201, feedback_schemas.OutcomeReplySchema)
@_documented(400, 401, 403, 404, 409, 413, 415, 422, 503)
@requires("decide")
def post_outcome(body, lead_id):
    """Report what happened to a lead (sales accepted, rejected, won…)

    The outcome is recorded in the audit trail and the lead is decided again with it, in one
    transaction: in the default ruleset a rejected hand-off recycles the lead, a won one makes it a
    customer. A rejection or a loss needs one of the reasons the ruleset declares. With an
    Idempotency-Key header, a repeated report returns the first reply without recording again.
    """
    fields = dict(body)
    note = fields.pop("note", None)
    # Read before the write transaction: bringing the rulesets up to date may itself write a reload.
    ruleset, teams = ruleset_of_lead(lead_id), registry().deployment.teams
    skew = current_app.config["LEADGATE_CLOCK_SKEW"]

    def run():
        reply = report_outcome(
            ruleset, trail(), lead_id, fields, client=g.key.id, note=note, teams=teams, clock_skew=skew
        )
        return reply, 201

    reply, status, replayed = once(
        trail(), g.key.id, idempotency_key(), "outcomes", {"lead_id": lead_id, **body}, run
    )
    return reply, status, REPLAYED if replayed else {}


@bp.get("/leads/<lead_id>/outcomes")
@bp.response(200, feedback_schemas.OutcomeListSchema)
@_documented(401, 403, 404)
@requires("review")
def get_outcomes(lead_id):
    """Every outcome reported for a lead, oldest first"""
    trail().lead(lead_id)
    return {"lead_id": lead_id, "outcomes": outcomes.of_lead(trail(), lead_id)}


@bp.get("/sla")
@bp.arguments(feedback_schemas.SlaQuerySchema(), location="query")
@bp.response(200, feedback_schemas.SlaSchema)
@_documented(401, 403, 422)
@requires("review")
def get_sla(query):
    """Hand-offs neither accepted nor rejected in time, and each team's median time to first action

    `overdue` lists every open hand-off past due at `at`, however old, the most overdue first (the
    first `limit`; `overdue_total` counts all). `teams` counts the hand-offs made in the window
    `since`–`until` (both included; by default the 30 days before `at`), read through an index of
    hand-offs by time: the reply's `since` and `until` say which window it covers.
    """
    return outcomes.sla(
        trail(),
        query.get("at") or now(),
        query.get("team"),
        query.get("since"),
        query.get("until"),
        query["limit"],
    )
