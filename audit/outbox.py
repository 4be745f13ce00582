"""The transactional outbox: what happened to a lead, written in the transaction that made it happen.

A decision that opens a hand-off, changes a stage or disqualifies, an outcome, an SLA escalation: each
writes its events here inside its own write transaction, so a committed decision always has its events
and a refused or rolled-back one never does. Previews write none. An event's id is derived from what
caused it (`evt_` + a hash of kind and cause), so it is stable: every delivery of it carries it, and
the same escalation recorded twice is one event. Events carry no personal data (the review page does).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from .rows import dumps, insert_many, iso

HANDED_OFF, STAGE_CHANGED, DISQUALIFIED = "lead.handed_off", "lead.stage_changed", "lead.disqualified"
SLA_BREACHED, OUTCOME_RECORDED = "sla.breached", "outcome.recorded"
DISQUALIFIED_STAGE = "disqualified"
_ROUTE_KEYS = ("id", "destination", "team", "track", "due_at")
BREACH_CURSOR = "sla_breaches_checked_at"


def event_id(kind: str, cause: str) -> str:
    return "evt_" + hashlib.sha256(f"{kind}:{cause}".encode()).hexdigest()[:32]


_INSERT = "INSERT OR IGNORE INTO outbox (id, type, lead_id, ruleset, route, team, at, payload)"


def _row(kind: str, cause: str, lead_id: str, at: str, data: str, ruleset=None, route=None, team=None):
    """An outbox row; `data` as JSON text (a decision's events share one encoding of it). The payload
    is the text of {id, type, timestamp, lead_id, data}."""
    eid = event_id(kind, cause)
    head = dumps({"id": eid, "type": kind, "timestamp": at, "lead_id": lead_id})
    return (eid, kind, lead_id, ruleset, route, team, at, f'{head[:-1]},"data":{data}}}')


def emit(
    db, kind: str, cause: str, lead_id: str, at: str, data: dict, ruleset=None, route=None, team=None
) -> str:
    """Write one event in the caller's transaction (once per kind and cause); its id."""
    row = _row(kind, cause, lead_id, at, dumps(data), ruleset, route, team)
    insert_many(db, _INSERT, [row])
    return row[0]


def decided(
    db, lead_id: str, decision_id: str, decision: dict, before: str | None, handed_off: bool, at: str
):
    """The events of one recorded decision: a hand-off opened, a stage changed, a disqualification."""
    route = {k: decision["route"].get(k) for k in _ROUTE_KEYS}
    data = {
        "decision_id": decision_id,
        "ruleset": {k: decision["ruleset"][k] for k in ("name", "version")},
        "stage": decision["stage"],
        "previous_stage": before,
        "funnel": decision["funnel"],
        "quadrant": decision["quadrant"],
        "scores": decision["scores"],
        "route": route,
        "assignment": decision.get("assignment"),
        "evaluated_at": decision["evaluated_at"],
    }
    where = {"ruleset": decision["ruleset"]["name"], "route": route["id"], "team": route["team"]}
    kinds = [HANDED_OFF] if handed_off else []
    if before != decision["stage"]:
        kinds.append(STAGE_CHANGED)
        if decision["stage"] == DISQUALIFIED_STAGE:
            kinds.append(DISQUALIFIED)
    if kinds:  # one statement for all of them
        text = dumps(data)
        insert_many(db, _INSERT, [_row(kind, decision_id, lead_id, at, text, **where) for kind in kinds])


def outcome_recorded(db, outcome: dict, at: str) -> None:
    """An outcome's event, filtered by the lead's ruleset and its latest hand-off's route and team."""
    lead = db.execute("SELECT ruleset_name FROM leads WHERE lead_id = ?", (outcome["lead_id"],)).fetchone()
    handoff = db.execute(
        "SELECT route, team FROM handoffs WHERE lead_id = ? ORDER BY id DESC LIMIT 1", (outcome["lead_id"],)
    ).fetchone()
    data = {k: outcome[k] for k in ("outcome_id", "type", "at", "reason", "amount", "reported_by", "source")}
    emit(
        db,
        OUTCOME_RECORDED,
        outcome["outcome_id"],
        outcome["lead_id"],
        at,
        data,
        ruleset=lead[0] if lead else None,
        route=handoff[0] if handoff else None,
        team=handoff[1] if handoff else None,
    )


def sla_breached(db, overdue: dict, ruleset: str | None, at: str) -> str:
    """A hand-off past due and unanswered: one event per hand-off, however often it is escalated."""
    data = {k: overdue.get(k) for k in ("decision_id", "route", "team", "at", "due_at", "minutes_overdue")}
    cause = f"{overdue['decision_id']}:{overdue['route']}"
    return emit(
        db, SLA_BREACHED, cause, overdue["lead_id"], at, data, ruleset, overdue["route"], overdue["team"]
    )


def breaches(trail, now: datetime) -> int:
    """Tell every hand-off whose SLA passed, unanswered, since the last look: one sla.breached each.

    Time, not a request, causes these, so the deliverer looks every few seconds; `leadgate sla
    --escalate` writes the same event (same id) when it re-routes the lead, so either way it is one."""
    from .outcomes import moment  # the one parser of stored times

    with trail._transaction() as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (BREACH_CURSOR,)).fetchone()
        since = moment(row[0]) if row else None
        # Stored times compare as text only to the second: select a little wide, then compare exactly.
        rows = db.execute(
            "SELECT lead_id, decision_id, route, team, at, due_at, ruleset_name FROM open_handoffs "
            "WHERE acted_at IS NULL AND due_at <= ? AND (? IS NULL OR due_at >= ?)",
            (
                iso(now + timedelta(seconds=1)),
                since and iso(since),
                since and iso(since - timedelta(seconds=1)),
            ),
        ).fetchall()
        told = 0
        for lead_id, decision_id, route, team, at, due_at, ruleset in rows:
            due = moment(due_at)
            if due > now or (since is not None and due <= since):
                continue
            overdue = {
                "lead_id": lead_id,
                "decision_id": decision_id,
                "route": route,
                "team": team,
                "at": at,
                "due_at": due_at,
                "minutes_overdue": round((now - due).total_seconds() / 60, 1),
            }
            sla_breached(db, overdue, ruleset, iso(now))
            told += 1
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (BREACH_CURSOR, iso(now)),
        )
    return told


def events(trail, lead_id: str | None = None, limit: int = 100) -> list[dict]:
    """Recorded events, oldest first (of one lead, or all)."""
    rows = trail._read(
        "SELECT seq, payload FROM outbox WHERE (? IS NULL OR lead_id = ?) ORDER BY seq LIMIT ?",
        (lead_id, lead_id, limit),
    )
    return [{"seq": r["seq"], **json.loads(r["payload"])} for r in rows]
