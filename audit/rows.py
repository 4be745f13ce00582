"""Row writers shared by the trail's write transactions: ruleset sources by digest, shadow results."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def store_source(db, identity: dict, source: str, at: str) -> None:
    """Keep a ruleset's source by digest (once), so its decisions stay replayable."""
    db.execute(
        "INSERT OR IGNORE INTO rulesets (digest, name, version, source, first_seen_at) VALUES (?, ?, ?, ?, ?)",
        (identity["digest"], identity["name"], identity["version"], source, at),
    )


def record_shadow(db, decision_id: str, live: dict, shadow_identity: dict, source: str, result) -> None:
    """Store a shadow candidate's decision (or its error) beside the live decision, in its transaction."""
    store_source(db, shadow_identity, source, live["evaluated_at"])
    row = {
        "decision_id": decision_id,
        "evaluated_at": live["evaluated_at"],
        "live_digest": live["ruleset"]["digest"],
        "ruleset_name": shadow_identity["name"],
        "ruleset_version": shadow_identity["version"],
        "ruleset_digest": shadow_identity["digest"],
    }
    if isinstance(result, dict):
        row.update(
            stage=result["stage"],
            route=result["route"]["id"],
            quadrant=result["quadrant"],
            fit=result["scores"].get("fit"),
            engagement=result["scores"].get("engagement"),
            decision=dumps(result),
        )
    else:
        row["error"] = str(result)
    db["shadow_decisions"].insert(row)
