"""Is the definition working? The fit × readiness heat map, the funnel, conversion by score band,
rejections and SLA breaches: the reports of GET /v1/reports/{name} and GET /v1/sla, drawn."""

from __future__ import annotations

from flask import render_template, request

from audit import outcomes, reports
from service.decide import now
from service.reports import build

from ..state import registry, trail
from . import bp, charts
from .params import Params

OVERDUE_SHOWN = 25


@bp.get("/funnel")
def funnel():
    params = Params(request.args)
    ruleset = params.text("ruleset")
    items = reports.leads(trail(), ruleset, params.day("since", "From"), params.day("until", "To", end=True))
    matrix, stages = build("matrix", items), build("funnel", items)
    fit, engagement = build("conversion", items, "fit_band"), build("conversion", items, "engagement_band")
    sla = outcomes.sla(trail(), now(), limit=OVERDUE_SHOWN)
    return render_template(
        "review/funnel.html",
        leads=len(items),
        matrix=matrix,
        stages=stages,
        fit=fit,
        engagement=engagement,
        rejections=build("rejections", items),
        sla=sla,
        overdue=sla["overdue"],
        charts={
            "matrix": charts.heat_map(matrix),
            "funnel": charts.funnel(stages),
            "fit": charts.bands(fit, "Conversion by fit score band"),
            "engagement": charts.bands(engagement, "Conversion by engagement score band"),
            "sla": charts.sla(sla["teams"]),
        },
        form=params.form("ruleset", "since", "until"),
        rulesets=registry().names(),
        problems=params.problems,
    )
