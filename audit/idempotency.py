"""The first reply to each Idempotency-Key, whatever the endpoint, so a retry never records twice.

Decisions and previews keep their key on the decision row (`decisions.idempotency_key`); batches,
outcomes and reloads keep theirs in the `idempotency` table with the reply they got. A key belongs
to the API key (client) that used it. Both are read and written inside the write transaction of
the request they guard, so concurrent retries queue on the lock and the second sees the first.
"""

from __future__ import annotations

import json

from .codec import codec_for
from .recording import Reply
from .rows import dumps, now_iso

# A key's first use is kept in `idempotency` (batches, outcomes, reloads) or on the decision row that
# carries it (decisions, previews): both read in one statement, under the write lock.
FIRST_USE = """
SELECT i.endpoint, i.request_hash AS kept_hash, i.status, i.reply, d.id, d.request_hash AS decided_hash,
  d.decision, d.ruleset_digest
FROM (SELECT 1) LEFT JOIN idempotency i ON i.client = ? AND i.key = ?
LEFT JOIN decisions d ON i.key IS NULL AND d.idempotency_key = ? AND d.client IS ?
"""


def first_use(trail, client: str | None, key: str) -> dict | None:
    """{endpoint, request_hash, status, reply, ref} of the first request under this key, or None."""
    row = trail._read(FIRST_USE, (client or "", key, key, client))[0]
    if row["endpoint"] is not None:
        return {
            "endpoint": row["endpoint"],
            "request_hash": row["kept_hash"],
            "status": row["status"],
            "reply": json.loads(row["reply"]),
            "ref": f"{row['endpoint']} at {key!r}",
        }
    if row["id"] is None:
        return None
    body = codec_for(trail.db).unpack(row["decision"], row["ruleset_digest"])
    return {
        "endpoint": "decisions",
        "request_hash": row["decided_hash"],
        "status": None,
        "reply": Reply(json.loads(body), body),
        "ref": f"decision {row['id']}",
    }


def remember(db, client: str | None, key: str, endpoint: str, request_hash: str, status: int, reply) -> None:
    """Keep the reply to a request under its key, in the caller's transaction."""
    db.execute(
        "INSERT INTO idempotency (client, key, endpoint, request_hash, status, reply, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (client or "", key, endpoint, request_hash, status, dumps(reply), now_iso()),
    )
