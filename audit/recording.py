"""The write path of a decision: its row, its chain link, the lead's accumulated facts, new events
and outbox events, all inside the caller's write transaction (audit.unit). Its stage change, the
hand-off it opens and its assignment are read from its own row (views, m013): no rows of their own.

What the transaction already read of the lead (audit.unit.LeadHead: stage, open hand-off) and of the
chain (chain.Head) is used instead of reading it again, and rows of one kind are written with one
statement (events, kept personal values, outbox events), so a decision costs a handful of statements.

Every writer of the file queues on the write lock (audit.writelock), so what runs under it bounds the
throughput of all: `prepare` (serialising, protecting personal data, the facts' reference) reads
nothing stored and `ahead` compresses the documents, both before the lock (AuditTrail.prepare), for
the lead as read then; under the lock `write` keeps them while the lead's last decision and the
codec's dictionaries are still those, and makes again only what changed (`Prepared.decide` after
an assignment: the reply).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from . import chain, compact, outbox, outcomes
from .codec import COMPRESSED, codec_for
from .leads import event_key, lead_row
from .rows import dumps, insert_many, now_iso, record_shadow, store_source, upsert

KNOWN = f"""
SELECT l.lead_id IS NOT NULL, l.stage, l.last_decision_id, l.personal, h.id, h.route FROM (SELECT 1)
LEFT JOIN leads l ON l.lead_id = ? LEFT JOIN ({outcomes.OPEN_HANDOFF}) h ON true
"""


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
    personal: str | None = None  # its kept personal values as stored ({token: [field, value]})


@dataclass
class Prepared:
    """One decision ready to record: its row serialised, its personal values protected (`kept`),
    and, when made before the write lock (`ahead`), its documents compressed and its facts referring
    to what the lead had stored at `version`; `write` redoes under the lock only what that changed."""

    row: dict
    item: dict
    kept: list
    version: tuple | None = None  # the lead's version `frames` and the facts' reference were made for
    frames: dict | None = None  # column -> zstd frame, made with `dictionaries` (audit.codec)
    dictionaries: object = None

    def decide(self, decision: dict) -> None:
        """The decision changed after it was prepared (an assignment made under the lock): its reply
        and summary are made again; its request and facts are kept, and so are their frames."""
        summary = self.row["summary"]
        _decided(self.row, self.item, decision)
        if self.frames is not None:
            self.frames.pop("decision", None)
            if self.row["summary"] != summary:  # scores, qualification, rules fired: the same so far
                self.frames.pop("summary", None)


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
) -> Prepared:
    """One decision to record, serialised once (nothing here reads the store: it may run before the
    write lock; its time of recording is set by `write`)."""
    decision_id = "dec_" + uuid.uuid4().hex
    memo: dict = {}  # the request's values are in the facts: each is protected once
    stored_facts, kept = personal.protect_facts(facts, memo)
    stored_request = personal.protect_facts(request, memo)[0] if request is not None else None
    row = {
        "id": decision_id,
        "kind": kind,
        "lead_id": facts["lead_id"],
        "evaluated_at": None,  # this and the decision's other columns: `_decided`
        "recorded_at": None,  # by `write`, under the lock
        "channel": channel or facts.get("channel"),
        "client": client,
        "input": dumps(stored_request) if stored_request is not None else None,
        "facts": None,  # below: what is new, and a reference to what is stored
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
    item = {
        "source": source,
        "facts": stored_facts,
        "shadow": shadow,
        "new_events": new,
        "new_list": new_list,
        "parts": compact.parts_of(stored_facts),
    }
    _decided(row, item, decision)
    return Prepared(row, item, kept)


def _decided(row: dict, item: dict, decision: dict) -> None:
    """The row's columns and documents that come from the decision: its reply is serialised here."""
    ruleset = decision["ruleset"]
    reply = {"decision_id": row["id"], **decision}
    row.update(
        evaluated_at=decision["evaluated_at"],
        ruleset_name=ruleset["name"],
        ruleset_version=ruleset["version"],
        ruleset_digest=ruleset["digest"],
        is_lead=int(decision["is_lead"]),
        stage=decision["stage"],
        previous_stage=item["facts"].get("previous_stage"),
        funnel=decision["funnel"],
        quadrant=decision["quadrant"],
        route=decision["route"]["id"],
        destination=decision["route"]["destination"],
        fit=decision["scores"].get("fit"),
        engagement=decision["scores"].get("engagement"),
        decision=dumps(reply),
        summary=compact.summary(decision),
    )
    item.update(decision=decision, reply=reply)


def ahead(prepared: Prepared, codec, parts, version: tuple | None) -> None:
    """What can be done before the write lock for a lead read at `version`: the facts' reference
    (to the decision holding its profile and answers at that version) and every document compressed
    with the dictionaries the codec holds for its ruleset (none yet: all is left to `write`)."""
    row, item = prepared.row, prepared.item
    holder = parts.holder(row["lead_id"], version[0], item["parts"]) if version is not None else None
    facts = compact.reference(item["facts"], item["new_list"], holder) if holder is not None else row["facts"]
    made = codec.pack_ahead({**{c: row[c] for c in COMPRESSED}, "facts": facts}, row["ruleset_digest"])
    if made is not None:
        row["facts"], item["holder"] = facts, holder
        prepared.version, (prepared.dictionaries, prepared.frames) = version, made


def write(
    db, prepared: list[Prepared], head: chain.Head, leads: dict, sources: set, assigned: dict
) -> list[Reply]:
    """Write prepared decisions; `leads` holds what was read of a lead (consumed by its first
    decision: a second one for the same lead reads what the first wrote), `sources` the ruleset
    digests this connection has seen stored (a source is stored once), `assigned` the assignment
    columns of each lead's decisions in order (audit.assignment, consumed here)."""
    codec, stored_now, parts = codec_for(db), set(), compact.parts_for(db)
    for one in prepared:
        row, item, kept = one.row, one.item, one.kept
        row["recorded_at"] = now_iso()
        decision, digest = item["decision"], row["ruleset_digest"]
        if digest not in sources and digest not in stored_now:
            codec.know(
                digest,
                *store_source(db, decision["ruleset"], item["source"], row["recorded_at"], row["decision"]),
            )
            stored_now.add(digest)
        known = None
        if row["kind"] == "decision":
            known = _known(db, row["lead_id"], leads.pop(row["lead_id"], None))
        # a preview refers as its lead's decision would, to what the transaction read of the lead
        holder = _refer(parts, one, known or leads.get(row["lead_id"]))
        packed = _frames(codec, one, digest)
        codec.recorded(digest, (row["input"], row["facts"], row["summary"], row["decision"]), head)
        if known is not None:
            # The hand-off it opens and the assignment it makes are columns of its own row (outside
            # the chain; the views stage_history, handoffs and assignments read them, m013).
            packed.update(_derived_columns(decision, known, assigned.get(row["lead_id"])))
        chain.append_entry(db, row["kind"], row, head, packed)
        if item["shadow"] is not None:
            record_shadow(db, row["id"], decision, *item["shadow"])
        if known is not None:
            parts.recorded(row["lead_id"], row["id"], item["parts"], holder or row["seq"])
            _update_lead(db, item, kept, row, known, packed.get("handoff_due_at") is not None)
    return [Reply(one.item["reply"], one.row["decision"]) for one in prepared]


def _frames(codec, one: Prepared, digest: str) -> dict:
    """The row's compressed documents: those made before the lock while still valid (made with the
    dictionaries the codec holds now, the facts unchanged), the others now."""
    frames = one.frames if one.frames is not None and codec.holds(digest, one.dictionaries) else {}
    return {c: frames[c] if c in frames else codec.pack(one.row[c], digest) for c in COMPRESSED}


def _known(db, lead_id: str, known: LeadHead | None) -> LeadHead:
    """What was read of the lead in this transaction, or (a second decision for it) read now."""
    if known is not None:
        return known
    exists, stage, last, personal, handoff_id, route = db.execute(KNOWN, (lead_id, lead_id)).fetchone()
    handoff = (handoff_id, route) if handoff_id else None
    return LeadHead(bool(exists), stage, (last, None) if exists else None, handoff, personal)


def _refer(parts, one: Prepared, known: LeadHead | None) -> int | None:
    """Store the facts' profile and answers by reference when an earlier decision of the lead holds
    them (audit.compact `$parts`); returns that decision's seq. Made before the lock (`ahead`) for
    the lead's last decision as it still is: kept; else made now, and the facts packed now."""
    row, item = one.row, one.item
    version = known.version if known is not None else None
    if one.frames is not None:
        if _same_last(version, one.version):
            return item["holder"]
        del one.frames["facts"]
        if item["holder"] is not None:
            row["facts"] = compact.reference(item["facts"], item["new_list"])
    if version is None:
        return None
    holder = parts.holder(row["lead_id"], version[0], item["parts"])
    if holder is not None:
        row["facts"] = compact.reference(item["facts"], item["new_list"], holder)
    return holder


def _same_last(read: tuple | None, ahead: tuple | None) -> bool:
    """Whether the lead's last decision is the one the facts' reference was made for."""
    return (read is None) == (ahead is None) and (read is None or read[0] == ahead[0])


def _derived_columns(decision: dict, known: LeadHead, assigned: list | None) -> dict:
    route, columns = decision["route"], {}
    if outcomes.opens_handoff(route, known.handoff):
        columns.update(handoff_due_at=route["due_at"], team=route.get("team"))
    assignment = decision.get("assignment")
    if assignment and assignment["basis"] != "lead_owner":  # keeping the lead's owner writes nothing
        made = assigned.pop(0) if assigned else {}
        columns.update(
            team=assignment["team"],
            owner=assignment["owner"],
            basis=assignment["basis"],
            domain=made.get("domain"),
            period=made.get("period"),
        )
    return columns


def _personal(stored: str | None, kept) -> str | None:
    """The lead's kept personal values with those of this decision, or None when none is new."""
    values = json.loads(stored) if stored else {}
    new = {
        token: [field, value if isinstance(value, str) else str(value)]  # as the TEXT column kept them
        for token, field, value in kept
    }
    if all(values.get(token) == v for token, v in new.items()):
        return None
    return dumps({**values, **new})


def _update_lead(db, item: dict, kept, row, known: LeadHead, handed_off: bool) -> None:
    facts, decision, new = item["facts"], item["decision"], item["new_events"]
    lead_id, decision_id, at = row["lead_id"], row["id"], row["recorded_at"]
    lead = lead_row(lead_id, facts, decision, decision_id, at, row["channel"])
    if not known.exists:
        lead["created_at"] = at
    personal = _personal(known.personal, kept)
    if personal is not None:  # new values: kept in the lead's row, written with it
        lead["personal"] = personal
    # The seq of its open hand-off (the view open_handoffs): this decision's if it opened one, the
    # one before while the lead stays on its route, none once another route closed it.
    continued = known.handoff is not None and known.handoff[1] == decision["route"]["id"]
    lead["handoff_seq"] = row["seq"] if handed_off else known.handoff[0] if continued else None
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
    outbox.decided(db, lead_id, decision_id, decision, known.stage, handed_off, at)
