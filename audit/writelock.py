"""The writers' queue across processes: an advisory lock on a file beside the SQLite database.

SQLite lets one writer in at a time and makes the others retry through the busy timeout, whose
handler sleeps (1, 2, 5 … 100 ms) between tries: a worker waiting for another's commit sleeps on past
it, which is most of a decision's p99 with two workers. Every leadgate write transaction on a file
therefore first takes `flock` on `<database>.lock` (blocking, without the GIL), so a writer waits
exactly as long as the one before it holds the lock and goes in as soon as it is released. The busy
timeout stays, for writers that do not take this lock (the sqlite3 shell, another program).
Opening a trail takes the lock too, around its check for pending migrations.

The lock file is empty and holds no data: backups and replication leave it out, and a lost one is
created again on the next write. The kernel releases a lock when its holder exits, even killed.
"""

from __future__ import annotations

import fcntl
import os
import threading

from .errors import StorageUnavailable


def lock_path(path: str) -> str:
    return f"{path}.lock"


class WriteLock:
    """`flock(LOCK_EX)` on the database's lock file, held from before BEGIN IMMEDIATE until after
    COMMIT or ROLLBACK. One per trail; its group leader (audit.group) is the one thread taking it.

    `path` None (an in-memory database, PostgreSQL with its own advisory lock): a lock that does nothing."""

    def __init__(self, path: str | None):
        self.path = lock_path(path) if path is not None else None
        self._fd: int | None = None
        self._guard = threading.Lock()  # the descriptor is opened once and closed once

    def _descriptor(self) -> int:
        with self._guard:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            return self._fd

    def acquire(self) -> None:
        if self.path is not None:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
            except OSError as exc:
                raise StorageUnavailable(f"the audit database's lock file cannot be used: {exc}") from exc

    def release(self) -> None:
        if self.path is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)  # releases the lock too, if held
                self._fd = None
