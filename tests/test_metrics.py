"""GET /metrics of a real multi-worker server after known traffic: every count exact, whichever worker
answered (prometheus-client's multi-process mode adds up every worker's files)."""

from __future__ import annotations

import http.client
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from audit import AuditTrail, deployments, outcomes
from audit.keys import create
from tests.server import ROOT, Server


def lead(i: int) -> dict:
    return {
        "lead_id": f"M-{i}",
        "profile": {
            "country": "US",
            "employees": 20 + 150 * (i % 4),
            "industry": "software",
            "seniority": ("vp", "manager", "student", "c_level")[i % 4],
            "job_title": "Head of Sales",
        },
        "events": [
            {"type": ("demo_request", "free_trial", "content_download")[i % 3], "at": "2026-11-22T10:00:00Z"}
        ],
        "answers": {"budget": "yes", "timeline": "now", "authority": "decision_maker", "need": "yes"}
        if i % 2
        else {},
    }


def scrape(server: Server, key: str | None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(found: dict, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


def test_a_scrape_counts_exactly_what_every_worker_did(tmp_path):
    rulesets = tmp_path / "rulesets"
    shutil.copytree(ROOT / "rulesets", rulesets)
    (rulesets / "broken.yaml").write_text("name: broken\nversion: 1\nrules: [\n")  # refused at every reload
    with Server(tmp_path / "m.db", workers=3, rulesets=rulesets) as server:
        with AuditTrail(server.db) as trail:
            decide_key = create(trail, "crm", "decide")[1]
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: server.request("POST", "/v1/decisions", lead(i)), range(40)))
            wrong = list(
                pool.map(
                    lambda i: server.request(
                        "POST", "/v1/decisions", {"lead_id": "W", "profile": {"employees": "x"}}
                    ),
                    range(3),
                )
            )
            strangers = list(
                pool.map(
                    lambda i: server.request("GET", "/v1/rulesets", headers={"Authorization": "Bearer nope"}),
                    range(5),
                )
            )
        previews = [server.request("POST", "/v1/preview", lead(i)) for i in range(4)]
        status, refused, _ = server.request("POST", "/v1/admin/reload")
        assert status == 422 and refused["code"] == "invalid_ruleset"  # broken.yaml, again
        assert [s for s, _, _ in replies] == [201] * 40
        assert [s for s, _, _ in wrong] == [422] * 3 and [s for s, _, _ in strangers] == [401] * 5
        assert [s for s, _, _ in previews] == [200] * 4

        assert scrape(server, None)[0] == 401
        assert scrape(server, decide_key)[0] == 403  # admin keys only
        scrapes = []
        for _ in range(6):  # answered by one worker or another: each answer is the whole server's
            status, text = scrape(server, server.key)
            assert status == 200
            scrapes.append(samples(text))

    expected = Counter(
        (b["ruleset"]["name"], str(b["ruleset"]["version"]), b["route"]["id"], b["stage"])
        for _, b, _ in replies
    )
    assert len(expected) > 2  # the traffic spans several routes and stages
    with AuditTrail(server.db) as trail:
        sla = outcomes.sla(trail)["teams"]
        reloads = deployments.history(trail, 100)
    for found in scrapes:
        counted = {
            (ls["ruleset"], ls["version"], ls["route"], ls["stage"]): v
            for (n, labels), v in found.items()
            if n == "leadgate_decisions_total"
            for ls in [dict(labels)]
        }
        assert counted == expected  # previews are not decisions
        assert total(found, "leadgate_evaluation_seconds_count") == 44
        assert total(found, "leadgate_audit_write_seconds_count") == 44
        # The write lock's turns (audit.group): each of the 44 and the admin's reload wrote a block in
        # a group that held the lock for a while, some of it on CPU, every worker's added up.
        groups, blocks = (
            total(found, "leadgate_write_lock_hold_seconds_count"),
            total(found, "leadgate_write_lock_blocks_total"),
        )
        assert 1 <= groups <= blocks and blocks >= 45
        assert total(found, "leadgate_write_lock_wait_seconds_count") == groups
        assert total(found, "leadgate_write_lock_hold_seconds_sum") > 0
        assert total(found, "leadgate_write_lock_cpu_seconds_total") > 0
        assert total(found, "leadgate_http_request_seconds_count", endpoint="decisions.post_decision") == 43
        assert (
            total(found, "leadgate_http_requests_total", endpoint="decisions.post_decision", status="201")
            == 40
        )
        assert total(found, "leadgate_http_errors_total", status="422", code="invalid_facts") == 3
        assert (
            total(found, "leadgate_http_errors_total", status="401", code="unauthorized") == 6
        )  # + a scrape
        assert total(found, "leadgate_http_errors_total", status="403", code="forbidden") == 1
        assert total(found, "leadgate_http_errors_total", status="422", code="invalid_ruleset") == 1
        # Hand-offs as `leadgate sla` counts them, team by team.
        for team, counts in sla.items():
            assert total(found, "leadgate_handoffs_open", team=team) == counts["open"]
            assert total(found, "leadgate_handoffs_overdue", team=team) == counts["overdue"]
        assert sum(c["open"] for c in sla.values()) > 0
        assert total(found, "leadgate_deliveries", status="pending") == 0  # no webhook destination here
        # The startup's reload and the admin's: each refused broken.yaml.
        assert len(reloads) == 2
        assert total(found, "leadgate_reloads_total") == 2
        assert total(found, "leadgate_refused_files_total") == 2
        assert total(found, "leadgate_audit_file_bytes", file="db") > 0


def test_the_metrics_of_one_process_count_its_requests(make_app, tmp_path):
    """Outside `leadgate serve` (one process, the test client) the counts are this process's own."""
    app = make_app(db=str(tmp_path / "one.db"))
    with app.app_context():
        from api.state import trail

        key = create(trail(), "ops", "admin")[1]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}

    def seen():
        return total(
            samples(client.get("/metrics", headers=auth).get_data(as_text=True)), "leadgate_decisions_total"
        )

    before = seen()
    for i in range(3):
        assert client.post("/v1/decisions", json=lead(i), headers=auth).status_code == 201
    assert seen() == before + 3


def test_each_run_counts_in_its_own_directory_and_removes_it(tmp_path):
    import tempfile
    from pathlib import Path

    stale = Path(tempfile.mkdtemp(prefix="leadgate-metrics-4194305-"))  # a master that was SIGKILLed
    (stale / "counter_1.db").write_bytes(b"old counts")
    with Server(tmp_path / "d.db", workers=2) as server:
        mine = list(Path(tempfile.gettempdir()).glob(f"leadgate-metrics-{server.proc.pid}-*"))
        assert len(mine) == 1 and not stale.exists()
        assert server.request("POST", "/v1/decisions", lead(1))[0] == 201
        assert total(samples(scrape(server, server.key)[1]), "leadgate_decisions_total") == 1
    assert not mine[0].exists()


def test_rate_limited_form_decisions_are_counted_as_429s(tmp_path):
    origin = "https://www.example.com"
    with Server(tmp_path / "f.db", workers=2, form_key_rate=2) as server:
        with AuditTrail(server.db) as trail:
            form = create(trail, "site", "form", [origin])[1]
        statuses = [
            server.request(
                "POST",
                "/v1/decisions",
                {"profile": {"country": "US"}},
                {"Authorization": f"Bearer {form}", "Origin": origin},
            )[0]
            for _ in range(5)
        ]
        assert statuses == [201, 201, 429, 429, 429]
        found = samples(scrape(server, server.key)[1])
    assert total(found, "leadgate_http_errors_total", status="429", code="rate_limited") == 3
    assert total(found, "leadgate_decisions_total") == 2


def test_the_gauges_read_the_store_on_each_backend(backend_app, audit_db):
    """Hand-offs, deliveries, reloads and the store's size, on SQLite and on PostgreSQL (where the size
    is pg_database_size and there is no write-ahead log file of ours)."""
    with backend_app.app_context():
        from api.state import trail

        key = create(trail(), "ops", "admin")[1]
    client = backend_app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    for i in range(6):
        assert client.post("/v1/decisions", json=lead(i), headers=auth).status_code == 201
    found = samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    with backend_app.app_context():
        sla = outcomes.sla(trail())["teams"]
    assert sum(c["open"] for c in sla.values()) > 0
    for team, counts in sla.items():
        assert total(found, "leadgate_handoffs_open", team=team) == counts["open"]
    assert total(found, "leadgate_deliveries", status="pending") == 0
    assert total(found, "leadgate_reloads_total") == 1  # the app's startup load
    assert total(found, "leadgate_audit_file_bytes", file="db") > 100_000
    files = {dict(labels)["file"] for (n, labels) in found if n == "leadgate_audit_file_bytes"}
    assert files == ({"db", "wal"} if audit_db.endswith(".db") else {"db"})
