"""Deliveries of outbox events to webhook destinations, and every attempt made, kept in the audit.

The deliverer fans each new event out to the destinations subscribed to it (one `deliveries` row each,
in one transaction with the cursor it advances), then sends the head of each (destination, lead)
queue: a pending delivery blocks the later events of its lead at that destination, never other leads.
A dead letter (the last attempt failed) releases its lead; `retry` makes it pending again and `replay`
queues an event that was already delivered once more, under the same event id.
"""

from __future__ import annotations

import json
import uuid

from .errors import AuditError, NotFound
from .rows import now_iso

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
CURSOR = "outbox_fanned_seq"
FAN_OUT_BATCH = 1000


class DeliveryError(AuditError):
    """A delivery cannot be retried or replayed as asked."""


def unfanned(trail) -> bool:
    """Whether an event waits to be fanned out (a read: no write transaction when there is none)."""
    return bool(
        trail._read(
            "SELECT 1 FROM outbox WHERE seq > "
            "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0) LIMIT 1",
            (CURSOR,),
        )
    )


def fan_out(trail, wants: dict) -> int:
    """Queue every event not yet fanned out for each destination whose `wants(event)` is true."""
    with trail._transaction() as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (CURSOR,)).fetchone()
        cursor = int(row[0]) if row else 0
        events = db.execute(
            "SELECT seq, id, type, lead_id, ruleset, route, team FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, FAN_OUT_BATCH),
        ).fetchall()
        if not events:
            return 0
        at, queued = now_iso(), []
        for seq, eid, kind, lead_id, ruleset, route, team in events:
            event = {"type": kind, "ruleset": ruleset, "route": route, "team": team}
            for destination, wanted in wants.items():
                if wanted(event):
                    queued.append(
                        ("dlv_" + uuid.uuid4().hex, seq, eid, destination, lead_id, PENDING, 0, 0.0, at)
                    )
        db.conn.executemany(
            "INSERT INTO deliveries (id, event_seq, event_id, destination, lead_id, status, attempts, next_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            queued,
        )
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (CURSOR, str(events[-1][0])),
        )
        return len(queued)


def ready(trail, now: float, limit: int, busy=frozenset(), sent=frozenset()) -> list[dict]:
    """The deliveries due now that head their (destination, lead) queue, oldest event first.

    `busy`: (destination, lead) pairs to leave out; `sent`: ids delivered whose record is not yet
    committed (the next event of their lead heads the queue)."""
    skip = json.dumps(sorted(sent))
    rows = trail._read(
        "SELECT d.*, o.payload FROM deliveries d JOIN ("
        "  SELECT destination, lead_id, MIN(event_seq) AS head FROM deliveries WHERE status = 'pending'"
        "  AND id NOT IN (SELECT value FROM json_each(?)) GROUP BY destination, lead_id"
        ") h ON d.destination = h.destination AND d.lead_id = h.lead_id AND d.event_seq = h.head "
        "JOIN outbox o ON o.id = d.event_id "
        "WHERE d.status = 'pending' AND d.next_at <= ? AND d.id NOT IN (SELECT value FROM json_each(?)) "
        "ORDER BY d.event_seq LIMIT ?",
        (skip, now, skip, limit + len(busy)),
    )
    return [r for r in rows if (r["destination"], r["lead_id"]) not in busy][:limit]


def record_attempts(trail, results: list[dict]) -> None:
    """Keep attempts and their deliveries' new state, all in one transaction (one commit for many).

    Each result: delivery (the row attempted), at, status (HTTP, or None), latency_ms, error, outcome
    (the new state) and next_at (when a pending delivery is due again, in epoch seconds)."""
    with trail._transaction() as db:
        for r in results:
            d, attempt = r["delivery"], r["delivery"]["attempts"] + 1
            db.execute(
                "INSERT INTO delivery_attempts (delivery_id, event_id, destination, attempt, at, status, "
                "latency_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d["id"],
                    d["event_id"],
                    d["destination"],
                    attempt,
                    r["at"],
                    r["status"],
                    r["latency_ms"],
                    r["error"],
                ),
            )
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, updated_at = ?, last_status = ?, "
                "last_error = ? WHERE id = ?",
                (r["outcome"], attempt, r["next_at"], r["at"], r["status"], r["error"], d["id"]),
            )


def listing(trail, status: str | None = None, destination: str | None = None, limit: int = 100) -> list[dict]:
    """Deliveries, newest first, with their event's type."""
    return trail._read(
        "SELECT d.id, d.event_id, o.type, d.destination, d.lead_id, d.status, d.attempts, d.created_at, "
        "d.updated_at, d.last_status, d.last_error FROM deliveries d JOIN outbox o ON o.id = d.event_id "
        "WHERE (? IS NULL OR d.status = ?) AND (? IS NULL OR d.destination = ?) "
        "ORDER BY d.event_seq DESC, d.created_at DESC LIMIT ?",
        (status, status, destination, destination, limit),
    )


def failing(trail, limit: int = 100) -> list[dict]:
    """Dead letters and pending deliveries whose last attempt failed: what someone should look at."""
    return trail._read(
        "SELECT d.id, d.event_id, o.type, d.destination, d.lead_id, d.status, d.attempts, d.updated_at, "
        "d.last_status, d.last_error FROM deliveries d JOIN outbox o ON o.id = d.event_id "
        "WHERE d.status = 'dead' OR (d.status = 'pending' AND d.attempts > 0) "
        "ORDER BY d.updated_at DESC LIMIT ?",
        (limit,),
    )


def attempts(trail, delivery_id: str) -> list[dict]:
    return trail._read(
        "SELECT attempt, at, status, latency_ms, error FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
        (delivery_id,),
    )


def get(trail, delivery_id: str) -> dict:
    rows = trail._read("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
    if not rows:
        raise NotFound("delivery", delivery_id)
    return rows[0]


def retry(trail, delivery_id: str) -> dict:
    """Make a dead or waiting delivery due now, with its attempts counted afresh (the old ones stay)."""
    with trail._transaction() as db:
        delivery = get(trail, delivery_id)
        if delivery["status"] == DELIVERED:
            raise DeliveryError(f"delivery {delivery_id} was delivered: replay its event to send it again")
        db.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_at = 0, updated_at = ? WHERE id = ?",
            (now_iso(), delivery_id),
        )
    return get(trail, delivery_id)


def replay(trail, event_id: str, destination: str | None = None) -> list[dict]:
    """Queue an event again for the destinations it went to (or one of them), under the same event id."""
    with trail._transaction() as db:
        earlier = trail._read(
            "SELECT DISTINCT event_seq, destination, lead_id FROM deliveries WHERE event_id = ? "
            "AND (? IS NULL OR destination = ?)",
            (event_id, destination, destination),
        )
        if not earlier:
            raise NotFound("delivery of event", event_id)
        at, ids = now_iso(), []
        for row in earlier:
            ids.append("dlv_" + uuid.uuid4().hex)
            db.execute(
                "INSERT INTO deliveries (id, event_seq, event_id, destination, lead_id, status, attempts, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?)",
                (ids[-1], row["event_seq"], event_id, row["destination"], row["lead_id"], at),
            )
    return [get(trail, i) for i in ids]


def payload(row: dict) -> dict:
    return json.loads(row["payload"])
