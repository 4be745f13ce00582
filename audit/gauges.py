"""What the trail says about the service right now, asked when /metrics is scraped.

Each answer is a few indexed counts, cheap enough for every scrape: open and overdue hand-offs by team
(the open ones only, through the leads that carry them),
deliveries by status, reloads and the ruleset files they refused, and the size of the files on disk.
"""

from __future__ import annotations

import json
import os

from engine.times import format_time, parse_time

from .backends import is_postgres
from .outcomes import before
from .rows import now_iso

# Counted by the database, one row per team: the scrape's cost no longer grows with a Python step per
# open hand-off; due times compared exactly as text (audit.outcomes.before).
HANDOFFS = (
    "SELECT coalesce(team, route) AS name, count(*) AS n, "
    "sum(CASE WHEN due_at < :at_lt OR due_at = :at_eq THEN 1 ELSE 0 END) AS late "
    "FROM open_handoffs WHERE acted_at IS NULL GROUP BY coalesce(team, route)"
)


def handoffs(trail, at: str | None = None) -> dict[str, dict[str, int]]:
    """{team: {"open": n, "overdue": n}} for hand-offs not yet acted on nor superseded; a hand-off to a
    route without a team counts under its route, as `leadgate sla` reports it."""
    at = format_time(parse_time(at or now_iso(), "at"))
    return {
        r["name"]: {"open": r["n"], "overdue": r["late"] or 0}
        for r in trail._read(HANDOFFS, before("at", at))
    }


def deliveries(trail) -> dict[str, int]:
    """Webhook deliveries: `pending` (waiting to be sent), `retrying` (pending, whose last attempt
    failed) and `dead` (dead letters: every attempt failed)."""
    counts = {"pending": 0, "retrying": 0, "dead": 0}
    for row in trail._read(
        "SELECT status, count(*) AS n, sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS tried FROM deliveries "
        "WHERE status IN ('pending', 'dead') GROUP BY status"
    ):
        counts[row["status"]] = row["n"]
        if row["status"] == "pending":
            counts["retrying"] = row["tried"] or 0
    return counts


def reloads(trail) -> dict[str, int]:
    """Ruleset reloads recorded, and the ruleset files they refused (each refusal of each reload)."""
    rows = trail._read("SELECT problems FROM reloads")
    refused = sum(len({p.get("file") for p in json.loads(r["problems"])}) for r in rows)
    return {"reloads": len(rows), "refused_files": refused}


def file_sizes(trail) -> dict[str, int]:
    """Bytes on disk of the audit file and its write-ahead log (0 for a file that is not there); on
    PostgreSQL the database's size as the server counts it (its write-ahead log is the server's own)."""
    if is_postgres(trail.path):
        return {"db": trail._read("SELECT pg_database_size(current_database()) AS n")[0]["n"]}
    sizes = {}
    for name, path in (("db", trail.path), ("wal", f"{trail.path}-wal")):
        try:
            sizes[name] = os.path.getsize(path)
        except OSError:
            sizes[name] = 0
    return sizes
