"""`leadgate rulesets coverage` and `leadgate rulesets cases-from-overrides`: production read back
into the ruleset's next version — rules that never fire, and decisions reviewers said were wrong."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from engine import EngineError, Registry
from service import coverage, overrides
from service.config import load_config
from service.decide import open_trail

from . import echo, rulesets_dir
from .rulesets import DIR_OPTION, rulesets


@rulesets.command("coverage")
@click.option("--since", default="30d", show_default=True, help="Window start: 30d, 12h, 2w, or an ISO time.")
@click.option("--until", help="Window end (an ISO time; default: now).")
@click.option("--ruleset", "name", default=None, help="Only this ruleset (default: every one decided).")
@click.option("--db", "db", help="The audit file (default: LEADGATE_DB).")
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON.")
def rulesets_coverage(since, until, name, db, as_json):
    """How often each rule fired on the decisions recorded in the window; rules never fired or always fired, conditions never true."""
    config = load_config()
    try:
        window = coverage.since_time(since), coverage.since_time(until)
    except EngineError as exc:  # not a span nor a time
        raise click.UsageError(f"--since/--until: {exc}") from None
    trail = open_trail(replace(config, DB=db) if db else config)
    try:
        report = coverage.coverage(Registry(), trail, *window, name)
    finally:
        trail.close()
    echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else coverage.render(report))


@rulesets.command("cases-from-overrides")
@click.option("--ruleset", "name", default=None, help="The ruleset (default: LEADGATE_DEFAULT_RULESET).")
@DIR_OPTION
@click.option("--db", "db", help="The audit file with the overrides (default: LEADGATE_DB).")
@click.option("--since", help="Only overrides recorded at or after this time.")
@click.option(
    "--out", "out", help="Write here (default: RULESETS/NAME.overrides.cases.yaml; - for standard output)."
)
def rulesets_cases_from_overrides(name, directory, db, since, out):
    """Write the decisions reviewers overrode as cases (facts, time, the outcome they expected) for the next version."""
    config = load_config()
    name = name or config.DEFAULT_RULESET
    trail = open_trail(replace(config, DB=db) if db else config)
    try:
        items = overrides.cases(trail, name, since)
    finally:
        trail.close()
    text = overrides.cases_yaml(name, items)
    if out == "-":
        echo(text, nl=False)
        return
    path = Path(out) if out else rulesets_dir(directory) / f"{name}.overrides.cases.yaml"
    path.write_text(text, "utf-8")
    echo(
        f"wrote {len(items)} case(s) to {path}: they fail until a version decides them as the reviewers expected"
    )
