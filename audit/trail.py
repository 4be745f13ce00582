"""The audit trail: every decision recorded before it is returned, and read back for "why".

Recording is one write transaction (BEGIN IMMEDIATE: writers from several processes queue on the
busy timeout instead of failing) holding the decision row, its chain link, the lead's accumulated
facts, its new events, its stage change, its outbox events and the ruleset source by digest. It commits before
`record` returns; if anything fails nothing is kept and StorageUnavailable is raised.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from pathlib import Path

from sqlite_utils import Database

from . import chain, checkpoints, derived, outbox, outcomes
from .backends import ERRORS
from .errors import NotFound, StorageUnavailable
from .leads import event_key
from .personal import Personal
from .rows import dumps, insert, keep_personal, now_iso, record_shadow, store_source, upsert
from .schema import connect
from .secrets import Secrets, default_path

PERSONAL_FIELDS = ("email", "first_name", "last_name", "phone")


class AuditTrail:
    """One SQLite file or PostgreSQL database. Safe to share between threads; each process opens its own."""

    def __init__(
        self,
        path: str | Path,
        durability: str = "full",
        personal_fields=PERSONAL_FIELDS,
        personal_mode: str = "hash",
        secrets: Secrets | None = None,
    ):
        self.path, self.durability = str(path), durability
        self.db: Database = self._open()
        self._reopen = False  # set when the connection was found read-only: open it again before writing
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self.secrets = secrets or Secrets(default_path(self.path))
            self._move_old_secrets()
        except BaseException:
            self.db.close()
            raise
        self.personal = Personal(self.secrets.get("personal"), tuple(personal_fields), personal_mode)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> Database:
        try:
            return connect(self.path, self.durability)
        except ERRORS as exc:
            raise StorageUnavailable(f"the audit database cannot be opened: {exc}") from exc

    def _writable(self) -> None:
        # SQLite opens a file it cannot write read-only and keeps it so: once the fault is cleared,
        # only a new connection writes again.
        if self._reopen:
            fresh = self._open()
            with contextlib.suppress(*ERRORS):
                self.db.close()
            self.db, self._reopen = fresh, False

    def _failed(self, exc: Exception) -> StorageUnavailable:
        if "readonly" in str(exc):
            self._reopen = True
        return StorageUnavailable(f"the audit database cannot be written: {exc}")

    def _move_old_secrets(self) -> None:
        """Files from before the key file kept their secrets in `meta`: move them out (key file first)."""
        old = {"personal_secret": "personal", "session_secret": "session"}
        with self.transaction() as db:
            for key, value in db.execute(
                "SELECT key, value FROM meta WHERE key IN ('personal_secret', 'session_secret')"
            ).fetchall():
                self.secrets.adopt(old[key], value)
                db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE: other writers wait on the busy timeout); nested calls
        join it. Commits when the block ends; on any error nothing is kept, and an SQLite failure
        (disk full, read-only file, lock held too long) becomes StorageUnavailable."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self._writable()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except ERRORS as exc:
                raise self._failed(exc) from exc
            self._depth = 1
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException as exc:
                self.db.rollback()
                if isinstance(exc, ERRORS):
                    raise self._failed(exc) from exc
                raise
            finally:
                self._depth = 0

    def ping(self) -> None:
        """Answer a trivial query, or raise: what readiness checks ask of the database."""
        self._read("SELECT 1 AS ok")

    def _read(self, sql: str, params=()) -> list[dict]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- write path --------------------------------------------------------------------------
    def record(self, **item) -> dict:
        """Store one decision and return the reply (see record_many for the fields)."""
        return self.record_many([item])[0]

    def record_many(self, items: list[dict]) -> list[dict]:
        """Store decisions in one transaction (a group commit: one fsync for all), returning their replies.

        Each item holds facts, decision, source and optionally kind (`decision` updates the lead,
        `preview` does not), request, channel, client, latency_ms, idempotency_key, request_hash, and
        shadow: (identity, source, decision or error) of a shadow candidate. All are stored, or none.
        """
        prepared = [self._prepare(**item) for item in items]
        with self.transaction() as db:
            for row, item, kept in prepared:
                decision = item["decision"]
                store_source(db, decision["ruleset"], item["source"], row["recorded_at"])
                chain.append_entry(db, row["kind"], row)
                if item["shadow"] is not None:
                    record_shadow(db, row["id"], decision, *item["shadow"])
                if row["kind"] == "decision":
                    self._update_lead(
                        db, item["facts"], kept, decision, row["id"], row["recorded_at"], row["channel"]
                    )
        return [{"decision_id": row["id"], **item["decision"]} for row, item, _ in prepared]

    def _prepare(
        self,
        *,
        facts: dict,
        decision: dict,
        source: str,
        kind: str = "decision",
        request: dict | None = None,
        channel: str | None = None,
        client: str | None = None,
        latency_ms: float | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        shadow: tuple | None = None,
    ):
        decision_id = "dec_" + uuid.uuid4().hex
        stored_facts, kept = self._protect_facts(facts)
        stored_request = self._protect_facts(request)[0] if request is not None else None
        ruleset = decision["ruleset"]
        row = {
            "id": decision_id,
            "kind": kind,
            "lead_id": facts["lead_id"],
            "evaluated_at": decision["evaluated_at"],
            "recorded_at": now_iso(),
            "channel": channel or facts.get("channel"),
            "client": client,
            "ruleset_name": ruleset["name"],
            "ruleset_version": ruleset["version"],
            "ruleset_digest": ruleset["digest"],
            "is_lead": int(decision["is_lead"]),
            "stage": decision["stage"],
            "previous_stage": facts.get("previous_stage"),
            "funnel": decision["funnel"],
            "quadrant": decision["quadrant"],
            "route": decision["route"]["id"],
            "destination": decision["route"]["destination"],
            "fit": decision["scores"].get("fit"),
            "engagement": decision["scores"].get("engagement"),
            "input": dumps(stored_request) if stored_request is not None else None,
            "facts": dumps(stored_facts),
            "decision": dumps({"decision_id": decision_id, **decision}),
            "latency_ms": latency_ms,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
        }
        return row, {"decision": decision, "source": source, "facts": stored_facts, "shadow": shadow}, kept

    def _protect_facts(self, facts: dict | None):
        if facts is None:
            return None, []
        return self.personal.protect_facts(facts)

    def _update_lead(self, db, facts, kept, decision, decision_id, at, channel) -> None:
        lead_id = facts["lead_id"]
        keep_personal(db, lead_id, kept)
        previous = db.execute("SELECT stage FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
        lead = {
            "lead_id": lead_id,
            "updated_at": at,
            "channel": channel or facts.get("channel"),
            "profile": dumps(facts.get("profile") or {}),
            "answers": dumps(facts.get("answers") or {}),
            "stage": decision["stage"],
            "ruleset_name": decision["ruleset"]["name"],
            "last_decision_id": decision_id,
        }
        if previous is None:
            lead["created_at"] = at
        upsert(db, "leads", lead, "lead_id")
        db.conn.executemany(
            "INSERT OR IGNORE INTO events (lead_id, event_id, type, at, properties, first_seen_at, decision_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (lead_id, event_key(e), e["type"], e["at"], dumps(e.get("properties") or {}), at, decision_id)
                for e in facts.get("events", [])
            ],
        )
        handed_off = outcomes.track(db, lead_id, decision_id, decision)
        before = previous[0] if previous else None
        outbox.decided(db, lead_id, decision_id, decision, before, handed_off, at)
        if before != decision["stage"]:
            insert(
                db,
                "stage_history",
                {
                    "lead_id": lead_id,
                    "at": at,
                    "from_stage": before,
                    "to_stage": decision["stage"],
                    "decision_id": decision_id,
                },
            )

    # -- the lead's accumulated facts --------------------------------------------------------
    def lead(self, lead_id: str) -> dict:
        rows = self._read("SELECT * FROM leads WHERE lead_id = ?", (lead_id,))
        if not rows:
            raise NotFound("lead", lead_id)
        return rows[0]

    def lead_version(self, lead_id) -> tuple | None:
        """Changes whenever anything known of the lead changes (a decision, an erasure); None if new.

        Read it before the facts: a write that lands in between then shows as a change."""
        if not isinstance(lead_id, str):
            return None
        rows = self._read("SELECT last_decision_id, updated_at FROM leads WHERE lead_id = ?", (lead_id,))
        return (rows[0]["last_decision_id"], rows[0]["updated_at"]) if rows else None

    def lead_facts(self, lead_id: str) -> dict | None:
        """What is known of a lead, with personal values still kept; None for a new lead."""
        rows = self._read("SELECT * FROM leads WHERE lead_id = ?", (lead_id,))
        if not rows:
            return None
        lead = rows[0]
        values = {
            r["token"]: r["value"]
            for r in self._read("SELECT token, value FROM personal WHERE lead_id = ?", (lead_id,))
        }
        events = []
        for e in self._read(
            "SELECT event_id, type, at, properties FROM events WHERE lead_id = ? ORDER BY at, event_id",
            (lead_id,),
        ):
            event = {"id": e["event_id"], "type": e["type"], "at": e["at"]}
            props = json.loads(e["properties"])
            if props:
                event["properties"] = props
            events.append(event)
        stored = {
            "lead_id": lead_id,
            "channel": lead["channel"],
            "profile": json.loads(lead["profile"]),
            "answers": json.loads(lead["answers"]),
            "events": events,
            "previous_stage": lead["stage"],
        }
        facts = self.personal.reveal_facts(stored, values)
        reported = outcomes.as_facts(outcomes.of_lead(self, lead_id))
        if reported:
            facts["outcomes"] = reported
        handoff = outcomes.current_handoff(self, lead_id)
        if handoff:
            facts["handoff"] = handoff
        return facts

    def lead_known_at(self, lead_id) -> str | None:
        """The latest time anything known of the lead was recorded for: its last decision or outcome."""
        rows = self._read(
            "SELECT evaluated_at AS at FROM decisions WHERE lead_id = ? AND kind = 'decision' "
            "UNION ALL SELECT at FROM outcomes WHERE lead_id = ?",
            (lead_id, lead_id),
        )
        return max((r["at"] for r in rows), key=outcomes.moment, default=None)

    def personal_values(self, lead_id: str) -> dict[str, str]:
        return {
            r["token"]: r["value"]
            for r in self._read("SELECT token, value FROM personal WHERE lead_id = ?", (lead_id,))
        }

    # -- reading decisions -------------------------------------------------------------------
    def decision(self, decision_id: str) -> dict:
        rows = self._read("SELECT * FROM decisions WHERE id = ?", (decision_id,))
        if not rows:
            raise NotFound("decision", decision_id)
        return record_of(rows[0])

    def by_idempotency_key(self, client: str | None, key: str) -> dict | None:
        """The first decision made under this client's idempotency key: decision_id, request_hash, decision."""
        rows = self._read(
            "SELECT id, request_hash, decision FROM decisions WHERE idempotency_key = ? AND client IS ?",
            (key, client),
        )
        if not rows:
            return None
        return {
            "decision_id": rows[0]["id"],
            "request_hash": rows[0]["request_hash"],
            "decision": json.loads(rows[0]["decision"]),
        }

    def ruleset_source(self, digest: str) -> str:
        rows = self._read("SELECT source FROM rulesets WHERE digest = ?", (digest,))
        if not rows:
            raise NotFound("ruleset source", digest)
        return rows[0]["source"]

    # -- tamper evidence ---------------------------------------------------------------------
    def verify(self, statements=(), public_keys=None, source_digest=None) -> list[str]:
        """Every edited, deleted, inserted or reordered row, every derived row that its chained entries
        contradict, every ruleset source without its digest (with `source_digest`, the engine's), and
        every checkpoint statement the chain no longer matches; empty when intact.

        Kept personal values are checked against their tokens unless `public_keys` are given: a
        verifier that trusts checkpoints by public key holds no key file, so no personal secret."""
        with self._lock:
            breaks = chain.verify(self.db) + derived.verify(self.db, self.personal.fields)
            if not public_keys:
                breaks += derived.personal_values(self.db, self.personal)
            if source_digest is not None:
                breaks += derived.sources(self.db, source_digest)
            problems = [str(b) for b in breaks]
            if statements:
                keys = public_keys or [checkpoints.public_key(self.secrets)]
                problems += checkpoints.verify(self.db, statements, keys)
            return problems

    def checkpoint(self) -> dict:
        """A signed statement of the chain's head, to keep outside this file (see audit.checkpoints)."""
        with self._lock:
            return checkpoints.sign(self.db, self.secrets)

    # -- erasure -----------------------------------------------------------------------------
    def erase(self, lead_id: str, requested_by: str | None = None) -> dict:
        """Remove a lead's personal data; its decisions keep their skeleton, and the erasure is chained."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM leads WHERE lead_id = ?", (lead_id,)).fetchone() is None:
                raise NotFound("lead", lead_id)
            removed = db.execute("DELETE FROM personal WHERE lead_id = ?", (lead_id,)).rowcount
            profile = json.loads(
                db.execute("SELECT profile FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()[0]
            )
            kept = derived.erased_profile(profile, self.personal.fields)
            at = now_iso()
            db.execute(
                "UPDATE leads SET profile = ?, updated_at = ? WHERE lead_id = ?", (dumps(kept), at, lead_id)
            )
            erasure = {
                "id": "era_" + uuid.uuid4().hex,
                "lead_id": lead_id,
                "at": at,
                "requested_by": requested_by,
                "removed": removed,
            }
            chain.append_entry(db, "erasure", erasure)
        with self._lock:
            # Old copies of the erased pages may still sit in the write-ahead log: fold it in and empty it.
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # Free text is tokenised when recorded; records from before that may still hold it in clear.
        texts = self._read(
            "SELECT id, coalesce(input, '') || facts AS text FROM decisions WHERE lead_id = ? "
            "UNION ALL SELECT id, note FROM outcomes WHERE lead_id = ? AND note IS NOT NULL",
            (lead_id, lead_id),
        )
        return {**erasure, "left_in_clear": [r["id"] for r in texts if self.personal.found_in(r["text"])]}


def record_of(row: dict) -> dict:
    """A stored decision row as the API and the CLI show it."""
    return {
        "decision_id": row["id"],
        "kind": row["kind"],
        "seq": row["seq"],
        "lead_id": row["lead_id"],
        "evaluated_at": row["evaluated_at"],
        "recorded_at": row["recorded_at"],
        "channel": row["channel"],
        "client": row["client"],
        "ruleset": {
            "name": row["ruleset_name"],
            "version": row["ruleset_version"],
            "digest": row["ruleset_digest"],
        },
        "latency_ms": row["latency_ms"],
        "input": json.loads(row["input"]) if row["input"] else None,
        "facts": json.loads(row["facts"]),
        "decision": json.loads(row["decision"]),
    }
