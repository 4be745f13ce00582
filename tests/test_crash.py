"""Crash safety: SIGKILL the server at random moments under concurrent load, restart it, lose nothing.

Each round starts `leadgate serve` (gunicorn, two workers) on the same audit file, lets four clients
post decisions (new leads, and events added to one shared lead), then SIGKILLs it at a random moment:
master and workers at once, or the workers first, or the master first. After every restart, requests
that got no reply are sent again with the same Idempotency-Key. At the end:

- every decision that got a 2xx reply is in the audit, with its lead, and every event of the shared
  lead that got a 2xx reply is among the lead's events;
- a request retried with its Idempotency-Key was recorded once, whether or not the first attempt
  had been committed before the kill;
- `leadgate audit verify` passes, and no partial rows exist: SQLite's integrity and foreign-key checks
  pass, every lead, event and stage change points at a recorded decision.

`bench/crash.py` runs the same rounds many more times and prints the figures.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from audit import AuditTrail
from tests.server import LEADGATE, Server, free_port

ROUNDS = 20
CLIENTS = 4


@dataclass
class Report:
    kills: int = 0
    acknowledged: dict = field(default_factory=dict)  # decision_id -> lead_id
    shared_events: set = field(default_factory=set)  # event ids of the shared lead with a 2xx reply
    unanswered: dict = field(default_factory=dict)  # idempotency key -> body, no reply yet
    retried: set = field(default_factory=set)  # idempotency keys sent again after a restart
    replayed: int = 0  # of those, recorded before the kill: the first decision came back
    attempts: int = 0
    numbers: itertools.count = field(default_factory=itertools.count)  # request numbers, never reused
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post(port: int, key: str, body: dict, idempotency_key: str) -> tuple[int, dict, bool]:
    """(status, reply, whether it replays a decision recorded before)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/v1/decisions",
            body=json.dumps(body),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
            },
        )
        response = conn.getresponse()
        replayed = response.getheader("Idempotent-Replayed") == "true"
        return response.status, json.loads(response.read() or b"null"), replayed
    finally:
        conn.close()


def _body(n: int, shared: bool) -> dict:
    if shared:  # one lead many clients add to: a lost update would lose an event
        return {
            "lead_id": "shared",
            "events": [{"type": "page_view", "at": "2026-11-22T10:00:00Z", "id": f"e{n}"}],
        }
    return {
        "lead_id": f"K-{n}",
        "channel": "crash",
        "profile": {
            "email": f"p{n}@acme.io",
            "country": "US",
            "employees": 40 + n % 500,
            "industry": "software",
        },
        "events": [{"type": "demo_request", "at": "2026-11-22T10:00:00Z", "id": f"d{n}"}],
        "answers": {"budget": n % 50_000},
    }


def _record(report: Report, key: str, body: dict, status: int, reply) -> None:
    with report.lock:
        if 200 <= status < 300:
            report.acknowledged[reply["decision_id"]] = body["lead_id"]
            if body["lead_id"] == "shared":
                report.shared_events.add(body["events"][0]["id"])
            report.unanswered.pop(key, None)
        else:
            # A 5xx while dying (or a 503) recorded nothing: the same key may be sent again.
            report.unanswered[key] = body


def _client(server: Server, report: Report, stop: threading.Event, worker: int, counter) -> None:
    while not stop.is_set():
        n = next(counter)
        key, body = f"req-{n}", _body(n, shared=worker == 0)
        with report.lock:
            report.attempts += 1
            report.unanswered[key] = body  # until a reply says otherwise
        try:
            status, reply, _ = _post(server.port, server.key, body, key)
        except ConnectionRefusedError:
            with report.lock:
                report.unanswered.pop(key)  # never reached a server: nothing to retry
            time.sleep(0.01)
            continue
        except (OSError, http.client.HTTPException):
            continue  # cut by the kill mid-request: it may or may not have been committed
        _record(report, key, body, status, reply)


def _kill(server: Server, rnd: random.Random) -> None:
    """SIGKILL master and workers: together, workers first, or master first."""
    master = server.proc.pid
    workers = [
        int(p)
        for p in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    ]
    mode = rnd.choice(["together", "together", "together", "workers-first", "master-first"])
    if mode == "workers-first":
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        time.sleep(rnd.uniform(0, 0.05))
    elif mode == "master-first":
        os.kill(master, signal.SIGKILL)
        time.sleep(rnd.uniform(0, 0.05))
    server.stop(signal.SIGKILL)  # the whole process group, whatever is left of it


def _retry_unanswered(server: Server, report: Report, limit: int = 20) -> None:
    """After a restart: requests that got no reply are sent again with the same Idempotency-Key."""
    with report.lock:
        pending = list(report.unanswered.items())[:limit]
    for key, body in pending:
        status, reply, replayed = _post(server.port, server.key, body, key)
        assert status == 201, (status, reply)
        report.retried.add(key)
        report.replayed += replayed  # committed before the kill, its reply lost: given back, not doubled
        _record(report, key, body, status, reply)


def run_rounds(directory: Path, rounds: int, seed: int, load_seconds=(0.2, 1.0), report=None) -> Report:
    """Kill the server `rounds` times under load; the server is stopped (SIGTERM) at the end.

    With a `report` from earlier rounds on the same directory, it goes on from there.
    """
    rnd = random.Random(seed)
    server = Server(directory / "crash.db", workers=2)
    report = report or Report()
    counter = report.numbers
    for _ in range(rounds):
        server.port = free_port()
        server.start()
        _retry_unanswered(server, report)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_client, args=(server, report, stop, i, counter)) for i in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(*load_seconds))
        _kill(server, rnd)
        report.kills += 1
        stop.set()
        for t in threads:
            t.join()
    server.port = free_port()
    server.start()
    _retry_unanswered(server, report, limit=10**9)
    server.stop()
    return report


ORPHANS = {
    "leads": "SELECT lead_id FROM leads WHERE last_decision_id NOT IN (SELECT id FROM decisions)",
    "events": "SELECT event_id FROM events WHERE decision_id NOT IN (SELECT id FROM decisions)",
    "stage_history": "SELECT id FROM stage_history WHERE decision_id NOT IN (SELECT id FROM decisions)",
    "chain": "SELECT seq FROM chain WHERE kind = 'decision' AND ref NOT IN (SELECT id FROM decisions)",
    "decisions": "SELECT id FROM decisions WHERE kind = 'decision' AND lead_id NOT IN (SELECT lead_id FROM leads)",
}


def assert_no_partial_rows(trail: AuditTrail) -> None:
    """The chain verifies, SQLite's own checks pass, and every row points at a recorded decision."""
    assert trail.verify() == []
    assert trail._read("PRAGMA integrity_check")[0]["integrity_check"] == "ok"
    assert trail._read("PRAGMA foreign_key_check") == []
    for table, sql in ORPHANS.items():
        assert trail._read(sql) == [], f"partial rows in {table}"


def check(db: Path, report: Report) -> dict:
    """Assert that nothing acknowledged was lost and nothing is half-written; the figures checked."""
    with AuditTrail(db) as trail:
        read = trail._read
        stored = {r["id"]: r["lead_id"] for r in read("SELECT id, lead_id FROM decisions")}
        missing = {d: lead for d, lead in report.acknowledged.items() if stored.get(d) != lead}
        assert not missing, f"{len(missing)} acknowledged decisions are not in the audit: {list(missing)[:5]}"
        events = {r["event_id"] for r in read("SELECT event_id FROM events WHERE lead_id = 'shared'")}
        assert report.shared_events <= events, report.shared_events - events
        for key in report.retried:
            rows = read("SELECT count(*) AS n FROM decisions WHERE idempotency_key = ?", (key,))
            assert rows[0]["n"] == 1, key
        assert_no_partial_rows(trail)
    env = {**os.environ, "LEADGATE_DB": str(db)}
    verified = subprocess.run([str(LEADGATE), "audit", "verify"], env=env, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return {
        "kills": report.kills,
        "acknowledged": len(report.acknowledged),
        "stored": len(stored),
        "retried": len(report.retried),
        "replayed": report.replayed,
    }


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_decision(tmp_path):
    report = run_rounds(tmp_path, ROUNDS, seed=20261124)
    figures = check(tmp_path / "crash.db", report)
    assert figures["kills"] == ROUNDS
    assert figures["acknowledged"] >= ROUNDS * 5, figures  # the load was real in every round
    assert report.retried, "no request was cut by a kill: the kills did not land under load"
