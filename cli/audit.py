"""`leadgate why` and `leadgate audit …`: reading, checking and erasing the audit trail."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import click

from audit import archive, checkpoints
from audit.copy import copy
from audit.queries import export, list_decisions, timeline
from audit.replay import replay, replay_range
from audit.why import explain, render
from engine import Registry
from service import whynot
from service.config import load_config
from service.decide import evaluator, source_digest

from . import TIME, command_trail, echo, main

db_option = click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")


def _trail(db):
    return command_trail(load_config(db=db))


@main.command("why")
@click.argument("lead_id")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@db_option
def why(lead_id, as_json, db):
    """Why was LEAD_ID routed where it is: stage, route, scores rule by rule, what changed."""
    data = explain(_trail(db), lead_id)
    echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else render(data))


@main.command("why-not")
@click.argument("lead_id")
@click.option("--route", help="Why is the lead not on this route?")
@click.option("--stage", help="…not at this stage?")
@click.option("--quadrant", help="…not in this quadrant?")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@db_option
def why_not(lead_id, route, stage, quadrant, as_json, db):
    """Why LEAD_ID's latest decision is not at a route, stage or quadrant, and which answers or events would get it there."""
    given = [(k, v) for k, v in (("route", route), ("stage", stage), ("quadrant", quadrant)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --route, --stage or --quadrant")
    trail = _trail(db)
    try:
        data = whynot.explain(Registry(), trail, lead_id, *given[0])
    finally:
        trail.close()
    echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else whynot.render(data))


@main.group("audit")
def audit_group():
    """Read, replay, verify, export and erase the audit trail."""


@audit_group.command("replay")
@click.argument("decision_id", required=False)
@click.option("--since", type=TIME, help="Replay decisions evaluated at or after this time.")
@click.option("--until", type=TIME, help="…and before this time.")
@db_option
def audit_replay(decision_id, since, until, db):
    """Re-evaluate stored decisions with their stored facts, ruleset source and time; exit 1 on any difference."""
    trail = _trail(db)
    evaluate = evaluator(Registry())
    if decision_id:
        results = [replay(trail, decision_id, evaluate)]
    else:
        results = replay_range(trail, evaluate, since, until)
    total = differ = 0
    for result in results:
        total += 1
        if not result["identical"]:
            differ += 1
            erased = (
                f" (personal fields erased: {', '.join(result['erased_fields'])})"
                if result.get("erased_fields")
                else ""
            )
            echo(f"DIFFERS {result['decision_id']}: {', '.join(result['differences'][:10])}{erased}")
        elif decision_id:
            echo(f"identical {result['decision_id']}")
    echo(f"{total} replayed, {total - differ} identical, {differ} different")
    sys.exit(1 if differ else 0)


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.File("r"),
    help="A file of checkpoint statements (one JSON per line) the chain must still match; repeatable.",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    help="Trust statements signed with this hex key (default: the key file's checkpoint key), as a "
    "verifier without the key file (personal values are then not checked); repeatable.",
)
@click.option(
    "--archive",
    "archive_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An archive written by `audit archive`, proven together with the live file; repeatable.",
)
@db_option
def audit_verify(checkpoint_files, public_keys, archive_files, db):
    """Check the chain, what is derived from it, checkpoints and archives: name every problem; exit 1 if any."""
    statements = [s for f in checkpoint_files for s in checkpoints.read(f, f.name)]
    trail = _trail(db)
    problems = trail.verify(statements, list(public_keys) or None, source_digest, archive_files)
    for problem in problems:
        echo(problem)
    matched = f", {len(statements)} checkpoint(s) matched" if statements else ""
    archived = archive.listing(trail)
    if archived:
        moved = sum(a["count"] for a in archived)
        matched += f", {moved} archived decision(s) accounted for by {len(archived)} archive(s)"
        if not archive_files:
            matched += " (their leads' derived rows are checked with --archive)"
        else:
            matched += f", {len(archive_files)} archive file(s) proven"
    echo(f"chain intact{matched}" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


@audit_group.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Append the statement to this file (default: print it). Keep it off the audit file's machine.",
)
@click.option("--public-key", "show_key", is_flag=True, help="Print only the key that verifies statements.")
@db_option
def audit_checkpoint(out, show_key, db):
    """Sign a statement of the chain's head (link, hash, count, time) with a key not in the database."""
    trail = _trail(db)
    if show_key:
        echo(checkpoints.public_key(trail.secrets))
        return
    line = json.dumps(trail.checkpoint(), sort_keys=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    else:
        echo(line)


@audit_group.command("erase")
@click.argument("lead_id")
@click.option("--by", "requested_by", default=None, help="Who asked for the erasure (recorded).")
@db_option
def audit_erase(lead_id, requested_by, db):
    """Remove LEAD_ID's personal data; its decisions keep their skeleton and the chain still verifies."""
    erasure = _trail(db).erase(lead_id, requested_by)
    echo(f"erased {erasure['removed']} personal value(s) of {lead_id} ({erasure['id']})")
    if erasure["left_in_clear"]:
        echo(
            f"warning: {len(erasure['left_in_clear'])} record(s) of {lead_id} written before free text was "
            f"tokenised still hold an email address or phone number in clear (chained, so not rewritten): "
            f"{', '.join(erasure['left_in_clear'][:10])}",
            err=True,
        )


filters = [
    click.option("--lead", "lead_id", help="Only this lead."),
    click.option("--since", type=TIME, help="Evaluated at or after this time."),
    click.option("--until", type=TIME, help="Evaluated before this time."),
    click.option("--stage"),
    click.option("--route"),
    click.option("--quadrant"),
    click.option("--channel"),
    click.option("--ruleset"),
    click.option("--version", type=int),
]


def with_filters(command):
    for option in reversed(filters):
        command = option(command)
    return command


def _filters(kwargs) -> dict:
    return {
        k: v
        for k, v in kwargs.items()
        if k in {"lead_id", "since", "until", "stage", "route", "quadrant", "channel", "ruleset", "version"}
        and v is not None
    }


@audit_group.command("list")
@with_filters
@click.option("--limit", type=int, default=20, show_default=True)
@db_option
def audit_list(limit, db, **kwargs):
    """List decisions, newest first."""
    page = list_decisions(_trail(db), _filters(kwargs), limit)
    for d in page.items:
        echo(
            f"{d['evaluated_at']}  {d['decision_id']}  {d['lead_id']:<16} {d['stage']:<12} {d['route']:<20} "
            f"{d['quadrant']}"
        )


@audit_group.command("timeline")
@click.argument("lead_id")
@db_option
def audit_timeline(lead_id, db):
    """Every decision of LEAD_ID with what changed between them, as JSON."""
    echo(json.dumps(timeline(_trail(db), lead_id, limit=500).items, indent=2, ensure_ascii=False))


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option(
    "--output", "-o", type=click.File("w"), default="-", help="File to write (default: standard output)."
)
@with_filters
@db_option
def audit_export(fmt, output, db, **kwargs):
    """Export decisions, oldest first: full records as JSONL, or one summary row each as CSV."""
    for line in export(_trail(db), _filters(kwargs), fmt):
        output.write(line)


@audit_group.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    help="Where to copy the trail: a postgresql:// URL (or a new SQLite file).",
)
@db_option
def audit_copy(target, db):
    """Copy the whole trail into an empty store, the chain verified on both sides; exit 1 if anything differs.

    The target uses the source's key file: name it with LEADGATE_SECRET_FILE wherever the target is served.
    """
    config = load_config(db=db)
    source = command_trail(config)
    copied = command_trail(replace(config, DB=target, SECRET_FILE=str(source.secrets.path or "")))
    result = copy(source, copied)
    head = result["head"]
    echo(f"copied {sum(result['rows'].values())} rows of {len(result['rows'])} tables")
    if head:
        echo(f"chain of {head['seq']} links verified on both sides, head {head['hash']}")
    else:
        echo("the source's chain is empty")
