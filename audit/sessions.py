"""Sessions of the review pages, held on the server: a signed cookie names one, the table decides.

The cookie is signed with the key file's session secret (`audit.secrets`), never with anything in
the database, and holds only a random session id. The `sessions` table keeps the id's hash (a reader
of the database cannot present it), the API key that signed in, and when the session started, was
last seen and ended. A session is live while it has not ended, was seen within the idle time, is
younger than its lifetime, and its key is neither revoked nor gone: signing out ends it on the
server, so a copied cookie is refused afterwards; rotating the secret ends them all.
"""

from __future__ import annotations

import hashlib
import secrets as _random
from datetime import UTC, datetime, timedelta

from .keys import Key
from .rows import now_iso
from .trail import AuditTrail

SEEN_EVERY = timedelta(seconds=60)  # how stale `seen_at` may get before a request writes it again
KEPT = timedelta(days=1)  # sessions are forgotten a day after they started (the lifetime is hours)


def secret(trail: AuditTrail) -> bytes:
    """The cookie-signing secret (from the key file or LEADGATE_SECRET_SESSION)."""
    return trail.secrets.get("session")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def start(trail: AuditTrail, key_id: str) -> str:
    """A new session for the key that just signed in; its id goes in the cookie, its hash here."""
    session_id, at = _random.token_urlsafe(32), now_iso()
    forgotten = (datetime.now(UTC) - KEPT).isoformat(timespec="microseconds").replace("+00:00", "Z")
    with trail._transaction() as db:
        db.execute("DELETE FROM sessions WHERE created_at < ?", (forgotten,))
        db.execute(
            "INSERT INTO sessions (id, key_id, created_at, seen_at) VALUES (?, ?, ?, ?)",
            (_hash(session_id), key_id, at, at),
        )
    return session_id


def current(trail: AuditTrail, session_id: str, idle: timedelta, lifetime: timedelta) -> Key | None:
    """The key of a live session (its scope is the caller's to check), or None; marks it seen."""
    rows = trail._read(
        "SELECT s.id AS sid, s.created_at AS started, s.seen_at, k.id, k.name, k.scope, k.created_at, "
        "k.revoked_at FROM sessions s JOIN api_keys k ON k.id = s.key_id "
        "WHERE s.id = ? AND s.ended_at IS NULL AND k.revoked_at IS NULL",
        (_hash(session_id),),
    )
    if not rows:
        return None
    row, now = rows[0], datetime.now(UTC)
    if now - _time(row["seen_at"]) > idle or now - _time(row["started"]) > lifetime:
        end(trail, session_id)
        return None
    if now - _time(row["seen_at"]) > SEEN_EVERY:
        with trail._transaction() as db:
            db.execute("UPDATE sessions SET seen_at = ? WHERE id = ?", (now_iso(), row["sid"]))
    return Key(row["id"], row["name"], row["scope"], row["created_at"], row["revoked_at"])


def end(trail: AuditTrail, session_id: str) -> None:
    with trail._transaction() as db:
        db.execute(
            "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (now_iso(), _hash(session_id)),
        )


def end_all(trail: AuditTrail) -> int:
    """End every live session (the secret was rotated): everyone signs in again. Returns how many."""
    with trail._transaction() as db:
        return db.execute("UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL", (now_iso(),)).rowcount
