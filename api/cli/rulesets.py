"""`leadgate rulesets …`: check, test and publish ruleset files."""

from __future__ import annotations

import json
import sys

import click

from engine import Registry, RulesetError, check_source
from engine.cases import cases_path, run_cases
from engine.schema import ruleset_schema
from engine.yamlsource import load

from . import main, ruleset_paths, rulesets_dir


@main.group()
def rulesets():
    """Check, test and publish ruleset files."""


@rulesets.command("validate")
@click.argument("names", nargs=-1)
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def rulesets_validate(names, directory):
    """Report every problem in the ruleset files, with file, line and rule id."""
    paths = ruleset_paths(rulesets_dir(directory), names)
    if not paths:
        raise click.UsageError("no ruleset files found")
    failed = False
    for path in paths:
        problems = check_source(path.read_text("utf-8"), str(path))
        expected = path.name.removesuffix(".yaml")
        if not problems:
            name = _declared_name(path)
            if name != expected:
                click.echo(f"{path}:1: the file of ruleset {name!r} must be named {name}.yaml")
                failed = True
                continue
            click.echo(f"ok  {path}")
        for problem in problems:
            click.echo(str(problem))
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


def _declared_name(path) -> str:
    return load(path.read_text("utf-8"), str(path)).data["name"]


@rulesets.command("test")
@click.argument("names", nargs=-1)
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def rulesets_test(names, directory):
    """Run each ruleset's example cases and name the rules no case exercised."""
    paths = ruleset_paths(rulesets_dir(directory), names)
    if not paths:
        raise click.UsageError("no ruleset files found")
    registry = Registry()
    failed = False
    for path in paths:
        try:
            compiled = registry.load_file(path)
        except RulesetError as exc:
            click.echo(str(exc))
            failed = True
            continue
        report = run_cases(compiled, cases_path(path))
        passed = sum(r.passed for r in report.results)
        for line in report.failures():
            click.echo(line)
        status = "ok  " if report.passed else "FAIL"
        click.echo(f"{status} {compiled.name} v{compiled.version}: {passed}/{len(report.results)} cases pass")
        if report.unexercised:
            click.echo(f"     rules no case exercised: {', '.join(report.unexercised)}")
        failed |= not report.passed
    sys.exit(1 if failed else 0)


@rulesets.command("schema")
def rulesets_schema():
    """Print the JSON Schema of ruleset files (for editors)."""
    click.echo(json.dumps(ruleset_schema(), indent=2))
