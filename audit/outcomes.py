"""What sales reported about each lead, and the hand-offs it answers: the feedback loop's storage.

An outcome (accepted, rejected with a reason, contacted, meeting held, opportunity, won with an amount,
lost with a reason) is a chained entry like a decision. A hand-off opens when a decision routes a
lead to a route with an SLA; the first outcome after it is the first action on it; a later decision
that routes the lead elsewhere closes it. `leadgate sla` reads them.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from . import chain, outbox
from .rows import keep_personal, now_iso

if TYPE_CHECKING:  # the trail calls into this module while it records
    from .trail import AuditTrail

# fact key -> the key of a recorded outcome (what the engine reads of it)
OUTCOME_FACT_KEYS = {"id": "outcome_id", "type": "type", "at": "at", "reason": "reason", "amount": "amount"}


def record(
    db,
    lead_id: str,
    outcome: dict,
    reported_by: str | None,
    source: str,
    note: str | None,
    personal=None,
    head: chain.Head | None = None,
) -> dict:
    """Store one outcome inside the caller's transaction; it is the first action on an open hand-off.

    With `personal` (the trail's), email addresses and phone numbers in the note become tokens, or the
    whole note does when LEADGATE_PERSONAL_FIELDS names `outcomes.note`.
    """
    if personal is not None:
        note, kept = personal.protect_note(note)
        keep_personal(db, lead_id, kept)
    row = {
        "id": "out_" + uuid.uuid4().hex,
        "lead_id": lead_id,
        "type": outcome["type"],
        "at": outcome["at"],
        "reason": outcome.get("reason"),
        # As SQLite gives it back (REAL): an int would hash as 12000 and read back as 12000.0.
        "amount": float(outcome["amount"]) if outcome.get("amount") is not None else None,
        "note": note,
        "reported_by": reported_by,
        "recorded_at": now_iso(),
        "source": source,
    }
    chain.append_entry(db, "outcome", row, head)  # the open hand-off reads it as its first action
    recorded = outcome_of(row)
    outbox.outcome_recorded(db, recorded, row["recorded_at"])
    return recorded


def outcome_of(row: dict) -> dict:
    return {
        "outcome_id": row["id"],
        "seq": row["seq"],
        "lead_id": row["lead_id"],
        "type": row["type"],
        "at": row["at"],
        "reason": row["reason"],
        "amount": row["amount"],
        "note": row["note"],
        "reported_by": row["reported_by"],
        "recorded_at": row["recorded_at"],
        "source": row["source"],
    }


def of_lead(trail: AuditTrail, lead_id: str) -> list[dict]:
    return [
        outcome_of(r)
        for r in trail._read("SELECT * FROM outcomes WHERE lead_id = ? ORDER BY at, seq", (lead_id,))
    ]


def current_handoff(trail: AuditTrail, lead_id: str) -> dict | None:
    """The lead's hand-off still going on, as a fact: {route, at, due_at[, acted_at]}.

    While the lead stays on its route the decision keeps this hand-off's due time (the one `sla`
    measures), acted on or not; `acted_at` tells the overdue feature that someone already answered.
    """
    rows = trail._read("SELECT route, at, due_at, acted_at FROM open_handoffs WHERE lead_id = ?", (lead_id,))
    if not rows:
        return None
    return {k: v for k, v in rows[0].items() if v is not None}


# (id, route) of the lead's open hand-off: read with the lead (audit.unit, audit.recording), through
# the seq its row carries
OPEN_HANDOFF = (
    "SELECT d.seq AS id, d.route FROM leads o JOIN decisions d ON d.seq = o.handoff_seq WHERE o.lead_id = ?"
)


def opens_handoff(route: dict, current: tuple | None) -> bool:
    """Whether a decision routed to `route` opens a hand-off (the `handoffs` view, m013): a route with
    an SLA that the lead's open hand-off (id, route), as the transaction read it, is not already on.
    A decision on another route closes the open one by being recorded."""
    if current is not None and current[1] == route["id"]:
        return False  # the same hand-off goes on: its due time stays the first one
    return bool(route.get("due_at"))


def _minutes(start: str, end: str) -> float:
    return (moment(end) - moment(start)).total_seconds() / 60


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sla(trail: AuditTrail, at: str | None = None, team: str | None = None) -> dict:
    """Hand-offs past due and unanswered, and per team how fast the first action came.

    {"at", "overdue": [{lead_id, route, team, at, due_at, minutes_overdue}], "teams": {team: {handoffs,
    acted, acted_in_time, acted_late, open, overdue, median_minutes_to_first_action}}}
    """
    at = at or now_iso()
    rows = trail._read(
        "SELECT * FROM handoffs WHERE (? IS NULL OR team = ?) ORDER BY due_at, id", (team, team)
    )
    overdue, teams = [], {}
    for r in rows:
        stats = teams.setdefault(
            r["team"] or r["route"],
            {
                "handoffs": 0,
                "acted": 0,
                "acted_in_time": 0,
                "acted_late": 0,
                "open": 0,
                "overdue": 0,
                "_minutes": [],
            },
        )
        stats["handoffs"] += 1
        if r["acted_at"] is not None:
            stats["acted"] += 1
            stats["acted_in_time" if moment(r["acted_at"]) <= moment(r["due_at"]) else "acted_late"] += 1
            stats["_minutes"].append(_minutes(r["at"], r["acted_at"]))
        elif r["closed_at"] is None:
            stats["open"] += 1
            if moment(r["due_at"]) < moment(at):
                stats["overdue"] += 1
                overdue.append(
                    {
                        "lead_id": r["lead_id"],
                        "route": r["route"],
                        "team": r["team"],
                        "at": r["at"],
                        "due_at": r["due_at"],
                        "minutes_overdue": round(_minutes(r["due_at"], at), 1),
                        "decision_id": r["decision_id"],
                    }
                )
    for stats in teams.values():
        minutes = stats.pop("_minutes")
        stats["median_minutes_to_first_action"] = round(statistics.median(minutes), 1) if minutes else None
    return {"at": at, "overdue": overdue, "teams": dict(sorted(teams.items()))}
