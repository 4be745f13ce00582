"""One lead: why it is routed where it is (audit.why, as GET /v1/leads/{id}/why), why not elsewhere
(service.whynot, as GET /v1/leads/{id}/why-not), its scores rule by rule, its open questions, its facts,
and its timeline of decisions, outcomes and overrides with what changed."""

from __future__ import annotations

from flask import render_template, request

from audit import outcomes, overrides
from audit.queries import timeline
from audit.why import explain, render
from engine.whynot import UnknownTarget
from service import whynot

from ..leads import shown_facts
from ..state import registry, trail
from . import bp, charts
from .decisions import choices
from .params import Params

PAGE = 25


def _history(lead_id: str, before: int | None):
    """One page of decisions, newest first, with the outcomes reported in the span it covers."""
    page = timeline(trail(), lead_id, PAGE, before)
    newest = page.items[0]["evaluated_at"] if page.items and before is not None else None
    oldest = page.items[-1]["evaluated_at"] if page.items and page.next_before is not None else None
    entries = [{"kind": "decision", "at": d["evaluated_at"], "item": d} for d in page.items]
    entries += [
        {"kind": "outcome", "at": o["at"], "item": o}
        for o in outcomes.of_lead(trail(), lead_id)
        if (oldest is None or o["at"] >= oldest) and (newest is None or o["at"] <= newest)
    ]
    entries += [
        {"kind": "override", "at": o["at"], "item": o}
        for o in overrides.of_lead(trail(), lead_id)
        if (oldest is None or o["at"] >= oldest) and (newest is None or o["at"] <= newest)
    ]
    # Newest first; the decision an outcome caused, made at the same moment, shows above it.
    entries.sort(key=lambda e: (e["at"], e["kind"] == "decision"), reverse=True)
    return entries, page.next_before


@bp.get("/leads/<path:lead_id>")
def lead(lead_id):
    why = explain(trail(), lead_id)
    row = trail().lead(lead_id)
    params = Params(request.args)
    entries, next_before = _history(lead_id, params.whole("before", "Page"))
    asked = params.text("why_not")
    why_not = _why_not(lead_id, asked, params.problems) if asked else None
    most = max((abs(line["points"]) for s in why["scores"].values() for line in s["breakdown"]), default=0)
    return render_template(
        "review/lead.html",
        why=why,
        text=render(why),
        lead=row,
        facts=shown_facts(row),
        entries=entries,
        next_before=next_before,
        paged="before" in request.args,
        problems=params.problems,
        bar=lambda points: charts.bar(points, most),
        why_not=why_not,
        asked=asked or "",
        choices=choices(),
    )


def _why_not(lead_id: str, asked: str, problems: list[str]) -> dict | None:
    """`?why_not=route:sales_handoff` (or stage:…, quadrant:…), answered as the API answers it."""
    kind, _, value = asked.partition(":")
    if kind not in ("route", "stage", "quadrant") or not value:
        problems.append(f"“{asked}” is not a route, stage or quadrant to explain.")
        return None
    try:
        return whynot.explain(registry(), trail(), lead_id, kind, value)
    except UnknownTarget as exc:
        problems.append(str(exc))
        return None
