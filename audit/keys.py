"""API keys: created once, shown once, stored only as a hash, compared in constant time.

A key reads `lg_<id>_<secret>`; the id finds the row, the secret is checked against its hash.
Scopes: `decide` (forms and chatbots), `review` (reading the trail), `admin` (everything).
Every change to a key's row is chained as a snapshot of the whole row (`chain.snapshot`), so verify
names a key whose scope, revocation or secret was changed in the file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from . import chain
from .errors import NotFound
from .trail import AuditTrail, now_iso

SCOPES = ("decide", "review", "admin")
_KEY = re.compile(r"lg_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})")
_DUMMY = hashlib.sha256(b"timing").hexdigest()


@dataclass(frozen=True)
class Key:
    id: str
    name: str
    scope: str
    created_at: str
    revoked_at: str | None

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or self.scope == scope


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(trail: AuditTrail, name: str, scope: str) -> tuple[Key, str]:
    """A new key and its full text, which is never stored and cannot be shown again."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if not name or len(name) > 100:
        raise ValueError("a key needs a name of 1 to 100 characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = {
        "id": key_id,
        "name": name,
        "scope": scope,
        "secret_hash": _hash(secret),
        "created_at": now_iso(),
        "revoked_at": None,
    }
    with trail.transaction() as db:
        db["api_keys"].insert(row)
        chain.snapshot(db, "api_keys", key_id, "create", row["created_at"])
    return Key(key_id, name, scope, row["created_at"], None), f"lg_{key_id}_{secret}"


def authenticate(trail: AuditTrail, text: str) -> Key | None:
    """The active key this text is, or None (unknown, malformed, wrong secret or revoked)."""
    match = _KEY.fullmatch(text or "")
    rows = trail._read("SELECT * FROM api_keys WHERE id = ?", (match.group(1),)) if match else []
    stored = rows[0]["secret_hash"] if rows else _DUMMY
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    ok = hmac.compare_digest(stored, _hash(match.group(2) if match else ""))
    if not (ok and rows) or rows[0]["revoked_at"]:
        return None
    return _key(rows[0])


def list_keys(trail: AuditTrail) -> list[Key]:
    return [_key(r) for r in trail._read("SELECT * FROM api_keys ORDER BY created_at, id")]


def revoke(trail: AuditTrail, key_id: str) -> Key:
    with trail.transaction() as db:
        if db.execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,)).fetchone() is None:
            raise NotFound("key", key_id)
        at = now_iso()
        db.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (at, key_id))
        chain.snapshot(db, "api_keys", key_id, "revoke", at)
    return _key(trail._read("SELECT * FROM api_keys WHERE id = ?", (key_id,))[0])


def active_count(trail: AuditTrail) -> int:
    return trail._read("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")[0]["n"]


def _key(row: dict) -> Key:
    return Key(row["id"], row["name"], row["scope"], row["created_at"], row["revoked_at"])
