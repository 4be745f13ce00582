"""The `leadgate` command: a thin layer over library calls (engine, audit, app).

Each command parses its options, calls one library function and prints the result; exit codes are 0
for success, 1 when what was checked failed, 2 for usage errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine import EngineError, Registry, RulesetError, check_source
from engine.cases import cases_path, run_cases
from engine.facts import format_time
from engine.registry import ruleset_files
from engine.schema import ruleset_schema

from .config import load_config


def _rulesets_dir(value: str | None) -> Path:
    return Path(value or load_config().RULESETS)


def _ruleset_paths(directory: Path, names: tuple[str, ...]) -> list[Path]:
    if not names:
        return ruleset_files(directory)
    out = []
    for name in names:
        path = Path(name) if name.endswith(".yaml") else directory / f"{name}.yaml"
        if not path.is_file():
            raise click.UsageError(f"no ruleset file {path}")
        out.append(path)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """leadgate: lead-qualification decisions from rulesets, with an audit trail."""


@main.group()
def rulesets():
    """Check, test and publish ruleset files."""


@rulesets.command("validate")
@click.argument("names", nargs=-1)
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def rulesets_validate(names, directory):
    """Report every problem in the ruleset files, with file, line and rule id."""
    paths = _ruleset_paths(_rulesets_dir(directory), names)
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


def _declared_name(path: Path) -> str:
    from engine.yamlsource import load

    return load(path.read_text("utf-8"), str(path)).data["name"]


@rulesets.command("test")
@click.argument("names", nargs=-1)
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def rulesets_test(names, directory):
    """Run each ruleset's example cases and name the rules no case exercised."""
    paths = _ruleset_paths(_rulesets_dir(directory), names)
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


@main.command("evaluate")
@click.argument("lead", type=click.File("r"))
@click.option("--ruleset", "name", default=None, help="Ruleset name (default: LEADGATE_DEFAULT_RULESET).")
@click.option(
    "--version", "version", type=int, default=None, help="Ruleset version (default: the active one)."
)
@click.option("--at", "at", default=None, help="Evaluation time, ISO 8601 (default: now).")
@click.option("--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets).")
def evaluate(lead, name, version, at, directory):
    """Print the decision for the lead facts in LEAD (a JSON file, or - for standard input)."""
    config = load_config()
    registry = Registry()
    for problem in registry.load_directory(_rulesets_dir(directory)):
        click.echo(str(problem), err=True)
    try:
        facts = json.load(lead)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{lead.name} is not JSON: {exc}") from None
    try:
        compiled = registry.get(name or config.DEFAULT_RULESET, version)
        result = compiled.evaluate(facts, at or format_time(_now()))
    except EngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(result.decision, indent=2, ensure_ascii=False))


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


@main.command("serve")
@click.option("--host", default=None, help="Address to bind (default: LEADGATE_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: LEADGATE_PORT or 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: LEADGATE_WORKERS or 2).")
def serve(host, port, workers):
    """Serve the API with gunicorn."""
    from .server import run

    config = load_config(host=host, port=port, workers=workers)
    run(config)


if __name__ == "__main__":  # pragma: no cover
    main()
