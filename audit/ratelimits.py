"""Rate-limit counters shared by every worker process: a `limits` storage in a small SQLite file.

gunicorn runs several worker processes; counters kept in each process's memory would let a client
make N times its allowance by landing on N workers. Redis or memcached would share them too, but
need a server beside leadgate. One machine already has what is needed: a SQLite file, whose single
UPSERT ... RETURNING statement is atomic across processes. The counters live in their own file
(`<audit db>.limits`), never in the audit trail: they are no evidence, need no backup, and must not
wait on the audit's write lock. synchronous=OFF: a power cut can only forgive one window of requests.
For several machines, LEADGATE_RATE_LIMIT_STORAGE takes any `limits` storage URI (redis://…).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from limits.storage import Storage

from .schema import private

_CLEAN_EVERY = 1000


class SQLiteStorage(Storage):
    """Fixed-window counters in a SQLite file (key, count, expiry)."""

    STORAGE_SCHEME = ["leadgate-sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions, **options)
        self.path = Path(uri.split("://", 1)[1] if uri and "://" in uri else uri)
        self._lock = threading.Lock()
        self._conn = None
        self._pid = None
        self._writes = 0

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def close(self) -> None:
        """Close this process's connection (a worker's exit, a test's teardown)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never share a connection across a fork
            private(self.path)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS counters "
                    "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"
                )
            except BaseException:
                conn.close()  # not a counters file (or not writable): closed now, not by the collector
                raise
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            db = self._db()
            (count,) = db.execute(
                "INSERT INTO counters (key, count, expires) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN expires <= ?4 THEN ?2 ELSE count + ?2 END, "
                "expires = CASE WHEN expires <= ?4 THEN ?3 ELSE expires END "
                "RETURNING count",
                (key, amount, now + expiry, now),
            ).fetchone()
            self._writes += 1
            if self._writes % _CLEAN_EVERY == 0:
                db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
        return count

    def _row(self, key: str):
        with self._lock:
            return (
                self._db()
                .execute(
                    "SELECT count, expires FROM counters WHERE key = ? AND expires > ?", (key, time.time())
                )
                .fetchone()
            )

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            self._row("")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._lock:
            return self._db().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            self._db().execute("DELETE FROM counters WHERE key = ?", (key,))
