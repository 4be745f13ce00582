"""Compact storage (audit.compact, audit.codec, migration 11): a decision stores what is new and
refers to what is stored, yet every record reads back, verifies and replays exactly as before.

tests/data/v10.db was recorded by the code of commit bdf37f5 (schema at migration 9, before
compact storage): hand-offs with assignments, personal fields, free text with a phone number, a
preview, an outcome, an erasure and a lead with 20 events, decided twice.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from audit import AuditTrail
from audit.codec import codec_for
from audit.replay import replay_range
from service.decide import decide, evaluator

AT = "2026-11-23T10:00:00Z"


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


def stored_doc(trail, decision_id: str) -> dict:
    digest, stored = trail.db.execute(
        "SELECT ruleset_digest, facts FROM decisions WHERE id = ?", (decision_id,)
    ).fetchone()
    return json.loads(codec_for(trail.db).unpack(stored, digest))


def test_follow_up_calls_refer_to_the_profile_and_answers_they_did_not_change(tmp_path, default, registry):
    profile = {"country": "US", "employees": 300, "email": "ana@example.com"}
    with AuditTrail(tmp_path / "a.db", durability="normal", personal_fields=("email",)) as trail:
        first = decide(
            default, trail, {"lead_id": "C", "profile": profile, "answers": {"need": "yes"}}, at=AT
        )[0]
        same = decide(default, trail, {"lead_id": "C", "channel": "chatbot"}, at=AT)[0]
        changed = decide(default, trail, {"lead_id": "C", "answers": {"budget": "yes"}}, at=AT)[0]
        after = decide(default, trail, {"lead_id": "C"}, at=AT)[0]
        preview = decide(default, trail, {"lead_id": "C"}, at=AT, kind="preview")[0]
        seq = {r["decision_id"]: trail.decision(r["decision_id"])["seq"] for r in (first, changed)}
        docs = {r["decision_id"]: stored_doc(trail, r["decision_id"]) for r in (first, same, changed, after)}
        assert "profile" in docs[first["decision_id"]] and "$parts" not in docs[first["decision_id"]]
        assert (
            docs[same["decision_id"]]["$parts"] == seq[first["decision_id"]]
            and "profile" not in docs[same["decision_id"]]
        )
        assert "$parts" not in docs[changed["decision_id"]]  # its answers changed: it holds them
        assert docs[after["decision_id"]]["$parts"] == seq[changed["decision_id"]]
        assert stored_doc(trail, preview["decision_id"])["$parts"] == seq[changed["decision_id"]]
        record = trail.decision(after["decision_id"])
        assert record["facts"]["answers"] == {"need": "yes", "budget": "yes"}
        assert record["facts"]["profile"]["country"] == "US"
        assert trail.verify() == []
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == 5 and all(r["identical"] for r in results), results


def test_an_edited_profile_version_is_named_with_every_decision_that_refers_to_it(tmp_path, default):
    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        first = decide(default, trail, {"lead_id": "C", "profile": {"country": "US"}}, at=AT)[0]
        later = [decide(default, trail, {"lead_id": "C"}, at=AT)[0] for _ in range(2)]
        assert all("$parts" in stored_doc(trail, r["decision_id"]) for r in later)
        codec = codec_for(trail.db)
        doc = stored_doc(trail, first["decision_id"])
        doc["profile"]["country"] = "FR"
        edited = codec.pack(json.dumps(doc, separators=(",", ":")), first["ruleset"]["digest"])
        trail.db.execute("UPDATE decisions SET facts = ? WHERE id = ?", (edited, first["decision_id"]))
        problems = trail.verify()
        assert any(first["decision_id"] in p and "was edited" in p for p in problems), problems
        for r in later:
            assert any(
                r["decision_id"] in p and f"profile and answers of {first['decision_id']}" in p
                for p in problems
            ), problems
        assert trail.decision(later[0]["decision_id"])["facts"]["profile"] == {"country": "FR"}


def test_a_holder_written_by_a_transaction_that_rolled_back_is_never_referred_to(tmp_path, default, registry):
    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        decide(default, trail, {"lead_id": "R", "profile": {"country": "US"}}, at=AT)
        with pytest.raises(RuntimeError), trail.unit_of_work():
            decide(default, trail, {"lead_id": "R", "profile": {"country": "DE"}}, at=AT)
            raise RuntimeError("rolled back")
        reply = decide(default, trail, {"lead_id": "R", "profile": {"country": "DE"}}, at=AT)[0]
        assert "$parts" not in stored_doc(trail, reply["decision_id"])
        again = decide(default, trail, {"lead_id": "R"}, at=AT)[0]
        assert (
            stored_doc(trail, again["decision_id"])["$parts"] == trail.decision(reply["decision_id"])["seq"]
        )
        assert trail.verify() == []
        assert all(r["identical"] for r in replay_range(trail, evaluator(registry)))


def test_migration_14_makes_the_second_dictionaries_and_raw_hashes_of_an_old_file(old, registry, monkeypatch):
    import audit.compact

    monkeypatch.setattr(audit.compact, "SAMPLES", 8)  # the fixture has 11 decisions, not 16
    before = documents(old)
    with contextlib.closing(sqlite3.connect(old)) as conn:  # the fixture as migration 13 would leave it
        heads = conn.execute("SELECT seq, hash FROM chain ORDER BY seq").fetchall()
    with AuditTrail(old) as trail:
        assert "m014_compact_references" in {m["name"] for m in trail.db["_sqlite_migrations"].rows}
        # 8 decisions of the default ruleset: its second dictionary, and every document compressed with it
        samples = trail.db.execute("SELECT count(samples) FROM rulesets").fetchone()[0]
        versions = {bytes(r[0])[:1] for r in trail.db.execute("SELECT decision FROM decisions")}
        assert samples >= 1 and versions <= {b"\x01", b"\x02"} and b"\x02" in versions
        stored = trail.db.execute("SELECT seq, hash FROM chain ORDER BY seq").fetchall()
        assert [(s, h.hex()) for s, h in stored] == heads and all(len(h) == 32 for _, h in stored)
        for decision_id, (request, facts, decision) in before.items():
            record = trail.decision(decision_id)
            assert (record["input"], record["facts"], record["decision"]) == (request, facts, decision)
        assert trail.verify() == []
        assert all(r["identical"] for r in replay_range(trail, evaluator(registry)))


def test_the_writer_makes_the_second_dictionary_and_adopts_it_once_read_back(tmp_path, default, registry):
    from audit.codec import SAMPLES

    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:
        replies = [
            decide(
                default,
                trail,
                {"lead_id": f"D-{i}", "profile": {"country": "US"}, "answers": {"need": f"{i} x"}},
                at=AT,
            )[0]
            for i in range(SAMPLES + 2)
        ]
        samples = trail.db.execute("SELECT samples FROM rulesets").fetchone()[0]
        assert '"need":""' in samples and "1 x" not in samples  # the shape of the facts, not their free text
        versions = [bytes(r[0])[:1] for r in trail.db.execute("SELECT decision FROM decisions ORDER BY seq")]
        # stored by the 16th decision's transaction, used from the next transaction on
        assert versions[:SAMPLES] == [b"\x01"] * SAMPLES and versions[SAMPLES + 1 :] == [b"\x02"]
        assert trail.verify() == []
        assert [trail.decision(r["decision_id"])["decision"] for r in replies] == replies
    with AuditTrail(tmp_path / "a.db", durability="normal") as trail:  # a new connection reads both
        assert [trail.decision(r["decision_id"])["decision"] for r in replies] == replies
        assert all(r["identical"] for r in replay_range(trail, evaluator(registry)))


def test_an_edited_second_dictionary_is_caught(tmp_path, default):
    from audit.codec import SAMPLES

    path = tmp_path / "a.db"
    with AuditTrail(path, durability="normal") as trail:
        for i in range(SAMPLES + 3):
            decide(default, trail, {"lead_id": f"D-{i}", "profile": {"country": "US"}}, at=AT)
        last = trail.db.execute("SELECT id FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()[0]
        trail.db.execute("UPDATE rulesets SET samples = replace(samples, 'fit', 'fat')")
    with AuditTrail(path, durability="normal") as trail:  # a new connection reads the edited samples
        problems = trail.verify()
        assert any(last in p and "was edited" in p for p in problems), problems


def test_a_closed_trail_leaves_no_codec_behind(tmp_path, default):
    """Each connection's codec holds its dictionaries (the ruleset's source and samples): one kept
    for every trail or read connection ever closed would grow a worker's memory without end."""
    import gc

    from audit import codec

    gc.collect()
    before = len(codec._codecs)  # other tests' trails still open
    for n in range(5):
        with AuditTrail(tmp_path / f"t{n}.db") as trail:
            decide(default, trail, {"lead_id": f"L{n}", "profile": {"company": "Acme"}}, at=AT)
            assert trail.lead(f"L{n}")["stage"]
    del trail  # the last one, closed
    gc.collect()
    assert len(codec._codecs) <= before
