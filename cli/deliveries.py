"""`leadgate deliver` (the webhook deliverer) and `leadgate deliveries list|retry|replay|secret`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import replace

import click

from audit import deliveries
from service.config import load_config
from service.decide import open_trail
from service.deliver import Deliverer, exclusive
from service.webhooks import shown_secret

from . import echo, main

DB_OPTION = click.option("--db", default=None, help="Audit database (default: LEADGATE_DB).")


@main.command("deliver")
@DB_OPTION
def deliver(db):
    """Send the outbox's events to the webhook destinations until stopped (SIGTERM or Ctrl-C)."""
    config = load_config(db=db)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s deliver %(levelname)s %(message)s")
    held = exclusive(config.DB)
    trail = open_trail(replace(config, DURABILITY="normal"))  # see service/deliver.py: at least once
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        Deliverer(config, trail).run(stop, held)
    finally:
        trail.close()


@main.group("deliveries")
def deliveries_group():
    """Webhook deliveries: what was sent where, what failed, and sending again."""


@deliveries_group.command("list")
@click.option("--status", type=click.Choice(deliveries.STATUSES), help="Only deliveries in this state.")
@click.option("--destination", help="Only deliveries to this destination.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--attempts", "show_attempts", is_flag=True, help="Each delivery's attempts too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@DB_OPTION
def deliveries_list(status, destination, limit, show_attempts, as_json, db):
    """Deliveries, newest first: event, destination, lead, state, attempts and the last error."""
    trail = open_trail(load_config(db=db))
    try:
        for row in deliveries.listing(trail, status, destination, limit):
            if show_attempts:
                row["attempt_log"] = deliveries.attempts(trail, row["id"])
            if as_json:
                echo(json.dumps(row, sort_keys=True))
                continue
            last = row["last_error"] or (f"HTTP {row['last_status']}" if row["last_status"] else "")
            echo(
                f"{row['id']}  {row['status']:<9} {row['type']:<18} {row['destination']:<16} "
                f"{row['lead_id']:<20} attempts {row['attempts']}  {row['event_id']}  {last}"
            )
            for a in row.get("attempt_log", []):
                echo(
                    f"    #{a['attempt']} {a['at']}  {a['status'] or '-'}  {a['latency_ms']} ms  {a['error'] or ''}"
                )
    finally:
        trail.close()


@deliveries_group.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--dead", "all_dead", is_flag=True, help="Every dead letter.")
@DB_OPTION
def deliveries_retry(delivery_ids, all_dead, db):
    """Make dead (or waiting) deliveries due now, with a fresh count of attempts."""
    trail = open_trail(load_config(db=db))
    try:
        ids = list(delivery_ids)
        if all_dead:
            ids += [d["id"] for d in deliveries.listing(trail, deliveries.DEAD, limit=100_000)]
        if not ids:
            raise click.UsageError("name a delivery id, or --dead")
        for delivery_id in ids:
            deliveries.retry(trail, delivery_id)
            echo(f"retrying {delivery_id}")
    finally:
        trail.close()


@deliveries_group.command("replay")
@click.argument("event_id")
@click.option("--destination", help="Only to this destination (default: every one it went to).")
@DB_OPTION
def deliveries_replay(event_id, destination, db):
    """Send an event again, under the same event id (receivers drop what they already have)."""
    trail = open_trail(load_config(db=db))
    try:
        for d in deliveries.replay(trail, event_id, destination):
            echo(f"queued {d['id']} ({event_id} to {d['destination']})")
    finally:
        trail.close()


@deliveries_group.command("secret")
@click.argument("destination")
@DB_OPTION
def deliveries_secret(destination, db):
    """Print the whsec_ signing secret the key file keeps for DESTINATION (give it to its receiver)."""
    trail = open_trail(load_config(db=db))
    try:
        echo(shown_secret(trail.secrets.webhook(destination)))
    finally:
        trail.close()
