"""The audit trail: every decision recorded before it is returned, and read back for "why".

Recording is one write transaction (BEGIN IMMEDIATE after the file's write lock, audit.writelock:
writers of several processes queue on it instead of sleeping on the busy timeout), a unit of work
(audit.unit) whose named methods write the decision row, its chain link, the lead's accumulated
facts, its new events, its stage change, its outbox events and the ruleset source by digest
(audit.recording). It commits before the block ends; if anything
fails nothing is kept and StorageUnavailable is raised.

Reads outside a write block never wait for one: on SQLite each runs on a read connection of its own,
taken from a small pool (WAL gives it the last committed state), not on the writer connection that a
group transaction (audit.group) holds through its fsync. Only a thread inside its own write block
reads on the writer connection, where it sees its own uncommitted rows. On PostgreSQL a read takes a
pooled connection (audit.postgres) the same way.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from pathlib import Path

from sqlite_utils import Database

from . import archive, chain, checkpoints, compact, derived, recording, state
from .backends import ERRORS, is_postgres
from .codec import codec_for
from .errors import NotFound, StorageUnavailable
from .group import Gate, Group
from .personal import Personal
from .recording import Prepared, Reply
from .rows import dumps, now_iso
from .schema import connect, reader
from .secrets import Secrets, default_path
from .state import LeadState
from .unit import UnitOfWork
from .writelock import WriteLock

PERSONAL_FIELDS = ("email", "first_name", "last_name", "phone")
IDLE_READERS = 16  # read connections kept open between reads; more are opened when busier, then closed


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
        # the connection's lock and the group commit's queue (audit.group)
        self._lock = Gate(grouping=not is_postgres(self.path))
        sqlite_file = not is_postgres(self.path) and self.path != ":memory:"
        self._queue = WriteLock(self.path if sqlite_file else None)  # taken before BEGIN IMMEDIATE
        # read connections (SQLite only): idle ones, and every one open, for close() to close them all
        self._separate_reads = sqlite_file
        self._idle: list = []
        self._open_readers: set = set()
        self._readers_lock = threading.Lock()
        self._depth, self._uow = 0, None
        self._sources: set[str] = set()  # ruleset digests known to be stored (a source is written once)
        try:
            self.secrets = secrets or Secrets(default_path(self.path))
            self._move_old_secrets()
            self.personal = Personal(self.secrets.get("personal"), tuple(personal_fields), personal_mode)
        except BaseException:
            self.close()  # a trail that cannot be used lets its connections go at once (a bad mode, say)
            raise

    def close(self) -> None:
        with self._readers_lock:
            readers, self._open_readers, self._idle = self._open_readers, set(), []
        for conn in readers:
            conn.close()
        self._queue.close()
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
        with self._transaction() as db:
            for key, value in db.execute(
                "SELECT key, value FROM meta WHERE key IN ('personal_secret', 'session_secret')"
            ).fetchall():
                self.secrets.adopt(old[key], value)
                db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def unit_of_work(self):
        """One write transaction as a UnitOfWork (audit.unit): its methods are the named reads and
        writes; nested calls join the open one. Commits when the block ends; on any error nothing is
        kept, and an SQLite failure (disk full, read-only file, lock held too long) becomes
        StorageUnavailable."""
        with self._transaction():
            yield self._uow

    @contextlib.contextmanager
    def deciding(self, lead_id):
        """A unit of work for a decision of `lead_id`: it has read (one statement) the lead's version,
        stage and open hand-off and the chain's head, so recording reads none of them again."""
        with self._transaction():
            self._uow.look(lead_id)
            yield self._uow

    @contextlib.contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE (other writers wait on the busy timeout) … COMMIT; nested calls join it.

        Threads deciding at once share one transaction and one commit (audit.group); a thread that
        already holds the connection to read (an archive, say) writes in a transaction of its own."""
        gate = self._lock
        if gate.mine() and self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        if gate.mine():
            yield from self._alone()
            return
        with gate.member(self) as group:
            self._depth, self._uow = 1, UnitOfWork(self, self.db, group)
            try:
                yield self.db
                group.sources |= self._uow.sources
            finally:
                self._depth, self._uow = 0, None

    def _alone(self):
        self._writable()
        self._queue.acquire()
        try:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except ERRORS as exc:
                raise self._failed(exc) from exc
            group = Group()
            self._depth, self._uow = 1, UnitOfWork(self, self.db, group)
            try:
                yield self.db
                self.db.execute("COMMIT")
                self._sources |= self._uow.sources
            except BaseException as exc:
                self.db.rollback()
                if isinstance(exc, ERRORS):
                    raise self._failed(exc) from exc
                raise
            finally:
                self._depth, self._uow = 0, None
        finally:
            self._queue.release()

    def observe_write_lock(self, observer) -> None:
        """`observer(waited, held, cpu, blocks)` is called as each group commit lets the write lock go
        (audit.group: seconds waited, held, of CPU inside; blocks written)."""
        self._lock.observer = observer

    def ping(self) -> None:
        """Answer a trivial query, or raise: what readiness checks ask of the database."""
        self._read("SELECT 1 AS ok")

    def _read(self, sql: str, params=()) -> list[dict]:
        with self._reading() as db:
            cursor = db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @contextlib.contextmanager
    def _reading(self):
        """A connection to read committed rows on without waiting for a write transaction: a pooled
        read connection; the writer connection for a thread that holds it (inside its write block,
        it must see its own rows) and on PostgreSQL (whose pool lends a connection per statement)."""
        if not self._separate_reads or self._lock.mine():
            yield self.db
            return
        with self._readers_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            try:
                conn = reader(self.path)
            except ERRORS as exc:
                raise StorageUnavailable(f"the audit database cannot be read: {exc}") from exc
            with self._readers_lock:
                self._open_readers.add(conn)
        try:
            yield conn
        finally:
            with self._readers_lock:
                kept = conn in self._open_readers and len(self._idle) < IDLE_READERS
                if kept:
                    self._idle.append(conn)
                else:
                    self._open_readers.discard(conn)
            if not kept:
                conn.close()

    # -- write path (audit.unit, audit.recording) ----------------------------------------------
    def prepare(self, version: tuple | None, **item) -> Prepared:
        """A decision (`item` as for UnitOfWork.record_many) made ready to record before the write
        lock, for its lead as read at `version` (audit.recording `ahead`); UnitOfWork.record takes it."""
        prepared, db = recording.prepare(self.personal, **item), self.db
        recording.ahead(prepared, codec_for(db), compact.parts_for(db), version)
        return prepared

    def record(self, **item) -> Reply:
        """Store one decision in its own transaction (or the open one); its reply."""
        with self.unit_of_work() as uow:
            return uow.record(**item)

    def record_many(self, items: list[dict]) -> list[Reply]:
        """Store decisions in one transaction (a group commit: one fsync for all): UnitOfWork.record_many."""
        with self.unit_of_work() as uow:
            return uow.record_many(items)

    # -- the lead's accumulated facts --------------------------------------------------------
    def lead(self, lead_id: str) -> dict:
        rows = self._read("SELECT * FROM leads WHERE lead_id = ?", (lead_id,))
        if not rows:
            raise NotFound("lead", lead_id)
        return rows[0]

    def lead_state(self, lead_id) -> LeadState:
        """The lead's facts, version and latest known time, in one read (audit.state)."""
        return state.read(self, lead_id)

    def lead_version(self, lead_id) -> tuple | None:
        """Changes whenever anything known of the lead changes (a decision, an erasure); None if new."""
        return self.lead_state(lead_id).version

    def lead_facts(self, lead_id: str) -> dict | None:
        """What is known of a lead, with personal values still kept; None for a new lead."""
        return self.lead_state(lead_id).facts

    def lead_known_at(self, lead_id) -> str | None:
        """The latest time anything known of the lead was recorded for: its last decision or outcome."""
        return self.lead_state(lead_id).known_at

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
        return record_of(rows[0], self)

    def ruleset_source(self, digest: str) -> str:
        rows = self._read("SELECT source FROM rulesets WHERE digest = ?", (digest,))
        if not rows:
            raise NotFound("ruleset source", digest)
        return rows[0]["source"]

    # -- tamper evidence ---------------------------------------------------------------------
    def verify(self, statements=(), public_keys=None, source_digest=None, archives=()) -> list[str]:
        """Every edited, deleted, inserted or reordered row, every derived row that its chained entries
        contradict, every ruleset source without its digest (with `source_digest`, the engine's), and
        every checkpoint statement the chain no longer matches; empty when intact.

        Kept personal values are checked against their tokens unless `public_keys` are given: a
        verifier that trusts checkpoints by public key holds no key file, so no personal secret.
        `archives`: archive files (audit/archive.py) proven together with this file."""
        with self._lock:
            moved = archive.verify(self.db, archives, source_digest)
            breaks = (
                moved.breaks
                + chain.verify(self.db, moved.refs)
                + derived.verify(self.db, self.personal.fields, moved.rows, moved.unseen_leads)
            )
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
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM leads WHERE lead_id = ?", (lead_id,)).fetchone() is None:
                raise NotFound("lead", lead_id)
            removed = state.forget_personal(db, lead_id)
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
        codec = codec_for(self.db)
        texts = [
            (r["id"], (codec.unpack(r["input"], r["digest"]) or "") + codec.unpack(r["facts"], r["digest"]))
            for r in self._read(
                "SELECT id, input, facts, ruleset_digest AS digest FROM decisions WHERE lead_id = ?",
                (lead_id,),
            )
        ]
        texts += [
            (r["id"], r["note"])
            for r in self._read(
                "SELECT id, note FROM outcomes WHERE lead_id = ? AND note IS NOT NULL", (lead_id,)
            )
        ]
        return {**erasure, "left_in_clear": [ref for ref, text in texts if self.personal.found_in(text)]}


def record_of(row: dict, trail: AuditTrail) -> dict:
    """A stored decision row as the API and the CLI show it: its documents decoded, its facts rebuilt
    from what it refers to (audit.compact)."""
    row = codec_for(trail.db).text_row(row)
    with trail._reading() as db:
        facts = compact.facts_of(db, row, row["facts"])
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
        "request_id": row.get("request_id"),
        "input": json.loads(row["input"]) if row["input"] else None,
        "facts": facts,
        "decision": json.loads(row["decision"]),
    }
