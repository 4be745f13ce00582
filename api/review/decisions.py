"""The decisions list (searchable, filtered, paged like `leadgate audit list`) and one decision in full."""

from __future__ import annotations

from flask import render_template, request

from audit import NotFound, ReplayImpossible
from audit.queries import list_decisions
from audit.replay import replay
from engine.vocabulary import QUADRANTS
from service.decide import evaluator

from ..state import registry, trail
from . import bp
from .params import Params

PAGE = 50
FIELDS = ("lead_id", "stage", "route", "quadrant", "ruleset", "version", "channel", "kind", "since", "until")


def choices() -> dict:
    """What the filter menus offer: the stages and routes of every ruleset version served."""
    reg = registry()
    versions = [c for name in reg.names() for c in reg.versions(name)]
    return {
        "stages": list(dict.fromkeys(s.id for c in versions for s in c.model.stages)),
        "routes": list(dict.fromkeys(r for c in versions for r in c.model.routes)),
        "quadrants": QUADRANTS,
        "rulesets": reg.names(),
        "kinds": ("decision", "preview"),
    }


@bp.get("/decisions")
def decisions():
    params = Params(request.args)
    filters = {
        name: params.text(name)
        for name in ("lead_id", "stage", "route", "quadrant", "ruleset", "channel", "kind")
    }
    filters["version"] = params.whole("version", "Ruleset version")
    filters["since"] = params.day("since", "From")
    filters["until"] = params.day("until", "To", end=True)
    page = list_decisions(trail(), filters, PAGE, params.whole("before", "Page"))
    kept = {k: v for k, v in params.form(*FIELDS).items() if v}
    return render_template(
        "review/decisions.html",
        page=page,
        form=params.form(*FIELDS),
        kept=kept,
        paged="before" in request.args,
        problems=params.problems,
        choices=choices(),
    )


@bp.get("/decisions/<decision_id>")
def decision(decision_id):
    record = trail().decision(decision_id)
    try:
        replayed = replay(trail(), decision_id, evaluator(registry()))
    except (ReplayImpossible, NotFound) as exc:  # NotFound: its ruleset source is missing from the trail
        replayed = {"impossible": str(exc)}
    return render_template("review/decision.html", record=record, d=record["decision"], replayed=replayed)
