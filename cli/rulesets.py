"""`leadgate rulesets …`: check, test, reload, compare and publish ruleset files."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from audit import deployments, reports
from audit.backends import shown
from engine import Problem, Registry, RulesetError, check_source, compile_source, digest_of
from engine.cases import cases_path, run_cases
from engine.destinations import FILE as DESTINATIONS_FILE
from engine.destinations import load_destinations
from engine.files import all_files, load_file, naming_problem
from engine.probe import leads_of_cases, probe
from engine.schema import ruleset_schema
from engine.teams import FILE as TEAMS_FILE
from engine.teams import load_teams
from engine.yamlsource import load
from service import diff as history_diff
from service import lock
from service.config import load_config
from service.decide import now, open_trail
from service.deploy import reload
from service.suggest import MIN_SAMPLE, SuggestionRefused, suggest

from . import echo, main, rulesets_dir
from .gitref import source_at

DIR_OPTION = click.option(
    "--dir", "directory", help="Rulesets directory (default: LEADGATE_RULESETS or ./rulesets)."
)


@main.group()
def rulesets():
    """Check, test, reload and compare ruleset files."""


def selected(directory: Path, names: tuple[str, ...]) -> list[tuple[Path, bool]]:
    """(path, is_candidate) of the named rulesets (a name, or a file), or of every file."""
    files = all_files(directory)
    if not names:
        if not files:
            raise click.UsageError(f"no ruleset files found in {directory}")
        return files
    out = []
    for name in names:
        if name.endswith(".yaml"):
            path = Path(name)
            if not path.is_file():
                raise click.UsageError(f"no ruleset file {path}")
            out.append((path, path.parent.name == "candidates"))
            continue
        matching = [(p, c) for p, c in files if p.name.split(".", 1)[0] == name]
        if not matching:
            raise click.UsageError(f"no ruleset file {directory / (name + '.yaml')}")
        out += matching
    return out


@rulesets.command("validate")
@click.argument("names", nargs=-1)
@DIR_OPTION
@click.option(
    "--base", help="A git ref: refuse a ruleset whose content changed since it without a new version."
)
def rulesets_validate(names, directory, base):
    """Report every problem in the ruleset files (and teams.yaml, destinations.yaml), with file, line and rule id."""
    failed = False
    checks = [(path, candidate) for path, candidate in selected(rulesets_dir(directory), names)]
    for name in (TEAMS_FILE, DESTINATIONS_FILE):
        extra = rulesets_dir(directory) / name
        if not names and extra.exists():
            checks.append((extra, None))
    for path, candidate in checks:
        text = path.read_text("utf-8")
        problems = _file_problems(text, path) if candidate is None else check_source(text, str(path))
        if not problems:
            data = load(text, str(path)).data
            if candidate is not None:
                problems = [p for p in [naming_problem(path, data["name"], data["version"], candidate)] if p]
            if base and not problems:
                problems = version_problems(path, data, base)
        for problem in problems:
            echo(str(problem))
        if not problems:
            if candidate is not None:
                for warning in probe(compile_source(text, str(path)), leads_of_cases(cases_path(path))):
                    echo(f"warning: {warning}")
            echo(f"ok  {path}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


def _file_problems(text: str, path: Path) -> list[Problem]:
    """The problems of teams.yaml or destinations.yaml."""
    try:
        (load_destinations if path.name == DESTINATIONS_FILE else load_teams)(text, str(path))
    except RulesetError as exc:
        return exc.problems
    return []


def version_problems(path: Path, data: dict, base: str) -> list[Problem]:
    """Every shipped change is a new version: content that changed since `base` needs a higher one.

    The same holds for the teams file."""
    old_text = source_at(base, path)
    if old_text is None:
        return []
    try:
        old = load(old_text, f"{base}:{path}").data
    except RulesetError:
        return []  # the base was broken: any valid content now is a fix
    if digest_of(old) == digest_of(data):
        return []
    old_version = old.get("version") if isinstance(old, dict) else None
    if isinstance(old_version, int) and data["version"] <= old_version:
        line = load(path.read_text("utf-8"), str(path)).line(("version",))
        return [
            Problem(
                str(path),
                line,
                None,
                f"the ruleset changed since {base} but its version is {data['version']} "
                f"(it was {old_version} there): raise it to {old_version + 1}",
            )
        ]
    return []


@rulesets.command("lock")
@DIR_OPTION
@click.option(
    "--check", is_flag=True, help="Only check: exit 1, saying what to do, when the lock is not up to date."
)
def rulesets_lock(directory, check):
    """Record each shipped version's digest in versions.lock; refuse content changed under a locked version."""
    directory = rulesets_dir(directory)
    found = (
        lock.problems(directory)
        if check
        else [f"locked {i.name} v{i.version} {i.digest}" for i in lock.update(directory)]
    )
    for line in found:
        echo(line)
    if check and found:
        sys.exit(1)
    if not found:
        echo(f"ok  {directory / lock.LOCK}")


@rulesets.command("test")
@click.argument("names", nargs=-1)
@DIR_OPTION
def rulesets_test(names, directory):
    """Run each ruleset's example cases and name the rules no case exercised."""
    registry = Registry()
    failed = False
    for path, candidate in selected(rulesets_dir(directory), names):
        try:
            compiled = load_file(registry, path, candidate)
        except RulesetError as exc:
            echo(str(exc))
            failed = True
            continue
        report = run_cases(compiled, cases_path(path))
        passed = sum(r.passed for r in report.results)
        for line in report.failures():
            echo(line)
        status = "ok  " if report.passed else "FAIL"
        what = f"{compiled.name} v{compiled.version}{' (candidate)' if candidate else ''}"
        echo(f"{status} {what}: {passed}/{len(report.results)} cases pass")
        if report.unexercised:
            echo(f"     rules no case exercised: {', '.join(report.unexercised)}")
        failed |= not report.passed
    sys.exit(1 if failed else 0)


@rulesets.command("reload")
@DIR_OPTION
def rulesets_reload(directory):
    """Load the ruleset files again: every running worker serves them from its next request on."""
    registry, trail = Registry(), open_trail(load_config())
    try:
        record, problems, kept = reload(registry, trail, rulesets_dir(directory), "cli")
    finally:
        trail.close()
    for problem in problems:
        echo(str(problem))
    echo(f"reload {record['reload_id']} recorded{'' if record['changed'] else ' (no change)'}")
    deployment = registry.deployment
    for name, compiled in deployment.active.items():
        note = " (its file was refused: the last good version keeps serving)" if name in kept else ""
        echo(f"  {name} v{compiled.version} active{note}")
    for compiled in deployment.candidates:
        role = "shadow" if deployment.shadows.get(compiled.name) is compiled else "candidate"
        echo(f"  {compiled.name} v{compiled.version} {role}")
    if kept:
        echo("kept " + ", ".join(f"{n} v{v}" for n, v in kept.items()) + ": their files were refused")
    sys.exit(1 if problems else 0)


@rulesets.command("shadow-report")
@click.option("--ruleset", "name", help="Only the shadow of this ruleset.")
@click.option("--since", help="Only decisions evaluated at or after this time.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rulesets_shadow_report(name, since, as_json):
    """How often, and how, shadow candidates disagreed with the live decisions."""
    trail = open_trail(load_config())
    try:
        report = deployments.shadow_report(trail, name, since)
    finally:
        trail.close()
    if as_json:
        echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    if not report:
        echo("no shadow decisions recorded (name a candidate in rulesets/candidates/shadows.yaml)")
        return
    for entry in report:
        r = entry["ruleset"]
        n = entry["decisions"]
        echo(
            f"{r['name']} v{r['version']} in shadow of v{', v'.join(map(str, entry['live_versions']))}: "
            f"{n} live decisions, {entry['disagreements']} disagreed ({_pct(entry['disagreements'], n)}), "
            f"{entry['errors']} failed"
        )
        for field in deployments.SHADOW_FIELDS:
            part = entry[field]
            echo(f"  {field}: {part['changed']} changed ({_pct(part['changed'], n)})")
            for pair, count in part["from_to"].items():
                echo(f"    {count:>6}  {pair}")


def _pct(part, whole: int = 1) -> str:
    if part is None:
        return "-"
    return f"{100 * part / whole:.1f}%" if whole else "0%"


@rulesets.command("schema")
def rulesets_schema():
    """Print the JSON Schema of ruleset files (for editors)."""
    echo(json.dumps(ruleset_schema(), indent=2))


@rulesets.command("diff")
@click.option("--base", required=True, help="The git ref to compare with (e.g. origin/main).")
@click.option("--ruleset", "name", default=None, help="The ruleset (default: LEADGATE_DEFAULT_RULESET).")
@DIR_OPTION
@click.option(
    "--db", "db", help="Re-decide each lead's latest decision in this audit file (default: LEADGATE_DB)."
)
@click.option(
    "--leads", "leads_file", type=click.File("r"), help="Or: leads as JSON lines (one facts object each)."
)
@click.option(
    "--at", help="Evaluation time for --leads (default: now), or for every lead instead of its own."
)
@click.option("--workers", type=int, help="Processes (default: every core).")
@click.option("--samples", type=int, default=5, show_default=True, help="Changed leads shown in detail.")
@click.option("--fail-over", type=float, help="Exit 1 when more than this percentage of leads change route.")
def rulesets_diff(base, name, directory, db, leads_file, at, workers, samples, fail_over):
    """What the working copy of a ruleset would change for recorded leads, against --base (Markdown)."""
    config = load_config()
    name = name or config.DEFAULT_RULESET
    path = rulesets_dir(directory) / f"{name}.yaml"
    if not path.is_file():
        raise click.UsageError(f"no ruleset file {path}")
    base_source = source_at(base, path)
    if base_source is None:
        raise click.UsageError(f"{path} does not exist at {base}: there is nothing to compare with")
    if leads_file is not None and db is not None:
        raise click.UsageError("give --db or --leads, not both")
    if leads_file is not None:
        leads = (_jsonl_lead(line, i, at) for i, line in enumerate(leads_file, 1) if line.strip())
        report = history_diff.run(base_source, path.read_text("utf-8"), leads, workers, samples)
        label = f"`{leads_file.name}`"
    else:
        trail = open_trail(replace(config, DB=db) if db else config)
        try:
            stored = (
                (lead, facts, at or when, ending)
                for lead, facts, when, ending in reports.snapshot_facts(trail, name)
            )
            report = history_diff.run(base_source, path.read_text("utf-8"), stored, workers, samples)
        finally:
            trail.close()
        label = f"the audit trail `{shown(db or config.DB)}`"
    echo(history_diff.markdown(report, base, "working copy", label), nl=False)
    routes = report.percent(report.changed_count("route"))
    if fail_over is not None and routes > fail_over:
        echo(f"\n**{routes:.1f}% of routes change: more than the {fail_over:g}% allowed.**")
        sys.exit(1)


def _jsonl_lead(line: str, number: int, at: str | None) -> tuple[str, dict, str, None]:
    try:
        facts = json.loads(line)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--leads line {number} is not JSON: {exc}") from None
    if not isinstance(facts, dict):
        raise click.UsageError(f"--leads line {number} is not a JSON object")
    if "decision_id" in facts and isinstance(facts.get("facts"), dict):  # a record of `audit export`
        return str(facts["lead_id"]), facts["facts"], at or facts["evaluated_at"], None
    return str(facts.get("lead_id", f"line-{number}")), facts, at or now(), None


@rulesets.command("suggest")
@click.option("--ruleset", "name", default=None, help="The ruleset (default: LEADGATE_DEFAULT_RULESET).")
@DIR_OPTION
@click.option("--db", "db", help="The audit file with the outcomes (default: LEADGATE_DB).")
@click.option("--at", help="Learn from the outcomes as of this time (default: now).")
@click.option("--min-sample", type=int, default=MIN_SAMPLE, show_default=True, help="Refuse below this.")
@click.option(
    "--write", is_flag=True, help="Write the proposal over rulesets/NAME.yaml (then: rulesets diff)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the suggestion as JSON.")
def rulesets_suggest(name, directory, db, at, min_sample, write, as_json):
    """Suggest point values and thresholds that would have separated won from lost leads better."""
    config = load_config()
    name = name or config.DEFAULT_RULESET
    path = rulesets_dir(directory) / f"{name}.yaml"
    if not path.is_file():
        raise click.UsageError(f"no ruleset file {path}")
    compiled = load_file(Registry(), path)
    trail = open_trail(replace(config, DB=db) if db else config)
    try:
        items = reports.leads(trail, name)
    finally:
        trail.close()
    try:
        result = suggest(compiled, items, at or now(), min_sample)
    except SuggestionRefused as exc:
        echo(f"no suggestion: {exc}", err=True)
        sys.exit(1)
    if as_json:
        echo(json.dumps({k: v for k, v in vars(result).items() if k != "source"}, indent=2))
    else:
        _print_suggestion(result)
    if write:
        path.write_text(result.source, "utf-8")
        echo(
            f"\nwrote {path} as v{compiled.version + 1}: see what it changes with `leadgate rulesets diff --base HEAD`"
        )


def _print_suggestion(result) -> None:
    echo(
        f"Learnt from {result.labelled} leads with a known result ({result.won} won): "
        "a logistic regression over the rules that fired when each was handed off."
    )
    echo(f"\n{'rule':<32}{'score':<12}{'now':>6}{'suggested':>11}{'coefficient':>13}")
    for p in result.points:
        if p["coefficient"] is None:
            continue
        echo(
            f"{p['rule']:<32}{p['score']:<12}{p['current']:>6g}{p['suggested']:>11g}{p['coefficient']:>13.3f}"
        )
    for t in result.thresholds:
        echo(
            f"threshold {t['rule']} {t['score']} >= {t['current']:g} → {t['suggested']:g} "
            f"(F1 for won leads {t['f1_current']:.2f} → {t['f1_suggested']:.2f})"
        )
    now_, then = result.handoff["current"], result.handoff["proposed"]
    echo(
        f"hand-off to sales: precision {_pct(now_['precision'])} → {_pct(then['precision'])}, "
        f"recall {_pct(now_['recall'])} → {_pct(then['recall'])} ({now_['handed_off']} → {then['handed_off']} leads)"
    )
