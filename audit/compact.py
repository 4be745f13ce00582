"""A decision stores what is new and refers to what is already stored, and replay rebuilds the rest.

The `facts` document of a decision recorded since migration 11 holds the lead's facts without their
events, plus two keys of its own:

- `$new`: the events its request brought (a decision also writes them to `events`, with its id; a
  preview changes no lead and writes none);
- `$facts`: the SHA-256 of the whole facts (canonical JSON), so the chain, which covers this
  document, covers every row it refers to: `verify` rebuilds the facts and compares.

Its events are the lead's events first seen by a decision at or before it (by seq), plus `$new`,
in the engine's order (time, then id): replay reads them from `events`, and `verify` proves `events`
against the `$new` lists it rebuilds them from (audit.derived). On a lead with 2,000 events a decision then stores its
request, its reply and a few hundred bytes, instead of a copy of all 2,000 events.

`summary` (scores, qualification items, fired rules) is what a timeline page shows beside the
columns; `verify` recomputes it from the reply.
"""

from __future__ import annotations

import json

from .chain import canonical, sha256
from .codec import COMPRESSED, Codec
from .rows import dumps

FACTS_KEYS = ("lead_id", "channel", "profile", "answers", "events", "previous_stage", "outcomes", "handoff")
STORED_EVENTS = """
SELECT e.event_id, e.type, e.at, e.properties FROM events e JOIN decisions d ON d.id = e.decision_id
WHERE e.lead_id = ? AND d.seq <= ?
"""


def summary(decision: dict) -> str:
    """What a timeline shows of a decision beyond its columns (see audit.queries.timeline)."""
    return dumps(
        {
            "scores": decision["scores"],
            "qualification": decision["qualification"],
            "fired": [r["rule"] for r in decision["reasons"]],
        }
    )


def reference(facts: dict, new: list[dict] | None) -> str:
    """The stored facts document of a new decision (see the module's docstring); the whole facts
    when they cannot be rebuilt from references (`new` None: recorded without its request, so
    which events are new is unknown; events without ids or out of the engine's order)."""
    events = facts.get("events") or []
    keys = [(e.get("at"), e.get("id")) for e in events]
    if new is None or not all(isinstance(k, str) for key in keys for k in key) or keys != sorted(set(keys)):
        return dumps(facts)
    doc = {k: v for k, v in facts.items() if k != "events"}
    doc["$new"] = new
    doc["$facts"] = sha256(canonical(facts))
    return dumps(doc)


def event_of(event_id: str, type_: str, at: str, properties: str) -> dict:
    event = {"type": type_, "at": at, "id": event_id}
    props = json.loads(properties)
    if props:
        event["properties"] = props
    return event


def expanded(doc: dict, stored: list[dict]) -> dict:
    """The facts a reference document stands for, given the lead's stored events it refers to."""
    if "$facts" not in doc:
        return doc  # recorded before migration 11: the whole facts
    events = {e["id"]: e for e in stored}
    for e in doc["$new"]:
        events.setdefault(e["id"], e)
    parts = {**doc, "events": sorted(events.values(), key=lambda e: (e["at"], e["id"]))}
    return {k: parts[k] for k in FACTS_KEYS if k in parts}


def intact(doc: dict, facts: dict) -> bool:
    """Whether rebuilt facts are those the decision was evaluated with."""
    return "$facts" not in doc or sha256(canonical(facts)) == doc["$facts"]


def facts_of(db, row: dict, facts_text: str) -> dict:
    """A stored decision's facts (personal values still tokens), rebuilt from what it refers to."""
    doc = json.loads(facts_text)
    if "$facts" not in doc:
        return doc
    stored = [event_of(*r) for r in db.execute(STORED_EVENTS, (row["lead_id"], row["seq"])).fetchall()]
    return expanded(doc, stored)


def migrate(db) -> None:
    """Migration 11: the new columns, a sample reply per ruleset, every document compressed."""
    db["rulesets"].add_column("sample", str)
    db["decisions"].add_column("summary", str)
    db.execute(
        "UPDATE rulesets SET sample = (SELECT decision FROM decisions d WHERE d.ruleset_digest = "
        "rulesets.digest ORDER BY seq LIMIT 1)"
    )
    compress_documents(db)


def compress_documents(db, text_of=None) -> None:
    """Every decision's documents compressed in place, as text read by `text_of(value, digest)`
    (the codec's by default: text, or a frame already compressed), with its summary."""
    codec, after = Codec(db), -1
    text_of = text_of or codec.unpack
    while rows := db.execute(
        "SELECT seq, ruleset_digest, input, facts, decision FROM decisions WHERE seq > ? ORDER BY seq LIMIT 2000",
        (after,),
    ).fetchall():
        for seq, digest, *documents in rows:
            texts = [text_of(v, digest) for v in documents]  # input, facts, decision
            packed = [codec.pack(t, digest) for t in texts]
            packed.append(codec.pack(summary(json.loads(texts[2])), digest))
            db.execute(
                f"UPDATE decisions SET {', '.join(f'{c} = ?' for c in COMPRESSED)} WHERE seq = ?",
                (*packed, seq),
            )
        after = rows[-1][0]
