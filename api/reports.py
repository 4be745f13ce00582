"""GET /v1/reports/{name}: funnel, matrix, conversion, rejections and rule lift, from outcomes."""

from __future__ import annotations

from audit import reports
from service.reports import NAMES, build

from . import feedback_schemas
from .auth import requires
from .decisions import _documented
from .errors import ApiError
from .parsing import Blueprint
from .state import trail

bp = Blueprint("reports", __name__, url_prefix="/v1/reports", description="Is the lead definition working?")


@bp.get("/<name>")
@bp.arguments(feedback_schemas.ReportQuerySchema(), location="query")
@bp.response(200, feedback_schemas.ReportSchema)
@_documented(401, 403, 404, 422)
@requires("review")
def get_report(query, name):
    """A report on the recorded leads and their outcomes

    funnel (stages reached and conversion between them), matrix (fit × readiness with conversion and
    warnings), conversion (`?by=fit_band|engagement_band|route|channel|ruleset_version|quadrant`),
    rejections (sales rejection rate and reasons), rules (conversion when each rule fired: its lift).
    """
    if name not in NAMES:
        raise ApiError(404, "not_found", f"no report {name!r} (reports: {', '.join(NAMES)})")
    items = reports.leads(trail(), query.get("ruleset"), query.get("since"), query.get("until"))
    return {"report": name, "leads": len(items), "data": build(name, items, query.get("by"))}
