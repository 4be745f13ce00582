"""The unit of work: one write transaction and its named reads and writes.

`trail.unit_of_work()` opens it (BEGIN IMMEDIATE; nested calls join the open one) and
`trail.deciding(lead_id)` opens it and reads, in one statement, what the write path needs of the lead
and of the chain (its version, stage and open hand-off; the chain's head). Callers never hold a
connection or run SQL: they call these methods, and everything they write commits together or not at
all when the block ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import assignment, chain, idempotency, outbox, outcomes, recording, state
from .recording import LeadHead, Prepared, Reply

if TYPE_CHECKING:
    from .group import Group
    from .trail import AuditTrail

HEAD = f"""
SELECT c.seq, c.hash, l.lead_id IS NOT NULL, l.stage, l.last_decision_id, l.updated_at, h.id, h.route,
  l.personal{{}}
FROM (SELECT 1)
LEFT JOIN (SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1) c ON true
LEFT JOIN leads l ON l.lead_id = :lead
LEFT JOIN ({outcomes.OPEN_HANDOFF.replace("?", ":lead")}) h ON true
"""


HEAD_ALONE, HEAD_ASSIGNING = HEAD.format(""), HEAD.format("," + assignment.OWNER_COLUMNS)


class UnitOfWork:
    def __init__(self, trail: AuditTrail, db, group: Group):
        self._trail, self._db, self._group = trail, db, group
        self._head = group.head  # shared by the blocks of one group commit (audit.group)
        self._leads: dict[str, LeadHead] = {}
        self.sources: set[str] = set()  # ruleset digests stored by this transaction
        self._assigned: dict[str, list[dict]] = {}  # assignments made, stored with their decisions
        self._looking: str | None = None  # the lead `look` was asked for, read on first need
        self._expected: dict | None = None  # what its assignment will read (see `expect`)
        self._owners: tuple | None = None  # (parameters, values) read with it

    def look(self, lead_id) -> None:
        """Read, on first need, the lead's version, stage and open hand-off and the chain's head, and
        what its assignment reads if `expect` said so: all in one statement."""
        self._looking = lead_id if isinstance(lead_id, str) else None

    def expect(self, teams, lead_id: str, decision: dict, domain: str | None) -> None:
        """Say which assignment the decision being made will ask for (its evaluation is made before
        the lock): its owners and counts are then read with the lead, not in a statement of their own."""
        self._expected = assignment.wanted(teams, lead_id, decision, domain)

    def _look(self) -> None:
        lead_id, self._looking = self._looking, None
        if lead_id is None:
            return
        expected = self._expected if self._expected and self._expected["lead"] == lead_id else None
        values = self._db.execute(
            HEAD_ASSIGNING if expected else HEAD_ALONE, {**(expected or {}), "lead": lead_id}
        ).fetchone()
        seq, digest, exists, stage, last, updated, handoff_id, route, personal = values[:9]
        if expected:
            self._owners = (expected, tuple(values[9:]))
        if not self._head.known:
            self._head.seq, self._head.hash, self._head.known = (
                seq or 0,
                chain.hex_of(digest) or chain.GENESIS,
                True,
            )
        known = LeadHead(
            bool(exists),
            stage,
            (last, updated) if exists else None,
            (handoff_id, route) if handoff_id else None,
            personal,
        )
        self._leads[lead_id] = known

    def version(self, lead_id) -> tuple | None:
        """The lead's version as this transaction read it (see `look`)."""
        self._look()
        known = self._leads.get(lead_id) if isinstance(lead_id, str) else None
        return known.version if known is not None else None

    # -- reads under the write lock ------------------------------------------------------------
    def lead_state(self, lead_id) -> state.LeadState:
        return state.read(self._trail, lead_id)

    def first_use(self, client: str | None, key: str) -> dict | None:
        """The first request under an Idempotency-Key (see audit.idempotency.first_use)."""
        return idempotency.first_use(self._trail, client, key)

    # -- writes --------------------------------------------------------------------------------
    def record(self, prepared: Prepared | None = None, **item) -> Reply:
        """Store one decision, prepared before the lock (`AuditTrail.prepare`) or given as an item;
        its reply (see `record_many`)."""
        return self.record_many([prepared if prepared is not None else item])[0]

    def record_many(self, items: list) -> list[Reply]:
        """Store decisions, returning their replies (each with `body`, the stored JSON text).

        Each item is a Prepared decision or a dict holding facts, decision, source and optionally kind
        (`decision` updates the lead, `preview` does not), request, channel, client, latency_ms,
        idempotency_key, request_hash, request_id, and shadow: (identity, source, decision or error)
        of a shadow candidate.
        """
        self._look()
        personal = self._trail.personal
        prepared = [i if isinstance(i, Prepared) else recording.prepare(personal, **i) for i in items]
        for one in prepared:  # each lead not read yet: read with the chain's head, one statement
            if one.row["kind"] == "decision" and one.row["lead_id"] not in self._leads:
                self.look(one.row["lead_id"])
                self._look()
        known = self._trail._sources | self._group.sources | self.sources
        replies = recording.write(self._db, prepared, self._head, self._leads, known, self._assigned)
        self.sources.update(one.row["ruleset_digest"] for one in prepared)
        return replies

    def record_outcome(self, lead_id: str, outcome: dict, reported_by, source: str, note) -> dict:
        """Store what sales reported about a lead (see audit.outcomes.record)."""
        self._look()
        self._leads.pop(lead_id, None)  # its open hand-off changes: the decision after it reads it again
        return outcomes.record(
            self._db, lead_id, outcome, reported_by, source, note, self._trail.personal, self._head
        )

    def assign(self, teams, lead_id: str, decision: dict, domain: str | None) -> dict | None:
        """A hand-off's assignment to a person, counted in this transaction (see audit.assignment)."""
        self._look()
        read, self._owners = self._owners, None  # counts change once it is made: read once
        return assignment.assign(self._db, teams, lead_id, decision, domain, self._assigned, read)

    def sla_breached(self, overdue: dict, ruleset: str | None, at: str) -> str:
        """Tell that a hand-off passed its SLA unanswered (one outbox event per hand-off)."""
        return outbox.sla_breached(self._db, overdue, ruleset, at)

    def remember(self, client, key: str, endpoint: str, request_hash: str, status: int, reply) -> None:
        """Keep a reply under its Idempotency-Key (see audit.idempotency.remember)."""
        idempotency.remember(self._db, client, key, endpoint, request_hash, status, reply)
