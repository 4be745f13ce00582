"""Slow and hostile clients against the real server (issue 12): `leadgate serve`, two workers.

Stalled half-sent requests hold no thread and are closed at their deadline while normal decisions
go on; the key is checked before any body is read; 413 closes the connection and says so; 414 and 431
answer in the JSON error shape; rate limits hold across worker processes; no control socket is made.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit import AuditTrail
from audit.keys import create
from tests.server import Server

pytestmark = pytest.mark.slow

DEADLINE = 3  # seconds a client has to send its request (LEADGATE_REQUEST_DEADLINE)
STALLED = 64
ORIGIN = "https://www.example.com"


def lead(n: int) -> dict:
    return {
        "lead_id": f"H-{n}",
        "profile": {"email": f"h{n}@acme.io", "country": "US", "industry": "software", "employees": 200},
        "events": [{"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z"}],
    }


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    db = tmp_path_factory.mktemp("hostile") / "h.db"
    env = {"request_deadline": DEADLINE, "form_key_rate": 5, "address_rate": 0, "sign_in_rate": 3}
    srv = Server(db, workers=2, **env)
    srv.env.update({"HOME": str(home), "XDG_RUNTIME_DIR": str(home)})
    srv.home = home
    with AuditTrail(db) as trail:
        srv.form_key = create(trail, "site", "form", [ORIGIN])[1]
    with srv:
        yield srv


def test_stalled_clients_hold_no_worker_and_are_closed_at_their_deadline(server):
    stalled = []
    for _ in range(STALLED):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(
            b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"lead_id"'
        )
        stalled.append(s)
    try:
        statuses = [server.request("POST", "/v1/decisions", lead(n), timeout=10)[0] for n in range(20)]
        assert statuses == [201] * 20
        assert server.request("GET", "/healthz", timeout=10)[0] == 200
        for s in stalled:  # every stalled connection gets 408 in the error shape, then is closed
            reply = read_reply(s)
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), reply[:200]
            assert b"connection: close" in head.lower()
            assert json.loads(body)["code"] == "request_timeout"
    finally:
        for s in stalled:
            s.close()


def test_a_client_stalled_in_its_headers_is_closed_at_the_deadline_too(server):
    stalled = []
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Le")
        stalled.append(s)
    try:
        assert server.request("POST", "/v1/decisions", lead(100), timeout=10)[0] == 201
        for s in stalled:
            head, _, body = read_reply(s).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408")
            assert json.loads(body) | {"message": ""} == {  # the one error shape, errors included
                "status": 408,
                "code": "request_timeout",
                "message": "",
                "errors": {},
            }
    finally:
        for s in stalled:
            s.close()


def test_the_key_is_checked_before_the_body(server):
    for path, body in (("/v1/decisions/batch", {"items": "x"}), ("/v1/leads/A/outcomes", {"type": "nope"})):
        status, reply, headers = server.request("POST", path, body, headers={"Authorization": ""})
        assert status == 401 and reply["code"] == "unauthorized"
        assert reply["errors"] == {} and "nope" not in json.dumps(reply)  # no field errors leak
        assert "WWW-Authenticate" in headers
    # not even JSON: still 401, not 400 or 415
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/v1/decisions/batch", body=b"{nope", headers={"Content-Type": "text/plain"})
    assert conn.getresponse().status == 401
    conn.close()


def test_a_413_says_connection_close_and_closes(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(
        b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\n\r\n{"
    )
    reply = read_reply(s)  # returns only once the server closed the connection
    s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/v1/leads/" + "a" * 10_000, {}, 414, "uri_too_long"),
        ("/healthz?" + "q=1&" * 3000, {}, 414, "uri_too_long"),
        ("/healthz", {"X-Big": "b" * 10_000}, 431, "headers_too_large"),
        ("/healthz", {f"X-H{i}": "c" * 1000 for i in range(40)}, 431, "headers_too_large"),
    ],
)
def test_long_urls_and_headers_get_the_json_error_shape(server, path, headers, status, code):
    got, reply, got_headers = server.request("GET", path, headers=headers)
    assert got == status and reply == {
        "status": status,
        "code": code,
        "message": reply["message"],
        "errors": {},
    }
    assert got_headers["Content-Type"] == "application/json"


def test_form_key_rate_limit_holds_across_workers(server):
    """5 a minute for the key: 5 successes in all, whichever worker each request reaches."""
    headers = {"Authorization": f"Bearer {server.form_key}", "Origin": ORIGIN}

    def one(_):
        return server.request("POST", "/v1/decisions", {"profile": {"country": "US"}}, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(24)))
    statuses = sorted(r[0] for r in replies)
    assert statuses == [201] * 5 + [429] * 19
    limited = next(r for r in replies if r[0] == 429)
    assert limited[1]["code"] == "rate_limited" and 1 <= int(limited[2]["Retry-After"]) <= 60
    assert limited[2]["Access-Control-Allow-Origin"] == ORIGIN  # the page can read why
    pids = _worker_pids(server)
    assert len(pids) == 2  # two processes served them: the counter is shared, not per process


def _worker_pids(server) -> set[int]:
    children = f"/proc/{server.proc.pid}/task/{server.proc.pid}/children"
    with open(children) as f:
        return {int(p) for p in f.read().split()}


def test_sign_in_attempts_are_limited_per_address_and_key(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    statuses = []
    for _ in range(5):
        conn.request("GET", "/review/sign-in")
        response = conn.getresponse()
        page = response.read().decode()
        cookie = response.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = f"key=lg_aaaaaaaaaaaa_{'x' * 40}&csrf_token={token}"
        conn.request(
            "POST",
            "/review/sign-in",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        response = conn.getresponse()
        body = response.read()
        statuses.append(response.status)
        if response.status == 429:
            assert b"Too many" in body and 1 <= int(response.getheader("Retry-After")) <= 60
    conn.close()
    assert statuses == [401, 401, 401, 429, 429]
    # the same key id from fresh addresses: limited per key id as well (3 a minute in all)
    per_key = []
    for address in ("127.0.0.4", "127.0.0.5"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(address, 0))
        for _ in range(2):
            conn.request("GET", "/review/sign-in")
            response = conn.getresponse()
            token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
            cookie = response.getheader("Set-Cookie").split(";")[0]
            conn.request(
                "POST",
                "/review/sign-in",
                body=f"key=lg_bbbbbbbbbbbb_{'y' * 40}&csrf_token={token}",
                headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
            )
            response = conn.getresponse()
            response.read()
            per_key.append(response.status)
        conn.close()
    assert per_key == [401, 401, 401, 429]


def _from(address: str, server, path: str, body: dict, headers: dict):
    """A request from another loopback source address (the server sees it as another client)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(address, 0))
    try:
        conn.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_form_decisions_are_limited_per_client_address(tmp_path):
    srv = Server(tmp_path / "a.db", workers=2, form_key_rate=0, address_rate=3)
    with AuditTrail(srv.db) as trail:
        key = create(trail, "site", "form", [ORIGIN])[1]
    headers = {"Authorization": f"Bearer {key}", "Origin": ORIGIN}
    with srv:
        first = [_from("127.0.0.2", srv, "/v1/decisions", {}, headers)[0] for _ in range(5)]
        second = [_from("127.0.0.3", srv, "/v1/decisions", {}, headers)[0] for _ in range(4)]
        # a secret key is not limited by address: imports and CRM syncs come from one address
        secret = [
            _from("127.0.0.2", srv, "/v1/decisions", lead(n), {"Authorization": f"Bearer {srv.key}"})[0]
            for n in range(5)
        ]
    assert first == [201, 201, 201, 429, 429] and second == [201, 201, 201, 429]
    assert secret == [201] * 5


def test_no_control_socket_is_shared(server):
    assert not list(server.home.rglob("*.ctl")) and not list(server.home.rglob("gunicorn*"))


def test_rate_limit_counters_are_made_before_the_workers_so_first_requests_never_race(tmp_path):
    """Regression (a flaky 500): two workers whose first form-key requests came at once both switched
    the new counters file to WAL, which SQLite does not wait for, and one request got "database is
    locked". The master now makes the file before it forks: it is there, in WAL mode, before any request."""
    db = tmp_path / "race.db"
    srv = Server(db, workers=2, form_key_rate=1000, address_rate=0)
    with AuditTrail(db) as trail:
        form_key = create(trail, "site", "form", [ORIGIN])[1]
    with srv:
        with contextlib.closing(sqlite3.connect(f"file:{db}.limits?mode=ro", uri=True)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT count(*) FROM counters").fetchone()[0] == 0  # no request yet
        headers = {"Authorization": f"Bearer {form_key}", "Origin": ORIGIN}

        def one(_):
            return srv.request("POST", "/v1/decisions", {"profile": {"country": "US"}}, headers=headers)[0]

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(one, range(32))) == [201] * 32


def test_an_unexpected_error_is_logged_to_the_servers_error_log(tmp_path):
    """A 500's traceback goes to stderr, the server's error log; a2wsgi gave Flask stdout (the access
    log, /dev/null here), so the flaky 500 above left no trace."""
    db = tmp_path / "broken.db"
    (tmp_path / "broken.db.limits").mkdir()  # the counters file cannot be opened: every limited request fails
    srv = Server(db, workers=1)
    with AuditTrail(db) as trail:
        form_key = create(trail, "site", "form", [ORIGIN])[1]
    with srv:
        headers = {"Authorization": f"Bearer {form_key}", "Origin": ORIGIN}
        status, reply, _ = srv.request("POST", "/v1/decisions", {"profile": {}}, headers=headers)
        assert status == 500 and reply["code"] == "internal_error"
    log = srv.log.read_text()
    assert "unexpected error" in log and "unable to open database file" in log


def _front_lines(server, request_id: str, timeout: float = 10.0) -> list[dict]:
    """The log lines (standard output, api/logs.py) of the front's refusals of one request id."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(x) for x in server.out.read_text().splitlines() if x.startswith("{")]
        found = [x for x in lines if x.get("request_id") == request_id and x.get("endpoint") == "front"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_fronts_refusals_are_logged_and_counted_like_every_request(server):
    """A security reviewer reads slow-loris and oversize attempts in the log and the metrics: the
    front's 408, 413 and 414 (answered before the app sees the request) get the app's line too."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(
        b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\n\r\n{"
    )
    read_reply(s)
    s.close()
    server.request("GET", "/v1/leads/" + "a" * 10_000, headers={"X-Request-Id": "long-1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(
            b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        assert read_reply(slow).startswith(b"HTTP/1.1 408")
    (big,), (long,), (slow,) = (_front_lines(server, i) for i in ("big-1", "long-1", "slow-1"))
    assert (big["status"], big["code"], big["method"], big["path"]) == (
        413,
        "payload_too_large",
        "POST",
        "/v1/decisions",
    )
    assert (long["status"], long["code"]) == (414, "uri_too_long") and long[
        "path"
    ] == "/v1/leads/" + "a" * 190 + "…"
    assert (slow["status"], slow["code"], slow["key_id"]) == (408, "request_timeout", None)
    assert big["time"].endswith("Z") and big["level"] == "info" and isinstance(big["latency_ms"], float)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {server.key}"})
    text = conn.getresponse().read().decode()
    conn.close()
    counted = {m.group(1) for m in re.finditer(r'endpoint="front",method="[A-Z-]+",status="(\d+)"', text)}
    assert {"408", "413", "414"} <= counted, text[:2000]
