"""What the trail says about the service right now, asked when /metrics is scraped.

Each answer is a few indexed counts, cheap enough for every scrape: open and overdue hand-offs by team
(the open ones only, through the leads that carry them),
deliveries by status, reloads and the ruleset files they refused, and the size of the files on disk.
"""

from __future__ import annotations

import json
import os

from .backends import is_postgres
from .outcomes import moment
from .rows import now_iso


def handoffs(trail, at: str | None = None) -> dict[str, dict[str, int]]:
    """{team: {"open": n, "overdue": n}} for hand-offs not yet acted on nor superseded; a hand-off to a
    route without a team counts under its route, as `leadgate sla` reports it."""
    now = moment(at or now_iso())
    teams: dict[str, dict[str, int]] = {}
    for row in trail._read(
        "SELECT coalesce(team, route) AS team, due_at FROM open_handoffs WHERE acted_at IS NULL"
    ):
        counts = teams.setdefault(row["team"], {"open": 0, "overdue": 0})
        counts["open"] += 1
        counts["overdue"] += moment(row["due_at"]) < now
    return teams


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
