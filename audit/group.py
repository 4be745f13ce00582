"""Group commit: decisions arriving at once on one trail share one write transaction and one fsync.

A worker's threads share one AuditTrail (one connection), and the disk allows only so many fsynced
commits a second. The first thread to find no transaction open leads: BEGIN IMMEDIATE, then its own
block. Threads that arrive meanwhile (while it writes or while the previous group commits) queue; once
the leader's block is done, each runs its own block in turn inside the open transaction, under a
SAVEPOINT, so an error undoes that block only and goes to its own caller. When no thread is left
queued, the leader commits once for all of them; every block returns only then, so nothing is
acknowledged before the commit that keeps it, and a failed commit is every member's error.

The blocks run one at a time, in turn, so the chain's order, an idempotency key's first use and a lead's
version are checked exactly as with a transaction each. The leader takes the file's write lock
(audit.writelock) before BEGIN IMMEDIATE and lets it go after COMMIT or ROLLBACK, so the groups of
several processes queue on it. Each committed group's wait for it, the time it held it and the CPU
its threads spent inside it are counted (`waited`, `held`, `held_cpu`, and `observer`: /metrics).

Plain reads do not use this connection (audit.trail reads on read connections). What holds it to read
several statements on it (a verification, a checkpoint, an archive, a backup; the gate's `with`)
waits for no transaction to be open, so it never sees a group's uncommitted rows, and takes turns
with the writers; a thread that already holds the connection goes on without waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from . import chain
from .backends import ERRORS
from .errors import StorageUnavailable


@dataclass
class Group:
    """One open write transaction and what its members share: the chain's head, the sources stored."""

    head: chain.Head = field(default_factory=chain.Head)
    sources: set = field(default_factory=set)
    members: int = 0
    done: bool = False
    error: str | None = None  # why the group's commit failed: every member's error
    cpu: float = 0.0  # CPU seconds its members' threads spent writing their blocks (inside the lock)


class Gate:
    """The lock of a trail's writer connection, with the group commit's queue (see the module docstring).

    `owner` is the thread using the connection (reading, or writing its block); the inner lock only
    guards the gate's own state, so threads arriving while a block runs can queue for its group.

    Each kind of waiter waits on a condition of its own, and a change of state wakes only one who can
    go on (`_wake`): the next writer, or the next reader, or the leader once its group's blocks are
    written; a group's members are woken together by its commit. Waking every waiter on every change
    made most of them wake only to wait again, and cost about a seventh of a worker's GIL time."""

    def __init__(self, grouping: bool = True):
        # On PostgreSQL a transaction lives on the connection its thread took from the pool, so other
        # threads cannot write in it: there each group is one block (the server groups commits itself).
        self.grouping = grouping
        lock = threading.Lock()
        self._writers = threading.Condition(lock)  # queued to write their block
        self._readers_wait = threading.Condition(lock)  # waiting to hold the connection to read
        self._leader = threading.Condition(lock)  # the open group's leader, for its blocks to be written
        self._committed = threading.Condition(lock)  # members, for their group's commit
        self.owner: int | None = None
        self._depth = 0
        self.group: Group | None = None
        self._committing = False
        self._queued = 0  # writers waiting to write their block
        self._readers = 0  # readers waiting for no transaction to be open
        self._writers_turn = False  # a read ended while writers queued: they go before the next reader
        self.groups = 0  # commits made, and the blocks written in them (bench/audit.py shows both)
        self.blocks = 0
        # Seconds the committed groups waited for the write lock, held it, and spent CPU inside it (the
        # leader's thread and each member's block): the critical section every writer queues on.
        self.waited = self.held = self.held_cpu = 0.0
        self.observer = None  # observer(waited, held, cpu, blocks) per committed group (service.metrics)

    def mine(self) -> bool:
        return self.owner == threading.get_ident()

    # -- readers -------------------------------------------------------------------------------
    def __enter__(self):
        me = threading.get_ident()
        with self._readers_wait:
            if self.owner == me:
                self._depth += 1
                return self
            self._readers += 1
            try:
                while not self._reader_may_go():
                    self._readers_wait.wait()
            finally:
                self._readers -= 1
            self.owner, self._depth = me, 1
        return self

    def __exit__(self, *exc) -> None:
        with self._readers_wait:
            self._depth -= 1
            if not self._depth:
                self.owner = None
                self._writers_turn = self._queued > 0
                self._wake()

    # -- who may go on (called with the lock held) ---------------------------------------------
    def _reader_may_go(self) -> bool:
        return (
            self.owner is None
            and self.group is None
            and not self._committing
            and not (self._writers_turn and self._queued)
        )

    def _writer_may_go(self) -> bool:
        # Between groups, readers and writers take turns, so neither stream can starve the other.
        # A group whose block failed the transaction takes no more blocks: its leader rolls it back.
        if self.owner is not None or self._committing:
            return False
        if self.group is not None:
            return self.grouping and self.group.error is None
        return not self._readers or self._writers_turn

    def _wake(self) -> None:
        """Wake one waiter who can go on now, if there is one (the connection has just been let go)."""
        if self.group is not None and self.owner is None and not self._committing:
            if self._queued and self._writer_may_go():
                self._writers.notify()
            else:
                self._leader.notify()  # its group's blocks are written (or one failed): it commits
        elif self._queued and self._writer_may_go():
            self._writers.notify()
        elif self._readers and self._reader_may_go():
            self._readers_wait.notify()

    # -- writers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def member(self, trail):
        """Run the caller's block in the open group (or lead a new one); return after its commit.

        `trail` gives the connection (`db`), `_writable()` and `_failed(exc)`; yields the Group."""
        me = threading.get_ident()
        with self._writers:
            self._queued += 1
            try:
                while not self._writer_may_go():
                    self._writers.wait()
            finally:
                self._queued -= 1
            leading = self.group is None
            if leading:
                self.group, self._writers_turn = Group(), False
            group = self.group
            group.members += 1
            self.owner, self._depth = me, 1
        if leading:
            yield from self._lead(trail, group)
        else:
            try:
                yield from self._follow(trail, group)
            finally:
                self._free()
            with self._committed:
                while not group.done:
                    self._committed.wait()
        if group.error is not None:
            raise StorageUnavailable(group.error)

    def _free(self) -> None:
        with self._writers:
            self.owner, self._depth = None, 0
            self._wake()

    def _lead(self, trail, group: Group):
        # The leader's block is the group's first: if it fails, nothing else was written, so the
        # whole transaction is rolled back and the queued writers form a new group.
        asked = time.perf_counter()
        try:
            trail._writable()
            trail._queue.acquire()  # after the other processes' groups (audit.writelock)
        except BaseException:
            self._disband()
            raise
        taken, cpu = time.perf_counter(), time.thread_time()
        try:
            trail.db.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            trail._queue.release()
            self._disband()
            if isinstance(exc, ERRORS):
                raise trail._failed(exc) from exc
            raise
        try:
            yield group
        except BaseException as exc:
            with contextlib.suppress(*ERRORS):
                trail.db.rollback()
            trail._queue.release()
            self._disband()
            if isinstance(exc, ERRORS):
                raise trail._failed(exc) from exc
            raise
        with self._leader:
            self.owner, self._depth = None, 0
            self._wake()
            while self.owner is not None or (self._queued and self._writer_may_go()):
                self._leader.wait()  # the queued writers write their blocks meanwhile
            self._committing, self.group, self.owner = True, None, threading.get_ident()
        try:
            if group.error is None:
                try:
                    trail.db.execute("COMMIT")
                except ERRORS as exc:
                    group.error = str(trail._failed(exc))
            if group.error is not None:
                with contextlib.suppress(*ERRORS):
                    trail.db.rollback()
            else:
                trail._sources |= group.sources
        finally:
            trail._queue.release()
            held, cpu = time.perf_counter() - taken, time.thread_time() - cpu + group.cpu
            with self._committed:
                if group.error is None:
                    self.groups += 1
                    self.blocks += group.members
                    self.waited += taken - asked
                    self.held += held
                    self.held_cpu += cpu
                self._committing, self.owner, self._depth, group.done = False, None, 0, True
                self._committed.notify_all()  # this group's members (no later group has members waiting yet)
                self._wake()
        if group.error is None and self.observer is not None:
            with contextlib.suppress(Exception):  # counting it never fails a write already committed
                self.observer(taken - asked, held, cpu, group.members)

    def _disband(self) -> None:
        with self._writers:
            self.group, self.owner, self._depth = None, None, 0
            self._wake()

    def _follow(self, trail, group: Group):
        # Each block reads the chain's head afresh (a decision's comes with its lead, in the same one
        # statement): a block before it may have added a link without the group's head (a reload, an
        # override), and linking from the head before that one would repeat its seq.
        group.head.known = False
        db, cpu = trail.db, time.thread_time()
        try:
            db.execute("SAVEPOINT member")
        except ERRORS as exc:
            raise trail._failed(exc) from exc
        try:
            yield group
            db.execute("RELEASE member")
            group.cpu += time.thread_time() - cpu
        except BaseException as exc:
            failed = exc if isinstance(exc, ERRORS) else None
            try:
                db.execute("ROLLBACK TO member")
                db.execute("RELEASE member")
            except ERRORS as undo:
                failed = undo
            if not db.conn.in_transaction:  # SQLite gave up the whole transaction (an I/O error, say)
                group.error = str(trail._failed(failed or exc))
            group.head.known = False  # the chain's head is read again: this block's links are undone
            if isinstance(exc, ERRORS):
                raise trail._failed(exc) from exc
            raise
