"""Sessions of the review pages: the secret that signs their cookies, and the key a session names.

The secret lives in the database's `meta` table, like the personal-data secret, so every gunicorn
worker signs and reads cookies with the same one and a restart does not sign everyone out. A
session holds only the id of the API key that signed in; the key is read again on every request,
so revoking it ends its sessions at once.
"""

from __future__ import annotations

import secrets as _secrets

from .keys import Key
from .trail import AuditTrail

_META_KEY = "session_secret"


def secret(trail: AuditTrail) -> bytes:
    """The cookie-signing secret of this database, created on first use."""
    with trail.transaction() as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
        if row is None:
            row = (_secrets.token_hex(32),)
            db["meta"].insert({"key": _META_KEY, "value": row[0]})
    return bytes.fromhex(row[0])


def active_key(trail: AuditTrail, key_id: str) -> Key | None:
    """The key with this id if it exists and is not revoked (its scope is the caller's to check)."""
    rows = trail._read(
        "SELECT id, name, scope, created_at, revoked_at FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        (key_id,),
    )
    return Key(**rows[0]) if rows else None
