"""The decisions list (searchable, filtered, paged like `leadgate audit list`) and one decision in full."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from audit import NotFound, ReplayImpossible, overrides
from audit.queries import list_decisions
from audit.replay import replay
from engine import EngineError
from engine.vocabulary import QUADRANTS
from service import overrides as override_service
from service.decide import evaluator

from ..overrides import reviewer
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
def decision(decision_id, problems=(), form=None, status=200):
    record = trail().decision(decision_id)
    try:
        replayed = replay(trail(), decision_id, evaluator(registry()))
    except (ReplayImpossible, NotFound) as exc:  # NotFound: its ruleset source is missing from the trail
        replayed = {"impossible": str(exc)}
    try:
        model = (
            registry().compile(trail().ruleset_source(record["ruleset"]["digest"]), "<stored ruleset>").model
        )
        targets = {"routes": list(model.routes), "stages": [s.id for s in model.stages]}
    except NotFound:  # its source is missing from the trail: offer what the served versions know
        targets = {k: choices()[k] for k in ("routes", "stages")}
    page = render_template(
        "review/decision.html",
        record=record,
        d=record["decision"],
        replayed=replayed,
        overridden=[
            o for o in overrides.of_lead(trail(), record["lead_id"]) if o["decision_id"] == decision_id
        ],
        targets=targets,
        problems=list(problems),
        form=form or {},
    )
    return page, status


@bp.post("/decisions/<decision_id>/overrides")
def override(decision_id):
    """The override form (CSRF-checked by the blueprint's guard), as POST /v1/decisions/{id}/overrides."""
    form = {k: (request.form.get(k) or "").strip() for k in ("route", "stage", "reason")}
    try:
        if not form["route"] and not form["stage"]:
            raise override_service.OverrideRefused(
                "choose the route or the stage the decision should have had"
            )
        done = override_service.override(
            registry(),
            trail(),
            decision_id,
            route=form["route"] or None,
            stage=form["stage"] or None,
            reason=form["reason"],
            reviewer=reviewer(g.review_key),
        )
    except EngineError as exc:  # unknown route or stage, nothing new, no reason: said on the page
        return decision(decision_id, [str(exc)], form, 422)
    return redirect(url_for("review.lead", lead_id=done["lead_id"]) + "#timeline")
