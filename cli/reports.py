"""`leadgate report NAME`: is the definition of a qualified lead working? Printed tables or JSON."""

from __future__ import annotations

import json

import click

from audit import reports
from service import overrides
from service.config import load_config
from service.decide import open_trail
from service.reports import NAMES, build

from . import echo, main

GROUP_COLUMNS = ("leads", "accepted", "rejected", "won", "lost", "conversion", "win_rate")


@main.command("report")
@click.argument("name", type=click.Choice([*NAMES, "overrides"]))
@click.option("--by", type=click.Choice(sorted(reports.DIMENSIONS)), help="conversion: the dimension.")
@click.option("--ruleset", help="Only leads decided by this ruleset.")
@click.option("--since", help="Only leads whose snapshot decision is at or after this time.")
@click.option("--until", help="…and before this time.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")
def report(name, by, ruleset, since, until, as_json, db):
    """Print a report: funnel, matrix, conversion (--by), rejections, rules (lift) or overrides."""
    trail = open_trail(load_config(db=db))
    try:
        if name == "overrides":
            return _overrides(overrides.report(trail, since, ruleset), as_json)
        items = reports.leads(trail, ruleset, since, until)
    finally:
        trail.close()
    data = build(name, items, by)
    if as_json:
        echo(json.dumps({"report": name, "leads": len(items), "data": data}, indent=2))
        return
    echo(f"{name} report over {len(items)} leads")
    if name == "funnel":
        _table(["from", "to", "from_count", "to_count", "conversion"], data["steps"])
        echo("now: " + ", ".join(f"{stage} {n}" for stage, n in data["now"].items()))
    elif name == "matrix":
        _groups("quadrant", {**data["quadrants"], "not_a_lead": data["not_a_lead"]}, extra=("share",))
        for warning in data["warnings"]:
            echo(f"warning: {warning}")
    elif name == "conversion":
        _groups(data["by"], data["groups"])
    elif name == "rejections":
        echo(
            f"handed off {data['handed_off']}, rejected {data['handed_off_rejected']} of them "
            f"({_fmt(data['rejection_rate'], 'rejection_rate')}); rejected without a hand-off "
            f"{data['rejected_without_hand_off']}; leads rejected in all {data['rejected']}"
        )
        for reason, count in data["reasons"].items():
            echo(f"  {count:>6}  {reason}")
    else:
        _table(["rule", "fired", "conversion_when_fired", "conversion_otherwise", "lift"], data["rules"])


def _overrides(data: dict, as_json: bool) -> None:
    """The rules most often involved in overridden decisions, per decided route → expected."""
    if as_json:
        echo(json.dumps({"report": "overrides", "data": data}, indent=2, ensure_ascii=False))
        return
    echo(f"overrides report over {data['overrides']} overridden decisions")
    for pair, group in data["by_route"].items():
        echo(
            f"\n{pair}: {group['overrides']} overridden of {group['decisions_on_route']} decisions on the route"
        )
        _table(["rule", "overrides", "share", "share_on_route", "lift"], group["rules"][:10])
        echo("reasons: " + "; ".join(f"{r} ({n})" for r, n in group["reasons"].items()))


def _groups(label: str, groups: dict, extra=()) -> None:
    _table([label, *GROUP_COLUMNS, *extra], [{label: k, **v} for k, v in groups.items()])


RATES = (
    "conversion",
    "win_rate",
    "share",
    "share_on_route",
    "rejection_rate",
    "conversion_when_fired",
    "conversion_otherwise",
)


def _fmt(value, column: str = "") -> str:
    if value is None:
        return "-"
    if column in RATES:
        return f"{value:.1%}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table(columns: list[str], rows: list[dict]) -> None:
    cells = [[_fmt(r.get(c), c) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)
    ]
    echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
