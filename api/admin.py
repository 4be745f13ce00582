"""POST /v1/admin/reload and GET /v1/admin/reloads: load the ruleset files again, without downtime."""

from __future__ import annotations

from flask import g

from audit import deployments
from service.idempotency import once

from . import read_schemas
from .auth import requires
from .decisions import REPLAYED, _documented, idempotency_key
from .errors import ApiError
from .parsing import Blueprint
from .state import exclusive, reload, trail

bp = Blueprint("admin", __name__, url_prefix="/v1/admin", description="Operating the service")


@bp.post("/reload")
@bp.response(200, read_schemas.ReloadSchema)
@_documented(401, 403, 409, 422, 503)
@requires("admin")
def post_reload():
    """Load the ruleset files again, in every worker

    A file that fails validation is refused with its problems (422) and its ruleset's last good
    version keeps serving; the other files are loaded. Every reload is recorded in the audit trail.
    With an Idempotency-Key header, a repeated request returns the first reply and reloads nothing.
    """

    def run():
        record, problems, kept = reload(f"api:{g.key.id}")
        if not problems:
            return {**record, "kept": kept}, 200
        errors: dict[str, list[str]] = {}
        for p in problems:
            errors.setdefault(f"{p.file}:{p.line}", []).append(
                f"[{p.rule}] {p.message}" if p.rule else p.message
            )
        kept_text = ", ".join(f"{n} v{v}" for n, v in kept.items()) or "nothing"
        message = (
            f"{len(problems)} problem(s) in the ruleset files: those files were refused; "
            f"still serving the last good version of {kept_text}. Reload {record['reload_id']} recorded."
        )
        return {"code": "invalid_ruleset", "message": message, "errors": errors}, 422

    with exclusive():  # the rulesets' lock before the database's, as every request takes them
        reply, status, replayed = once(trail(), g.key.id, idempotency_key(), "admin/reload", {}, run)
    headers = REPLAYED if replayed else {}
    if status == 422:
        raise ApiError(422, reply["code"], reply["message"], reply["errors"], headers)
    return reply, status, headers


@bp.get("/reloads")
@bp.response(200, read_schemas.ReloadListSchema)
@_documented(401, 403)
@requires("admin")
def get_reloads():
    """The latest reloads, newest first: what was served from when, and what was refused"""
    return {"reloads": deployments.history(trail())}
