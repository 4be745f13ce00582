"""The write lock's critical section: a decision is made ready to record before the lock (serialised,
personal data protected, its facts' reference made, its documents compressed: AuditTrail.prepare),
and under the lock only what depends on the store is done — unless the store changed meanwhile,
which is then made again under the lock, so what is recorded stays exactly right.

Order, not time: every call of the heavy parts is logged beside the lock's acquire and release."""

from __future__ import annotations

import json

import pytest

import audit.assignment
import audit.compact
import audit.recording
from audit import AuditTrail
from audit.codec import Codec, codec_for
from audit.personal import Personal
from audit.replay import replay_range
from audit.writelock import WriteLock
from engine.teams import load_teams
from service.decide import decide, evaluator
from tests.test_assignment import TEAMS, hand_off

AT = "2026-11-23T10:00:00Z"
HEAVY = ("protect", "prepare", "reference", "pack", "pack_ahead")


@pytest.fixture
def calls(monkeypatch):
    """The log of the heavy parts' calls and of the write lock's turns, in the order they happened."""
    log: list[str] = []

    def logged(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            log.append(label)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    logged(WriteLock, "acquire", "lock")
    logged(WriteLock, "release", "unlock")
    logged(Personal, "protect_facts", "protect")
    logged(audit.recording, "prepare", "prepare")
    logged(audit.compact, "reference", "reference")
    logged(Codec, "pack", "pack")
    logged(Codec, "pack_ahead", "pack_ahead")
    return log


def inside(log: list[str]) -> list[str]:
    """What was called during the last turn at the write lock (the decision's own)."""
    start = len(log) - 1 - log[::-1].index("lock")
    return log[start + 1 : log.index("unlock", start)]


def test_the_heavy_work_of_a_decision_happens_before_the_lock(tmp_path, default, calls):
    with AuditTrail(tmp_path / "a.db", personal_fields=("email", "first_name")) as trail:
        # The first decision of a ruleset stores its source: the codec learns its dictionaries then.
        decide(default, trail, {"lead_id": "warm", "profile": {"country": "US"}}, at=AT)
        lead = {
            "lead_id": "L-1",
            "profile": {"country": "US", "email": "ann@acme.io", "first_name": "Ann", "employees": 300},
            "answers": {"budget": "yes"},
            "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "d1"}],
        }
        for request in (lead, {"lead_id": "L-1", "events": [{"type": "page_view", "at": AT, "id": "p1"}]}):
            calls.clear()
            reply = decide(default, trail, request, at=AT)[0]
            before = calls[: calls.index("lock")]
            assert {"protect", "prepare", "reference", "pack_ahead"} <= set(before), calls
            assert not set(inside(calls)) & set(HEAVY), calls
        # The second decision refers to the first one's profile and answers ($parts), made ahead.
        record = trail.decision(reply["decision_id"])
        stored = audit.compact.facts_of(
            trail.db, {"lead_id": "L-1", "seq": record["seq"]}, _text(trail, reply)
        )
        assert stored == record["facts"] and "$parts" in _text(trail, reply)
        assert record["decision"] == reply and reply.body == _stored_reply(trail, reply)
        assert trail.verify() == []


def test_an_assignment_under_the_lock_packs_only_the_reply_again(tmp_path, default, calls):
    teams = load_teams(TEAMS)
    with AuditTrail(tmp_path / "a.db") as trail:
        decide(default, trail, {"lead_id": "warm", "profile": {"country": "US"}}, at=AT)
        calls.clear()
        reply = decide(default, trail, hand_off(1, "acme.io"), at=AT, teams=teams)[0]
        assert reply["assignment"] is not None and reply["assignment"]["owner"]
        assert inside(calls) == ["pack"], calls  # the reply, which now names its owner
        assert trail.decision(reply["decision_id"])["decision"] == reply
        assert reply.body == _stored_reply(trail, reply)
        assert trail.verify() == []


def test_a_lead_decided_by_another_worker_meanwhile_is_evaluated_again_and_recorded_right(
    tmp_path, default, registry, monkeypatch, calls
):
    """Another worker (a second trail on the file) records a decision for the lead after this one
    read it and prepared its decision: under the lock the version differs, so the decision is made
    again from what the other recorded, and prepared there."""
    db = tmp_path / "a.db"
    with AuditTrail(db) as trail, AuditTrail(db) as other:
        decide(default, trail, {"lead_id": "L-1", "profile": {"country": "US", "employees": 40}}, at=AT)
        prepare = trail.prepare

        def meanwhile(version, **item):
            prepared = prepare(version, **item)
            monkeypatch.setattr(trail, "prepare", prepare)  # once
            theirs = {"lead_id": "L-1", "events": [{"type": "demo_request", "at": AT, "id": "theirs"}]}
            decide(default, other, theirs, at=AT)
            return prepared

        monkeypatch.setattr(trail, "prepare", meanwhile)
        calls.clear()
        mine = {"lead_id": "L-1", "events": [{"type": "page_view", "at": AT, "id": "mine"}]}
        reply = decide(default, trail, mine, at=AT)[0]
        assert "prepare" in inside(calls) and "protect" in inside(calls)  # made again under the lock
        record = trail.decision(reply["decision_id"])
        assert {e["id"] for e in record["facts"]["events"]} == {"theirs", "mine"}
        assert record["decision"] == reply and reply.body == _stored_reply(trail, reply)
        assert trail.lead("L-1")["last_decision_id"] == reply["decision_id"]
        assert trail.verify() == []
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == 3 and all(r["identical"] for r in results), results


def test_a_prepared_decision_whose_lead_moved_on_refers_to_what_is_stored_now(tmp_path, default, registry):
    """At the audit floor: a decision prepared for a lead at one version and recorded after another
    decision of the lead has its facts' reference made again (the `$parts` holder is the lead's
    current one), and a frame made with dictionaries the codec has since replaced is made again."""
    db = tmp_path / "a.db"
    with AuditTrail(db) as trail, AuditTrail(db) as other:
        decide(
            default,
            trail,
            {"lead_id": "L-1", "profile": {"country": "US"}, "answers": {"need": "yes"}},
            at=AT,
        )
        state = trail.lead_state("L-1")
        evaluation = default.evaluate({**state.facts, "channel": "web"}, AT)
        item = {"facts": evaluation.facts, "decision": {**evaluation.decision, "assignment": None}}
        prepared = trail.prepare(state.version, **item, source=default.source, request={"lead_id": "L-1"})
        assert prepared.frames is not None and prepared.item["holder"] is not None
        decide(default, other, {"lead_id": "L-1", "profile": {"employees": 900}}, at=AT)  # new profile
        codec, digest = codec_for(trail.db), default.identity["digest"]
        source, sample = trail.db.execute(
            "SELECT source, sample FROM rulesets WHERE digest = ?", (digest,)
        ).fetchone()
        codec.know(digest, source, sample)  # the same dictionaries, learned again: a new object
        assert not codec.holds(digest, prepared.dictionaries)
        with trail.deciding("L-1") as uow:
            reply = uow.record(prepared)
        record = trail.decision(reply["decision_id"])
        assert record["facts"] == evaluation.facts  # rebuilt exactly, whatever it refers to
        assert "$parts" not in _text(trail, reply)  # the holder's profile is no longer the lead's
        assert trail.verify() == []
        assert all(r["identical"] for r in replay_range(trail, evaluator(registry)))


def _row(trail, reply) -> tuple:
    return trail.db.execute(
        "SELECT facts, decision, ruleset_digest FROM decisions WHERE id = ?", (reply["decision_id"],)
    ).fetchone()


def _text(trail, reply) -> str:
    facts, _, digest = _row(trail, reply)
    return codec_for(trail.db).unpack(facts, digest)


def _stored_reply(trail, reply) -> str:
    _, decision, digest = _row(trail, reply)
    return codec_for(trail.db).unpack(decision, digest)


def test_the_owners_read_under_the_lock_are_those_the_assignments_view_gives(tmp_path, default):
    """The owners and counts of an assignment are read from the view's two tables on their own
    indexes (audit.assignment): the same values as through the view, rows from before m013 included."""
    teams = load_teams(TEAMS)
    with AuditTrail(tmp_path / "a.db") as trail:
        for i in range(12):
            decide(default, trail, hand_off(i, "acme.io" if i % 3 == 0 else None), at=AT, teams=teams)
        with trail.unit_of_work():
            trail.db.execute(  # an assignment kept from before m013: the view reads it too
                "INSERT INTO assignments_before (id, lead_id, team, owner, basis, domain, period, at, "
                "recorded_at) VALUES (100000, 'A-1', 'account-executives', 'kim', 'round_robin', "
                "'acme.io', '2026-11-23', ?, ?)",
                (AT, AT),
            )
        view = """SELECT
          (SELECT owner FROM assignments WHERE lead_id = :lead AND team = :team AND owner IS NOT NULL
             ORDER BY id DESC LIMIT 1),
          (SELECT owner FROM assignments WHERE domain = :domain AND team = :team AND owner IS NOT NULL
             ORDER BY id DESC LIMIT 1),
          (SELECT json_group_object(owner, n) FROM (SELECT owner, count(*) AS n FROM assignments
             WHERE team = :team AND period = :period AND owner IS NOT NULL GROUP BY owner))"""
        cases = [
            {"lead": lead, "team": "account-executives", "domain": domain, "period": period}
            for lead in ("A-0", "A-1", "A-2", "nobody")
            for domain in ("acme.io", None, "other.io")
            for period in ("2026-11-23", "2026-11-24")
        ]
        for params in cases:
            ours = trail.db.execute(audit.assignment.OWNERS, params).fetchone()
            theirs = trail.db.execute(view, params).fetchone()
            assert ours[:2] == theirs[:2] and json.loads(ours[2]) == json.loads(theirs[2]), params
        assert any(json.loads(trail.db.execute(audit.assignment.OWNERS, p).fetchone()[2]) for p in cases)
        a1 = next(p for p in cases if p["lead"] == "A-1")
        assert trail.db.execute(audit.assignment.OWNERS, a1).fetchone()[0] == "kim"  # the row from before


def test_each_group_commit_tells_its_turn_at_the_lock_and_a_failing_observer_fails_nothing(tmp_path, default):
    with AuditTrail(tmp_path / "a.db") as trail:
        seen = []

        def observer(*figures):
            seen.append(figures)
            raise RuntimeError("a metrics file that cannot be written")

        trail.observe_write_lock(observer)
        reply = decide(default, trail, {"lead_id": "L-1", "profile": {"country": "US"}}, at=AT)[0]
        assert trail.decision(reply["decision_id"])["decision"] == reply  # committed, and answered
        ((waited, held, cpu, blocks),) = seen
        assert blocks == 1 and waited >= 0 and held > 0 and cpu > 0
