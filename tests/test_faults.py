"""Disk and database faults: a full disk or a read-only database file gives a 503 with a clear message
and Retry-After, and no decision; reads keep working; the service recovers by itself when the fault
clears, without a restart; nothing is half-written.

How each fault is made real (the tests run as root, so chmod would not stop a write):

- A full disk: the audit file lives on a small tmpfs mounted for the test, then filled up, so SQLite
  itself reports SQLITE_FULL ("database or disk is full"); freeing the space clears it. Skipped where
  mounting is not allowed.
- A read-only database file: `chattr +i` makes the file and its write-ahead log immutable, which
  binds root too and applies to files already open, so the running workers' next write fails.
  The -shm file stays writable: it is memory-mapped, and a write to an immutable mapping is a SIGBUS,
  a crash rather than a fault (that is tests/test_crash.py). Skipped where the file system has no
  immutable flag.
- Without any privilege, the same SQLITE_FULL in-process: `PRAGMA max_page_count` caps the file of
  the app's own connection at its current size.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from api.state import trail
from audit import AuditTrail
from audit.keys import create
from tests.server import Server
from tests.test_crash import assert_no_partial_rows
from tests.test_overload import lead


def _try(*command) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


def assert_refused(reply) -> None:
    status, body, headers = reply
    assert status == 503, (status, body)
    assert body["code"] == "storage_unavailable" and "decision_id" not in body
    assert "no decision was made" in body["message"], body
    assert headers.get("Retry-After") == "2"


def assert_nothing_half_written(db: Path, acknowledged: set[str], refused: set[str]) -> None:
    with AuditTrail(db) as stored:
        leads = {r["lead_id"] for r in stored._read("SELECT lead_id FROM decisions")}
        assert acknowledged <= leads, acknowledged - leads
        assert not refused & leads, refused & leads
        assert_no_partial_rows(stored)


@pytest.fixture
def tmpfs(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _try("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)):
        pytest.skip("mounting a tmpfs is not allowed here")
    yield disk
    _try("umount", "-l", str(disk))


def fill(disk: Path) -> list[Path]:
    """Fill the file system to the last byte: big blocks, then small ones for what is left."""
    fillers = []
    for n, block in enumerate((1 << 16, 512, 1)):
        path = disk / f"filler-{n}"
        fillers.append(path)
        with contextlib.suppress(OSError), open(path, "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * block)
    return fillers


@pytest.mark.slow
def test_a_full_disk_gives_503_and_the_service_recovers_when_space_is_freed(tmpfs):
    db = tmpfs / "full.db"
    acknowledged, refused = set(), set()
    with Server(db, workers=2) as server:
        master, workers = server.proc.pid, server.workers
        assert server.request("POST", "/v1/decisions", lead(1))[0] == 201
        acknowledged.add("O-1")
        fillers = fill(tmpfs)
        for n in range(2, 8):  # every worker meets the full disk
            reply = server.request("POST", "/v1/decisions", lead(n))
            assert_refused(reply)
            assert "database or disk is full" in reply[1]["message"]
            refused.add(f"O-{n}")
        batch = server.request("POST", "/v1/decisions/batch", {"items": [lead(20), lead(21)]})
        assert_refused(batch)
        refused |= {"O-20", "O-21"}
        assert server.request("GET", "/v1/leads/O-1")[0] == 200  # reading needs no space
        for path in fillers:
            path.unlink()
        for n in range(100, 100 + 2 * workers):  # the same processes write again: no restart
            status, body, _ = server.request("POST", "/v1/decisions", lead(n))
            assert status == 201, body
            acknowledged.add(f"O-{n}")
        assert server.proc.pid == master and server.proc.poll() is None
    assert_nothing_half_written(db, acknowledged, refused)


@pytest.mark.slow
def test_a_read_only_database_file_gives_503_and_the_service_recovers_when_it_is_writable(tmp_path):
    db = tmp_path / "ro.db"
    acknowledged, refused = set(), set()
    with Server(db, workers=2) as server:
        assert server.request("POST", "/v1/decisions", lead(1))[0] == 201
        acknowledged.add("O-1")
        files = [str(db), str(db) + "-wal"]
        if not _try("chattr", "+i", *files):
            pytest.skip("this file system has no immutable flag (chattr +i)")
        try:
            for n in range(2, 8):
                reply = server.request("POST", "/v1/decisions", lead(n))
                assert_refused(reply)
                refused.add(f"O-{n}")
            assert server.request("GET", "/v1/leads/O-1")[0] == 200
        finally:
            assert _try("chattr", "-i", *files)
        for n in range(100, 104):
            status, body, _ = server.request("POST", "/v1/decisions", lead(n))
            assert status == 201, body
            acknowledged.add(f"O-{n}")
    assert_nothing_half_written(db, acknowledged, refused)


def bulky(n: int) -> dict:
    """A lead whose record needs new pages whatever room the file's pages still have: a decision is
    stored compressed (audit.codec) and a small one may fit in a page already there, random text not."""
    body = lead(n)
    body["events"] += [
        {
            "type": "page_view",
            "at": "2026-11-22T10:00:00Z",
            "id": f"v{n}-{i}",
            "properties": {"path": "/" + os.urandom(900).hex()},
        }
        for i in range(12)
    ]
    return body


def test_sqlite_full_in_process_refuses_every_write_path_and_recovers(app):
    with app.app_context():
        key = create(trail(), "k", "admin")[1]
        db = trail().db
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/decisions", json=lead(1), headers=auth).status_code == 201
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        for path, body in [
            ("/v1/decisions", bulky(2)),
            ("/v1/decisions/batch", {"items": [bulky(3), bulky(4)]}),
            ("/v1/preview", bulky(5)),
        ]:
            r = client.post(path, json=body, headers=auth)
            assert r.status_code == 503 and r.json["code"] == "storage_unavailable", r.json
            assert "database or disk is full" in r.json["message"] and r.headers["Retry-After"] == "2"
    finally:
        db.execute("PRAGMA max_page_count = 4294967294")
    assert client.post("/v1/decisions", json=lead(6), headers=auth).status_code == 201
    with app.app_context():
        leads = {r["lead_id"] for r in trail()._read("SELECT lead_id FROM decisions")}
        assert leads == {"O-1", "O-6"}
        assert_no_partial_rows(trail())
