"""Tamper evidence: every recorded entry (decision, erasure, reload…) is a link in one hash chain.

A link holds the hash of its entry's payload and the hash of the link before it, so an edited,
deleted, inserted or reordered row breaks the chain at a place `verify` can name.
Personal data is never part of a payload (it lives in the `personal` table as tokens), so erasing it
leaves the chain intact.

Hashes are hex text wherever they are computed, compared, signed or shown; on SQLite a link written
since migration 14 stores its three as 32 raw bytes each (`stored_hash`), a third of the text, and
every reader takes them back as text with `hex_of` (a link written before keeps its text).

A link says how its payload hash was made (`chain.payload_format`, migration 15): NULL, format 1, the
canonical JSON of the row's values; `TEXT_FORMAT` (2, decisions and previews since migration 15), the
canonical JSON of its values with each document (request, facts, reply: JSON text already) replaced
by its length, followed by the documents' text itself, so the documents are hashed as stored instead
of being encoded again as JSON strings. Links written before keep format 1 and verify as before. The
format is not part of the link's own hash: a link whose format is changed has its payload recomputed
the other way, which no longer matches its payload hash, and verify names the entry as edited.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from . import postgres
from .codec import codec_for
from .rows import canonical, insert

GENESIS = "0" * 64


def hex_of(value) -> str | None:
    """A hash as stored (raw bytes on SQLite since migration 14, else hex text) as hex text."""
    return value.hex() if isinstance(value, bytes | memoryview) else value


def stored_hash(db, value: str):
    """A hash as this store keeps it: raw bytes on SQLite (the column's affinity leaves a BLOB be)."""
    return value if isinstance(db, postgres.Database) else bytes.fromhex(value)


def raw_hashes(db) -> None:
    """Migration 14 on SQLite: the hashes of links written before as raw bytes (text that is not a
    hash, an attacker's, is left as it is for verify to name)."""
    after = -1
    while rows := db.execute(
        "SELECT seq, payload_hash, prev_hash, hash FROM chain WHERE seq > ? ORDER BY seq LIMIT 5000", (after,)
    ).fetchall():
        db.conn.executemany(
            "UPDATE chain SET payload_hash = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            [(*(_raw(h) for h in hashes), seq) for seq, *hashes in rows],
        )
        after = rows[-1][0]


def _raw(value):
    try:
        return bytes.fromhex(value) if isinstance(value, str) and len(value) == 64 else value
    except ValueError:
        return value


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_hash(seq: int, kind: str, ref: str, at: str, payload_hash: str, prev_hash: str) -> str:
    return sha256(canonical([seq, kind, ref, at, payload_hash, prev_hash]))


DECISION_COLUMNS = (
    "id",
    "seq",
    "kind",
    "lead_id",
    "evaluated_at",
    "recorded_at",
    "channel",
    "client",
    "ruleset_name",
    "ruleset_version",
    "ruleset_digest",
    "is_lead",
    "stage",
    "previous_stage",
    "funnel",
    "quadrant",
    "route",
    "destination",
    "fit",
    "engagement",
    "input",
    "facts",
    "decision",
    "latency_ms",
    "idempotency_key",
    "request_hash",
)
# Every kind of chained entry: the table that holds it, the column with its time, and what its hash covers.
ENTRIES = {
    "decision": ("decisions", "recorded_at", DECISION_COLUMNS),
    "preview": ("decisions", "recorded_at", DECISION_COLUMNS),
    "erasure": ("erasures", "at", ("id", "seq", "lead_id", "at", "requested_by", "removed")),
    # An API key's row as it stood after each change (created, revoked, re-scoped): see `snapshot`.
    "key": ("key_events", "at", ("id", "seq", "key_id", "action", "at", "snapshot")),
    "reload": ("reloads", "at", ("id", "seq", "at", "requested_by", "deployment", "problems", "changed")),
    "outcome": (
        "outcomes",
        "recorded_at",
        (
            "id",
            "seq",
            "lead_id",
            "type",
            "at",
            "reason",
            "amount",
            "note",
            "reported_by",
            "recorded_at",
            "source",
        ),
    ),
    # Old decisions moved to an archive file (audit/archive.py): the digest of the range taken out.
    "archive": (
        "archives",
        "at",
        ("id", "seq", "at", "before", "file", "count", "first_seq", "last_seq", "digest"),
    ),
    "override": (
        "overrides",
        "at",
        (
            "id",
            "seq",
            "decision_id",
            "lead_id",
            "at",
            "reviewer",
            "decided_route",
            "decided_stage",
            "expected_route",
            "expected_stage",
            "reason",
        ),
    ),
}


# Columns added after entries were first chained: hashed as [name, value] after the others when set,
# so the rows written before them keep their hash, and setting one on such a row breaks it.
LATER_COLUMNS = {"decision": ("request_id",), "preview": ("request_id",)}


# The columns of an entry that hold JSON text (payload format 2 hashes them as they are).
DOCUMENTS = {"decision": ("input", "facts", "decision"), "preview": ("input", "facts", "decision")}
TEXT_FORMAT = 2


def payload_format(kind: str) -> int | None:
    """The payload format a new link of `kind` is written with (None: format 1)."""
    return TEXT_FORMAT if kind in DOCUMENTS else None


def payload_hash(kind: str, row: dict, format: int | None = None) -> str:
    """Hash of everything an entry's row says, in payload `format` (see the module's docstring);
    any edit to it changes the hash."""
    values = [row.get(c) for c in ENTRIES[kind][2]]
    values += [[c, row[c]] for c in LATER_COLUMNS.get(kind, ()) if row.get(c) is not None]
    if format != TEXT_FORMAT or kind not in DOCUMENTS:
        return sha256(canonical(values))
    documents, at = [], [ENTRIES[kind][2].index(c) for c in DOCUMENTS[kind]]
    for i in at:
        if isinstance(values[i], str):
            documents.append(values[i])
            values[i] = len(values[i])  # its place and length; a document that is not text stays a value
    digest = hashlib.sha256(canonical(values).encode())
    for text in documents:
        digest.update(b"\n" + text.encode())
    return digest.hexdigest()


def append_entry(db, kind: str, row: dict, head: Head | None = None, stored: dict | None = None) -> dict:
    """Link `row` into the chain and insert it into its table; returns it with its seq. `stored`
    replaces values as written (compressed documents: the hash covers their text, in `row`).

    The caller holds the write transaction (BEGIN IMMEDIATE), so the head cannot move meanwhile.
    """
    table, at_column, _ = ENTRIES[kind]
    format = payload_format(kind)
    row["seq"] = append(
        db,
        kind,
        row["id"],
        row[at_column],
        lambda seq: payload_hash(kind, {**row, "seq": seq}, format),
        head,
        format,
    )
    insert(db, table, {**row, **(stored or {})})
    return row


def snapshot(db, table: str, key_id: str, action: str, at: str) -> dict:
    """Chain the whole row `key_id` of `table` (api_keys) as it stands now, after `action`.

    Generic on purpose: whatever columns the table gains, the chained snapshot holds them, and
    verify compares every column of the live row with its latest snapshot.
    """
    cursor = db.execute(f"SELECT * FROM {table} WHERE id = ?", (key_id,))
    names = [d[0] for d in cursor.description]
    row = dict(zip(names, cursor.fetchone(), strict=True))
    entry = {"id": f"kev_{uuid.uuid4().hex}", "key_id": key_id, "action": action, "at": at}
    return append_entry(db, "key", {**entry, "snapshot": canonical(row)})


@dataclass
class Head:
    """The chain's last link as one write transaction knows it: read once (with the lead's state, see
    audit.unit), then moved by every link the transaction adds, so no link reads the head again."""

    seq: int = 0
    hash: str = GENESIS
    known: bool = False


_LINK = "INSERT INTO chain (seq, kind, ref, at, payload_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
_FORMATTED_LINK = (
    "INSERT INTO chain (seq, kind, ref, at, payload_hash, prev_hash, hash, payload_format) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def append(db, kind: str, ref: str, at: str, payload_for, head: Head | None = None, format=None) -> int:
    """Add a link for an entry whose payload hash `payload_for(seq)` gives (in payload `format`);
    returns the entry's seq."""
    if head is None or not head.known:
        row = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
        head = head or Head()
        head.seq, head.hash, head.known = (row[0], hex_of(row[1]), True) if row else (0, GENESIS, True)
    seq, prev = head.seq + 1, head.hash
    digest = payload_for(seq)
    link = link_hash(seq, kind, ref, at, digest, prev)
    hashes = (seq, kind, ref, at, *(stored_hash(db, h) for h in (digest, prev, link)))
    # format 1 leaves the column out: migrations older than m015, which made it, append links too
    db.execute(_LINK, hashes) if format is None else db.execute(_FORMATTED_LINK, (*hashes, format))
    head.seq, head.hash = seq, link
    return seq


@dataclass(frozen=True)
class Break:
    seq: int | None
    ref: str | None
    message: str

    def __str__(self) -> str:
        where = f"link {self.seq}" if self.seq is not None else "outside the chain"
        return f"{where}{f' ({self.ref})' if self.ref else ''}: {self.message}"


def stored_payload(db, kind: str, ref: str) -> str | None:
    """An entry's payload hash recomputed from its row, in its link's payload format; None when the
    row is gone."""
    link = db.execute("SELECT payload_format FROM chain WHERE ref = ? AND kind = ?", (ref, kind)).fetchone()
    return _payload(db, kind, ref, link[0] if link else None)


def _payload(db, kind: str, ref: str, format: int | None) -> str | None:
    table = ENTRIES.get(kind, (None,))[0]
    if table is None:
        return None
    cursor = db.execute(f"SELECT * FROM {table} WHERE id = ?", (ref,))
    row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip([d[0] for d in cursor.description], row, strict=True))
    if table == "decisions":  # the hash covers the documents' text
        values = codec_for(db).text_row(values)
    return payload_hash(kind, values, format)


def entries(db):
    """(kind, id) of every row of every chained table, linked or not."""
    yield from db.execute("SELECT kind, id FROM decisions ORDER BY seq").fetchall()
    for kind, (table, _, _) in ENTRIES.items():
        if table != "decisions":  # one kind per table; decisions say theirs (decision or preview)
            yield from db.execute(f"SELECT ?, id FROM {table} ORDER BY seq", (kind,)).fetchall()


def verify(db, archived=frozenset()) -> list[Break]:
    """Every break in the chain, and every row of a chained table that no link records (inserted).

    A decision in `archived` (ids audit/archive.py has checked against a chained digest) may be gone."""
    breaks: list[Break] = []
    prev, expected_seq = GENESIS, 1
    linked: set[tuple[str, str]] = set()
    for seq, kind, ref, at, *hashes, format in db.execute(
        "SELECT seq, kind, ref, at, payload_hash, prev_hash, hash, payload_format FROM chain ORDER BY seq"
    ):
        payload_hash, prev_hash, stored = (hex_of(h) for h in hashes)
        if seq != expected_seq:
            breaks.append(Break(seq, ref, f"links {expected_seq}–{seq - 1} are missing (deleted)"))
        if prev_hash != prev:
            breaks.append(
                Break(seq, ref, "does not follow the link before it (a link was deleted, inserted or moved)")
            )
        if link_hash(seq, kind, ref, at, payload_hash, prev_hash) != stored:
            breaks.append(Break(seq, ref, "the link itself was edited"))
        actual = _payload(db, kind, ref, format)
        if actual is None and ref in archived:
            pass  # moved to an archive: the archive's digest in the chain accounts for it
        elif actual is None:
            breaks.append(Break(seq, ref, f"the {kind} it records is gone (deleted)"))
        elif actual != payload_hash:
            breaks.append(Break(seq, ref, f"the {kind} it records was edited"))
        linked.add((kind, ref))
        prev, expected_seq = stored, seq + 1
    for kind, ref in entries(db):
        if (kind, ref) not in linked:
            breaks.append(Break(None, ref, f"a {kind} row no link records (inserted)"))
    return breaks
