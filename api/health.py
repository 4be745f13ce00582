"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

from . import read_schemas
from .parsing import Blueprint
from .state import registry, served, trail

bp = Blueprint("health", __name__, description="Probes")


@bp.get("/healthz")
@bp.response(200, read_schemas.HealthSchema)
def healthz():
    """The process is up"""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.response(200, read_schemas.HealthSchema)
@bp.alt_response(503, schema=read_schemas.HealthSchema, description="Not ready")
def readyz():
    """Rulesets are loaded and the audit database answers"""
    reg = registry()
    names = [n for n in reg.names() if reg.active_version(n) is not None]
    try:
        trail().ping()
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        database = f"unavailable: {exc}"
    problems = served().problems
    ok = bool(names) and database == "ok"
    body = {
        "status": "ok" if ok else "unavailable",
        "rulesets": {n: reg.active_version(n) for n in names},
        "ruleset_problems": problems,
        "database": database,
    }
    return body, 200 if ok else 503
