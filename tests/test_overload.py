"""Overload: many more concurrent clients than workers, some of them giving up, some never finishing.

Against `leadgate serve` with two workers, 48 clients post at once, a quarter of them with a timeout
so short that they hang up while their request waits or runs. Every reply must be a 201 or a 503
with Retry-After and no decision; every 201 is in the audit; a request whose client hung up is
recorded whole or not at all, and never twice; and when the burst ends the service answers at once,
without a restart. `bench/overload.py` runs the same burst longer and prints its figures.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from audit import AuditTrail
from tests.server import Server
from tests.test_crash import assert_no_partial_rows

CLIENTS = 48
PER_CLIENT = 8
IMPATIENT = 0.05  # seconds: a quarter of the clients hang up after this


@dataclass
class Burst:
    statuses: dict = field(default_factory=dict)  # lead_id -> status, or "gave up"
    replies: dict = field(default_factory=dict)  # lead_id -> reply body
    latencies: list = field(default_factory=list)  # seconds, of the replies received
    bad: list = field(default_factory=list)  # replies outside the contract
    lock: threading.Lock = field(default_factory=threading.Lock)


def lead(n: int) -> dict:
    return {
        "lead_id": f"O-{n}",
        "channel": "overload",
        "profile": {
            "email": f"o{n}@acme.io",
            "country": "US",
            "employees": 20 + n % 900,
            "industry": "software",
        },
        "events": [{"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z", "id": f"p{n}"}],
    }


def post(server: Server, burst: Burst, n: int, timeout: float) -> None:
    body = lead(n)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/v1/decisions",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        status, reply = response.status, json.loads(response.read())
        retry_after = response.getheader("Retry-After")
    except TimeoutError:
        with burst.lock:
            burst.statuses[body["lead_id"]] = "gave up"
        return
    finally:
        conn.close()
    with burst.lock:
        burst.latencies.append(time.perf_counter() - started)
        burst.statuses[body["lead_id"]] = status
        burst.replies[body["lead_id"]] = reply
        ok = status == 201 and reply.get("lead_id") == body["lead_id"]
        refused = (
            status == 503
            and retry_after
            and reply.get("code") == "storage_unavailable"
            and "decision_id" not in reply
        )
        if not (ok or refused):
            burst.bad.append((status, reply))


def run_burst(server: Server, clients: int, per_client: int, impatient: float) -> Burst:
    burst = Burst()

    def client(c: int) -> None:
        timeout = impatient if c % 4 == 0 else 60
        for i in range(per_client):
            post(server, burst, c * 10_000 + i, timeout)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return burst


def assert_recorded_whole(db: Path, burst: Burst) -> dict:
    """Every 201 is recorded; a request whose client hung up is recorded whole or not at all; none twice."""
    with AuditTrail(db) as trail:
        rows = trail._read("SELECT id, lead_id FROM decisions WHERE channel = 'overload'")
        per_lead: dict[str, list[str]] = {}
        for r in rows:
            per_lead.setdefault(r["lead_id"], []).append(r["id"])
        assert all(len(ids) == 1 for ids in per_lead.values()), "a request was recorded twice"
        for lead_id, status in burst.statuses.items():
            if status == 201:
                assert per_lead.get(lead_id) == [burst.replies[lead_id]["decision_id"]], lead_id
            elif status == 503:
                assert lead_id not in per_lead, f"{lead_id} got a 503 but was recorded"
        leads = {r["lead_id"] for r in trail._read("SELECT lead_id FROM leads WHERE channel = 'overload'")}
        assert leads == set(per_lead), "a lead without its decision, or a decision without its lead"
        events = trail._read("SELECT lead_id FROM events WHERE lead_id LIKE 'O-%'")
        assert sorted(e["lead_id"] for e in events) == sorted(per_lead), "events without their decision"
        assert_no_partial_rows(trail)
    gave_up = [k for k, s in burst.statuses.items() if s == "gave up"]
    return {
        "requests": len(burst.statuses),
        "created": sum(1 for s in burst.statuses.values() if s == 201),
        "refused_503": sum(1 for s in burst.statuses.values() if s == 503),
        "gave_up": len(gave_up),
        "gave_up_but_recorded": sum(1 for k in gave_up if k in per_lead),
    }


@pytest.mark.slow
def test_more_clients_than_workers_wait_or_get_503_and_nothing_is_half_recorded(tmp_path):
    with Server(tmp_path / "burst.db", workers=2) as server:
        burst = run_burst(server, CLIENTS, PER_CLIENT, IMPATIENT)
        # It recovers by itself: right after the burst, one request is answered at once.
        started = time.perf_counter()
        status, body, _ = server.request("POST", "/v1/decisions", lead(999_999), timeout=10)
        assert status == 201 and time.perf_counter() - started < 2, body
        assert server.request("GET", "/readyz")[0] == 200
        master = server.proc.pid
        assert server.proc.poll() is None and server.proc.pid == master
    assert burst.bad == [], burst.bad[:3]
    figures = assert_recorded_whole(tmp_path / "burst.db", burst)
    assert figures["requests"] == CLIENTS * PER_CLIENT
    assert figures["created"] >= CLIENTS * PER_CLIENT * 3 // 4 - 1  # every patient client was served
    assert figures["gave_up"] > 0, "no client hung up: the burst did not overload two workers"


def test_clients_that_never_finish_a_request_do_not_stall_the_others(tmp_path):
    with Server(tmp_path / "slow.db", workers=2) as server:
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(server.workers)]
        try:
            for sock in slow:
                sock.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: t\r\n")  # and never the rest
            time.sleep(0.3)
            assert server.request("GET", "/healthz", timeout=5)[0] == 200
        finally:
            for sock in slow:
                sock.close()
            # Once they are gone it answers at once again, without a restart.
            assert server.request("GET", "/healthz", timeout=5)[0] == 200
