"""API keys: created once, shown once, stored only as a hash, compared in constant time.

A key reads `lg_<id>_<secret>`; the id finds the row, the secret is checked against its hash.
Scopes: `decide` (server-side callers: CRM sync, a chatbot back end, imports), `review` (reading the
trail), `admin` (everything), and `form`: a publishable key that lives in a web page, so anyone can
read it. A form key is stored with the browser origins it may be called from and may only start leads
and continue the ones it started (see service/forms.py).
Every change to a key's row is chained as a snapshot of the whole row (`chain.snapshot`), so verify
names a key whose scope, origins, revocation or secret was changed in the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import chain
from .errors import NotFound
from .rows import insert
from .trail import AuditTrail, now_iso

SCOPES = ("decide", "review", "admin", "form")
MAX_ORIGINS = 20
_KEY = re.compile(r"lg_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})")
_DUMMY = hashlib.sha256(b"timing").hexdigest()


@dataclass(frozen=True)
class Key:
    id: str
    name: str
    scope: str
    created_at: str
    revoked_at: str | None
    origins: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        """A publishable key: whoever reads the page that holds it has it."""
        return self.scope == "form"

    def allows(self, scope: str) -> bool:
        return self.scope == scope or (self.scope == "admin" and scope != "form")


def check_origin(text: str) -> str:
    """A browser origin as the Origin header sends it: scheme://host[:port], nothing more."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or "*" in text
    ):
        raise ValueError(f"{text!r} is not an origin such as https://www.example.com (no path, no wildcard)")
    return text.lower()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(trail: AuditTrail, name: str, scope: str, origins=()) -> tuple[Key, str]:
    """A new key and its full text, which is never stored and cannot be shown again."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if not name or len(name) > 100:
        raise ValueError("a key needs a name of 1 to 100 characters")
    origins = tuple(dict.fromkeys(check_origin(o) for o in origins))
    if scope == "form" and not 1 <= len(origins) <= MAX_ORIGINS:
        raise ValueError(f"a form key needs 1 to {MAX_ORIGINS} origins (--origin https://www.example.com)")
    if scope != "form" and origins:
        raise ValueError("only form keys have origins: server-side keys are never used from a browser")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = {
        "id": key_id,
        "name": name,
        "scope": scope,
        "secret_hash": _hash(secret),
        "created_at": now_iso(),
        "revoked_at": None,
        "origins": json.dumps(list(origins)) if origins else None,
    }
    with trail._transaction() as db:
        insert(db, "api_keys", row)
        chain.snapshot(db, "api_keys", key_id, "create", row["created_at"])
    return _key(row), f"lg_{key_id}_{secret}"


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
    with trail._transaction() as db:
        if db.execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,)).fetchone() is None:
            raise NotFound("key", key_id)
        at = now_iso()
        db.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (at, key_id))
        chain.snapshot(db, "api_keys", key_id, "revoke", at)
    return _key(trail._read("SELECT * FROM api_keys WHERE id = ?", (key_id,))[0])


def form_origins(trail: AuditTrail) -> set[str]:
    """Every origin some active form key may be called from (for answering CORS preflights)."""
    rows = trail._read("SELECT origins FROM api_keys WHERE scope = 'form' AND revoked_at IS NULL")
    return {o for r in rows if r["origins"] for o in json.loads(r["origins"])}


def active_count(trail: AuditTrail) -> int:
    return trail._read("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")[0]["n"]


def _key(row: dict) -> Key:
    origins = tuple(json.loads(row["origins"])) if row.get("origins") else ()
    return Key(row["id"], row["name"], row["scope"], row["created_at"], row["revoked_at"], origins)
