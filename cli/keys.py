"""`leadgate keys …`: API keys, shown once, stored as hashes."""

from __future__ import annotations

import sys

import click

from audit import sessions
from audit.keys import SCOPES, create, list_keys, revoke
from service.config import load_config

from . import command_trail, echo, main

db_option = click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")


@main.group("keys")
def keys_group():
    """Create, list and revoke API keys."""


@keys_group.command("create")
@click.option("--name", required=True, help="Who or what uses the key (a form, a chatbot, a person).")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    required=True,
    help="decide: post decisions from a server; form: publishable, for a web page (needs --origin); "
    "review: read the trail; admin: everything.",
)
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="A form key's web page origin, e.g. https://www.example.com (repeat for several).",
)
@db_option
def keys_create(name, scope, origins, db):
    """Create a key and print it once: only its hash is stored."""
    try:
        key, text = create(command_trail(load_config(db=db)), name, scope, origins)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    where = f" for pages on {', '.join(key.origins)}" if key.origins else ""
    echo(f"created key {key.id} ({scope}) for {name}{where}; store it now, it is not shown again:")
    echo(text)


@keys_group.command("list")
@db_option
def keys_list(db):
    """Every key: id, scope, name, created, revoked."""
    for key in list_keys(command_trail(load_config(db=db))):
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        origins = f"  [{' '.join(key.origins)}]" if key.origins else ""
        echo(f"{key.id}  {key.scope:<7} {state:<36} {key.created_at}  {key.name}{origins}")


@keys_group.command("revoke")
@click.argument("key_id")
@db_option
def keys_revoke(key_id, db):
    """Revoke a key at once: requests with it get 401."""
    key = revoke(command_trail(load_config(db=db)), key_id)
    echo(f"revoked {key.id} ({key.name})")


@keys_group.command("rotate-secret")
@click.argument("name", type=click.Choice(["session"]))
@db_option
def keys_rotate_secret(name, db):
    """Replace the session-signing secret in the key file and end every review session."""
    trail = command_trail(load_config(db=db))
    if trail.secrets.environ.get(f"LEADGATE_SECRET_{name.upper()}"):
        echo(f"error: the {name} secret comes from LEADGATE_SECRET_{name.upper()}: change it there", err=True)
        sys.exit(1)
    trail.secrets.rotate(name)
    ended = sessions.end_all(trail)
    echo(
        f"rotated the {name} secret in {trail.secrets.path}; {ended} session(s) ended: everyone signs in again"
    )
