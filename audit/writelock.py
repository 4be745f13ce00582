"""The writers' queue across processes: an advisory lock on a file beside the SQLite database.

SQLite lets one writer in at a time and makes the others retry through the busy timeout, whose
handler sleeps (1, 2, 5 … 100 ms) between tries: a worker waiting for another's commit sleeps on past
it, which is most of a decision's p99 with two workers. Every leadgate write transaction on a file
therefore first takes `flock` on `<database>.lock` (blocking, without the GIL), so a writer waits
exactly as long as the one before it holds the lock and goes in as soon as it is released. The busy
timeout stays, for writers that do not take this lock (the sqlite3 shell, another program).
Opening a trail takes the lock too, around its check for pending migrations.

The wait is bounded like SQLite's busy timeout: a holder that does not let go (a CLI command stopped
with Ctrl-Z inside its transaction, a hung process) makes writers fail with StorageUnavailable (503)
after BUSY_TIMEOUT_MS instead of hanging every request. `flock` itself has no timeout, so a writer
that finds the lock taken waits for it through the lock's waiter thread, blocked in flock on a
descriptor of its own (its own lock), and gives up on it at the deadline; that thread, if it gets the
lock once nobody wants it, lets it go.

The lock file is empty and holds no data: backups and replication leave it out, and a lost one is
created again on the next write, with the database file's mode and owner (as SQLite gives -wal and
-shm), so every account that may write the database may take its lock. The kernel releases a lock
when its holder exits, even killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading

from .errors import StorageUnavailable

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another one: this lock, and SQLite's busy timeout


def lock_path(path: str) -> str:
    return f"{path}.lock"


def _open(path: str, database: str) -> int:
    """A descriptor of the lock file, made with the database file's mode and owner when missing.
    Read-only when the file is not ours to write: flock needs no write access."""
    try:
        like = os.stat(database)
    except OSError:
        like = None
    mode = like.st_mode & 0o666 if like else 0o600
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    if like is not None:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and info.st_mode & 0o777 != mode:
            os.fchmod(fd, mode)  # the umask took bits away at creation
        if (info.st_uid, info.st_gid) != (like.st_uid, like.st_gid):
            try:
                os.fchown(fd, like.st_uid, like.st_gid)  # root (sudo) makes it the owner's
            except PermissionError:
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, -1, like.st_gid)  # a group of ours
    return fd


def hold(path: str, name: str) -> int | None:
    """`flock` on `<path>.<name>.lock` (made like the write lock's file) if no other process holds it:
    the descriptor that holds it until closed or its process ends, or None."""
    fd = _open(f"{path}.{name}.lock", path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class _Waiter:
    """A thread of the lock's own, blocked in flock on a descriptor of its own while a writer waits.

    Made on the first wait and kept until the lock is closed: a wait costs a hand-over between two
    threads, not a thread and a descriptor made and closed (under two workers' contention, most
    group commits wait). A writer that gives up leaves it blocked; the next writer waits on the same
    flock, and if nobody wants the lock once it comes, the thread lets it go at once."""

    def __init__(self, path: str, database: str):
        self._cond = threading.Condition()
        self._fd = _open(path, database)
        self._wanted = False  # a writer waits for the lock
        self._got = False  # the thread's descriptor holds the lock for that writer
        self._closed = False
        self._error: OSError | None = None
        self.pid = os.getpid()  # a thread does not survive fork: a child makes its own
        self._thread = threading.Thread(target=self._run, name="leadgate-lock-wait", daemon=True)
        self._thread.start()

    def usable(self) -> bool:
        """Its thread runs, in this process (one that died would leave every wait to time out)."""
        return self.pid == os.getpid() and self._thread.is_alive()

    def forget(self) -> None:
        """In a forked child: the descriptor inherited from the parent's waiter is let go."""
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _run(self) -> None:
        fd = self._fd
        while True:
            with self._cond:
                # A writer waits and the lock is not handed to it yet (once handed, the thread waits
                # for the writer to take it: taking it again would be a no-op, and letting it go
                # because nobody wants it any more would free the lock under that writer).
                while not self._closed and (not self._wanted or self._got):
                    self._cond.wait()
                if self._closed:
                    break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                with self._cond:
                    if self._wanted:  # that writer's error; nobody else's
                        self._error, self._got = exc, True
                        self._cond.notify_all()
                continue
            with self._cond:
                if self._wanted and not self._got and not self._closed:
                    self._got = True
                    self._cond.notify_all()
                    continue
            fcntl.flock(fd, fcntl.LOCK_UN)  # every writer gave up, or the lock was closed
        os.close(fd)

    def take(self, seconds: float) -> int | None:
        """The thread's descriptor, holding the lock, within `seconds`; None if it did not come."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()
            got = self._cond.wait_for(lambda: self._got or self._closed, seconds)
            if self._closed and not self._got:
                self._wanted = False
                raise OSError("the audit trail was closed while a writer waited for its lock")
            self._wanted, self._got = False, False
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return self._fd if got else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class WriteLock:
    """`flock(LOCK_EX)` on the database's lock file, held from before BEGIN IMMEDIATE until after
    COMMIT or ROLLBACK. One per trail; its group leader (audit.group) is the one thread taking it.

    `path` None (an in-memory database, PostgreSQL with its own advisory lock): a lock that does nothing."""

    def __init__(self, path: str | None):
        self.database = path
        self.path = lock_path(path) if path is not None else None
        self._fd: int | None = None
        self._held: int | None = None  # the descriptor holding the lock: ours, or a waiter's
        self._waiter: _Waiter | None = None  # made on the first wait, kept until closed
        self._guard = threading.Lock()  # the descriptor is opened once and closed once

    def _descriptor(self) -> int:
        with self._guard:
            if self._fd is None:
                self._fd = _open(self.path, self.database)
            return self._fd

    def acquire(self) -> None:
        if self.path is None:
            return
        try:
            fd = self._descriptor()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fd = self._wait(BUSY_TIMEOUT_MS / 1000)
        except OSError as exc:
            raise StorageUnavailable(f"the audit database's lock file cannot be used: {exc}") from exc
        self._held = fd

    def _wait(self, seconds: float) -> int:
        """The lock, taken by a thread blocked in flock on a descriptor of its own, within `seconds`.
        A waiter given up on is kept and waited on again by the next writer: behind a holder that never
        lets go, one thread and one descriptor wait, not one more per writer that gave up."""
        with self._guard:
            if self._waiter is None or not self._waiter.usable():
                if self._waiter is not None and self._waiter.pid != os.getpid():
                    self._waiter.forget()
                self._waiter = _Waiter(self.path, self.database)
            waiter = self._waiter
        fd = waiter.take(seconds)
        if fd is None:
            raise StorageUnavailable(
                f"the audit database is busy: another writer has held it for over {seconds:g} seconds"
            )
        return fd

    def release(self) -> None:
        fd, self._held = self._held, None
        if fd is None:
            return
        fcntl.flock(fd, fcntl.LOCK_UN)  # ours, or the waiter's

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def close(self) -> None:
        if self._held is not None and self._held != self._fd:
            self.release()
        with self._guard:
            if self._waiter is not None and self._waiter.pid == os.getpid():
                self._waiter.close()
            self._waiter = None
            if self._fd is not None:
                os.close(self._fd)  # releases the lock too, if held
                self._fd = None
