"""`leadgate outcomes import` and `leadgate sla`: feedback from sales, and hand-offs past due."""

from __future__ import annotations

import csv
import json
import sys

import click

from audit import NotFound, outcomes
from engine import Registry
from engine.files import load_directory
from service.config import load_config
from service.decide import now, open_trail
from service.idempotency import once, request_hash
from service.outcomes import escalate_overdue, outcome_problems_at, report_outcome

from . import TIME, echo, main, rulesets_dir

COLUMNS = ("lead_id", "type", "at", "reason", "amount", "note")


def _registry(directory) -> Registry:
    registry = Registry()
    for problem in load_directory(registry, rulesets_dir(directory)):
        echo(str(problem), err=True)
    return registry


@main.group("outcomes")
def outcomes_group():
    """Feedback from sales: what happened to each lead."""


@outcomes_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def outcomes_import(file, db, directory):
    """Record the outcomes in FILE.csv (lead_id,type,at,reason,amount,note), each deciding its lead again.

    Every row is checked first: with any problem, each is printed as FILE:LINE and nothing is recorded.
    A row already imported (the same six values) is not recorded again: importing a file twice is safe.
    """
    config = load_config(db=db)
    registry = _registry(directory)
    trail = open_trail(config)
    try:
        rows, problems = _read(file, trail, registry, config.DEFAULT_RULESET)
        for problem in problems:
            echo(problem)
        if problems:
            echo(f"nothing recorded: {len(problems)} problem(s) in {file.name}")
            sys.exit(1)
        counts: dict[str, int] = {}
        recorded = 0
        for lead_id, outcome, note, ruleset, raw in rows:

            def run(lead_id=lead_id, outcome=outcome, note=note, ruleset=ruleset):
                reply = report_outcome(
                    ruleset,
                    trail,
                    lead_id,
                    outcome,
                    client="cli",
                    source="import",
                    note=note,
                    clock_skew=config.CLOCK_SKEW,
                )
                return reply, 201

            # The row itself is its idempotency key: a file imported twice records each row once.
            key = "import:" + request_hash(raw)
            result, _, replayed = once(trail, "cli:import", key, "outcomes", raw, run)
            if not replayed:
                recorded += 1
                counts[result["decision"]["stage"]] = counts.get(result["decision"]["stage"], 0) + 1
        stages = ", ".join(f"{n} {stage}" for stage, n in sorted(counts.items()))
        again = (
            f"; {len(rows) - recorded} already imported, not recorded again" if recorded < len(rows) else ""
        )
        echo(f"{recorded} outcomes recorded, each lead decided again ({stages or 'none'}){again}")
    finally:
        trail.close()


def _read(file, trail, registry, default_ruleset):
    reader = csv.DictReader(file)
    missing = {"lead_id", "type"} - set(reader.fieldnames or [])
    if missing:
        return [], [
            f"{file.name}:1: missing column(s) {', '.join(sorted(missing))} (columns: {', '.join(COLUMNS)})"
        ]
    rows, problems = [], []
    checked_at = now()
    for row in reader:
        line = reader.line_num
        unknown = sorted(k for k in row if k not in COLUMNS)
        if unknown:
            problems.append(f"{file.name}:{line}: unknown column(s) {', '.join(map(str, unknown))}")
            continue
        lead_id = (row.get("lead_id") or "").strip()
        try:
            ruleset = registry.get(trail.lead(lead_id)["ruleset_name"] or default_ruleset)
        except NotFound:
            problems.append(f"{file.name}:{line}: no lead {lead_id!r} in the audit trail")
            continue
        outcome = {k: row[k].strip() for k in ("type", "at", "reason") if row.get(k) and row[k].strip()}
        if row.get("amount") and row["amount"].strip():
            try:
                outcome["amount"] = float(row["amount"])
            except ValueError:
                problems.append(f"{file.name}:{line}: amount {row['amount']!r} is not a number")
                continue
        for field, message in outcome_problems_at({"at": checked_at, **outcome}, ruleset.model, checked_at):
            problems.append(f"{file.name}:{line}: {field}: {message}")
        raw = {k: (row.get(k) or "").strip() for k in COLUMNS}
        rows.append((lead_id, outcome, raw["note"] or None, ruleset, raw))
    return rows, problems


@main.command("sla")
@click.option("--at", type=TIME, help="Overdue at this time (default: now).")
@click.option("--team", help="Only this team.")
@click.option(
    "--since",
    type=TIME,
    help=f"Team statistics of the hand-offs made at or after this time (default: {outcomes.WINDOW_DAYS} "
    "days before --until).",
)
@click.option("--until", type=TIME, help="…and at or before this time (default: --at).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Overdue hand-offs listed, the most overdue first (0: all). --escalate acts on all of them.",
)
@click.option(
    "--escalate", is_flag=True, help="Decide every overdue lead again, so escalation rules re-route it."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")
@click.option("--dir", "directory", help="Rulesets directory, for --escalate.")
def sla(at, team, since, until, limit, escalate, as_json, db, directory):
    """Hand-offs neither accepted nor rejected in time, by team, and the median time to first action."""
    at = at or now()
    problem = outcomes.window_problem(at, since, until)
    if problem:
        raise click.BadParameter(problem[1], param_hint=f"--{problem[0]}")
    trail = open_trail(load_config(db=db))
    try:
        if escalate:
            registry = _registry(directory)
            decided = escalate_overdue(registry.get, trail, at, client="cli", teams=registry.deployment.teams)
            for d in decided:
                echo(f"decided {d['lead_id']} again: route {d['route']['id']} ({d['decision_id']})")
        report = outcomes.sla(trail, at, team, since, until, limit or None)
    finally:
        trail.close()
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    echo(f"Hand-offs at {report['at']}, made from {report['since']} to {report['until']}")
    echo(f"{'team':<24}{'hand-offs':>10}{'in time':>9}{'late':>6}{'open':>6}{'overdue':>9}{'median min':>12}")
    for name, t in report["teams"].items():
        median = (
            "-" if t["median_minutes_to_first_action"] is None else f"{t['median_minutes_to_first_action']:g}"
        )
        echo(
            f"{name:<24}{t['handoffs']:>10}{t['acted_in_time']:>9}{t['acted_late']:>6}{t['open']:>6}"
            f"{t['overdue']:>9}{median:>12}"
        )
    if report["overdue"]:
        echo(f"\nOverdue (nobody acted yet): {report['overdue_total']}, whenever handed off")
        for o in report["overdue"]:
            echo(
                f"  {o['lead_id']:<20} {o['route']:<20} due {o['due_at']}  {o['minutes_overdue']:g} min late"
            )
        if report["overdue_total"] > len(report["overdue"]):
            echo(f"  … and {report['overdue_total'] - len(report['overdue'])} more (--limit 0 lists all)")
