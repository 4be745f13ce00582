"""The real thing: gunicorn workers sharing one SQLite file under concurrent load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from audit import AuditTrail
from tests.conftest import with_version
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
    with AuditTrail(tmp_path / "load.db") as trail:
        stored = {r["id"] for r in trail._read("SELECT id FROM decisions")}
        problems = trail.verify()
    ids = {body["decision_id"] for body in bodies}
    assert stored == ids and len(ids) == len(results)
    assert problems == []


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

    with AuditTrail(tmp_path / "first.db") as trail:
        assert authenticate(trail, key).scope == "admin"


def test_reloads_under_load_fail_no_request_and_reach_every_worker(tmp_path):
    import os
    import shutil
    import signal
    import subprocess
    import threading
    import time

    from tests.server import LEADGATE, ROOT

    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    original = (ROOT / "rulesets" / "default.yaml").read_text()
    shutil.copy(ROOT / "rulesets" / "doggie-delights.yaml", rulesets)

    def write(version: int, text: str | None = None):
        (rulesets / "default.yaml").write_text(text or with_version(original, version))

    write(1)
    results, stop = [], threading.Event()
    with Server(tmp_path / "reload.db", workers=2, rulesets=rulesets) as server:

        def load(worker: int):
            i = 0
            while not stop.is_set():
                status, body, _ = server.request("POST", "/v1/decisions", lead(worker * 100_000 + i))
                results.append((status, (body or {}).get("ruleset", {}).get("version"), body))
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()

        def served_everywhere(version: int) -> bool:
            # Fresh connections land on either worker: every one must answer with the new version.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen = {server.request("GET", "/readyz")[1]["rulesets"]["default"] for _ in range(8)}
                if seen == {version}:
                    return True
                time.sleep(0.2)
            return False

        time.sleep(0.5)
        write(2)
        os.kill(server.proc.pid, signal.SIGHUP)  # the gunicorn master
        assert served_everywhere(2)
        write(3)
        status, body, _ = server.request("POST", "/v1/admin/reload")
        assert status == 200 and body["changed"], body
        assert served_everywhere(3)
        write(4, "name: [not yaml")
        status, body, _ = server.request("POST", "/v1/admin/reload")
        assert status == 422 and "still serving the last good version of default v3" in body["message"]
        write(5)
        env = {**server.env, "LEADGATE_DB": str(server.db), "LEADGATE_RULESETS": str(rulesets)}
        subprocess.run([str(LEADGATE), "rulesets", "reload"], env=env, check=True, capture_output=True)
        assert served_everywhere(5)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        _, reloads, _ = server.request("GET", "/v1/admin/reloads")

    statuses = [status for status, _, _ in results]
    assert len(results) > 50 and set(statuses) == {201}, {s: statuses.count(s) for s in set(statuses)}
    assert {version for _, version, _ in results} >= {1, 3, 5}
    assert results[-1][1] == 5
    by = [r["requested_by"] for r in reversed(reloads["reloads"])]
    assert by[0] == "startup" and by[1:].count("sighup") == 1 and by[-1] == "cli" and len(by) == 5
    assert [bool(r["problems"]) for r in reversed(reloads["reloads"])] == [False, False, False, True, False]
    with AuditTrail(tmp_path / "reload.db") as trail:
        assert trail.verify() == []
        assert trail._read("SELECT count(*) AS n FROM decisions")[0]["n"] == len(results)


def test_workers_close_their_audit_connection_when_they_exit(tmp_path, monkeypatch):
    """Each worker opens its own connection on first use; gunicorn's worker_exit closes it (none left to GC)."""
    monkeypatch.setenv("PYTHONWARNINGS", "always::ResourceWarning")
    with Server(tmp_path / "exit.db", workers=2) as server:
        statuses = {server.request("POST", "/v1/decisions", lead(i))[0] for i in range(8)}
    log = server.log.read_text()
    assert statuses == {201} and log.count("Worker exiting") >= 2
    assert "unclosed database" not in log and "Exception during worker exit" not in log


def test_the_workers_parse_http_with_gunicorns_c_parser(monkeypatch):
    """Regression: cli/worker.py's protocol subclass asked gunicorn whether gunicorn-h1c was there;
    gunicorn kept the answer on the subclass but read part of it on its own class, so every
    connection was parsed in Python (about a seventh of a worker's event-loop time, issue 15)."""
    from gunicorn.asgi.protocol import ASGIProtocol
    from gunicorn.config import Config

    from cli.worker import HeaderDeadlineProtocol

    for cls in (ASGIProtocol, HeaderDeadlineProtocol):  # as in a fresh worker: nothing looked up yet
        monkeypatch.setattr(cls, "_h1c_available", None)
        monkeypatch.setattr(cls, "_h1c_has_limits", False)
    protocol = HeaderDeadlineProtocol.__new__(HeaderDeadlineProtocol)
    protocol.cfg = Config()
    protocol._on_headers_complete = protocol._on_body = protocol._on_message_complete = lambda *a: None
    protocol._setup_callback_parser()
    assert type(protocol._callback_parser).__module__.startswith("gunicorn_h1c"), type(
        protocol._callback_parser
    )
