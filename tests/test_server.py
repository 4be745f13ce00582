"""The real thing: gunicorn workers sharing one SQLite file under concurrent load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from audit import AuditTrail
from tests.server import Server


def lead(i: int) -> dict:
    return {
        "lead_id": f"C-{i}",
        "channel": "load",
        "profile": {"email": f"p{i}@acme.io", "country": "US", "employees": 40 + i, "industry": "software"},
        "events": [{"type": "free_trial", "at": "2026-11-22T10:00:00Z", "id": f"t{i}"}],
    }


def test_concurrent_requests_lose_nothing_and_never_see_a_locked_database(tmp_path):
    with Server(tmp_path / "load.db", workers=3) as server:

        def post(i):
            return server.request("POST", "/v1/decisions", lead(i))

        def same_lead(i):  # every request adds an event to one lead: none may be lost
            return server.request(
                "POST",
                "/v1/decisions",
                {
                    "lead_id": "shared",
                    "events": [{"type": "page_view", "at": "2026-11-22T10:00:00Z", "id": f"v{i}"}],
                },
            )

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(post, range(300))) + list(pool.map(same_lead, range(60)))
        statuses = [status for status, _, _ in results]
        bodies = [body for _, body, _ in results]
        assert statuses.count(201) == len(results), {s: statuses.count(s) for s in set(statuses)}
        assert not [b for b in bodies if "locked" in str(b)]
        _, shared, _ = server.request("GET", "/v1/leads/shared")
        assert len(shared["facts"]["events"]) == 60
    trail = AuditTrail(tmp_path / "load.db")
    ids = {body["decision_id"] for body in bodies}
    stored = {r["id"] for r in trail._read("SELECT id FROM decisions")}
    assert stored == ids and len(ids) == len(results)
    assert trail.verify() == []


def test_first_start_creates_a_local_admin_key(tmp_path):
    import os
    import subprocess

    from tests.server import LEADGATE, ROOT, free_port

    env = {
        **os.environ,
        "LEADGATE_DB": str(tmp_path / "first.db"),
        "LEADGATE_RULESETS": str(ROOT / "rulesets"),
    }
    proc = subprocess.Popen(
        [str(LEADGATE), "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        proc.stdout.close()
    assert lines[0].startswith("No API key existed: created local admin key")
    key = lines[2].strip()
    from audit.keys import authenticate

    trail = AuditTrail(tmp_path / "first.db")
    assert authenticate(trail, key).scope == "admin"
