"""The rate-limit counters (audit/ratelimits.py) are one count across processes, as gunicorn's workers are."""

from __future__ import annotations

import contextlib
import multiprocessing
import time

from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter

from audit.ratelimits import SQLiteStorage
from tests.conftest import unclosed_connections

ITEM = RateLimitItemPerMinute(100)


def _hits(path: str, n: int, out) -> None:
    with contextlib.closing(SQLiteStorage(path)) as storage:
        limiter = FixedWindowRateLimiter(storage)
        out.put(sum(limiter.hit(ITEM, "form_decisions", "key1") for _ in range(n)))


def test_processes_share_one_count(tmp_path):
    path = str(tmp_path / "x.limits")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hits, args=(path, 80, out)) for _ in range(3)]
    for p in procs:
        p.start()
    allowed = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert allowed == 100  # 240 tries in three processes, 100 allowed in all
    with contextlib.closing(SQLiteStorage(path)) as storage:
        assert storage.get(ITEM.key_for("form_decisions", "key1")) == 240


def test_a_window_expires_and_counts_again(tmp_path):
    with contextlib.closing(SQLiteStorage(str(tmp_path / "y.limits"))) as storage:
        assert storage.incr("k", 1) == 1 and storage.incr("k", 1) == 2
        assert storage.get_expiry("k") > time.time()
        time.sleep(1.1)
        assert storage.get("k") == 0 and storage.incr("k", 1) == 1
        storage.clear("k")
        assert storage.get("k") == 0 and storage.check()


def test_a_file_that_is_not_a_counters_database_fails_the_check_and_closes_at_once(tmp_path):
    """Issue 21: the connection opened on such a file was left to the garbage collector."""
    path = tmp_path / "z.limits"
    path.write_bytes(b"not a database" * 100)

    def check():
        with contextlib.closing(SQLiteStorage(str(path))) as storage:
            assert storage.check() is False

    assert unclosed_connections(check) == []
