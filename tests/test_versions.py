"""Ruleset versions: candidates and shadows beside the active version, reloads without downtime."""

from __future__ import annotations

import pytest

from api.state import trail
from audit import AuditTrail, deployments
from audit.keys import create
from engine import Registry
from engine.files import read_directory
from tests.conftest import RULESETS, with_version

LEAD = {
    "lead_id": "V-1",
    "profile": {"email": "kim@acme.io", "country": "US", "industry": "software", "employees": 200},
    "events": [{"type": "free_trial", "at": "2026-11-22T10:00:00Z", "id": "t1"}],
}


def bump(text: str, version: int, fit_points: int | None = None) -> str:
    """The default ruleset at another version; optionally a different value for the industry rule."""
    out = with_version(text, version)
    if fit_points is not None:
        out = out.replace(
            "when: {profile.industry: {in_list: target_industries}}\n    then: {points: {fit: 15}}",
            f"when: {{profile.industry: {{in_list: target_industries}}}}\n    then: {{points: {{fit: {fit_points}}}}}",
        )
        assert out.count(f"{{fit: {fit_points}}}") >= 1
    return out


@pytest.fixture
def rulesets(tmp_path):
    directory = tmp_path / "rulesets"
    directory.mkdir()
    # The tests count versions from 1, whatever version the shipped file is at.
    (directory / "default.yaml").write_text(with_version((RULESETS / "default.yaml").read_text(), 1))
    return directory


def source(directory) -> str:
    return (directory / "default.yaml").read_text()


@pytest.fixture
def app_and_key(make_app):
    """app_and_key(tmp_path, rulesets, db) -> (app, auth headers of an admin key)."""

    def make(tmp_path, rulesets, db="v.db"):
        app = make_app(db=str(tmp_path / db), rulesets=str(rulesets))
        with app.app_context():
            key = create(trail(), "admin", "admin")[1]
        return app, {"Authorization": f"Bearer {key}"}

    return make


# -- files ----------------------------------------------------------------------------------------


def test_candidates_and_a_shadow_load_beside_the_active_version(rulesets):
    (rulesets / "candidates").mkdir()
    (rulesets / "candidates" / "default.v2.yaml").write_text(bump(source(rulesets), 2, fit_points=30))
    (rulesets / "candidates" / "shadows.yaml").write_text("default: 2\n")
    deployment, problems, refused = read_directory(Registry(), rulesets)
    assert problems == [] and refused == set()
    assert deployment.active["default"].version == 1
    assert [c.version for c in deployment.candidates] == [2]
    assert deployment.shadows["default"] is deployment.candidates[0]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"default.v3.yaml": 2}, "the file of candidate 'default' v2 must be named default.v2.yaml"),
        ({"default.v1.yaml": 1}, "version 1 of default is already"),
        ({"default.v2.yaml": 2, "shadows.yaml": "default: 3\n"}, "no candidate default v3 in candidates/"),
        ({"shadows.yaml": "other: 2\n"}, "no active ruleset 'other' to shadow"),
        ({"default.v2.yaml": 2, "shadows.yaml": "default: two\n"}, "is a version number, not 'two'"),
    ],
)
def test_candidate_mistakes_are_named(rulesets, files, message):
    (rulesets / "candidates").mkdir()
    for name, content in files.items():
        text = bump(source(rulesets), content, fit_points=16) if isinstance(content, int) else content
        (rulesets / "candidates" / name).write_text(text)
    _, problems, _ = read_directory(Registry(), rulesets)
    assert any(message in p.message for p in problems), problems


# -- reload through the API -----------------------------------------------------------------------


def test_reload_serves_the_new_version_and_is_recorded(tmp_path, rulesets, app_and_key):
    app, auth = app_and_key(tmp_path, rulesets)
    client = app.test_client()
    first = client.post("/v1/decisions", json=LEAD, headers=auth).json
    assert first["ruleset"]["version"] == 1 and first["scores"]["fit"] == 45.0

    (rulesets / "default.yaml").write_text(bump(source(rulesets), 2, fit_points=30))
    reply = client.post("/v1/admin/reload", headers=auth)
    assert reply.status_code == 200, reply.json
    assert reply.json["changed"] is True and reply.json["requested_by"].startswith("api:")
    second = client.post("/v1/decisions", json={**LEAD, "lead_id": "V-2"}, headers=auth).json
    assert second["ruleset"]["version"] == 2 and second["scores"]["fit"] == 60.0
    listed = client.get("/v1/rulesets", headers=auth).json["rulesets"]
    assert [(r["name"], r["version"], r["role"]) for r in listed] == [("default", 2, "active")]

    reloads = client.get("/v1/admin/reloads", headers=auth).json["reloads"]
    assert [r["requested_by"] for r in reloads][-1] == "startup" and len(reloads) == 2
    assert reloads[0]["deployment"]["active"]["default"] == second["ruleset"]["digest"]
    with app.app_context():
        assert trail().verify() == []
        # the old version stays replayable: its source is kept by digest
        assert "version: 1" in trail().ruleset_source(first["ruleset"]["digest"])


def test_a_broken_file_is_refused_and_the_last_good_version_keeps_serving(tmp_path, rulesets, app_and_key):
    app, auth = app_and_key(tmp_path, rulesets)
    client = app.test_client()
    good = client.post("/v1/decisions", json=LEAD, headers=auth).json["ruleset"]
    (rulesets / "default.yaml").write_text(source(rulesets).replace("fit: 15}", "fit: 15", 1))
    reply = client.post("/v1/admin/reload", headers=auth)
    assert reply.status_code == 422 and reply.json["code"] == "invalid_ruleset"
    assert any(key.startswith(f"{rulesets / 'default.yaml'}:") for key in reply.json["errors"])
    assert "still serving the last good version of default v1" in reply.json["message"]
    after = client.post("/v1/decisions", json={**LEAD, "lead_id": "V-3"}, headers=auth)
    assert after.status_code == 201 and after.json["ruleset"] == good
    ready = client.get("/readyz").json
    assert ready["status"] == "ok" and ready["ruleset_problems"]

    # A process started now (a new worker) still serves the last good version, from the audit.
    fresh, _ = app_and_key(tmp_path, rulesets)
    with fresh.app_context():
        from api.state import registry

        assert registry().get("default").digest == good["digest"]


def test_a_reload_by_one_worker_reaches_the_others(tmp_path, rulesets, app_and_key):
    one, auth1 = app_and_key(tmp_path, rulesets)
    two, auth2 = app_and_key(tmp_path, rulesets)  # another process on the same database
    assert two.test_client().post("/v1/decisions", json=LEAD, headers=auth2).json["ruleset"]["version"] == 1
    (rulesets / "default.yaml").write_text(bump(source(rulesets), 2))
    assert one.test_client().post("/v1/admin/reload", headers=auth1).status_code == 200
    again = two.test_client().post("/v1/decisions", json={**LEAD, "lead_id": "V-4"}, headers=auth2).json
    assert again["ruleset"]["version"] == 2


def test_the_cli_reload_reaches_a_running_app(tmp_path, rulesets, monkeypatch, app_and_key):
    from click.testing import CliRunner

    from cli import main

    app, auth = app_and_key(tmp_path, rulesets)
    (rulesets / "default.yaml").write_text(bump(source(rulesets), 2))
    monkeypatch.setenv("LEADGATE_DB", str(tmp_path / "v.db"))
    monkeypatch.setenv("LEADGATE_RULESETS", str(rulesets))
    result = CliRunner().invoke(main, ["rulesets", "reload"])
    assert result.exit_code == 0, result.output
    assert "default v2" in result.output
    reply = app.test_client().post("/v1/decisions", json=LEAD, headers=auth).json
    assert reply["ruleset"]["version"] == 2

    (rulesets / "default.yaml").write_text("name: [broken")
    result = CliRunner().invoke(main, ["rulesets", "reload"])
    assert result.exit_code == 1 and "not valid YAML" in result.output and "kept default v2" in result.output


def test_a_restart_with_unchanged_files_records_no_reload(tmp_path, rulesets, app_and_key):
    app_and_key(tmp_path, rulesets)
    app_and_key(tmp_path, rulesets)
    with AuditTrail(tmp_path / "v.db") as trail_:
        assert len(deployments.history(trail_)) == 1


# -- pinning and shadow ---------------------------------------------------------------------------


def test_a_candidate_is_pinnable_and_a_shadow_is_stored_never_returned(tmp_path, rulesets, app_and_key):
    (rulesets / "candidates").mkdir()
    (rulesets / "candidates" / "default.v2.yaml").write_text(bump(source(rulesets), 2, fit_points=30))
    (rulesets / "candidates" / "shadows.yaml").write_text("default: 2\n")
    app, auth = app_and_key(tmp_path, rulesets)
    client = app.test_client()
    live = client.post("/v1/decisions", json=LEAD, headers=auth).json
    assert live["ruleset"]["version"] == 1 and live["scores"]["fit"] == 45.0
    pinned = client.post(
        "/v1/preview", json={**LEAD, "ruleset": {"name": "default", "version": 2}}, headers=auth
    ).json
    assert pinned["ruleset"]["version"] == 2 and pinned["scores"]["fit"] == 60.0
    detail = client.get("/v1/rulesets/default", headers=auth).json
    assert detail["active_version"] == 1 and detail["shadow_version"] == 2
    assert [v["role"] for v in detail["versions"]] == ["active", "shadow"]

    # 60 points of fit make this lead a good fit under v2: the shadow disagrees on the quadrant.
    with app.app_context():
        rows = trail()._read("SELECT * FROM shadow_decisions")
        assert [(r["decision_id"], r["ruleset_version"], r["fit"]) for r in rows] == [
            (live["decision_id"], 2, 60.0)
        ]
        (entry,) = deployments.shadow_report(trail())
    assert entry["decisions"] == 1 and entry["disagreements"] == 1
    assert entry["quadrant"]["from_to"] == {f"{live['quadrant']} → good_fit_not_ready": 1}
    assert entry["route"]["changed"] == 1


# -- against a git ref: version checks and the decision diff ---------------------------------------


@pytest.fixture
def repo(rulesets):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=rulesets.parent, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "rulesets")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "v1")
    return rulesets


def cli(*args, env=None):
    from click.testing import CliRunner

    from cli import main

    return CliRunner().invoke(main, list(args), env=env)


def test_validate_base_refuses_a_change_without_a_new_version(repo):
    (repo / "default.yaml").write_text(bump(source(repo), 1, fit_points=30))
    result = cli("rulesets", "validate", "--dir", str(repo), "--base", "main")
    assert result.exit_code == 1
    assert "changed since main but its version is 1 (it was 1 there): raise it to 2" in result.output
    assert f"{repo / 'default.yaml'}:5:" in result.output  # the line of `version:`
    (repo / "default.yaml").write_text(bump(source(repo), 2))
    assert cli("rulesets", "validate", "--dir", str(repo), "--base", "main").exit_code == 0
    assert "unknown git ref" in cli("rulesets", "validate", "--dir", str(repo), "--base", "nope").output


def test_diff_on_recorded_leads_reports_what_changes(tmp_path, repo, app_and_key):
    app, auth = app_and_key(tmp_path, repo)
    client = app.test_client()
    for i, employees in enumerate([200, 200, 30, 5]):
        lead = {**LEAD, "lead_id": f"D-{i}", "profile": {**LEAD["profile"], "employees": employees}}
        assert client.post("/v1/decisions", json=lead, headers=auth).status_code == 201
    # v2: the target industry is worth 30 instead of 15: fit 45 → 60 (200 people) and 35 → 50 (30 people)
    # make good fits; 10 → 25 (5 people) stays poor.
    (repo / "default.yaml").write_text(bump(source(repo), 2, fit_points=30))
    env = {"LEADGATE_DB": str(tmp_path / "v.db")}
    result = cli("rulesets", "diff", "--base", "main", "--dir", str(repo), "--workers", "2", env=env)
    assert result.exit_code == 0, result.output
    report = result.output
    assert report.startswith("## Decision diff: default v1 (main) → default v2 (working copy)")
    assert "Re-decided **4** leads" in report and "**3** (75.0%) change stage, route or quadrant" in report
    assert "| stage | 0 | 0.0% |\n| route | 3 | 75.0% |\n| quadrant | 3 | 75.0% |" in report
    assert "| poor_fit_not_ready | good_fit_not_ready | 3 |" in report
    assert "| `route-qualification-team` | 0 | 3 | +3 |" in report
    assert "| fit | 4 | +15.00 | +15.00 | +15.00 |" in report
    assert (
        "- `D-0`: route nurture_low_touch → sdr_qualification, quadrant poor_fit_not_ready → good_fit_not_ready"
        in report
    )
    failing = cli("rulesets", "diff", "--base", "main", "--dir", str(repo), "--fail-over", "10", env=env)
    assert failing.exit_code == 1 and "75.0% of routes change: more than the 10% allowed" in failing.output


def test_diff_on_leads_from_a_file(tmp_path, repo):
    import json

    leads = tmp_path / "leads.jsonl"
    leads.write_text(
        "\n".join(json.dumps({**LEAD, "lead_id": f"F-{i}"}) for i in range(3))
        + '\n{"lead_id": "bad", "x": 1}\n'
    )
    (repo / "default.yaml").write_text(bump(source(repo), 2))
    result = cli(
        "rulesets",
        "diff",
        "--base",
        "main",
        "--dir",
        str(repo),
        "--leads",
        str(leads),
        "--at",
        "2026-11-23T10:00:00Z",
    )
    assert result.exit_code == 0, result.output
    assert "Re-decided **4** leads" in result.output and "**0** (0.0%) change" in result.output
    assert "| could not be evaluated | 1 | 25.0% |" in result.output
    assert "- `bad`: FactsError: x: unknown field" in result.output
