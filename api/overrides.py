"""POST /v1/decisions/{decision_id}/overrides: a reviewer marks a decision as wrong (review scope)."""

from __future__ import annotations

from flask import g

from service import overrides

from . import insight_schemas
from .auth import requires
from .decisions import _documented
from .parsing import Blueprint
from .state import registry, trail

bp = Blueprint("overrides", __name__, url_prefix="/v1", description="Reviewers' overrides of decisions")


def reviewer(key) -> str:
    """Who overrode: the key's name and id (a person's review key, or a service's)."""
    return f"{key.name} ({key.id})"


@bp.post("/decisions/<decision_id>/overrides")
@bp.arguments(insight_schemas.OverrideRequestSchema())
@bp.response(201, insight_schemas.OverrideSchema)
@_documented(400, 401, 403, 404, 415, 422, 503)
@requires("review")
def post_override(body, decision_id):
    """Mark a decision as wrong: the route or stage it should have had, and why

    Recorded as a link of the audit's hash chain and shown on the lead's timeline. A route or stage
    the decision's ruleset does not have is a 422 `unknown_target` naming the known ones; an override
    that expects what the decision already says is a 422 `invalid_override`.
    """
    return overrides.override(
        registry(),
        trail(),
        decision_id,
        route=body.get("route"),
        stage=body.get("stage"),
        reason=body["reason"],
        reviewer=reviewer(g.key),
    )
