"""Which ruleset versions were served when: reloads as chained entries, and shadow results.

A reload records the deployment (active digest per ruleset, candidates, shadows) with the sources by
digest, so every worker can rebuild exactly that deployment from the database, and anyone can later
tell which definition was live at any moment. The latest reload is the current deployment.
"""

from __future__ import annotations

import json
import uuid

from . import chain
from .backends import ERRORS
from .errors import StorageUnavailable
from .rows import dumps, now_iso, store_source
from .trail import AuditTrail


def current(trail: AuditTrail) -> dict | None:
    """The latest reload: the deployment every worker should serve; None before the first."""
    rows = trail._read("SELECT * FROM reloads ORDER BY seq DESC LIMIT 1")
    return _reload_of(rows[0]) if rows else None


def current_id(trail: AuditTrail) -> str | None:
    """Cheap enough for every request: one row from an index."""
    try:
        rows = trail._read("SELECT id FROM reloads ORDER BY seq DESC LIMIT 1")
    except ERRORS as exc:
        raise StorageUnavailable(f"the audit database cannot be read: {exc}") from exc
    return rows[0]["id"] if rows else None


def history(trail: AuditTrail, limit: int = 50) -> list[dict]:
    return [_reload_of(r) for r in trail._read("SELECT * FROM reloads ORDER BY seq DESC LIMIT ?", (limit,))]


def record_reload(
    trail: AuditTrail,
    deployment: dict,
    sources: list[tuple[dict, str]],
    problems: list[dict],
    requested_by: str,
    only_if_changed: bool = False,
) -> dict:
    """Record a reload (and the sources it serves); returns the reload now current.

    With only_if_changed (a worker starting), nothing is written when the deployment and its
    problems are what the latest reload already says.
    """
    at = now_iso()
    with trail._transaction() as db:
        latest = current(trail)
        changed = latest is None or latest["deployment"] != deployment
        if only_if_changed and not changed and latest["problems"] == problems:
            return latest
        for identity, source in sources:
            store_source(db, identity, source, at)
        row = {
            "id": "rld_" + uuid.uuid4().hex,
            "at": at,
            "requested_by": requested_by,
            "deployment": dumps(deployment),
            "problems": dumps(problems),
            "changed": int(changed),
        }
        chain.append_entry(db, "reload", row)
    return _reload_of(row)


def _reload_of(row: dict) -> dict:
    return {
        "reload_id": row["id"],
        "seq": row["seq"],
        "at": row["at"],
        "requested_by": row["requested_by"],
        "deployment": json.loads(row["deployment"]),
        "problems": json.loads(row["problems"]),
        "changed": bool(row["changed"]),
    }


SHADOW_FIELDS = ("stage", "route", "quadrant")


def shadow_report(trail: AuditTrail, name: str | None = None, since: str | None = None) -> list[dict]:
    """Per shadow candidate: how many live decisions it saw, how often it disagreed, and how.

    Each entry: ruleset (name, version, digest), decisions, errors, disagreements (any of stage,
    route, quadrant differs), and for each of those fields the count and a from→to table.
    """
    rows = trail._read(
        "SELECT s.ruleset_name, s.ruleset_version, s.ruleset_digest, s.stage AS s_stage, s.route AS s_route, "
        "s.quadrant AS s_quadrant, s.error, d.stage, d.route, d.quadrant, d.ruleset_version AS live_version "
        "FROM shadow_decisions s JOIN decisions d ON d.id = s.decision_id "
        "WHERE (? IS NULL OR s.ruleset_name = ?) AND (? IS NULL OR s.evaluated_at >= ?) ORDER BY d.seq",
        (name, name, since, since),
    )
    report: dict[str, dict] = {}
    for r in rows:
        entry = report.setdefault(
            r["ruleset_digest"],
            {
                "ruleset": {
                    "name": r["ruleset_name"],
                    "version": r["ruleset_version"],
                    "digest": r["ruleset_digest"],
                },
                "live_versions": set(),
                "decisions": 0,
                "errors": 0,
                "disagreements": 0,
                **{f: {"changed": 0, "from_to": {}} for f in SHADOW_FIELDS},
            },
        )
        entry["decisions"] += 1
        entry["live_versions"].add(r["live_version"])
        if r["error"] is not None:
            entry["errors"] += 1
            continue
        differs = False
        for f in SHADOW_FIELDS:
            if r[f] != r[f"s_{f}"]:
                differs = True
                entry[f]["changed"] += 1
                key = f"{r[f]} → {r[f's_{f}']}"
                entry[f]["from_to"][key] = entry[f]["from_to"].get(key, 0) + 1
        entry["disagreements"] += differs
    out = []
    for entry in report.values():
        entry["live_versions"] = sorted(entry["live_versions"])
        for f in SHADOW_FIELDS:
            entry[f]["from_to"] = dict(sorted(entry[f]["from_to"].items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(entry)
    return out
