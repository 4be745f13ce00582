"""The audit trail: what is stored, the write path, reads, why, replay, tamper evidence, privacy."""

from __future__ import annotations

import json
import sqlite3

import pytest

from audit import AuditTrail, NotFound, StorageUnavailable, recording
from audit.codec import codec_for
from audit.migrations import migrations
from audit.queries import export, list_decisions, timeline
from audit.replay import replay, replay_range
from audit.rows import insert
from audit.schema import connect, version
from audit.secrets import Secrets
from audit.why import explain, render
from service.decide import decide, evaluator
from tests.conftest import lead, unclosed_connections
from tests.postgres import stored_bytes

ANA = {
    "email": "ana.lopez@acme.io",
    "first_name": "Ana",
    "country": "US",
    "industry": "software",
    "employees": 200,
    "seniority": "vp",
}


@pytest.fixture
def trail(audit_db, tmp_path):
    """A trail on each backend (tests/postgres.py); a PostgreSQL trail names its key file."""
    with AuditTrail(audit_db, secrets=Secrets(tmp_path / "audit.key")) as t:
        yield t


def demo(trail, default, at="2026-11-23T10:00:00Z", **parts):
    return decide(default, trail, lead(lead_id=parts.pop("lead_id", "L1"), **parts), at=at, client="test")[0]


def count(trail, table) -> int:
    return trail.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- schema ---------------------------------------------------------------------------------------


def test_connection_settings(tmp_path):
    with AuditTrail(tmp_path / "audit.db") as trail:
        pragma = lambda name: trail.db.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 30000
        assert pragma("synchronous") == 2  # FULL: an acknowledged decision survives a power cut


def test_normal_durability_is_a_choice(tmp_path):
    with AuditTrail(tmp_path / "n.db", durability="normal") as trail:
        assert trail.db.execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(ValueError, match="durability must be one of full, normal"):
        AuditTrail(tmp_path / "x.db", durability="fast")


def test_a_trail_that_cannot_open_closes_its_connection_at_once(tmp_path):
    """Issue 21: a bad personal-data mode was refused after the connection opened, which was then left
    to the garbage collector."""

    def bad_mode():
        with pytest.raises(ValueError, match="personal data mode must be one of"):
            AuditTrail(tmp_path / "m.db", personal_mode="bogus")

    assert unclosed_connections(bad_mode) == []


@pytest.mark.parametrize("applied", range(len(migrations._migrations)))
def test_migrates_from_every_earlier_version(tmp_path, applied):
    from sqlite_utils import Database

    path = tmp_path / "old.db"
    old = Database(path)
    names = [m.name for m in migrations._migrations]
    if applied:
        migrations.apply(old, stop_before=names[applied])
    assert len(migrations.applied(old)) == applied
    old.close()
    db = connect(path)
    try:
        assert version(db) == len(names)
        assert {"decisions", "chain", "leads", "events", "personal_notes", "rulesets"} <= set(
            db.table_names()
        )
        # derived from the decisions and the leads since m013
        assert {"stage_history", "handoffs", "assignments", "personal"} <= set(db.view_names())
    finally:
        db.close()


def test_keys_from_before_key_chaining_are_chained_as_they_stand(tmp_path):
    from sqlite_utils import Database

    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m006_coverage")
    for key_id, revoked in (("aaaaaaaaaaaa", None), ("bbbbbbbbbbbb", "2026-01-02T00:00:00Z")):
        old["api_keys"].insert(
            {
                "id": key_id,
                "name": "old",
                "scope": "review",
                "secret_hash": "h",
                "created_at": "2026-01-01T00:00:00Z",
                "revoked_at": revoked,
            }
        )
    old.close()
    with AuditTrail(path) as trail:
        assert trail.verify() == []
        assert [r[0] for r in trail.db.execute("SELECT action FROM key_events")] == ["adopted", "adopted"]
        trail.db.execute("UPDATE api_keys SET revoked_at = NULL WHERE id = 'bbbbbbbbbbbb'")
        assert any("key bbbbbbbbbbbb was changed outside the trail: revoked_at" in p for p in trail.verify())


# -- write path -----------------------------------------------------------------------------------


def test_a_decision_is_stored_with_everything_needed_to_explain_and_replay_it(trail, default):
    body = demo(
        trail,
        default,
        profile=ANA,
        channel="demo_form",
        events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "f1"}],
    )
    record = trail.decision(body["decision_id"])
    assert record["decision"] == body
    assert record["client"] == "test" and record["channel"] == "demo_form"
    assert record["ruleset"] == {"name": "default", "version": default.version, "digest": default.digest}
    assert record["facts"]["events"] == [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "f1"}]
    assert record["input"]["lead_id"] == "L1" and record["latency_ms"] > 0
    assert trail.ruleset_source(default.digest) == default.source
    assert trail.lead("L1")["stage"] == body["stage"]


def test_facts_accumulate_and_an_event_sent_twice_counts_once(trail, default):
    demo(
        trail,
        default,
        profile=ANA,
        events=[{"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z", "id": "p1"}],
    )
    body = demo(
        trail,
        default,
        answers={"budget": "yes"},
        events=[
            {"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z", "id": "p1"},
            {"type": "page_view", "at": "2026-11-22T11:00:00Z"},
            {"type": "page_view", "at": "2026-11-22T11:00:00+00:00"},
        ],
    )
    facts = trail.lead_facts("L1")
    assert facts["profile"]["email"] == ANA["email"] and facts["answers"] == {"budget": "yes"}
    assert [e["type"] for e in facts["events"]] == ["pricing_page_view", "page_view"]
    assert count(trail, "events") == 2
    assert body["qualification"]["budget"] == "met"


def test_a_preview_is_recorded_but_changes_nothing_about_the_lead(trail, default):
    demo(trail, default, profile=ANA)
    before = trail.lead("L1")
    preview, _ = decide(
        default,
        trail,
        lead(lead_id="L1", events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}]),
        at="2026-11-23T10:00:00Z",
        kind="preview",
    )
    assert trail.decision(preview["decision_id"])["kind"] == "preview"
    assert trail.lead("L1") == before
    assert trail.lead_facts("L1")["events"] == []


def test_stage_changes_are_kept_as_history(trail, default):
    demo(trail, default, profile=ANA, events=[{"type": "webinar_attended", "at": "2026-11-20T10:00:00Z"}])
    demo(
        trail,
        default,
        events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
        answers={"budget": "yes"},
    )
    rows = trail.db.execute("SELECT from_stage, to_stage FROM stage_history ORDER BY id").fetchall()
    assert rows == [(None, "lead"), ("lead", "sql")]


def test_a_failed_write_leaves_nothing_half_written(trail, default, monkeypatch):
    demo(trail, default, profile=ANA)
    tables = ("decisions", "chain", "leads", "events", "stage_history", "personal")
    before = {t: count(trail, t) for t in tables}

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(recording, "_update_lead", disk_full)
    with pytest.raises(StorageUnavailable, match="disk is full"):
        demo(
            trail,
            default,
            lead_id="L2",
            profile={"country": "US"},
            events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
        )
    assert {t: count(trail, t) for t in tables} == before
    assert trail.verify() == []


def test_a_read_only_database_refuses_to_record(tmp_path, default):
    path = tmp_path / "ro.db"
    with AuditTrail(path) as trail:
        trail.db.execute("PRAGMA query_only = ON")
        with pytest.raises(StorageUnavailable, match="cannot be written"):
            demo(trail, default, profile=ANA)
        assert count(trail, "decisions") == 0


# -- reads ----------------------------------------------------------------------------------------


def test_timeline_shows_what_changed_between_decisions(trail, default):
    demo(
        trail,
        default,
        profile=ANA,
        events=[{"type": "webinar_attended", "at": "2026-11-20T10:00:00Z"}],
        at="2026-11-21T10:00:00Z",
    )
    demo(
        trail,
        default,
        events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}],
        answers={"budget": "yes"},
    )
    items = timeline(trail, "L1").items
    assert [i["stage"] for i in items] == ["sql", "lead"]
    assert items[1]["changes"] == {"first": True}
    change = items[0]["changes"]
    assert change["stage"] == {"from": "lead", "to": "sql"}
    assert change["route"] == {"from": "nurture_accelerate", "to": "sales_handoff"}
    assert "eng-demo-request" in change["newly_fired"] and change["scores"]["engagement"] > 0


def test_listing_filters_and_pages(trail, default):
    for i in range(7):
        demo(
            trail,
            default,
            lead_id=f"L{i}",
            profile={"country": "US" if i % 2 else "BR", "email": f"x{i}@acme.io"},
            events=[{"type": "free_trial", "at": "2026-11-22T10:00:00Z"}],
            channel="web" if i < 4 else "chat",
        )
    page = list_decisions(trail, {"stage": "not_a_lead"}, limit=2)
    assert [d["lead_id"] for d in page.items] == ["L6", "L4"]
    page = list_decisions(trail, {"stage": "not_a_lead"}, limit=2, before=page.next_before)
    assert [d["lead_id"] for d in page.items] == ["L2", "L0"] and page.next_before is None
    chat = list_decisions(trail, {"channel": "chat", "quadrant": "poor_fit_not_ready"}).items
    assert [d["lead_id"] for d in chat] == ["L6", "L5", "L4"]
    assert [d["lead_id"] for d in list_decisions(trail, {"channel": "chat", "stage": "lead"}).items] == ["L5"]
    assert list_decisions(trail, {"lead_id": "L1'; DROP TABLE decisions; --"}).items == []
    assert count(trail, "decisions") == 7
    with pytest.raises(ValueError, match="unknown filter"):
        list_decisions(trail, {"colour": "red"})


def test_export_jsonl_and_csv(trail, default):
    demo(trail, default, profile=ANA)
    demo(trail, default, lead_id="L2", profile={"country": "FR"})
    lines = list(export(trail, {}, "jsonl"))
    assert [json.loads(x)["lead_id"] for x in lines] == ["L1", "L2"]
    assert "ana.lopez" not in "".join(lines)  # personal fields are tokens in every export
    rows = list(export(trail, {"lead_id": "L2"}, "csv"))
    assert rows[0].startswith("decision_id,seq,kind,lead_id") and ",L2," in rows[1] and len(rows) == 2


# -- why and replay -------------------------------------------------------------------------------


def test_why_adds_up_and_says_what_changed(trail, default):
    demo(trail, default, profile=ANA, events=[{"type": "webinar_attended", "at": "2026-11-20T10:00:00Z"}])
    demo(trail, default, events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}])
    why = explain(trail, "L1")
    for score in why["scores"].values():
        assert round(sum(x["points"] for x in score["breakdown"]), 2) == score["total"]
    assert why["routed_by"]["rule"] == "route-sales" and why["route"]["id"] == "sales_handoff"
    assert why["changes"]["newly_fired"][0] == "eng-demo-request"
    text = render(why)
    assert "Route: sales_handoff → sales (team account-executives), due by 2026-11-23T10:30:00Z" in text
    assert "newly fired: eng-demo-request" in text
    with pytest.raises(NotFound):
        explain(trail, "nobody")


def test_replay_gives_the_same_decision_even_after_the_ruleset_file_changes(trail, default, registry):
    body = demo(trail, default, profile=ANA, events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}])
    fresh = type(registry)()  # a process that never loaded the file: only the stored source is used
    result = replay(trail, body["decision_id"], evaluator(fresh))
    assert result == {"decision_id": body["decision_id"], "identical": True, "differences": []}


def test_replay_reports_a_difference(trail, default, registry):
    body = demo(trail, default, profile=ANA)
    stored = trail.decision(body["decision_id"])["decision"]
    stored["scores"]["fit"] = 99
    packed = codec_for(trail.db).pack(json.dumps(stored), stored["ruleset"]["digest"])  # stored as a frame
    trail.db.execute("UPDATE decisions SET decision = ?", (packed,))
    results = list(replay_range(trail, evaluator(registry)))
    assert results == [
        {"decision_id": body["decision_id"], "identical": False, "differences": ["scores.fit"]}
    ]


# -- tamper evidence ------------------------------------------------------------------------------


@pytest.fixture
def three(trail, default):
    ids = [demo(trail, default, lead_id=f"L{i}", profile={"country": "US"})["decision_id"] for i in range(3)]
    assert trail.verify() == []
    return ids


def test_verify_names_an_edited_row(trail, three):
    trail.db.execute("UPDATE decisions SET route = 'sales_handoff' WHERE id = ?", (three[1],))
    assert trail.verify() == [f"link 2 ({three[1]}): the decision it records was edited"]


def test_verify_names_a_deleted_row(trail, three):
    trail.db.execute("DELETE FROM decisions WHERE id = ?", (three[0],))
    # The derived rows of L0 now have no decision behind them: named too.
    assert trail.verify()[0] == f"link 1 ({three[0]}): the decision it records is gone (deleted)"
    assert "outside the chain (L0): lead L0 has no decision behind it (inserted)" in trail.verify()
    trail.db.execute("DELETE FROM chain WHERE seq = 1")
    assert trail.verify()[:2] == [
        f"link 2 ({three[1]}): links 1–1 are missing (deleted)",
        f"link 2 ({three[1]}): does not follow the link before it (a link was deleted, inserted or moved)",
    ]


def test_verify_names_an_inserted_row(trail, three):
    row = trail.db.execute("SELECT * FROM decisions WHERE id = ?", (three[2],)).fetchone()
    cols = [d[0] for d in trail.db.execute("SELECT * FROM decisions LIMIT 0").description]
    forged = dict(zip(cols, row, strict=True), id="dec_forged", seq=99, idempotency_key=None)
    insert(trail.db, "decisions", forged)
    assert trail.verify() == ["outside the chain (dec_forged): a decision row no link records (inserted)"]


def test_verify_names_reordered_rows(trail, three):
    trail.db.execute("UPDATE chain SET seq = -1 WHERE seq = 1")
    trail.db.execute("UPDATE chain SET seq = 1 WHERE seq = 2")
    trail.db.execute("UPDATE chain SET seq = 2 WHERE seq = -1")
    problems = trail.verify()
    assert problems and all(p.startswith(("link 1", "link 2", "link 3")) for p in problems)


# -- privacy --------------------------------------------------------------------------------------


def test_personal_fields_are_tokens_in_decisions(trail, default):
    body = demo(trail, default, profile=ANA)
    record = trail.decision(body["decision_id"])
    assert record["facts"]["profile"]["email"].startswith("pii:")
    assert record["input"]["profile"]["first_name"].startswith("pii:")
    assert record["facts"]["profile"]["country"] == "US"
    digest, *stored = trail.db.execute(
        "SELECT ruleset_digest, input, facts, decision FROM decisions"
    ).fetchone()
    row = [codec_for(trail.db).unpack(value, digest) for value in stored]  # the documents as stored
    assert "ana.lopez@acme.io" not in "".join(row) and "Ana" not in row[0]


def test_erasure_removes_personal_data_keeps_the_skeleton_and_the_chain(trail, default, registry):
    body = demo(trail, default, profile=ANA, events=[{"type": "demo_request", "at": "2026-11-23T09:00:00Z"}])
    assert b"ana.lopez@acme.io" in stored_bytes(trail)
    erasure = trail.erase("L1", requested_by="dpo@acme.io")
    assert erasure["removed"] == 2
    assert b"ana.lopez@acme.io" not in stored_bytes(trail)
    assert trail.verify() == []
    assert trail.decision(body["decision_id"])["decision"] == body
    assert "email" not in trail.lead_facts("L1")["profile"]
    result = replay(trail, body["decision_id"], evaluator(registry))
    assert result["erased_fields"] == ["email", "first_name"]
    link = trail.db.execute("SELECT kind, ref FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    assert link == ("erasure", erasure["id"])
    trail.db.execute("UPDATE erasures SET requested_by = 'nobody'")
    assert trail.verify() == [f"link 2 ({erasure['id']}): the erasure it records was edited"]


def test_drop_mode_keeps_no_personal_value_at_all(tmp_path, default):
    with AuditTrail(tmp_path / "drop.db", personal_mode="drop") as trail:
        body = demo(trail, default, profile=ANA)
        assert "email" not in trail.decision(body["decision_id"])["facts"]["profile"]
        assert count(trail, "personal") == 0 and b"ana.lopez" not in stored_bytes(trail)
