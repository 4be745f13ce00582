"""Reading the trail: a lead's timeline with what changed, filtered and paged listings, exports.

Every filter is a bound parameter; paging is by `seq` (the chain position), so pages stay stable
while new decisions arrive.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from .codec import codec_for
from .trail import AuditTrail, record_of

MAX_PAGE = 500
# SQLite integers are 64-bit: a larger `before` is bound as this (later than every seq), never an overflow.
MAX_SEQ = 2**63 - 1
# filter name -> SQL condition on the decisions table
FILTERS = {
    "lead_id": "lead_id = ?",
    "since": "evaluated_at >= ?",
    "until": "evaluated_at < ?",
    "stage": "stage = ?",
    "route": "route = ?",
    "destination": "destination = ?",
    "quadrant": "quadrant = ?",
    "ruleset": "ruleset_name = ?",
    "version": "ruleset_version = ?",
    "channel": "channel = ?",
    "kind": "kind = ?",
}
SUMMARY = (
    "decision_id",
    "seq",
    "kind",
    "lead_id",
    "evaluated_at",
    "recorded_at",
    "channel",
    "client",
    "ruleset",
    "ruleset_version",
    "stage",
    "funnel",
    "quadrant",
    "route",
    "destination",
    "fit",
    "engagement",
    "latency_ms",
)


@dataclass
class Page:
    items: list[dict]
    next_before: int | None  # pass as `before` for the next (older) page


def _where(filters: dict) -> tuple[str, list]:
    clauses, params = [], []
    for name, value in filters.items():
        if value is None:
            continue
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}")
        if isinstance(value, int) and not -MAX_SEQ - 1 <= value <= MAX_SEQ:
            clauses.append("0")  # no stored integer lies outside SQLite's 64-bit range: nothing matches
            continue
        clauses.append(FILTERS[name])
        params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _seq(before) -> int:
    """A `before` bound SQLite can take: clamped to its integer range, which holds every seq."""
    return max(-MAX_SEQ, min(int(before), MAX_SEQ))


def summary(row: dict) -> dict:
    return {
        "decision_id": row["id"],
        "seq": row["seq"],
        "kind": row["kind"],
        "lead_id": row["lead_id"],
        "evaluated_at": row["evaluated_at"],
        "recorded_at": row["recorded_at"],
        "channel": row["channel"],
        "client": row["client"],
        "ruleset": row["ruleset_name"],
        "ruleset_version": row["ruleset_version"],
        "stage": row["stage"],
        "funnel": row["funnel"],
        "quadrant": row["quadrant"],
        "route": row["route"],
        "destination": row["destination"],
        "fit": row["fit"],
        "engagement": row["engagement"],
        "latency_ms": row["latency_ms"],
    }


_SUMMARY_COLUMNS = (
    "id, seq, kind, lead_id, evaluated_at, recorded_at, channel, client, ruleset_name, ruleset_version, "
    "stage, funnel, quadrant, route, destination, fit, engagement, latency_ms"
)


def list_decisions(trail: AuditTrail, filters: dict, limit: int = 50, before: int | None = None) -> Page:
    """Newest first; `before` continues from a previous page."""
    limit = max(1, min(int(limit), MAX_PAGE))
    where, params = _where(filters)
    if before is not None:
        where += (" AND " if where else " WHERE ") + "seq < ?"
        params.append(_seq(before))
    rows = trail._read(
        f"SELECT {_SUMMARY_COLUMNS} FROM decisions{where} ORDER BY seq DESC LIMIT ?", [*params, limit + 1]
    )
    items = [summary(r) for r in rows[:limit]]
    return Page(items, items[-1]["seq"] if len(rows) > limit else None)


def timeline(trail: AuditTrail, lead_id: str, limit: int = 50, before: int | None = None) -> Page:
    """A lead's routing decisions, newest first, each with what changed since the one before it."""
    limit = max(1, min(int(limit), MAX_PAGE))
    params: list = [lead_id]
    extra = ""
    if before is not None:
        extra, params = " AND seq < ?", [lead_id, _seq(before)]
    # The columns and the small summary hold all a page shows: no reply is decoded (audit.compact).
    rows = trail._read(
        f"SELECT seq, id, evaluated_at, recorded_at, channel, stage, funnel, quadrant, is_lead, route, "
        f"destination, ruleset_name, ruleset_version, ruleset_digest, summary FROM decisions "
        f"WHERE lead_id = ? AND kind = 'decision'{extra} ORDER BY seq DESC LIMIT ?",
        [*params, limit + 2],
    )
    codec = codec_for(trail.db)
    decisions = [_summarised(r, codec) for r in rows]
    items = []
    for i, row in enumerate(rows[:limit]):
        previous = decisions[i + 1] if i + 1 < len(decisions) else None
        d = decisions[i]
        items.append(
            {
                "decision_id": row["id"],
                "seq": row["seq"],
                "evaluated_at": row["evaluated_at"],
                "recorded_at": row["recorded_at"],
                "channel": row["channel"],
                "stage": d["stage"],
                "route": d["route"]["id"],
                "destination": d["route"]["destination"],
                "quadrant": d["quadrant"],
                "scores": d["scores"],
                "ruleset": d["ruleset"],
                "changes": changes(previous, d),
            }
        )
    return Page(items, items[-1]["seq"] if len(rows) > limit else None)


def _summarised(row: dict, codec) -> dict:
    """The part of a decision a timeline shows, from its row (shaped as the reply is)."""
    summary = json.loads(codec.unpack(row["summary"], row["ruleset_digest"]))
    return {
        "stage": row["stage"],
        "funnel": row["funnel"],
        "quadrant": row["quadrant"],
        "is_lead": bool(row["is_lead"]),
        "route": {"id": row["route"], "destination": row["destination"]},
        "scores": summary["scores"],
        "qualification": summary["qualification"],
        "reasons": [{"rule": rule} for rule in summary["fired"]],
        "ruleset": {
            "name": row["ruleset_name"],
            "version": row["ruleset_version"],
            "digest": row["ruleset_digest"],
        },
    }


def fired_rules(decision: dict) -> list[str]:
    return [r["rule"] for r in decision["reasons"] if not r["rule"].startswith("@")]


def changes(before: dict | None, after: dict) -> dict:
    """What differs between two consecutive decisions of a lead."""
    if before is None:
        return {"first": True}
    out: dict = {}
    for key in ("stage", "funnel", "quadrant", "is_lead"):
        if before[key] != after[key]:
            out[key] = {"from": before[key], "to": after[key]}
    if before["route"]["id"] != after["route"]["id"]:
        out["route"] = {"from": before["route"]["id"], "to": after["route"]["id"]}
    scores = {
        name: round(after["scores"].get(name, 0) - before["scores"].get(name, 0), 2)
        for name in sorted(set(before["scores"]) | set(after["scores"]))
    }
    scores = {k: v for k, v in scores.items() if v}
    if scores:
        out["scores"] = scores
    for item, status in after["qualification"].items():
        if before["qualification"].get(item) != status:
            out.setdefault("qualification", {})[item] = {
                "from": before["qualification"].get(item),
                "to": status,
            }
    then, now = fired_rules(before), fired_rules(after)
    newly = [r for r in now if r not in then]
    stopped = [r for r in then if r not in now]
    if newly:
        out["newly_fired"] = newly
    if stopped:
        out["stopped_firing"] = stopped
    if before["ruleset"]["digest"] != after["ruleset"]["digest"]:
        out["ruleset"] = {"from": before["ruleset"], "to": after["ruleset"]}
    return out


def export(trail: AuditTrail, filters: dict, fmt: str) -> Iterator[str]:
    """Oldest first, in batches; JSONL carries full records, CSV one summary row per decision."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError("format must be jsonl or csv")
    where, params = _where(filters)
    after = 0
    if fmt == "csv":
        yield _csv_line(SUMMARY)
    while True:
        clause = (where + " AND " if where else " WHERE ") + "seq > ?"
        rows = trail._read(f"SELECT * FROM decisions{clause} ORDER BY seq LIMIT 1000", [*params, after])
        if not rows:
            return
        for row in rows:
            if fmt == "jsonl":
                yield json.dumps(record_of(row, trail), ensure_ascii=False) + "\n"
            else:
                s = summary(row)
                yield _csv_line([s[c] for c in SUMMARY])
        after = rows[-1]["seq"]


def _csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(["" if v is None else v for v in values])
    return out.getvalue()
