"""The chain's payload formats (migration 15, audit/chain.py): a decision recorded since hashes its
documents' text as stored (format 2); links written before keep format 1 and verify and replay as
before; a link's format cannot be changed without verify naming the entry.

tests/data/v10.db was recorded by the code of commit bdf37f5, before migration 15 (see
tests/test_compact.py).
"""

from __future__ import annotations

from audit import AuditTrail, chain
from audit.codec import codec_for
from audit.replay import replay_range
from service.decide import decide, evaluator
from tests.test_compact import AT


def link(trail, ref: str) -> tuple:
    return trail.db.execute(
        "SELECT seq, kind, payload_format, payload_hash FROM chain WHERE ref = ?", (ref,)
    ).fetchone()


def text_row(trail, ref: str) -> dict:
    cursor = trail.db.execute("SELECT * FROM decisions WHERE id = ?", (ref,))
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    return codec_for(trail.db).text_row(row)


def test_a_new_decision_hashes_its_documents_as_stored(tmp_path, default):
    with AuditTrail(tmp_path / "a.db") as trail:
        reply = decide(default, trail, {"lead_id": "L1", "profile": {"country": "NL"}}, at=AT)[0]
        _, kind, format, stored = link(trail, reply["decision_id"])
        assert (kind, format) == ("decision", chain.TEXT_FORMAT)
        row = text_row(trail, reply["decision_id"])
        assert chain.hex_of(stored) == chain.payload_hash(kind, row, chain.TEXT_FORMAT)
        assert chain.hex_of(stored) != chain.payload_hash(kind, row)  # not format 1
        assert trail.verify() == []


def test_format_2_keeps_each_document_in_its_place():
    row = {"id": "dec_1", "input": '{"a":1}', "facts": '{"b":2}', "decision": "{}"}
    moved = {**row, "input": '{"a":1}{"b":2}', "facts": ""}  # the same characters, another split
    swapped = {**row, "input": row["facts"], "facts": row["input"]}
    hashes = {chain.payload_hash("decision", r, chain.TEXT_FORMAT) for r in (row, moved, swapped)}
    assert len(hashes) == 3
    # a document that is missing is not an empty one
    assert chain.payload_hash("decision", {**row, "input": None}, chain.TEXT_FORMAT) != chain.payload_hash(
        "decision", {**row, "input": ""}, chain.TEXT_FORMAT
    )


def test_an_old_file_keeps_its_links_and_new_decisions_take_format_2(old, registry, default):
    with AuditTrail(old) as trail:
        before = trail.db.execute(
            "SELECT seq, payload_hash, hash, payload_format FROM chain ORDER BY seq"
        ).fetchall()
        assert before and all(f is None for *_, f in before)  # migration 15 rewrote no hash
        reply = decide(default, trail, {"lead_id": "A-1", "answers": {"timeline": "now"}}, at=AT)[0]
        preview = decide(default, trail, {"lead_id": "N-1"}, at=AT, kind="preview")[0]
        after = trail.db.execute(
            "SELECT seq, payload_hash, hash, payload_format FROM chain ORDER BY seq"
        ).fetchall()
        assert after[: len(before)] == before
        assert (
            link(trail, reply["decision_id"])[2]
            == link(trail, preview["decision_id"])[2]
            == chain.TEXT_FORMAT
        )
        assert trail.verify() == []
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == 13 and all(r["identical"] for r in results), results


def test_a_changed_format_is_named_as_an_edit(old, default):
    with AuditTrail(old) as trail:
        reply = decide(default, trail, {"lead_id": "A-1", "answers": {"timeline": "now"}}, at=AT)[0]
        new = reply["decision_id"]
        old_ref = trail.db.execute(
            "SELECT ref FROM chain WHERE kind = 'decision' AND payload_format IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()[0]
        trail.db.execute("UPDATE chain SET payload_format = NULL WHERE ref = ?", (new,))
        trail.db.execute("UPDATE chain SET payload_format = 2 WHERE ref = ?", (old_ref,))
        problems = trail.verify()
        assert any(f"({new}): the decision it records was edited" in p for p in problems), problems
        assert any(f"({old_ref}): the decision it records was edited" in p for p in problems), problems


def test_an_edited_document_of_format_2_is_named(tmp_path, default):
    with AuditTrail(tmp_path / "a.db") as trail:
        reply = decide(default, trail, {"lead_id": "L1", "profile": {"country": "NL"}}, at=AT)[0]
        row = text_row(trail, reply["decision_id"])
        edited = row["decision"].replace('"stage":"', '"stage":"x', 1)
        assert edited != row["decision"]
        packed = codec_for(trail.db).pack(edited, row["ruleset_digest"])
        trail.db.execute("UPDATE decisions SET decision = ? WHERE id = ?", (packed, reply["decision_id"]))
        problems = trail.verify()
        assert any(f"({reply['decision_id']}): the decision it records was edited" in p for p in problems)
