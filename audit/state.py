"""A lead's state as a decision needs it, in one statement: its accumulated facts (profile, answers,
events, kept personal values, reported outcomes, open hand-off), its version and the latest time
anything known of it was recorded for.

One statement (each part a JSON aggregate) instead of five queries: the read happens outside the
write lock, and under it only the version is compared (audit.unit), so a decision reads its lead once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .outcomes import OUTCOME_FACT_KEYS, moment

STATE = """
SELECT l.lead_id, l.channel, l.profile, l.answers, l.stage, l.last_decision_id, l.updated_at,
  (SELECT json_group_array(json_array(event_id, type, at, json(properties))) FROM
     (SELECT event_id, type, at, properties FROM events WHERE lead_id = :lead ORDER BY at, event_id)) AS events,
  (SELECT json_group_object(token, value) FROM personal WHERE lead_id = :lead) AS personal,
  (SELECT json_group_array(json_array(id, type, at, reason, amount)) FROM
     (SELECT id, type, at, reason, amount FROM outcomes WHERE lead_id = :lead ORDER BY at, seq)) AS outcomes,
  (SELECT json_array(route, at, due_at, acted_at) FROM open_handoffs WHERE lead_id = :lead) AS handoff,
  (SELECT evaluated_at FROM decisions WHERE lead_id = :lead AND kind = 'decision'
     ORDER BY seq DESC LIMIT 1) AS decided_at
FROM leads l WHERE l.lead_id = :lead
"""
HANDOFF_KEYS = ("route", "at", "due_at", "acted_at")


@dataclass(frozen=True)
class LeadState:
    """What is known of a lead: `facts` (personal values put back; None for a new lead), `version`
    (changes whenever anything known of the lead changes) and `known_at` (its latest decision or
    outcome time: a decision may not be evaluated before it)."""

    facts: dict | None = None
    version: tuple | None = None
    known_at: str | None = None


def read(trail, lead_id) -> LeadState:
    if not isinstance(lead_id, str):
        return LeadState()
    rows = trail._read(STATE, {"lead": lead_id})
    if not rows:
        return LeadState()
    row = rows[0]
    events = []
    for event_id, type_, at, properties in json.loads(row["events"]):
        event = {"id": event_id, "type": type_, "at": at}
        if properties:
            event["properties"] = properties
        events.append(event)
    stored = {
        "lead_id": lead_id,
        "channel": row["channel"],
        "profile": json.loads(row["profile"]),
        "answers": json.loads(row["answers"]),
        "events": events,
        "previous_stage": row["stage"],
    }
    facts = trail.personal.reveal_facts(stored, json.loads(row["personal"]))
    reported = [
        {k: v for k, v in zip(OUTCOME_FACT_KEYS, values, strict=True) if v is not None}
        for values in json.loads(row["outcomes"])
    ]
    if reported:
        facts["outcomes"] = reported
    if row["handoff"]:
        handoff = dict(zip(HANDOFF_KEYS, json.loads(row["handoff"]), strict=True))
        facts["handoff"] = {k: v for k, v in handoff.items() if v is not None}
    times = [t for t in [row["decided_at"], *(o["at"] for o in reported)] if t is not None]
    return LeadState(
        facts, (row["last_decision_id"], row["updated_at"]), max(times, key=moment, default=None)
    )


def forget_personal(db, lead_id: str) -> int:
    """Delete a lead's kept personal values (its row's and its outcome notes'); how many there were."""
    row = db.execute("SELECT personal FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
    in_row = len(json.loads(row[0])) if row and row[0] else 0
    db.execute("UPDATE leads SET personal = NULL WHERE lead_id = ?", (lead_id,))
    return in_row + db.execute("DELETE FROM personal_notes WHERE lead_id = ?", (lead_id,)).rowcount
