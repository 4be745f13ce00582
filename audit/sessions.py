"""Sessions of the review pages: the secret that signs their cookies, and the key a session names.

The secret lives in the key file (`audit.secrets`), not in the database, so every gunicorn worker
signs and reads cookies with the same one, a restart does not sign everyone out, and a reader of the
database cannot sign a cookie. A session holds only the id of the API key that signed in; the key is
read again on every request, so revoking it ends its sessions at once.
"""

from __future__ import annotations

from .keys import Key
from .trail import AuditTrail


def secret(trail: AuditTrail) -> bytes:
    """The cookie-signing secret (from the key file or LEADGATE_SECRET_SESSION)."""
    return trail.secrets.get("session")


def active_key(trail: AuditTrail, key_id: str) -> Key | None:
    """The key with this id if it exists and is not revoked (its scope is the caller's to check)."""
    rows = trail._read(
        "SELECT id, name, scope, created_at, revoked_at FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        (key_id,),
    )
    return Key(**rows[0]) if rows else None
