"""Who takes a hand-off: the lead's owner, its company's owner, then weighted round robin with caps."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit import AuditTrail, assignment
from audit.secrets import Secrets
from engine import RulesetError
from engine.teams import load_teams
from service.decide import decide, decide_batch
from tests.conftest import RULESETS
from tests.server import Server

TEAMS = """\
version: 1
period: day
personal_domains: [gmail.com]
teams:
  account-executives:
    - {id: sam, name: Sam, weight: 2, cap: 6}
    - {id: lee, name: Lee}
    - {id: kim, name: Kim}
    - {id: ola, name: Ola, available: false}
"""
AT = "2026-11-23T10:00:00Z"


def hand_off(i: int, domain: str | None = None) -> dict:
    return {
        "lead_id": f"A-{i}",
        "profile": {
            "email": f"p{i}@{domain or f'company{i}.com'}",
            "country": "US",
            "industry": "software",
            "employees": 200,
            "seniority": "vp",
        },
        "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": f"d{i}"}],
    }


@pytest.fixture
def trail(audit_db, tmp_path):
    with AuditTrail(audit_db, durability="normal", secrets=Secrets(tmp_path / "a.key")) as opened:
        yield opened


def owners(trail, default, leads, teams) -> list[str]:
    return [decide(default, trail, lead, at=AT, teams=teams)[0]["assignment"]["owner"] for lead in leads]


def test_weighted_round_robin_respects_weights_caps_and_leave(trail, default):
    teams = load_teams(TEAMS)
    got = owners(trail, default, [hand_off(i) for i in range(16)], teams)
    # weight 2 takes two for every one of the others, until its cap of 6; Ola is away
    assert got[:8] == ["sam", "lee", "kim", "sam", "sam", "lee", "kim", "sam"]
    assert got.count("sam") == 6 and got.count("ola") == 0
    assert assignment.counts(trail, "account-executives", "2026-11-23") == {"sam": 6, "lee": 5, "kim": 5}
    reply = decide(default, trail, hand_off(99), at=AT, teams=teams)[0]["assignment"]
    assert reply["basis"] == "round_robin" and reply["reason"] == "round robin: lead 6 this day, weight 1"


def test_the_lead_owner_then_the_company_owner_come_first(trail, default):
    teams = load_teams(TEAMS)
    first = decide(default, trail, hand_off(1, "acme.io"), at=AT, teams=teams)[0]["assignment"]
    again = decide(default, trail, {"lead_id": "A-1", "answers": {"budget": "yes"}}, at=AT, teams=teams)[0]
    assert again["assignment"] == {**first, "basis": "lead_owner", "reason": "already owns this lead"}
    colleague = decide(default, trail, hand_off(2, "acme.io"), at=AT, teams=teams)[0]["assignment"]
    assert colleague["owner"] == first["owner"] and colleague["reason"] == "owns the company acme.io"
    # personal addresses are not a company: gmail users are spread by round robin (when they are leads)
    assert "gmail.com" in teams.personal_domains
    # a repeat decision of an owned lead does not count against the owner's cap
    assert assignment.counts(trail, "account-executives", "2026-11-23")[first["owner"]] == 2


def test_no_assignment_off_the_sales_routes_or_when_everyone_is_full(trail, default):
    nurture = {
        "lead_id": "N-1",
        "profile": {"country": "US"},
        "events": [hand_off(0)["events"][0] | {"type": "webinar_registered"}],
    }
    assert decide(default, trail, nurture, at=AT, teams=load_teams(TEAMS))[0]["assignment"] is None
    full = load_teams(
        TEAMS.replace("weight: 2, cap: 6", "cap: 0")
        .replace("{id: lee, name: Lee}", "{id: lee, cap: 0}")
        .replace("{id: kim, name: Kim}", "{id: kim, cap: 0}")
    )
    reply = decide(default, trail, hand_off(5), at=AT, teams=full)[0]["assignment"]
    assert reply["owner"] is None and reply["basis"] == "none" and "queue" in reply["reason"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nteams: {ae: [{id: Sam}]}\n", "a member id is lower case"),
        ("version: 1\nteams: {ae: [{id: sam, weight: 0}]}\n", "weight must be a number above 0"),
        ("version: 1\nteams: {ae: [{id: sam}, {id: sam}]}\n", "member 'sam' appears twice in ae"),
        ("version: 1\nperiod: month\nteams: {ae: [{id: sam}]}\n", "period must be one of day, week"),
        (
            "version: 1\nteams: {ae: [{id: sam, wieght: 2}]}\n",
            "unknown key 'wieght' (did you mean 'weight'?)",
        ),
    ],
)
def test_teams_file_mistakes_are_named_with_their_line(text, message):
    with pytest.raises(RulesetError) as err:
        load_teams(text, "teams.yaml")
    assert any(message in p.message and p.line >= 1 for p in err.value.problems), err.value.problems


def test_assignment_is_fair_under_concurrent_requests(tmp_path, audit_db):
    rulesets = tmp_path / "rulesets"
    rulesets.mkdir()
    shutil.copy(RULESETS / "default.yaml", rulesets)
    (rulesets / "teams.yaml").write_text(TEAMS.replace("cap: 6", "cap: 40"))
    running = Server(audit_db, workers=3, rulesets=rulesets, secret_file=tmp_path / "k.key", logs=tmp_path)
    with running as server, ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: server.request("POST", "/v1/decisions", hand_off(i)), range(80)))
    assert {status for status, _, _ in replies} == {201}
    got = [body["assignment"]["owner"] for _, body, _ in replies]
    # Whatever the interleaving, the counts are those of the weights: 2:1:1 until Sam's cap of 40.
    assert {o: got.count(o) for o in set(got)} == {"sam": 40, "lee": 20, "kim": 20}
    with running.trail() as trail:
        counts = assignment.counts(trail, "account-executives", replies[0][1]["evaluated_at"][:10])
    assert counts == {"sam": 40, "lee": 20, "kim": 20}


def test_a_batch_assigns_as_separate_calls_do(trail, default, tmp_path):
    """The assignments of one transaction are stored with their decisions when they are recorded
    (m013): until then the next assignment in it counts them (caps, weights, owners)."""
    teams = load_teams(TEAMS)
    leads = [hand_off(i) for i in range(16)] + [hand_off(20, "acme.io"), hand_off(21, "acme.io"), hand_off(3)]
    replies = decide_batch([default] * len(leads), trail, leads, at=AT, teams=teams)
    with AuditTrail(tmp_path / "separate.db", secrets=Secrets(tmp_path / "s.key")) as separate:
        one_by_one = [decide(default, separate, lead, at=AT, teams=teams)[0] for lead in leads]
        counted = assignment.counts(separate, "account-executives", "2026-11-23")
    assert [r["assignment"] for r in replies] == [r["assignment"] for r in one_by_one]
    assert [r["assignment"]["basis"] for r in replies[16:]] == ["round_robin", "domain_owner", "lead_owner"]
    assert [r["assignment"]["owner"] for r in replies[:16]].count("sam") == 6  # the cap holds in a batch
    assert assignment.counts(trail, "account-executives", "2026-11-23") == counted
    assert trail.verify() == []
