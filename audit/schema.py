"""The SQLite file (or a PostgreSQL URL): connection settings, private file modes, and applying the migrations
(audit/migrations.py) to bring a database at any earlier version up to date on open.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from . import pgschema, postgres
from .backends import is_postgres
from .migrations import migrations
from .writelock import BUSY_TIMEOUT_MS, WriteLock

# synchronous=FULL fsyncs the WAL on every commit: an acknowledged decision survives a power cut.
# NORMAL survives a crash of the process but may lose the last commits if the machine loses power.
DURABILITY = {"full": "FULL", "normal": "NORMAL"}


def connect(path: str | Path, durability: str = "full") -> Database:
    """An open, migrated database with WAL, foreign keys and a busy timeout; a `postgresql://` URL
    opens the PostgreSQL trail instead (audit/postgres.py)."""
    if is_postgres(path):
        db = postgres.Database(str(path), durability)
        try:
            pgschema.migrate(db)
        except BaseException:
            db.close()
            raise
        return db
    if durability not in DURABILITY:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
    path = Path(path)
    private(path)
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    db = Database(conn)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {DURABILITY[durability]}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")  # erased personal data is overwritten, not left in free pages
        queue = WriteLock(None if str(path) == ":memory:" else str(path))  # after the running writers
        try:
            queue.acquire()
            migrate(db)
        finally:
            queue.close()  # closing the descriptor releases the lock
    except BaseException:
        conn.close()  # not left for the garbage collector: a file that cannot be used is let go at once
        raise
    return db


class ReadConnection(sqlite3.Connection):
    """sqlite3's connection, which (unlike this subclass) cannot be weakly referenced: the codec of
    each connection (audit.codec) is kept by a weak reference to it."""


def reader(path: str) -> sqlite3.Connection:
    """A connection that only reads (audit.trail's read pool): WAL gives each statement the last
    committed state, so it never waits for a write transaction. Opened on a migrated file, which it
    never creates: a file moved away while the service runs is an error, not a new empty database."""
    conn = sqlite3.connect(
        f"file:{quote(str(path))}?mode=rw",
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=ReadConnection,
    )
    try:
        conn.execute("PRAGMA query_only = ON")  # a read connection never writes, even by mistake
    except BaseException:
        conn.close()
        raise
    return conn


def private(path: Path) -> None:
    """Create the database's directory 0700 and the file 0600 when they do not exist yet.

    SQLite gives the -wal and -shm files the mode of the database file, so they are private too.
    Existing files keep their mode: the operator may have chosen a group.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if str(path) != ":memory:" and not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def migrate(db: Database) -> None:
    # One process at a time: BEGIN IMMEDIATE around the check makes concurrent first opens safe.
    db.execute("BEGIN IMMEDIATE")
    try:
        pending = migrations.pending(db)
    finally:
        db.execute("COMMIT")
    if pending:
        db.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(db)
        except BaseException:
            db.rollback()
            raise
        db.commit()


def version(db) -> int:
    if isinstance(db, postgres.Database):
        return len(pgschema.applied(db))
    return len(migrations.applied(db))
