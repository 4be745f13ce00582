"""The write path of a decision: its row, its chain link, the lead's accumulated facts, new events,
stage change, hand-off and outbox events, all inside the caller's write transaction (audit.unit).

What the transaction already read of the lead (audit.unit.LeadHead: stage, open hand-off) and of the
chain (chain.Head) is used instead of reading it again, and rows of one kind are written with one
statement (events, kept personal values, outbox events), so a decision costs a handful of statements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from . import chain, compact, outbox, outcomes
from .codec import COMPRESSED, codec_for
from .leads import event_key, lead_row
from .rows import dumps, insert, insert_many, keep_personal, now_iso, record_shadow, store_source, upsert


class Reply(dict):
    """A recorded decision's reply; `body` is the JSON text stored for it, to send as it is."""

    body: str

    def __init__(self, value: dict, body: str):
        super().__init__(value)
        self.body = body


@dataclass
class LeadHead:
    """What a write transaction read of a lead before writing for it (one statement, audit.unit)."""

    exists: bool
    stage: str | None
    version: tuple | None
    handoff: tuple | None  # (id, route) of the open hand-off


def prepare(
    personal,
    *,
    facts: dict,
    decision: dict,
    source: str,
    kind: str = "decision",
    request: dict | None = None,
    channel: str | None = None,
    client: str | None = None,
    latency_ms: float | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    shadow: tuple | None = None,
    request_id: str | None = None,
):
    """(row, item, kept personal values) of one decision to record: the row is serialised here, once."""
    decision_id = "dec_" + uuid.uuid4().hex
    stored_facts, kept = personal.protect_facts(facts)
    stored_request = personal.protect_facts(request)[0] if request is not None else None
    ruleset = decision["ruleset"]
    reply = {"decision_id": decision_id, **decision}
    row = {
        "id": decision_id,
        "kind": kind,
        "lead_id": facts["lead_id"],
        "evaluated_at": decision["evaluated_at"],
        "recorded_at": now_iso(),
        "channel": channel or facts.get("channel"),
        "client": client,
        "ruleset_name": ruleset["name"],
        "ruleset_version": ruleset["version"],
        "ruleset_digest": ruleset["digest"],
        "is_lead": int(decision["is_lead"]),
        "stage": decision["stage"],
        "previous_stage": facts.get("previous_stage"),
        "funnel": decision["funnel"],
        "quadrant": decision["quadrant"],
        "route": decision["route"]["id"],
        "destination": decision["route"]["destination"],
        "fit": decision["scores"].get("fit"),
        "engagement": decision["scores"].get("engagement"),
        "input": dumps(stored_request) if stored_request is not None else None,
        "facts": None,  # below: what is new, and a reference to what is stored
        "decision": dumps(reply),
        "latency_ms": latency_ms,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
    }
    if request_id is not None:
        row["request_id"] = request_id
    # The events this request brings (the others are stored already): only these are written.
    sent = (request or {}).get("events") if request is not None else None
    new = {event_key(e) for e in sent if isinstance(e, dict)} if isinstance(sent, list) else set()
    new = new if request is not None else None
    events = stored_facts.get("events", [])
    new_list = None if new is None else [e for e in events if e.get("id") in new]
    row["facts"] = compact.reference(stored_facts, new_list)  # by `write`: with `$parts` when it can
    row["summary"] = compact.summary(decision)
    item = {
        "decision": decision,
        "source": source,
        "facts": stored_facts,
        "shadow": shadow,
        "reply": reply,
        "new_events": new,
        "new_list": new_list,
    }
    return row, item, kept


def write(db, prepared: list, head: chain.Head, leads: dict, sources: set) -> list[Reply]:
    """Write prepared decisions; `leads` holds what was read of a lead (consumed by its first
    decision: a second one for the same lead reads what the first wrote), `sources` the ruleset
    digests this connection has seen stored (a source is stored once)."""
    codec, stored_now, parts = codec_for(db), set(), compact.parts_for(db)
    for row, item, kept in prepared:
        decision, digest = item["decision"], row["ruleset_digest"]
        if digest not in sources and digest not in stored_now:
            codec.know(
                digest,
                *store_source(db, decision["ruleset"], item["source"], row["recorded_at"], row["decision"]),
            )
            stored_now.add(digest)
        deciding = row["kind"] == "decision"
        known = leads.pop(row["lead_id"], None) if deciding else leads.get(row["lead_id"])
        read_here = deciding and known is None
        if read_here:  # the read `_update_lead` needs, made before the row: its profile may refer
            known = _lead_head(db, row["lead_id"])
        holder = _refer(parts, row, item, known)
        packed = {c: codec.pack(row[c], digest) for c in COMPRESSED}
        codec.recorded(digest, (row["input"], row["facts"], row["summary"], row["decision"]), head)
        chain.append_entry(db, row["kind"], row, head, packed)
        if item["shadow"] is not None:
            record_shadow(db, row["id"], decision, *item["shadow"])
        if deciding:
            parts.recorded(row["lead_id"], row["id"], item["parts"], holder or row["seq"])
            _update_lead(db, item, kept, row, known, read_here)
    return [Reply(item["reply"], row["decision"]) for row, item, _ in prepared]


def _lead_head(db, lead_id: str) -> LeadHead:
    found = db.execute("SELECT stage, last_decision_id FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
    if found is None:
        return LeadHead(False, None, None, None)
    return LeadHead(True, found[0], (found[1], None), None)


def _refer(parts, row: dict, item: dict, known: LeadHead | None) -> int | None:
    """Store the facts' profile and answers by reference when an earlier decision of the lead holds
    them (audit.compact `$parts`); returns that decision's seq."""
    item["parts"] = compact.parts_of(item["facts"])
    if known is None or known.version is None:
        return None
    holder = parts.holder(row["lead_id"], known.version[0], item["parts"])
    if holder is not None:
        row["facts"] = compact.reference(item["facts"], item["new_list"], holder)
    return holder


def _update_lead(db, item: dict, kept, row, known: LeadHead, read_here: bool) -> None:
    facts, decision, new = item["facts"], item["decision"], item["new_events"]
    lead_id, decision_id, at = row["lead_id"], row["id"], row["recorded_at"]
    if kept:
        keep_personal(db, lead_id, kept)
    current = outcomes.open_handoff(db, lead_id) if read_here else known.handoff
    lead = lead_row(lead_id, facts, decision, decision_id, at, row["channel"])
    if not known.exists:
        lead["created_at"] = at
    upsert(db, "leads", lead, "lead_id")
    events = [
        (lead_id, event_key(e), e["type"], e["at"], dumps(e.get("properties") or {}), at, decision_id)
        for e in facts.get("events", [])
        if new is None or event_key(e) in new
    ]
    if events:
        insert_many(
            db,
            "INSERT OR IGNORE INTO events (lead_id, event_id, type, at, properties, first_seen_at, decision_id)",
            events,
        )
    handed_off = outcomes.track(db, lead_id, decision_id, decision, current)
    before = known.stage
    outbox.decided(db, lead_id, decision_id, decision, before, handed_off, at)
    if before != decision["stage"]:
        insert(
            db,
            "stage_history",
            {
                "lead_id": lead_id,
                "at": at,
                "from_stage": before,
                "to_stage": decision["stage"],
                "decision_id": decision_id,
            },
        )
