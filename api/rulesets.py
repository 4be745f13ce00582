"""GET /v1/rulesets and /v1/rulesets/{name}: what definitions are loaded, their owners and questions."""

from __future__ import annotations

from audit import NotFound

from . import read_schemas
from .auth import requires
from .decisions import _documented
from .parsing import Blueprint
from .state import registry

bp = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets", description="Ruleset versions")


def describe(compiled, role: str) -> dict:
    model = compiled.model
    return {
        **compiled.identity,
        "active": role == "active",
        "role": role,
        "description": model.description,
        "owners": model.owners,
        "stages": [s.id for s in model.stages],
        "scores": list(model.scores),
        "questions": [q.to_dict() for q in model.questions],
        "routes": list(model.routes),
        "rules": sum(1 for r in model.rules if not r.generated),
    }


@bp.get("")
@bp.response(200, read_schemas.RulesetListSchema)
@_documented(401, 403)
@requires("review")
def list_rulesets():
    """Every loaded ruleset version"""
    reg = registry()
    return {"rulesets": [describe(c, role_of(reg, c)) for name in reg.names() for c in reg.versions(name)]}


def role_of(reg, compiled) -> str:
    if reg.active_version(compiled.name) == compiled.version:
        return "active"
    shadow = reg.shadow(compiled.name)
    return "shadow" if shadow is not None and shadow.version == compiled.version else "candidate"


@bp.get("/<name>")
@bp.response(200, read_schemas.RulesetDetailSchema)
@_documented(401, 403, 404)
@requires("review")
def get_ruleset(name):
    """One ruleset: its versions, owners, questions and the source of the active version"""
    reg = registry()
    versions = reg.versions(name)
    if not versions:
        raise NotFound("ruleset", name)
    active = next((c for c in versions if c.version == reg.active_version(name)), None)
    shadow = reg.shadow(name)
    return {
        "name": name,
        "active_version": active.version if active else None,
        "shadow_version": shadow.version if shadow else None,
        "versions": [describe(c, role_of(reg, c)) for c in versions],
        "source": active.source if active else None,
    }
