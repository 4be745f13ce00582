"""The drill: back up a serving trail under load, restore it into a new file, serve from it, and find
every decision acknowledged before the backup began; a copy that does not verify is never restored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time

import pytest

from tests.server import LEADGATE, ROOT, Server


def leadgate(*args, db=None, check=None):
    env = {**os.environ, "LEADGATE_RULESETS": str(ROOT / "rulesets")}
    if db is not None:
        env["LEADGATE_DB"] = str(db)
    done = subprocess.run(
        [str(LEADGATE), *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


def lead(writer: int, i: int) -> dict:
    return {
        "lead_id": f"W{writer}-{i}",
        "profile": {"email": f"w{writer}.{i}@acme.io", "country": "US", "employees": 120},
        "events": [{"type": "demo_request", "at": "2026-11-22T10:00:00Z"}],
    }


def test_the_drill_back_up_under_load_restore_and_serve(tmp_path):
    live, dest, keys = tmp_path / "live.db", tmp_path / "backups" / "b.db", tmp_path / "keys" / "b.key"
    acknowledged: list[tuple[float, str]] = []
    stop = threading.Event()
    with Server(live, workers=2) as server:

        def writer(n: int) -> None:
            for i in range(400):  # bounded, whatever happens to the backup
                if stop.is_set():
                    return
                status, body, _ = server.request("POST", "/v1/decisions", lead(n, i))
                assert status == 201, body
                acknowledged.append((time.monotonic(), body["decision_id"]))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            while len(acknowledged) < 40:
                time.sleep(0.02)
            began = time.monotonic()
            before = {d for _, d in acknowledged}
            done = leadgate("audit", "backup", dest, "--key-to", keys, db=live, check=0)
            ended = time.monotonic()
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
    during = [d for at, d in acknowledged if began < at < ended]
    assert during, "no decision was acknowledged while the backup ran: it was not under load"
    assert "verified (integrity ok, chain intact, checkpoint of link" in done.stdout, done.stdout
    held = int(done.stdout.split(" decisions,")[0].split()[-1])
    assert len(before) <= held < len(acknowledged)
    assert oct(keys.stat().st_mode & 0o777) == "0o600" and oct(dest.stat().st_mode & 0o777) == "0o600"

    restored = tmp_path / "restored" / "r.db"
    done = leadgate("audit", "restore", dest, "--key-file", keys, db=restored, check=0)
    assert f"{held} decisions" in done.stdout
    again = leadgate("audit", "restore", dest, "--key-file", keys, db=restored, check=1)
    assert "exists" in again.stderr  # never over a live file without --force

    with Server(restored, workers=2) as server:
        for decision_id in sorted(before):
            status, record, _ = server.request("GET", f"/v1/decisions/{decision_id}")
            assert status == 200, decision_id
        status, reply, _ = server.request("POST", "/v1/decisions", lead(9, 0))  # and it goes on deciding
        assert status == 201
    leadgate("audit", "verify", "--checkpoint", f"{dest}.checkpoint", db=restored, check=0)


@pytest.fixture
def backed_up(tmp_path):
    live = tmp_path / "live.db"
    with Server(live, workers=1) as server:
        for i in range(5):
            assert server.request("POST", "/v1/decisions", lead(0, i))[0] == 201
    leadgate("audit", "backup", tmp_path / "b.db", "--key-to", tmp_path / "b.key", db=live, check=0)
    return live, tmp_path / "b.db", tmp_path / "b.key"


def test_a_backup_that_does_not_verify_is_not_restored(backed_up, tmp_path):
    _, dest, keys = backed_up
    with sqlite3.connect(dest) as conn:
        conn.execute("UPDATE decisions SET stage = 'sql' WHERE rowid = 2")
    conn.close()
    target = tmp_path / "r.db"
    done = leadgate("audit", "restore", dest, "--key-file", keys, db=target, check=1)
    assert "does not verify" in done.stderr and "was edited" in done.stderr
    assert not target.exists()


def test_a_restore_needs_the_key_file_and_force_to_replace(backed_up, tmp_path):
    live, dest, keys = backed_up
    done = leadgate("audit", "restore", dest, db=tmp_path / "nokey.db", check=1)
    assert "no key file" in done.stderr and not (tmp_path / "nokey.db").exists()
    done = leadgate("audit", "restore", dest, "--key-file", keys, db=live, check=1)
    assert "exists" in done.stderr
    leadgate("audit", "restore", dest, "--key-file", keys, "--force", db=live, check=0)
    leadgate("audit", "verify", db=live, check=0)


def test_a_backup_never_overwrites(backed_up):
    live, dest, _ = backed_up
    done = leadgate("audit", "backup", dest, db=live, check=1)
    assert "never overwrites" in done.stderr
    assert "key file not copied" in leadgate("audit", "backup", f"{dest}.2", db=live, check=0).stdout


def test_a_postgresql_trail_is_refused_and_told_where_backups_come_from(pg_url, tmp_path, monkeypatch):
    """Backup and restore copy a SQLite file; PostgreSQL has its own tools (docs/deploy.md)."""
    from click.testing import CliRunner

    from cli import main

    monkeypatch.setenv("LEADGATE_SECRET_FILE", str(tmp_path / "pg.key"))
    runner = CliRunner()
    backup = runner.invoke(main, ["audit", "backup", str(tmp_path / "b.db"), "--db", pg_url])
    assert backup.exit_code == 1 and "pg_dump or base backups" in backup.output, backup.output
    assert not list(tmp_path.glob("*b.db*"))
    (tmp_path / "old.db").write_bytes(b"")
    restore = runner.invoke(main, ["audit", "restore", str(tmp_path / "old.db"), "--db", pg_url, "--force"])
    assert restore.exit_code == 1 and "pg_dump or base backups" in restore.output, restore.output
