"""`leadgate audit backup | restore | archive`: keeping the trail for a year, and getting it back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit import AuditError
from audit.archive import archive
from audit.backup import backup, restore
from audit.secrets import default_path
from service.config import load_config
from service.decide import source_digest

from . import TIME, command_trail, echo
from .audit import audit_group, db_option


def _fail(exc: Exception):
    echo(f"error: {exc}", err=True)
    sys.exit(1)


def _say(summary: dict) -> None:
    echo(
        f"  {summary['decisions']} decisions, {summary['previews']} previews, {summary['leads']} leads, "
        f"{summary['outcomes']} outcomes, {summary['ruleset_sources']} ruleset sources"
    )
    echo(
        f"  {summary['links']} chain links (head {summary['head_seq']}), newest decision "
        f"{summary['newest']}, {summary['bytes']} bytes"
    )


@audit_group.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option(
    "--key-to",
    type=click.Path(dir_okay=False),
    help="Also copy the key file here (0600). Keep it apart from the database's backups.",
)
@db_option
def audit_backup(dest, key_to, db):
    """Copy the live trail to DEST while the service runs (SQLite's online backup), verify the copy
    (integrity, chain, a checkpoint taken as it began) and say what it holds."""
    trail = command_trail(load_config(db=db))
    try:
        summary = backup(trail, dest, source_digest, key_to)
    except AuditError as exc:
        _fail(exc)
    echo(
        f"backup {dest}: verified (integrity ok, chain intact, checkpoint of link "
        f"{summary['covers_checkpoint']} taken before the copy matched)"
    )
    _say(summary)
    echo(f"  checkpoint of its head: {dest}.checkpoint")
    if key_to:
        echo(f"  key file copied to {key_to} (0600)")
    else:
        echo(f"  key file not copied: keep {trail.secrets.path} backed up apart from this file (--key-to)")


@audit_group.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="The key file backed up with SOURCE: copied beside the restored database (0600).",
)
@click.option("--force", is_flag=True, help="Replace an existing database (stop the service first).")
@db_option
def audit_restore(source, key_file, force, db):
    """Bring the database (--db or LEADGATE_DB) up from the backup SOURCE, verified before it replaces
    anything; refuses to replace an existing file without --force."""
    config = load_config(db=db)
    key_path = Path(config.SECRET_FILE) if config.SECRET_FILE else default_path(config.DB)
    try:
        summary = restore(
            source, config.DB, key_path, force=force, source_digest=source_digest, key_from=key_file
        )
    except AuditError as exc:
        _fail(exc)
    echo(f"restored {config.DB} from {source}: verified (integrity ok, chain intact, its checkpoint matched)")
    _say(summary)
    echo(f"  key file: {summary['key_file']}")


@audit_group.command("archive")
@click.option("--before", required=True, type=TIME, help="Archive decisions recorded before this time.")
@click.option(
    "--to", "to", required=True, type=click.Path(dir_okay=False), help="The archive to write (.jsonl.zst)."
)
@db_option
def audit_archive(before, to, db):
    """Move decisions recorded before a time to a compressed archive; the live chain keeps their
    links and the archive's digest, so `audit verify --archive FILE` proves both together."""
    trail = command_trail(load_config(db=db))
    try:
        result = archive(trail, before, to)
    except AuditError as exc:
        _fail(exc)
    echo(
        f"archived {result['count']} decisions recorded before {before} to {to} "
        f"({result['bytes']} bytes, {result['ruleset_sources']} ruleset sources), archive {result['id']}"
    )
    if result["kept"]:
        echo(
            f"  kept live: {result['kept']} older decisions still needed (each lead's latest, hand-offs, "
            "overrides)"
        )
