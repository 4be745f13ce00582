"""Exactly once on every write endpoint: concurrent retries with one Idempotency-Key record once.

Each case sends the same request with the same key from eight threads at once to a real server with
two worker processes: every reply is the first one (all but one marked Idempotent-Replayed), the
trail holds one record; the key with another body, or on another endpoint, is a 409.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from audit import AuditTrail
from cli import main
from tests.postgres import BACKENDS
from tests.server import Server

AT = "2026-11-23T10:00:00Z"
LEAD = {
    "lead_id": "once-1",
    "profile": {"country": "US", "industry": "software", "employees": 200, "seniority": "vp"},
    "events": [{"type": "demo_request", "at": AT, "id": "d1"}],
}
THREADS = 8


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """Two workers on a SQLite file, then on a PostgreSQL database (tests/postgres.py)."""
    tmp = tmp_path_factory.mktemp("once")
    if request.param == "sqlite":
        running = Server(tmp / "once.db", workers=2)
    else:
        postgres = request.getfixturevalue("postgres_server")
        running = Server(postgres.url(postgres.create()), workers=2, secret_file=tmp / "k.key", logs=tmp)
    with running:
        status, _, _ = running.request("POST", "/v1/decisions", LEAD)
        assert status == 201
        yield running


def count(server, sql, *params) -> int:
    with server.trail() as trail:
        return trail.db.execute(sql, params).fetchone()[0]


def race(server, path, body, key):
    """(status, body, replayed) of THREADS identical requests released together."""
    start = threading.Barrier(THREADS)

    def send(_):
        start.wait()
        status, reply, headers = server.request("POST", path, body, {"Idempotency-Key": key})
        return status, reply, headers.get("Idempotent-Replayed") == "true"

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(send, range(THREADS)))


def batch(lead_id):
    return {"items": [{**LEAD, "lead_id": lead_id}, {**LEAD, "lead_id": lead_id + "-b"}]}


# endpoint -> (path, body, another body, status, SQL counting what it recorded)
CASES = {
    "decisions": (
        "/v1/decisions",
        {**LEAD, "lead_id": "once-d"},
        {**LEAD, "lead_id": "once-d2"},
        201,
        "SELECT count(*) FROM decisions WHERE lead_id = 'once-d'",
    ),
    "batch": (
        "/v1/decisions/batch",
        batch("once-b"),
        batch("once-b2"),
        201,
        "SELECT count(*) FROM decisions WHERE lead_id IN ('once-b', 'once-b-b')",
    ),
    "preview": (
        "/v1/preview",
        {**LEAD, "lead_id": "once-1", "answers": {"budget": "yes"}},
        {**LEAD, "lead_id": "once-1", "answers": {"budget": "no"}},
        200,
        "SELECT count(*) FROM decisions WHERE lead_id = 'once-1' AND kind = 'preview'",
    ),
    "outcomes": (
        "/v1/leads/once-1/outcomes",
        {"type": "contacted", "at": AT, "note": "called back"},
        {"type": "contacted", "at": AT, "note": "left a message"},
        201,
        "SELECT count(*) FROM outcomes WHERE lead_id = 'once-1'",
    ),
    "reload": ("/v1/admin/reload", None, None, 200, "SELECT count(*) FROM reloads"),
}


@pytest.mark.parametrize("endpoint", list(CASES))
def test_concurrent_retries_record_once_and_another_body_is_a_conflict(server, endpoint):
    path, body, other, status, recorded = CASES[endpoint]
    before = count(server, recorded)
    results = race(server, path, body, f"race-{endpoint}")
    assert {s for s, _, _ in results} == {status}, results
    assert all(reply == results[0][1] for _, reply, _ in results)
    assert sum(not replayed for _, _, replayed in results) == 1
    added = count(server, recorded) - before
    assert added == (2 if endpoint == "batch" else 1)
    if other is not None:
        conflict, reply, _ = server.request("POST", path, other, {"Idempotency-Key": f"race-{endpoint}"})
        assert (conflict, reply["code"]) == (409, "idempotency_conflict")
    # A key is one request, whatever the endpoint.
    elsewhere = "/v1/decisions" if endpoint != "decisions" else "/v1/preview"
    conflict, reply, _ = server.request("POST", elsewhere, LEAD, {"Idempotency-Key": f"race-{endpoint}"})
    assert (conflict, reply["code"]) == (409, "idempotency_conflict")
    assert count(server, recorded) - before == added


def test_a_refused_reload_is_replayed_as_the_same_error(tmp_path):
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    from tests.conftest import RULESETS

    (rulesets / "default.yaml").write_text((RULESETS / "default.yaml").read_text())
    with Server(tmp_path / "r.db", workers=1, rulesets=str(rulesets)) as running:
        (rulesets / "default.yaml").write_text("leadgate: 1\nname: default\n")
        first = running.request("POST", "/v1/admin/reload", None, {"Idempotency-Key": "r1"})
        again = running.request("POST", "/v1/admin/reload", None, {"Idempotency-Key": "r1"})
        assert first[0] == again[0] == 422 and first[1] == again[1]
        assert again[2].get("Idempotent-Replayed") == "true"
        assert count(running, "SELECT count(*) FROM reloads WHERE problems != '[]'") == 1


def test_importing_a_file_twice_records_nothing_twice(tmp_path, registry):
    from service.decide import decide

    db = tmp_path / "i.db"
    with AuditTrail(db) as trail:
        for i in range(2):
            decide(registry.get("default"), trail, {**LEAD, "lead_id": f"imp-{i}"}, at=AT)
    csv = tmp_path / "outcomes.csv"
    csv.write_text(
        "lead_id,type,at,reason,amount,note\n"
        f"imp-0,accepted,{AT},,,\n"
        "imp-1,contacted,,,,no time given: defaults to now\n"
    )
    runner = CliRunner()
    first = runner.invoke(main, ["outcomes", "import", str(csv), "--db", str(db)])
    assert first.exit_code == 0 and "2 outcomes recorded" in first.output, first.output
    second = runner.invoke(main, ["outcomes", "import", str(csv), "--db", str(db)])
    assert second.exit_code == 0, second.output
    assert "0 outcomes recorded" in second.output and "2 already imported" in second.output
    with AuditTrail(db) as trail:
        assert trail.db.execute("SELECT count(*) FROM outcomes").fetchone()[0] == 2
        assert trail.verify() == []
