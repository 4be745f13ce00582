"""Exactly once for every write: a request repeated with its Idempotency-Key gets the first reply.

`once` runs a write and remembers its reply under the caller's key in the same transaction; a repeat
with the same body gets that reply and records nothing, one with another body is an
IdempotencyConflict (409). Decisions and previews do the same inside `decide`, on their own row.
"""

from __future__ import annotations

import hashlib
import json

from audit import AuditTrail

from .errors import ServiceError


class IdempotencyConflict(ServiceError):
    """An Idempotency-Key reused with a different request."""

    def __init__(self, key: str, first: str):
        self.key, self.first = key, first
        super().__init__(f"Idempotency-Key {key!r} was used for a different request ({first})")


def request_hash(body) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def once(trail: AuditTrail, client: str | None, key: str | None, endpoint: str, body, run):
    """(reply, status, replayed): `run()` -> (reply, status), at most once per client and key.

    Everything `run` records joins this transaction, with the remembered reply: both or neither. A
    run that raises records nothing and is remembered as nothing (a retry runs it again).
    """
    if key is None:
        return (*run(), False)
    digest = request_hash({"endpoint": endpoint, "body": body})
    with trail.unit_of_work() as uow:
        first = uow.first_use(client, key)
        if first is not None:
            if first["request_hash"] != digest:
                raise IdempotencyConflict(key, first["ref"])
            return first["reply"], first["status"], True
        reply, status = run()
        uow.remember(client, key, endpoint, digest, status, reply)
        return reply, status, False
