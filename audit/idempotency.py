"""The first reply to each Idempotency-Key, whatever the endpoint, so a retry never records twice.

Decisions and previews keep their key on the decision row (`decisions.idempotency_key`); batches,
outcomes and reloads keep theirs in the `idempotency` table with the reply they got. A key belongs
to the API key (client) that used it. Both are read and written inside the write transaction of
the request they guard, so concurrent retries queue on the lock and the second sees the first.
"""

from __future__ import annotations

import json

from .rows import dumps, now_iso


def first_use(trail, client: str | None, key: str) -> dict | None:
    """{endpoint, request_hash, status, reply, ref} of the first request under this key, or None."""
    rows = trail._read(
        "SELECT endpoint, request_hash, status, reply FROM idempotency WHERE client = ? AND key = ?",
        (client or "", key),
    )
    if rows:
        row = rows[0]
        return {**row, "reply": json.loads(row["reply"]), "ref": f"{row['endpoint']} at {key!r}"}
    first = trail.by_idempotency_key(client, key)
    if first is None:
        return None
    return {
        "endpoint": "decisions",
        "request_hash": first["request_hash"],
        "status": None,
        "reply": first["decision"],
        "ref": f"decision {first['decision_id']}",
    }


def remember(db, client: str | None, key: str, endpoint: str, request_hash: str, status: int, reply) -> None:
    """Keep the reply to a request under its key, in the caller's transaction."""
    db.execute(
        "INSERT INTO idempotency (client, key, endpoint, request_hash, status, reply, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (client or "", key, endpoint, request_hash, status, dumps(reply), now_iso()),
    )
