"""How values read on the pages: times, rates, points, rule effects. Template filters, no decisions."""

from __future__ import annotations

import json

from engine import FactsError
from engine.facts import parse_time

from . import bp


@bp.app_template_filter("when")
def when(text: str | None) -> str:
    """An ISO time as `2026-11-23 10:00 UTC` (the exact value stays in the <time> element), read by the
    one time parser: a time given with another offset is shown in UTC too, not labelled UTC as it was."""
    if not text:
        return "–"
    try:
        moment = parse_time(text, "time")
    except FactsError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("pct")
def pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


@bp.app_template_filter("num")
def num(value) -> str:
    if value is None:
        return "–"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


@bp.app_template_filter("points")
def points(value: float) -> str:
    return f"{value:+.2f}"


@bp.app_template_filter("digest")
def digest(value: str) -> str:
    """`sha256:` and the first 12 hex digits: enough to tell versions apart at a glance."""
    return value[:19] + "…" if len(value) > 19 else value


@bp.app_template_filter("pretty")
def pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@bp.app_template_filter("words")
def words(identifier: str | None) -> str:
    return "–" if identifier is None else str(identifier).replace("_", " ")


@bp.app_template_filter("effect")
def effect(e: dict) -> str:
    """One effect of a fired rule in words, as the README's "Reading a decision" describes them."""
    kind = e.get("type")
    if kind == "points":
        text = f"{e['points']:+g} {e['score']}"
        if e.get("events"):
            text += " from " + ", ".join(_event(ev) for ev in e["events"])
    elif kind in ("stage", "funnel"):
        text = f"{kind} {e['from']} → {e['to']}" + (f" ({e['reason']})" if e.get("reason") else "")
    elif kind == "route":
        text = f"route {e['route']}"
    elif kind == "qualification":
        text = f"{e['item']} {e['value']}"
    elif kind == "ask":
        text = f"ask {e['question']}"
    else:
        value = e.get("value")
        text = f"{kind} {('yes' if value else 'no') if isinstance(value, bool) else value}"
    if e.get("applied") is False:
        text += f" — not applied: {e.get('note') or 'kept as it was'}"
    return text


def _event(ev: dict) -> str:
    """An event a score counted: its age, and its own decayed points when the rule gives them per event."""
    points = f": {ev['points']:+g}" if "points" in ev else ""
    return f"{ev['type']} ({ev['age_days']:.1f} days old{points})"
