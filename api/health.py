"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    registry = current_app.extensions["leadgate.registry"]
    names = registry.names()
    problems = current_app.extensions["leadgate.ruleset_problems"]
    body = {
        "status": "ok" if names else "unavailable",
        "rulesets": {n: registry.active_version(n) for n in names},
        "ruleset_problems": [p.to_dict() for p in problems],
    }
    return body, 200 if names else 503
