"""`leadgate evaluate`, `leadgate decide`, `leadgate serve`: decisions from the command line."""

from __future__ import annotations

import json

import click

from audit import AuditError
from audit.backends import shown
from engine import Registry
from engine.files import load_directory
from service.config import load_config
from service.decide import decide as decide_and_record
from service.decide import now, open_trail

from . import echo, main, rulesets_dir


def _ruleset_options(command):
    for option in reversed(
        [
            click.option(
                "--ruleset", "name", default=None, help="Ruleset name (default: LEADGATE_DEFAULT_RULESET)."
            ),
            click.option(
                "--version",
                "version",
                type=int,
                default=None,
                help="Ruleset version (default: the active one).",
            ),
            click.option("--at", "at", default=None, help="Evaluation time, ISO 8601 (default: now)."),
            click.option(
                "--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets)."
            ),
        ]
    ):
        command = option(command)
    return click.argument("lead", type=click.File("r"))(command)


def _load(lead, name, version, directory):
    """The lead facts from the file, the compiled ruleset that should decide them, and the teams."""
    config = load_config()
    registry = Registry()
    for problem in load_directory(registry, rulesets_dir(directory)):
        echo(str(problem), err=True)
    try:
        facts = json.load(lead)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{lead.name} is not JSON: {exc}") from None
    return facts, registry.get(name or config.DEFAULT_RULESET, version), registry.deployment.teams


def _print(decision: dict) -> None:
    echo(json.dumps(decision, indent=2, ensure_ascii=False))


@main.command("evaluate")
@_ruleset_options
def evaluate(lead, name, version, at, directory):
    """Print the decision for the lead facts in LEAD (a JSON file, or - for standard input); records nothing."""
    facts, compiled, _ = _load(lead, name, version, directory)
    _print(compiled.evaluate(facts, at or now()).decision)


@main.command("decide")
@_ruleset_options
@click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")
def decide(lead, name, version, at, directory, db):
    """Decide for LEAD with what is already known of it, record the decision, print it (imports, scripts)."""
    facts, compiled, teams = _load(lead, name, version, directory)
    config = load_config(db=db)
    trail = open_trail(config)
    try:
        reply = decide_and_record(
            compiled, trail, facts, at=at, client="cli", teams=teams, clock_skew=config.CLOCK_SKEW
        )
        _print(reply[0])
    finally:
        trail.close()


@main.command("serve")
@click.option("--host", default=None, help="Address to bind (default: LEADGATE_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: LEADGATE_PORT or 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: LEADGATE_WORKERS or 2).")
def serve(host, port, workers):
    """Serve the API with gunicorn; on first start with no key, create a local admin key and print it once."""
    from audit.keys import active_count, create

    from .server import run

    config = load_config(host=host, port=port, workers=workers)
    try:
        trail = open_trail(config)
    except AuditError as exc:
        raise click.ClickException(f"the audit database {shown(config.DB)} cannot be used: {exc}") from None
    try:
        if active_count(trail) == 0:
            key, text = create(trail, "local admin (created by the first leadgate serve)", "admin")
            echo(
                f"No API key existed: created local admin key {key.id}. It is shown once; keep it:\n\n"
                f"    {text}\n\nTry: curl -H 'Authorization: Bearer {text}' http://{config.HOST}:{config.PORT}/v1/rulesets\n"
            )
    finally:
        trail.close()  # gunicorn forks workers: each opens its own connection
    run(config)
