"""Compact storage (audit.compact, audit.codec, migration 11): a decision stores what is new and
refers to what is stored, yet every record reads back, verifies and replays exactly as before.

tests/data/v10.db was recorded by the code of commit bdf37f5 (schema at migration 9, before
compact storage): hand-offs with assignments, personal fields, free text with a phone number, a
preview, an outcome, an erasure and a lead with 20 events, decided twice.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3

import pytest

from audit import AuditTrail
from audit.codec import codec_for
from audit.replay import replay_range
from service.decide import decide, evaluator

FIXTURE = "tests/data/v10.db"
AT = "2026-11-23T10:00:00Z"


@pytest.fixture
def old(tmp_path):
    target = tmp_path / "v10.db"
    shutil.copy(FIXTURE, target)
    shutil.copy(f"{FIXTURE}.key", f"{target}.key")
    return target


def documents(path) -> dict[str, tuple]:
    """Every decision's documents as the old code stored them (text), read without leadgate."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT id, input, facts, decision FROM decisions ORDER BY seq").fetchall()
    return {i: tuple(json.loads(d) if d else None for d in docs) for i, *docs in rows}


def test_an_old_file_migrates_and_reads_verifies_and_replays_identically(old, registry):
    before = documents(old)
    assert len(before) == 11
    with AuditTrail(old) as trail:
        assert trail.verify() == []
        for decision_id, (request, facts, decision) in before.items():
            record = trail.decision(decision_id)
            assert (record["input"], record["facts"], record["decision"]) == (request, facts, decision)
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == 11 and all(r["identical"] for r in results), results
        # Stored compressed now: every document is a zstd frame, smaller than its text.
        kinds = trail.db.execute("SELECT DISTINCT typeof(decision), typeof(facts) FROM decisions").fetchall()
        assert kinds == [("blob", "blob")]


def test_a_migrated_file_keeps_deciding_compactly(old, registry, default):
    with AuditTrail(old) as trail:
        more = {"lead_id": "LONG", "events": [{"type": "email_open", "at": "2026-11-23T09:59:00Z"}]}
        reply = decide(default, trail, more, at=AT)[0]
        decide(default, trail, {"lead_id": "A-1", "answers": {"timeline": "now"}}, at=AT)
        decide(default, trail, {"lead_id": "LONG", "answers": {"need": "yes"}}, at=AT, kind="preview")
        assert trail.verify() == []
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == 14 and all(r["identical"] for r in results), results
        facts = trail.decision(reply["decision_id"])["facts"]
        assert len(facts["events"]) == 21 and facts["events"] == sorted(
            facts["events"], key=lambda e: (e["at"], e["id"])
        )
        digest, stored = trail.db.execute(
            "SELECT ruleset_digest, facts FROM decisions WHERE id = ?", (reply["decision_id"],)
        ).fetchone()
        doc = json.loads(codec_for(trail.db).unpack(stored, digest))
        assert "events" not in doc and [e["type"] for e in doc["$new"]] == ["email_open"]


def stored_bytes(trail, decision_id: str) -> int:
    """What one decision wrote: its row (every column as stored), its chain link, its new events."""
    row = trail.db.execute(
        "SELECT "
        + " + ".join(f"coalesce(length({c}), 0)" for c in columns(trail))
        + " FROM decisions WHERE id = ?",
        (decision_id,),
    ).fetchone()[0]
    link = trail.db.execute(
        "SELECT length(kind) + length(ref) + length(at) + length(payload_hash) + length(prev_hash) + "
        "length(hash) + 8 FROM chain WHERE ref = ?",
        (decision_id,),
    ).fetchone()[0]
    events = trail.db.execute(
        "SELECT coalesce(sum(length(lead_id) + length(event_id) + length(type) + length(at) + "
        "length(properties) + length(first_seen_at) + length(decision_id)), 0) FROM events WHERE decision_id = ?",
        (decision_id,),
    ).fetchone()[0]
    return row + link + events


def columns(trail) -> list[str]:
    return [r[1] for r in trail.db.execute("PRAGMA table_info(decisions)")]


def test_a_decision_on_a_lead_with_2000_events_stores_under_16_kib(tmp_path, default, registry):
    events = [
        {
            "type": "page_view",
            "at": f"2026-11-{1 + i // 100:02d}T{(i // 4) % 24:02d}:{i % 60:02d}:00Z",
            "id": f"v{i}",
            "properties": {"path": f"/docs/page-{i}"},
        }
        for i in range(2000)
    ]
    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        decide(default, trail, {"lead_id": "BIG", "profile": {"country": "US"}, "events": events}, at=AT)
        request = {"lead_id": "BIG", "answers": {"need": "yes"}}
        assert len(json.dumps(request, separators=(",", ":"))) < 50  # a small request
        reply = decide(default, trail, request, at=AT)[0]
        size = stored_bytes(trail, reply["decision_id"])
        print(f"a decision on a lead with 2,000 events stores {size} bytes")
        assert size <= 16 * 1024, size
        record = trail.decision(reply["decision_id"])
        assert len(record["facts"]["events"]) == 2000
        # What the old format stored for it: the whole facts as text, about 300 KiB.
        assert len(json.dumps(record["facts"], separators=(",", ":"))) > 100 * 1024
        assert trail.verify() == []
        assert all(r["identical"] for r in replay_range(trail, evaluator(registry)))


def test_an_edited_referenced_event_is_named_with_the_decisions_that_used_it(tmp_path, default):
    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        first = decide(
            default,
            trail,
            {"lead_id": "L", "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "d1"}]},
            at=AT,
        )[0]
        decide(default, trail, {"lead_id": "L", "answers": {"need": "yes"}}, at=AT)
        trail.db.execute("UPDATE events SET type = 'email_open' WHERE event_id = 'd1'")
        problems = trail.verify()
        assert any(first["decision_id"] in p and "event d1 of L was edited (type)" in p for p in problems), (
            problems
        )
        trail.db.execute("UPDATE events SET type = 'demo_request' WHERE event_id = 'd1'")
        assert trail.verify() == []
        codec = codec_for(trail.db)
        digest, stored = trail.db.execute(
            "SELECT ruleset_digest, summary FROM decisions WHERE id = ?", (first["decision_id"],)
        ).fetchone()
        edited = codec.pack(codec.unpack(stored, digest).replace("fit", "fat"), digest)
        trail.db.execute("UPDATE decisions SET summary = ? WHERE id = ?", (edited, first["decision_id"]))
        assert any("its summary differs from its reply" in p for p in trail.verify())


def test_a_source_stored_by_a_reload_gets_its_sample_from_the_first_decision(tmp_path, default):
    from audit import deployments

    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        deployments.record_reload(
            trail, {"default": default.identity["digest"]}, [(default.identity, default.source)], [], "test"
        )
        stored = trail.db.execute(
            "SELECT sample FROM rulesets WHERE digest = ?", (default.identity["digest"],)
        )
        assert stored.fetchone() == (None,)  # the reload stores the source alone
        reply = decide(default, trail, {"lead_id": "L", "profile": {"country": "US"}}, at=AT)[0]
        sample = trail.db.execute(
            "SELECT sample FROM rulesets WHERE digest = ?", (reply["ruleset"]["digest"],)
        )
        assert json.loads(sample.fetchone()[0]) == reply
        decide(default, trail, {"lead_id": "M"}, at=AT)
        assert trail.verify() == [] and trail.decision(reply["decision_id"])["decision"] == reply


def test_threads_sharing_a_trail_read_and_write_compressed_records(tmp_path, default):
    """zstandard's objects are not thread-safe; a worker's threads share one trail (and its codec)."""
    from concurrent.futures import ThreadPoolExecutor

    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        first = decide(default, trail, {"lead_id": "T-0", "profile": {"country": "US"}}, at=AT)[0]

        def work(i):
            reply = decide(default, trail, {"lead_id": f"T-{i % 5}", "answers": {"need": "yes"}}, at=AT)[0]
            assert trail.decision(first["decision_id"])["decision"] == first
            return trail.decision(reply["decision_id"])["decision"] == reply

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(work, range(80)))
        assert trail.verify() == []
