"""Tamper evidence: every recorded entry (decision, erasure, reload…) is a link in one hash chain.

A link holds the hash of its entry's payload and the hash of the link before it, so an edited,
deleted, inserted or reordered row breaks the chain at a place `verify` can name.
Personal data is never part of a payload (it lives in the `personal` table as tokens), so erasing it
leaves the chain intact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GENESIS = "0" * 64


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_hash(seq: int, kind: str, ref: str, at: str, payload_hash: str, prev_hash: str) -> str:
    return sha256(canonical([seq, kind, ref, at, payload_hash, prev_hash]))


def append(db, kind: str, ref: str, at: str, payload_for) -> int:
    """Add a link for an entry whose payload hash `payload_for(seq)` gives; returns the entry's seq.

    The caller holds the write transaction (BEGIN IMMEDIATE), so the head cannot move meanwhile.
    """
    head = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    digest = payload_for(seq)
    db.execute(
        "INSERT INTO chain (seq, kind, ref, at, payload_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, kind, ref, at, digest, prev, link_hash(seq, kind, ref, at, digest, prev)),
    )
    return seq


@dataclass(frozen=True)
class Break:
    seq: int | None
    ref: str | None
    message: str

    def __str__(self) -> str:
        where = f"link {self.seq}" if self.seq is not None else "outside the chain"
        return f"{where}{f' ({self.ref})' if self.ref else ''}: {self.message}"


def verify(db, payload_of) -> tuple[list[Break], set[tuple[str, str]]]:
    """Every break in the chain, and the (kind, ref) of every entry it links.

    `payload_of(kind, ref)` recomputes an entry's payload hash from its row (None when the row is gone).
    """
    breaks: list[Break] = []
    prev, expected_seq = GENESIS, 1
    linked: set[tuple[str, str]] = set()
    for seq, kind, ref, at, payload_hash, prev_hash, stored in db.execute(
        "SELECT seq, kind, ref, at, payload_hash, prev_hash, hash FROM chain ORDER BY seq"
    ):
        if seq != expected_seq:
            breaks.append(Break(seq, ref, f"links {expected_seq}–{seq - 1} are missing (deleted)"))
        if prev_hash != prev:
            breaks.append(
                Break(seq, ref, "does not follow the link before it (a link was deleted, inserted or moved)")
            )
        if link_hash(seq, kind, ref, at, payload_hash, prev_hash) != stored:
            breaks.append(Break(seq, ref, "the link itself was edited"))
        actual = payload_of(kind, ref)
        if actual is None:
            breaks.append(Break(seq, ref, f"the {kind} it records is gone (deleted)"))
        elif actual != payload_hash:
            breaks.append(Break(seq, ref, f"the {kind} it records was edited"))
        linked.add((kind, ref))
        prev, expected_seq = stored, seq + 1
    return breaks, linked
