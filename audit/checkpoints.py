"""Checkpoints: signed statements of the chain's head, kept outside the audit file.

The hash chain uses no secret, so whoever can write the file can rewrite it consistently: edit an
entry and recompute every link after it, delete the tail, insert or reorder entries and renumber.
A checkpoint, like a Certificate Transparency signed tree head (RFC 6962), pins what the chain was:

    {"leadgate_checkpoint": 1, "seq": N, "head": <hash of link N>, "ref": <entry of link N>,
     "count": <links 1..N>, "entries": <digest of the set of entries 1..N>, "order": <digest of
     their order>, "at": <time>, "key": <Ed25519 public key>, "signature": <over all the above>}

It is signed with Ed25519, whose private key is derived from the key file's `checkpoint` secret (never
in the database). Ed25519 rather than an HMAC: a verifier (an auditor, a second site, a transparency
log) holds only the public key, so it can check statements but cannot forge one. Matching a
statement proves every entry up to link N is still there and unchanged (link N's hash commits to
all the links before it); a mismatch is named: truncated, entries inserted or deleted before it
(its last entry moved), reordered (same set of entries, another order), or rewritten and re-hashed.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import canonical, hex_of
from .rows import now_iso

VERSION = 1
FIELDS = ("leadgate_checkpoint", "seq", "head", "ref", "count", "entries", "order", "at", "key")


def _private(secrets) -> Ed25519PrivateKey:
    seed = hashlib.sha256(b"leadgate checkpoint ed25519\x00" + secrets.get("checkpoint")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(secrets) -> str:
    """The hex public key that verifies this installation's checkpoints: give it to verifiers."""
    return _private(secrets).public_key().public_bytes_raw().hex()


def _digests(db, seq: int) -> tuple[str, str]:
    """Digests of the entries of links 1..seq as a multiset and in their order, streamed.

    Only diagnostic (the signed head hash is the proof): they tell a reordering from a rewrite, and
    use the entries' names because a payload hash covers the entry's seq. The multiset digest is the
    sum of the entries' hashes modulo 2**256, so it needs no sorting and no memory per link.
    """
    order, total = hashlib.sha256(), 0
    for kind, ref, at in db.execute("SELECT kind, ref, at FROM chain WHERE seq <= ? ORDER BY seq", (seq,)):
        line = canonical([kind, ref, at]).encode()
        order.update(line + b"\n")
        total = (total + int.from_bytes(hashlib.sha256(line).digest(), "big")) % 2**256
    return f"{total:064x}", order.hexdigest()


def sign(db, secrets) -> dict:
    """A signed statement of the chain's head now (of an empty chain: seq 0)."""
    head = db.execute("SELECT seq, hash, ref FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    seq, hash_, ref = (head[0], hex_of(head[1]), head[2]) if head else (0, None, None)
    count = db.execute("SELECT count(*) FROM chain WHERE seq <= ?", (seq,)).fetchone()[0]
    key = _private(secrets)
    entries, order = _digests(db, seq)
    statement = {
        "leadgate_checkpoint": VERSION,
        "seq": seq,
        "head": hash_,
        "ref": ref,
        "count": count,
        "entries": entries,
        "order": order,
        "at": now_iso(),
        "key": key.public_key().public_bytes_raw().hex(),
    }
    statement["signature"] = key.sign(canonical(statement).encode()).hex()
    return statement


def read(lines, name: str) -> list[tuple[str, dict | None]]:
    """(where, statement or None when the line is not JSON) for every non-empty line of a file."""
    out = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append((f"{name}:{number}", json.loads(line)))
            except ValueError:
                out.append((f"{name}:{number}", None))
    return out


def _signed(statement, trusted: list[str]) -> str | None:
    """Why the statement cannot be trusted, or None when its signature verifies with a trusted key."""
    if not isinstance(statement, dict) or set(statement) != {*FIELDS, "signature"}:
        return "not a leadgate checkpoint statement"
    if statement["key"] not in trusted:
        return f"signed with key {str(statement['key'])[:16]}…, which is not a trusted checkpoint key"
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(statement["key"])).verify(
            bytes.fromhex(statement["signature"]),
            canonical({k: statement[k] for k in FIELDS}).encode(),
        )
    except (InvalidSignature, ValueError, TypeError):
        return "the signature does not verify: the statement was altered or forged"
    return None


def verify(db, statements: list[tuple[str, dict | None]], trusted: list[str]) -> list[str]:
    """Every statement the chain no longer matches, each named with where it came from."""
    problems = []
    last = db.execute("SELECT max(seq) FROM chain").fetchone()[0] or 0
    for where, statement in statements:
        wrong = _signed(statement, trusted)
        if wrong:
            problems.append(f"checkpoint {where}: {wrong}")
            continue
        seq, signed_at = statement["seq"], statement["at"]
        said = f"checkpoint {where} (link {seq}, signed {signed_at})"
        if seq == 0:
            continue
        link = db.execute("SELECT hash FROM chain WHERE seq = ?", (seq,)).fetchone()
        if link is not None and hex_of(link[0]) == statement["head"]:
            continue
        moved = db.execute("SELECT seq FROM chain WHERE ref = ?", (statement["ref"],)).fetchone()
        moved = moved[0] if moved else None
        if moved is not None and moved > seq:
            problems.append(
                f"{said}: {moved - seq} entr(ies) were inserted before it: "
                f"its last entry {statement['ref']} is now link {moved}"
            )
        elif moved is not None and moved < seq:
            problems.append(
                f"{said}: {seq - moved} entr(ies) before it were deleted and the chain renumbered: "
                f"its last entry {statement['ref']} is now link {moved}"
            )
        elif last < seq:
            problems.append(
                f"{said}: the chain was truncated: it ends at link {last}; links {last + 1}–{seq} are gone"
            )
        elif moved is None:
            problems.append(f"{said}: its last entry {statement['ref']} is gone from the chain")
        else:
            problems.append(f"{said}: {_rewritten(db, statement)}")
    return problems


def _rewritten(db, statement) -> str:
    """What happened to the links up to a statement whose last entry kept its place but not its hash."""
    seq = statement["seq"]
    entries, order = _digests(db, seq)
    if order == statement["order"]:
        return f"entries up to it were rewritten and the chain re-hashed (link {seq} no longer has the signed hash)"
    if entries == statement["entries"]:
        return "entries before it were reordered and the chain re-hashed"
    return "entries before it were replaced and the chain re-hashed"
