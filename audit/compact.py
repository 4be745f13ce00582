"""A decision stores what is new and refers to what is already stored, and replay rebuilds the rest.

The `facts` document of a decision recorded since migration 11 holds the lead's facts without their
events, plus two keys of its own:

- `$new`: the events its request brought (a decision also writes them to `events`, with its id; a
  preview changes no lead and writes none);
- `$facts`: the SHA-256 of the whole facts (canonical JSON), so the chain, which covers this
  document, covers every row it refers to: `verify` rebuilds the facts and compares;
- `$parts` (since migration 14), instead of `profile` and `answers` when they are those of an
  earlier decision of the lead: that decision's seq. It holds them itself (a decision refers only to
  one that holds them), so rebuilding them is one read; a chatbot's follow-up calls, which change
  neither, store neither. Which holder is current is known from `Parts`, a cache of the writer
  checked against the lead's last decision as the write transaction reads it, so a holder written by
  a transaction that rolled back is never referred to.

Its events are the lead's events first seen by a decision at or before it (by seq), plus `$new`,
in the engine's order (time, then id): replay reads them from `events`, and `verify` proves `events`
against the `$new` lists it rebuilds them from (audit.derived). On a lead with 2,000 events a decision then stores its
request, its reply and a few hundred bytes, instead of a copy of all 2,000 events.

`summary` (scores, qualification items, fired rules) is what a timeline page shows beside the
columns; `verify` recomputes it from the reply.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref

from .chain import canonical, sha256
from .codec import COMPRESSED, SAMPLES, Codec, codec_for, sample_of
from .rows import dumps

PARTS = ("profile", "answers")  # stored once per version, see `$parts`
FACTS_KEYS = ("lead_id", "channel", "profile", "answers", "events", "previous_stage", "outcomes", "handoff")
HOLDER = "SELECT facts, ruleset_digest, id FROM decisions WHERE seq = ? AND lead_id = ?"
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


def parts_of(facts: dict) -> str:
    """The profile and answers of facts, as text: what a `$parts` reference stands for."""
    return dumps({k: facts[k] for k in PARTS if k in facts})


def reference(facts: dict, new: list[dict] | None, holder: int | None = None) -> str:
    """The stored facts document of a new decision (see the module's docstring); the whole facts
    when they cannot be rebuilt from references (`new` None: recorded without its request, so
    which events are new is unknown; events without ids or out of the engine's order). `holder`:
    the seq of an earlier decision of the lead holding the same profile and answers."""
    events = facts.get("events") or []
    keys = [(e.get("at"), e.get("id")) for e in events]
    if new is None or not all(isinstance(k, str) for key in keys for k in key) or keys != sorted(set(keys)):
        return dumps(facts)
    dropped = ("events", *PARTS) if holder is not None else ("events",)
    doc = {k: v for k, v in facts.items() if k not in dropped}
    if holder is not None:
        doc["$parts"] = holder
    doc["$new"] = new
    doc["$facts"] = sha256(canonical(facts))
    return dumps(doc)


def _digest(decision_id: str | None, text: str) -> bytes:
    return hashlib.blake2b(f"{decision_id}\0{text}".encode(), digest_size=16).digest()


_parts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_parts_lock = threading.Lock()


def parts_for(db) -> Parts:
    """The `Parts` of one open database (one writer's knowledge)."""
    with _parts_lock:
        known = _parts.get(db)
        if known is None:
            known = _parts[db] = Parts()
        return known


class Parts:
    """Per lead, a digest of the decision last recorded for it by this writer with its profile and
    answers (`parts_of` text), and the seq of the decision holding them: 24 bytes (~160 with the
    key and the dict's slot), at most `SIZE` leads, least recently recorded out (~28 MiB full).

    An entry is used only when the write transaction reads that same decision as the lead's last
    (`leads.last_decision_id`): then it and its holder are committed, or written by this transaction."""

    SIZE = 200_000

    def __init__(self):
        self._entries: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def holder(self, lead_id: str, last_decision_id: str | None, text: str) -> int | None:
        with self._lock:
            entry = self._entries.get(lead_id)
        if entry is None or entry[:16] != _digest(last_decision_id, text):
            return None
        return int.from_bytes(entry[16:])

    def recorded(self, lead_id: str, decision_id: str, text: str, holder: int) -> None:
        with self._lock:
            self._entries.pop(lead_id, None)
            self._entries[lead_id] = _digest(decision_id, text) + holder.to_bytes(8)
            if len(self._entries) > self.SIZE:
                del self._entries[next(iter(self._entries))]


def event_of(event_id: str, type_: str, at: str, properties: str) -> dict:
    event = {"type": type_, "at": at, "id": event_id}
    props = json.loads(properties)
    if props:
        event["properties"] = props
    return event


def expanded(doc: dict, stored: list[dict], parts: dict | None = None) -> dict:
    """The facts a reference document stands for, given the lead's stored events it refers to and,
    for a `$parts` reference, the holder's profile and answers (`parts`, see `held`)."""
    if "$facts" not in doc:
        return doc  # recorded before migration 11: the whole facts
    events = {e["id"]: e for e in stored}
    for e in doc["$new"]:
        events.setdefault(e["id"], e)
    parts = {**doc, **(parts or {}), "events": sorted(events.values(), key=lambda e: (e["at"], e["id"]))}
    return {k: parts[k] for k in FACTS_KEYS if k in parts}


def held(doc: dict) -> dict:
    """The profile and answers a holder's document holds (what a `$parts` reference takes from it)."""
    return {k: doc[k] for k in PARTS if k in doc}


def intact(doc: dict, facts: dict) -> bool:
    """Whether rebuilt facts are those the decision was evaluated with."""
    return "$facts" not in doc or sha256(canonical(facts)) == doc["$facts"]


def holder_of(db, row: dict, seq: int) -> tuple[str | None, dict]:
    """(id, profile and answers) of the decision a `$parts` reference names; (None, {}) when it is
    gone or not the lead's (the rebuilt facts then differ, which `verify` names)."""
    found = db.execute(HOLDER, (seq, row["lead_id"])).fetchone()
    if found is None:
        return None, {}
    text = codec_for(db).unpack(found[0], found[1])
    try:
        return found[2], held(json.loads(text))
    except ValueError:
        return found[2], {}


def facts_of(db, row: dict, facts_text: str) -> dict:
    """A stored decision's facts (personal values still tokens), rebuilt from what it refers to."""
    doc = json.loads(facts_text)
    if "$facts" not in doc:
        return doc
    stored = [event_of(*r) for r in db.execute(STORED_EVENTS, (row["lead_id"], row["seq"])).fetchall()]
    parts = holder_of(db, row, doc["$parts"])[1] if "$parts" in doc else None
    return expanded(doc, stored, parts)


def migrate(db) -> None:
    """Migration 11: the new columns, a sample reply per ruleset, every document compressed."""
    db["rulesets"].add_column("sample", str)
    db["decisions"].add_column("summary", str)
    db.execute(
        "UPDATE rulesets SET sample = (SELECT decision FROM decisions d WHERE d.ruleset_digest = "
        "rulesets.digest ORDER BY seq LIMIT 1)"
    )
    compress_documents(db)


def second_dictionaries(db) -> None:
    """Migration 14: each ruleset's second dictionary (audit.codec `samples`) from its first stored
    decisions, when it has enough of them; then every document is compressed again with it."""
    codec = Codec(db)
    for (digest,) in db.execute("SELECT digest FROM rulesets WHERE samples IS NULL").fetchall():
        rows = db.execute(
            "SELECT input, facts, summary, decision FROM decisions WHERE ruleset_digest = ? ORDER BY seq LIMIT ?",
            (digest, SAMPLES),
        ).fetchall()
        if len(rows) == SAMPLES:
            samples = "".join(sample_of(*(codec.unpack(v, digest) for v in r)) for r in rows)
            db.execute("UPDATE rulesets SET samples = ? WHERE digest = ?", (samples, digest))
    compress_documents(db)  # a new codec: it reads the samples just stored


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
