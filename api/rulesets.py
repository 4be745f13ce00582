"""GET /v1/rulesets and /v1/rulesets/{name}: what definitions are loaded, their owners and questions."""

from __future__ import annotations

from audit import NotFound
from engine import UnknownRuleset

from . import schemas
from .auth import requires
from .decisions import _documented
from .parsing import Blueprint
from .state import registry

bp = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets", description="Ruleset versions")


def describe(compiled, active: bool) -> dict:
    model = compiled.model
    return {
        **compiled.identity,
        "active": active,
        "description": model.description,
        "owners": model.owners,
        "stages": [s.id for s in model.stages],
        "scores": list(model.scores),
        "questions": [q.to_dict() for q in model.questions],
        "routes": list(model.routes),
        "rules": sum(1 for r in model.rules if not r.generated),
    }


@bp.get("")
@bp.response(200, schemas.RulesetListSchema)
@_documented(401, 403)
@requires("review")
def list_rulesets():
    """Every loaded ruleset version"""
    reg = registry()
    return {
        "rulesets": [
            describe(c, c.version == reg.active_version(name))
            for name in reg.names()
            for c in reg.versions(name)
        ]
    }


@bp.get("/<name>")
@bp.response(200, schemas.RulesetDetailSchema)
@_documented(401, 403, 404)
@requires("review")
def get_ruleset(name):
    """One ruleset: its versions, owners, questions and the source of the active version"""
    reg = registry()
    try:
        active = reg.get(name)
    except UnknownRuleset:
        raise NotFound("ruleset", name) from None
    return {
        "name": name,
        "active_version": active.version,
        "versions": [describe(c, c is active) for c in reg.versions(name)],
        "source": active.source,
    }
