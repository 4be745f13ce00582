"""A lead's facts accumulate over calls: a chatbot may send one answer per call."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from .rows import dumps


def event_key(event: dict) -> str:
    """An event's id, or for an event sent without one a stable id from its content (sent twice, counted once)."""
    if event.get("id"):
        return event["id"]
    content = json.dumps(
        [event.get("type"), _instant(event.get("at")), event.get("properties") or {}], sort_keys=True
    )
    return "auto:" + hashlib.sha256(content.encode()).hexdigest()[:24]


def lead_row(lead_id: str, facts: dict, decision: dict, decision_id: str, at: str, channel) -> dict:
    """The `leads` row a decision leaves behind (created_at aside): written when it is recorded
    (audit.recording) and rebuilt from the chain when the file is verified (audit.derived)."""
    return {
        "lead_id": lead_id,
        "updated_at": at,
        "channel": channel,
        "profile": dumps(facts.get("profile") or {}),
        "answers": dumps(facts.get("answers") or {}),
        "stage": decision["stage"],
        "ruleset_name": decision["ruleset"]["name"],
        "last_decision_id": decision_id,
    }


def merge_facts(stored: dict | None, new: dict) -> dict:
    """The facts to evaluate: what is stored for the lead, updated by what the caller sends now.

    Profile fields and answers sent now replace stored ones (null removes one); events are added,
    each event id counting once; the stored stage is the previous stage; outcomes and the open
    hand-off are the stored ones.
    """
    stored = stored or {"profile": {}, "answers": {}, "events": []}
    merged = {**new, "channel": new.get("channel") or stored.get("channel")}
    # Anything malformed passes through untouched, for the engine's validation to name.
    for section in ("profile", "answers"):
        sent = new.get(section) or {}
        if not isinstance(sent, dict):
            continue
        values = dict(stored.get(section) or {})
        for key, value in sent.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        merged[section] = values
    sent = new.get("events") or []
    if isinstance(sent, list) and all(isinstance(e, dict) for e in sent):
        events = {event_key(e): e for e in stored.get("events") or []}
        for event in sent:
            events.setdefault(event_key(event), {**event, "id": event_key(event)})
        merged["events"] = list(events.values())
    if stored.get("previous_stage"):
        merged["previous_stage"] = stored["previous_stage"]
    # What sales reported and the open hand-off come from the trail only, never from the caller.
    for key in ("outcomes", "handoff"):
        merged.pop(key, None)
        if stored.get(key):
            merged[key] = stored[key]
    return merged


def _instant(at):
    """The same moment written two ways gives one key ("…Z" and "…+00:00")."""
    try:
        moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        return at
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
