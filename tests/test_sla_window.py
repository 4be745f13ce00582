"""Issue 15, fifth round: GET /v1/sla and `leadgate sla` read what is indexed. The overdue list stays
complete (every open hand-off past due, however old: what `--escalate` re-routes), capped in a reply by
`limit`; the team statistics cover the hand-offs made in a window (`since`, `until`); the /metrics
hand-off gauge is counted by the database. On SQLite and on PostgreSQL."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from api.state import registry, trail
from audit import AuditTrail, gauges, outcomes, views
from audit.keys import create
from cli import main
from service.decide import decide
from service.outcomes import report_outcome
from tests.conftest import RULESETS
from tests.postgres import secrets_for
from tests.test_assignment import hand_off
from tests.test_open_handoffs import WALK

OLD, RECENT, AT = "2026-09-01T10:00:00Z", "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"


def handed(i: int, at: str) -> dict:
    """hand_off(i) with its demo request an hour before `at` (a lead's events are not in its future)."""
    hour = f"{int(at[11:13]) - 1:02d}"
    return {
        **hand_off(i),
        "events": [{"type": "demo_request", "at": f"{at[:11]}{hour}:00:00Z", "id": f"d{i}"}],
    }


def pricing(i: int) -> dict:
    """A lead the default ruleset hands to the qualification team (sdr, due in 4 business hours)."""
    return {
        **hand_off(i),
        "events": [{"type": "pricing_page_view", "at": "2026-11-23T09:00:00Z", "id": f"p{i}"}],
    }


@pytest.fixture
def app(backend_app):
    return backend_app  # on SQLite and on PostgreSQL (tests/postgres.py)


@pytest.fixture
def auth(app):
    with app.app_context():
        return {"Authorization": f"Bearer {create(trail(), 'crm', 'review')[1]}"}


def decided(app, *leads: tuple[dict, str]) -> list[dict]:
    with app.app_context():
        return [decide(registry().get("default"), trail(), lead, at=at)[0] for lead, at in leads]


def get(app, auth, query: str):
    return app.test_client().get(f"/v1/sla?{query}", headers=auth)


def test_an_overdue_hand_off_older_than_the_window_is_listed_and_escalated(app, auth):
    decided(app, (handed(0, OLD), OLD), (hand_off(1), RECENT))
    report = get(app, auth, f"at={AT}").json
    # The default window: the 30 days before `at`, which the reply names.
    assert (report["since"], report["until"]) == ("2026-10-24T11:00:00Z", AT)
    assert [o["lead_id"] for o in report["overdue"]] == ["A-0", "A-1"]  # the oldest first
    assert report["overdue_total"] == 2
    assert report["overdue"][0]["minutes_overdue"] == (83 * 24 * 60 + 30)
    # The statistics count only the hand-off made in the window.
    assert report["teams"] == {
        "account-executives": {
            "handoffs": 1,
            "acted": 0,
            "acted_in_time": 0,
            "acted_late": 0,
            "open": 1,
            "overdue": 1,
            "median_minutes_to_first_action": None,
        }
    }
    wide = get(app, auth, f"at={AT}&since=2026-08-01T00:00:00Z").json
    assert wide["teams"]["account-executives"]["handoffs"] == 2 and wide["overdue_total"] == 2

    db = app.config["LEADGATE_DB"]
    env = {"LEADGATE_DB": db, "LEADGATE_RULESETS": str(RULESETS)}
    result = CliRunner().invoke(main, ["sla", "--escalate", "--at", AT], env=env)
    assert result.exit_code == 0, result.output
    for lead_id in ("A-0", "A-1"):  # the one from September too
        assert f"decided {lead_id} again: route sales_escalation" in result.output
    with AuditTrail(db, secrets=secrets_for(db)) as audit:
        after = outcomes.sla(audit, AT)
    assert after["overdue"] == [] and after["overdue_total"] == 0  # re-routed, due at 12:00
    assert after["teams"]["sales-managers"]["handoffs"] == 2  # made at `at`: the window includes it


def test_the_statistics_count_only_the_window_to_the_microsecond(app, auth):
    """Stored times are compared as text in SQL; "…:00Z" sorts after "…:00.5Z", so the bounds and the
    due times must still compare as times."""
    times = ["2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5Z", "2026-11-23T10:00:01Z"]
    decided(app, *((hand_off(i), at) for i, at in enumerate(times)))

    def handoffs(since, until):
        reply = get(app, auth, f"at=2026-11-23T10:10:00Z&since={since}&until={until}")
        assert reply.status_code == 200, reply.json
        window = [outcomes.moment(reply.json[k]) for k in ("since", "until")]
        assert window == [outcomes.moment(since), outcomes.moment(until)]  # the window it covers
        return sum(t["handoffs"] for t in reply.json["teams"].values())

    assert handoffs("2026-11-23T10:00:00.25Z", "2026-11-23T10:00:01Z") == 2  # both bounds included
    assert handoffs("2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5Z") == 2
    assert handoffs("2026-11-23T10:00:00.000001Z", "2026-11-23T10:00:00.499999Z") == 0
    assert handoffs("2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z") == 1
    assert handoffs("2026-11-23T10:00:00.500001Z", "2026-11-24T00:00:00Z") == 1
    # Due at 10:30:00, 10:30:00.5 and 10:30:01: overdue strictly after, in the list and the gauge.
    for at, late in [
        ("2026-11-23T10:30:00Z", 0),
        ("2026-11-23T10:30:00.5Z", 1),
        ("2026-11-23T10:30:00.500001Z", 2),
        ("2026-11-23T10:30:01Z", 2),
        ("2026-11-23T10:30:01.000001Z", 3),
    ]:
        report = get(app, auth, f"at={at}").json
        assert report["overdue_total"] == len(report["overdue"]) == late, at
        assert report["teams"]["account-executives"]["overdue"] == late
        with app.app_context():
            assert gauges.handoffs(trail(), at) == {"account-executives": {"open": 3, "overdue": late}}


def test_the_overdue_list_is_capped_by_limit_and_counted_in_full(app, auth):
    decided(app, *((hand_off(i), f"2026-11-23T09:{i}0:00Z") for i in range(1, 6)))
    capped = get(app, auth, f"at={AT}&limit=2").json
    assert [o["lead_id"] for o in capped["overdue"]] == ["A-1", "A-2"]  # the most overdue
    assert capped["overdue_total"] == 5
    assert len(get(app, auth, f"at={AT}").json["overdue"]) == 5  # the default, 100, holds them
    only = get(app, auth, f"at={AT}&limit=1&team=account-executives").json
    assert only["overdue_total"] == 5 and len(only["overdue"]) == 1
    assert get(app, auth, f"at={AT}&team=sdr").json == {
        "at": AT,
        "since": "2026-10-24T11:00:00Z",
        "until": AT,
        "overdue": [],
        "overdue_total": 0,
        "teams": {},
    }
    result = CliRunner().invoke(
        main, ["sla", "--at", AT, "--limit", "2"], env={"LEADGATE_DB": app.config["LEADGATE_DB"]}
    )
    assert result.exit_code == 0, result.output
    assert (
        "Overdue (nobody acted yet): 5" in result.output
        and "… and 3 more (--limit 0 lists all)" in result.output
    )
    assert "made from 2026-10-24T11:00:00Z to 2026-11-23T11:00:00Z" in result.output


@pytest.mark.parametrize(
    "query, field",
    [
        ("since=2026-11-23T12:00:00Z&until=2026-11-23T11:00:00Z", "until"),  # since after until
        ("at=2026-11-23T11:00:00Z&since=2026-11-24T00:00:00Z", "since"),  # after `at`, the default until
        ("until=2026-01-01T00:00:00Z&at=2026-11-23T11:00:00Z&since=2026-02-01T00:00:00Z", "until"),
        ("since=last-week", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
    ],
)
def test_a_bad_window_or_limit_is_refused_naming_the_field(app, auth, query, field):
    reply = get(app, auth, query)
    assert reply.status_code == 422, reply.json
    assert set(reply.json) == {"status", "code", "message", "errors"} and reply.json["status"] == 422
    assert list(reply.json["errors"]) == [field], reply.json


def test_a_mistyped_query_parameter_is_refused_naming_the_known_ones(app, auth):
    """`?sinse=` was dropped before and the reply covered the default window: another question's answer."""
    reply = get(app, auth, "sinse=2026-11-01T00:00:00Z")
    assert reply.status_code == 422 and reply.json["code"] == "invalid_request", reply.json
    assert reply.json["errors"] == {
        "sinse": ["Unknown field; the known ones: at, limit, since, team, until."]
    }
    assert "'sinse'" in reply.json["message"]
    lead = app.test_client().get("/v1/leads/x/decisions?limt=5", headers=auth)
    assert lead.status_code == 422 and list(lead.json["errors"]) == ["limt"], lead.json


def test_the_cli_refuses_a_bad_window_naming_the_option(tmp_path):
    env = {"LEADGATE_DB": str(tmp_path / "audit.db")}
    inverted = CliRunner().invoke(
        main, ["sla", "--since", "2026-11-23T12:00:00Z", "--until", "2026-11-23T11:00:00Z"], env=env
    )
    assert (
        inverted.exit_code == 2
        and "--until" in inverted.output
        and "must not be before since" in inverted.output
    )
    late = CliRunner().invoke(main, ["sla", "--at", AT, "--since", "2026-11-24T00:00:00Z"], env=env)
    assert late.exit_code == 2 and "--since" in late.output
    bad = CliRunner().invoke(main, ["sla", "--since", "whenever"], env=env)
    assert bad.exit_code == 2 and "--since" in bad.output
    assert not (tmp_path / "audit.db").exists()  # refused before opening anything


def old_gauge(trail, at: str) -> dict:
    """The gauge as it was computed before (one Python step per open hand-off): the reference."""
    now = outcomes.moment(at)
    teams: dict = {}
    for row in trail._read(
        "SELECT coalesce(team, route) AS team, due_at FROM open_handoffs WHERE acted_at IS NULL"
    ):
        counts = teams.setdefault(row["team"], {"open": 0, "overdue": 0})
        counts["open"] += 1
        counts["overdue"] += outcomes.moment(row["due_at"]) < now
    return teams


def test_the_gauge_counts_as_the_per_row_computation_did(audit_db, default):
    """Several teams and routes, acted on, closed, escalated, due times with and without fractions."""
    with AuditTrail(audit_db, secrets=secrets_for(audit_db)) as audit:
        for i in range(6):
            decide(default, audit, hand_off(i), at=f"2026-11-23T10:0{i}:00.{i}Z")  # sales, due +30 min
        for i in range(6, 10):
            decide(default, audit, pricing(i), at=f"2026-11-23T09:{i - 5}0:00Z")  # sdr, due at 18:00
        report_outcome(default, audit, "A-0", {"type": "contacted"}, at="2026-11-23T10:20:00Z")
        decide(default, audit, {"lead_id": "A-1", "channel": "sla"}, at="2026-11-23T10:45:00Z")  # escalated
        decide(default, audit, {"lead_id": "A-6", "answers": {"budget": "no"}}, at="2026-11-23T11:00:00Z")
        teams = set()
        for at in (
            "2026-11-23T10:30:00Z",
            "2026-11-23T10:32:00.2Z",
            "2026-11-23T10:32:00.200001Z",
            "2026-11-23T11:45:00Z",
            "2026-11-23T18:00:00Z",
            "2026-11-23T18:00:00.000001Z",
            "2026-11-24T00:00:00Z",
        ):
            counted, reference = gauges.handoffs(audit, at), old_gauge(audit, at)
            assert counted == reference, at
            teams |= set(counted)
            if at >= "2026-11-23T11:45":  # after every decision: the report's window holds them all
                stats = outcomes.sla(audit, at)["teams"]
                open_ = {
                    t: {"open": s["open"], "overdue": s["overdue"]} for t, s in stats.items() if s["open"]
                }
                assert open_ == counted, at
        assert teams == {"account-executives", "sdr", "sales-managers"}
        assert sum(c["overdue"] for c in gauges.handoffs(audit, "2026-11-24T00:00:00Z").values()) > 0


def test_the_sla_reads_search_what_is_indexed_never_walk_a_table(tmp_path, default):
    """The overdue list through the leads that carry an open hand-off (not the index of every
    hand-off's due time, which past due is nearly all of them); the window through the index by time."""
    db = tmp_path / "audit.db"
    with AuditTrail(db, secrets=secrets_for(db)) as audit:
        for i in range(4):
            decide(default, audit, hand_off(i), at=RECENT)
        params = {"team": None, "limit": 10, **outcomes.before("at", AT)}
        window = {
            **outcomes.before("since", OLD),
            **outcomes.upto("until", AT),
            "until_top": AT,
            "team": None,
        }
        plans = {
            name: [r[3] for r in audit.db.execute(f"EXPLAIN QUERY PLAN {sql}", values)]
            for name, sql, values in [
                ("overdue", outcomes.OVERDUE, params),
                ("window", outcomes.IN_WINDOW, window),
                ("gauge", gauges.HANDOFFS, outcomes.before("at", AT)),
            ]
        }
    for name, plan in plans.items():
        assert not [line for line in plan if WALK.match(line)], (name, plan)
    assert any("leads_open_handoff" in line for line in plans["overdue"]), plans["overdue"]
    assert not any("decisions_handoffs_due" in line for line in plans["overdue"]), plans["overdue"]
    assert any(
        re.match(r"SEARCH d USING INDEX decisions_handoffs_at \(evaluated_at>\? AND", x)
        for x in plans["window"]
    )
    assert any(re.match(r"SEARCH handoffs_before USING INDEX handoffs_before_at", x) for x in plans["window"])
    assert any("leads_open_handoff" in line for line in plans["gauge"]), plans["gauge"]


def test_the_handoffs_view_of_m016_reads_as_m013s(tmp_path, default):
    """m016 makes `handoffs` know an open hand-off from its lead's row instead of searching for the
    decision that closed it: every row the same as m013's view gives, open, acted on, closed, escalated."""
    db = tmp_path / "audit.db"
    with AuditTrail(db, secrets=secrets_for(db)) as audit:
        for i in range(4):
            decide(default, audit, hand_off(i), at="2026-11-23T10:00:00Z")
            decide(default, audit, pricing(i + 4), at="2026-11-23T10:00:00Z")
        for i in range(3):  # more decisions on the same route: the hand-off goes on
            decide(default, audit, {"lead_id": "A-0", "channel": "chatbot"}, at=f"2026-11-23T10:1{i}:00Z")
        report_outcome(default, audit, "A-1", {"type": "contacted"}, at="2026-11-23T10:20:00Z")
        decide(default, audit, {"lead_id": "A-2", "channel": "sla"}, at="2026-11-23T11:00:00Z")  # escalated
        report_outcome(
            default, audit, "A-3", {"type": "rejected", "reason": "no_budget"}, at="2026-11-23T11:00:00Z"
        )
        decide(default, audit, {"lead_id": "A-5", "answers": {"budget": "no"}}, at="2026-11-23T11:00:00Z")
        audit.db.execute(views.HANDOFFS.replace("CREATE VIEW handoffs", "CREATE TEMP VIEW handoffs_m013"))
        now = audit.db.execute("SELECT * FROM handoffs ORDER BY id").fetchall()
        before = audit.db.execute("SELECT * FROM handoffs_m013 ORDER BY id").fetchall()
        assert now == before and len(now) == 9
        assert {r[10] is None for r in now} == {True, False}  # closed_at: open and closed ones
        assert {r[8] is None for r in now} == {True, False}  # acted_at: acted on and not
        assert audit.verify() == []
