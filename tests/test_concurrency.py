"""Issue 15, concurrency: a request's reads and ruleset check never queue behind a write, and writers
of several processes queue on the file's write lock (audit/writelock.py) instead of sleeping on
SQLite's busy timeout.

No timing assertions: each test holds one side open at an event and checks what the other side does.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from api.state import exclusive, trail
from audit import AuditTrail, StorageUnavailable
from audit.keys import create
from audit.writelock import lock_path
from tests.test_api import LEAD

ROOT = Path(__file__).resolve().parent.parent

# A second process: holds a write transaction open on the file until told to commit.
HOLDER = """
import sys
from audit import AuditTrail
from audit.keys import create
with AuditTrail(sys.argv[1]) as trail:
    with trail.unit_of_work():
        create(trail, "holder", "decide")
        print("held", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
"""


def hold(path) -> subprocess.Popen:
    """Another process that holds a write transaction on `path` once it printed "held"."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def held_by_someone(path) -> bool:
    """Whether another open file description holds the write lock of the database at `path`."""
    fd = os.open(lock_path(str(path)), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also lets go of the lock if this took it
    return False


def test_a_write_block_holds_the_file_lock_until_it_commits(tmp_path):
    path = tmp_path / "a.db"
    with AuditTrail(path) as opened:
        with opened.unit_of_work():
            create(opened, "k", "decide")
            assert held_by_someone(path)
        assert not held_by_someone(path)
        with pytest.raises(RuntimeError), opened.unit_of_work():
            create(opened, "k2", "decide")
            raise RuntimeError("rolled back")
        assert not held_by_someone(path)  # released after a rollback too


def test_a_writer_of_another_process_waits_on_the_lock_not_the_busy_timeout(tmp_path):
    path = tmp_path / "a.db"
    opened = AuditTrail(path)  # opening takes the lock too (migrations): opened before the other holds it
    holder = hold(path)
    try:
        assert holder.stdout.readline() == "held\n"
        assert held_by_someone(path)
        with opened:
            # No busy timeout: without the file lock, BEGIN IMMEDIATE would fail at once ("database
            # is locked") while the other process holds its transaction.
            opened.db.execute("PRAGMA busy_timeout = 0")
            waiting, done, errors = threading.Event(), threading.Event(), []
            acquire = opened._queue.acquire

            def announced():
                waiting.set()
                acquire()

            opened._queue.acquire = announced

            def write():
                try:
                    create(opened, "waiter", "decide")
                except StorageUnavailable as exc:
                    errors.append(exc)
                done.set()

            w = threading.Thread(target=write)
            w.start()
            assert waiting.wait(10)
            assert not done.is_set()  # queued behind the other process's transaction
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline() == "committed\n"
            w.join(10)
            assert done.is_set() and errors == []
            names = [r["name"] for r in opened._read("SELECT name FROM api_keys ORDER BY created_at, rowid")]
            assert names == ["holder", "waiter"]  # in the order the lock let them in
    finally:
        opened.close()
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def test_a_writer_gives_up_on_a_holder_that_never_lets_go_with_storage_unavailable(tmp_path, monkeypatch):
    """A CLI command stopped with Ctrl-Z inside its transaction holds the lock forever: writers fail
    (503) after the busy timeout instead of hanging, and the lock is not left taken by the one that
    gave up."""
    import audit.writelock

    path = tmp_path / "a.db"
    with AuditTrail(path) as opened:
        holder = hold(path)
        try:
            assert holder.stdout.readline() == "held\n"
            monkeypatch.setattr(audit.writelock, "BUSY_TIMEOUT_MS", 300)
            started = time.monotonic()
            with pytest.raises(
                StorageUnavailable, match="busy: another writer has held it for over 0.3 seconds"
            ):
                create(opened, "waiter", "decide")
            assert 0.3 <= time.monotonic() - started < 5
            for _ in range(3):  # more writers give up: still one thread (and descriptor) waiting for them
                with pytest.raises(StorageUnavailable, match="busy"):
                    create(opened, "waiter", "decide")
            assert [t.name for t in threading.enumerate()].count("leadgate-lock-wait") == 1
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline() == "committed\n"
            for _ in range(100):  # the thread that gave up takes the lock once freed and lets it go
                if not held_by_someone(path):
                    break
                time.sleep(0.05)
            assert not held_by_someone(path)
            monkeypatch.setattr(audit.writelock, "BUSY_TIMEOUT_MS", 30_000)
            create(opened, "after", "decide")
            names = [r["name"] for r in opened._read("SELECT name FROM api_keys ORDER BY created_at, rowid")]
            assert names == ["holder", "after"]
        finally:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()


def test_the_lock_file_has_the_database_files_mode_and_group(tmp_path):
    """An operator who shares the database with a group (0660) shares its lock too: a lock file made
    0600 by whichever account opened first would refuse the others every write."""
    path = tmp_path / "shared.db"
    with AuditTrail(path):
        pass
    os.remove(lock_path(str(path)))
    os.chmod(path, 0o660)
    groups = [g for g in os.getgroups() if g != os.stat(path).st_gid]
    if groups:
        os.chown(path, -1, groups[0])
    with AuditTrail(path) as opened:
        create(opened, "k", "decide")
    lock, db = os.stat(lock_path(str(path))), os.stat(path)
    assert oct(lock.st_mode & 0o777) == "0o660"
    assert (lock.st_uid, lock.st_gid) == (db.st_uid, db.st_gid)


def test_a_request_does_not_take_the_rulesets_lock_when_nothing_was_reloaded(make_app, tmp_path):
    app = make_app(db=str(tmp_path / "api.db"), rulesets=str(ROOT / "rulesets"))
    with app.app_context():
        key = create(trail(), "k", "decide")[1]
    client, replies = app.test_client(), []
    request = threading.Thread(
        target=lambda: replies.append(
            client.post("/v1/decisions", json=LEAD, headers={"Authorization": f"Bearer {key}"})
        )
    )
    with exclusive():  # held by another thread: a reload, say
        request.start()
        request.join(30)
        assert not request.is_alive()  # answered without waiting for the lock
    assert replies[0].status_code == 201, replies[0].json


def test_a_reload_recorded_elsewhere_still_reaches_the_app(make_app, tmp_path):
    from service import deploy

    db = str(tmp_path / "api.db")
    app = make_app(db=db, rulesets=str(ROOT / "rulesets"))
    with app.app_context():
        key = create(trail(), "k", "decide")[1]
    before = app.extensions["leadgate.served"].reload_id
    with AuditTrail(db) as other:  # the CLI, another worker
        from engine import Registry

        record = deploy.reload(Registry(), other, ROOT / "rulesets", "elsewhere")[0]
    assert record["reload_id"] != before
    r = app.test_client().post("/v1/decisions", json=LEAD, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201
    assert app.extensions["leadgate.served"].reload_id == record["reload_id"]


def test_a_backup_and_a_restore_leave_no_lock_file_of_their_checked_copy(tmp_path):
    from audit.backup import backup, restore

    live = tmp_path / "live" / "a.db"
    with AuditTrail(live) as opened:
        create(opened, "k", "decide")
        backup(opened, tmp_path / "backups" / "b.db")
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == ["b.db", "b.db.checkpoint"]
    restore(tmp_path / "backups" / "b.db", tmp_path / "restored" / "a.db", live.with_name("a.db.key"))
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == ["a.db"]


def test_a_backup_that_fails_its_check_leaves_nothing_beside_it(tmp_path, monkeypatch):
    from audit.backup import BackupError, backup

    with AuditTrail(tmp_path / "live" / "a.db") as opened:
        create(opened, "k", "decide")
        # the copy opened to be checked finds a problem (a disk that corrupted it, say)
        monkeypatch.setattr(AuditTrail, "verify", lambda self, *args: ["chain link 1 altered"])
        with pytest.raises(BackupError, match="does not verify: chain link 1 altered"):
            backup(opened, tmp_path / "backups" / "b.db")
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == []


def test_a_database_moved_away_is_not_made_again_empty_by_a_read(tmp_path):
    path = tmp_path / "a.db"
    with AuditTrail(path) as opened:
        create(opened, "k", "decide")
        os.rename(path, tmp_path / "moved.db")
        with pytest.raises(StorageUnavailable, match="cannot be read"):
            opened.ping()
        assert not path.exists()


def test_waits_for_the_lock_reuse_one_thread_and_it_ends_with_the_lock(tmp_path):
    """Under two workers' contention most group commits wait for the lock: each wait is a hand-over
    to the lock's one waiter thread, not a thread and a descriptor made for it; closing the lock ends it."""
    from audit.writelock import WriteLock

    path = str(tmp_path / "a.db")
    (tmp_path / "a.db").touch()
    first, second = (
        WriteLock(path),
        WriteLock(path),
    )  # two descriptors: they exclude each other like two processes

    def waiters():
        return [t for t in threading.enumerate() if t.name == "leadgate-lock-wait"]

    before = len(waiters())
    seen = set()
    try:
        for _ in range(40):  # each hand-over: the writer holds the lock until it lets go (a race freed it)
            first.acquire()
            got = threading.Event()
            taker = threading.Thread(target=lambda got=got: (second.acquire(), got.set()))
            taker.start()
            assert not got.wait(0.02)  # waiting: the first holds it
            first.release()
            assert got.wait(10)
            taker.join(10)
            seen.update(t.ident for t in waiters())
            assert len(waiters()) == before + 1
            assert held_by_someone(path)
            second.release()
            assert not held_by_someone(path)
        assert len(seen - {t.ident for t in waiters()}) == 0  # the same thread each time
    finally:
        first.close()
        second.close()
    for _ in range(100):
        if len(waiters()) == before:
            break
        time.sleep(0.02)
    assert len(waiters()) == before


def test_a_writer_waiting_when_its_lock_closes_fails_at_once_and_a_dead_waiter_is_replaced(tmp_path):
    """Review findings: closing the lock left a waiting writer asleep for the whole busy timeout; a
    waiter thread that died left every later wait to time out (503) until the process restarted."""
    from audit.writelock import WriteLock

    path = str(tmp_path / "a.db")
    (tmp_path / "a.db").touch()
    first, second = WriteLock(path), WriteLock(path)
    first.acquire()
    try:
        errors = []
        taker = threading.Thread(
            target=lambda: errors.append(pytest.raises(StorageUnavailable, second.acquire))
        )
        started = time.monotonic()
        taker.start()
        for _ in range(100):
            if second._waiter is not None and second._waiter._wanted:
                break
            time.sleep(0.01)
        second.close()
        taker.join(10)
        assert time.monotonic() - started < 5 and "closed while a writer waited" in str(errors[0].value)

        third = WriteLock(path)
        got = threading.Event()
        waiting = threading.Thread(target=lambda: (third.acquire(), got.set()))
        waiting.start()
        for _ in range(100):
            if third._waiter is not None and third._waiter._wanted:
                break
            time.sleep(0.01)
        dead = third._waiter
        first.release()
        assert got.wait(10)
        waiting.join(10)
        third.release()
        dead.close()  # the thread ends: as one that died would be
        dead._thread.join(10)
        assert not dead.usable()
        first.acquire()
        again = threading.Thread(target=third.acquire)
        again.start()
        time.sleep(0.05)
        first.release()
        again.join(10)
        assert third._waiter is not dead and held_by_someone(path)  # a new waiter took it
        third.release()
        third.close()
    finally:
        first.close()
