"""What one decision costs inside its write transaction, counted with sqlite3's trace callback.

Every statement the connection runs between BEGIN IMMEDIATE and COMMIT is counted (each execution
the callback reports: a multi-row INSERT is one, executemany would be one per row); BEGIN and COMMIT
themselves are not. The lead is read once, before the lock; under it one statement reads its version,
stage, open hand-off and the chain's head. The reply is the stored document (`body`).
"""

from __future__ import annotations

import json

import pytest

import audit.trail
from audit import AuditTrail, schema
from engine.teams import load_teams
from service.decide import decide
from tests.test_assignment import TEAMS, hand_off

AT = "2026-11-23T10:00:00Z"


@pytest.fixture
def counted(tmp_path, default, monkeypatch):
    """(trail, decide_counted): decide_counted(request, **kw) -> (reply, statements in the write lock).

    Reads outside the write block run on read connections (audit.trail): they are traced too."""
    traced: list[str] = []

    def traced_reader(path):
        conn = schema.reader(path)
        conn.set_trace_callback(traced.append)
        return conn

    monkeypatch.setattr(audit.trail, "reader", traced_reader)
    with AuditTrail(tmp_path / "a.db", durability="normal", personal_fields=("email", "first_name")) as trail:
        trail.db.conn.set_trace_callback(traced.append)
        # The first decision of a ruleset version in a process also stores its source (once).
        decide(default, trail, {"lead_id": "warm", "profile": {"country": "US"}}, at=AT)

        def run(request, **kw):
            traced.clear()
            reply = decide(default, trail, request, at=AT, **kw)[0]
            begin, commit = traced.index("BEGIN IMMEDIATE"), traced.index("COMMIT")
            outside = traced[:begin]
            return reply, traced[begin + 1 : commit], outside

        yield trail, run
        trail.db.conn.set_trace_callback(None)


def kinds(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:4]) for s in statements]


def test_a_new_lead(counted):
    _, run = counted
    request = {
        "lead_id": "N-1",
        "profile": {"country": "US", "employees": 300},
        "events": [{"type": "page_view", "at": "2026-11-23T09:00:00Z", "properties": {"path": "/a"}}] * 1
        + [{"type": "email_open", "at": f"2026-11-23T09:0{i}:00Z", "id": f"o{i}"} for i in range(5)],
    }
    _, inside, outside = run(request)
    assert len(outside) == 1, outside  # the one read of the lead's state
    # head, chain, decision, lead, events (six in one statement), outbox: the stage history is a
    # view over the decisions (m013)
    assert len(inside) <= 6, kinds(inside)
    assert sum("INTO events" in s for s in inside) == 1


def test_an_existing_lead_with_many_events(counted):
    trail, run = counted
    events = [{"type": "email_open", "at": "2026-11-23T08:00:00Z", "id": f"e{i}"} for i in range(300)]
    first, _, _ = run({"lead_id": "E-1", "profile": {"country": "US"}, "events": events})
    reply, inside, outside = run(
        {"lead_id": "E-1", "events": [{"type": "email_open", "at": "2026-11-23T09:30:00Z"}]}
    )
    assert reply["stage"] == first["stage"]  # no stage change: no history, no outbox
    assert len(outside) == 1
    # head, chain, decision, lead, the one new event: the 300 stored ones are not written again
    assert len(inside) <= 5, kinds(inside)
    assert len(trail.lead_facts("E-1")["events"]) == 301


def test_a_hand_off_with_assignment_and_outbox(counted):
    _, run = counted
    reply, inside, _ = run(hand_off(1), teams=load_teams(TEAMS))
    assert reply["assignment"]["owner"] == "sam" and reply["route"]["due_at"]
    # head with the assignment's owners and counts, chain, decision (its hand-off, assignment and
    # stage change are columns of its row, m013), lead (with the kept email), event, outbox (two
    # events, one statement)
    assert len(inside) <= 6, kinds(inside)
    assert not any("INTO assignments" in s or "INTO handoffs" in s for s in inside)
    assert sum("INTO outbox" in s for s in inside) == 1


def test_a_decision_with_personal_fields(counted):
    trail, run = counted
    profile = {"email": "ana@example.com", "first_name": "Ana", "country": "US"}
    _, inside, _ = run({"lead_id": "P-1", "profile": profile})
    assert len(inside) <= 6, kinds(inside)
    assert not any("INTO personal" in s for s in inside)  # both values are kept in the lead's row
    _, inside, _ = run({"lead_id": "P-1", "answers": {"budget": "yes"}})
    assert len(inside) <= 6, kinds(inside)
    assert trail.lead_facts("P-1")["profile"]["email"] == "ana@example.com"


def test_the_reply_is_the_stored_document(counted, default):
    trail, run = counted
    reply, _, _ = run({"lead_id": "B-1", "profile": {"country": "US"}})
    assert json.loads(reply.body) == reply
    assert trail.decision(reply["decision_id"])["decision"] == reply
    # A retry under the same Idempotency-Key gets the same stored text.
    first, _ = decide(default, trail, {"lead_id": "B-2"}, at=AT, idempotency_key="k1")
    again, replayed = decide(default, trail, {"lead_id": "B-2"}, at=AT, idempotency_key="k1")
    assert replayed and again.body == first.body


def test_the_request_id_is_stored_and_chained(counted):
    trail, run = counted
    reply, _, _ = run({"lead_id": "R-1"}, request_id="req-42")
    assert trail.decision(reply["decision_id"])["request_id"] == "req-42"
    assert trail.verify() == []
    trail.db.execute("UPDATE decisions SET request_id = 'forged' WHERE id = ?", (reply["decision_id"],))
    assert any("was edited" in p for p in trail.verify())


def test_an_idempotency_key_is_looked_up_in_one_statement(counted):
    """A key's first use is read from both places it may be kept (the idempotency table, a decision
    row) in one statement under the lock: a new key costs one read more than no key, a retry one read."""
    _, run = counted
    _, plain, _ = run({"lead_id": "K-0"})
    reply, keyed, _ = run({"lead_id": "K-1"}, idempotency_key="k-new")
    assert len(keyed) == len(plain) + 1 <= 6, kinds(keyed)
    again, retried, _ = run({"lead_id": "K-1"}, idempotency_key="k-new")
    assert again.body == reply.body and len(retried) == 1, kinds(retried)
