"""Personal data in free text: named answers, event properties and notes, and emails and phone
numbers typed anywhere, are tokens in every stored record; an erasure leaves no raw copy on disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audit import AuditTrail
from audit.codec import codec_for
from audit.keys import create
from audit.personal import Personal, parse_fields
from audit.replay import replay
from service.decide import decide, evaluator
from tests.conftest import RULESETS

AT = "2026-11-23T10:00:00Z"
EMAIL, PHONE, OTHER_PHONE = "ana.lopez@acme.io", "+1 415 555 0100", "(415) 555-0199"
FIELDS = "email,first_name,last_name,phone,answers.need,events.contact,outcomes.note"
SECRETS = [
    EMAIL,
    PHONE,
    OTHER_PHONE,
    "4155550100",
    "555-0199",
    "ana.lopez",
    "Anastasia",
    "Zubrowska",
    "a second note",
]


def raw_bytes(path) -> bytes:
    files = [Path(path), Path(f"{path}-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def test_naming_personal_fields():
    assert parse_fields(["email", "profile.phone", "answers.phone", "events.contact", "outcomes.note"]) == {
        "profile": ("email", "phone"),
        "answers": ("phone",),
        "events": ("contact",),
        "outcomes": ("note",),
    }
    for wrong in ("answer.phone", "outcomes.reason", "events."):
        with pytest.raises(ValueError, match="use NAME or profile.NAME, answers.ID"):
            parse_fields([wrong])


def test_emails_and_phone_numbers_are_found_in_free_text_but_not_amounts_or_dates():
    personal = Personal(b"k" * 32, ("email",), "hash")
    kept: list = []
    text = f"mail {EMAIL} or call {PHONE} / {OTHER_PHONE}; budget 2500000 by 2026-11-23, ref 12-34"
    out = personal._scan(text, kept)
    assert EMAIL not in out and PHONE not in out and OTHER_PHONE not in out
    assert "2500000" in out and "2026-11-23" in out and "12-34" in out
    assert sorted(v for _, _, v in kept) == sorted([EMAIL, PHONE, OTHER_PHONE])
    assert personal.reveal_text(out, {t: v for t, _, v in kept}) == text


@pytest.fixture
def app(tmp_path, make_app):
    return make_app(db=str(tmp_path / "p.db"), rulesets=str(RULESETS), personal_fields=FIELDS)


def test_after_an_erasure_no_raw_copy_of_the_lead_remains_in_the_file(app, tmp_path, registry):
    db = app.config["LEADGATE_DB"]
    with AuditTrail(db, personal_fields=FIELDS.split(",")) as trail:
        key = create(trail, "crm", "decide")[1]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    lead = {
        "lead_id": "L-ana",
        "profile": {
            "email": EMAIL,
            "first_name": "Anastasia",
            "last_name": "Zubrowska",
            "phone": PHONE,
            "country": "US",
        },
        "answers": {
            "need": "a CRM, call me on 4155550100",
            "budget": "yes",
        },
        "events": [
            {
                "type": "info_request",
                "at": AT,
                "id": "e1",
                "properties": {"contact": "ana.lopez", "msg": f"write to {EMAIL} or ring {OTHER_PHONE}"},
            }
        ],
    }
    first = client.post("/v1/decisions", json=lead, headers=auth)
    assert first.status_code == 201, first.json
    assert client.post("/v1/preview", json=lead, headers=auth).status_code == 200
    batch = {"items": [{**lead, "answers": {"need": f"also {PHONE}"}}]}
    assert (
        client.post("/v1/decisions/batch", json=batch, headers={**auth, "Idempotency-Key": "b1"}).status_code
        == 201
    )
    outcome = {"type": "contacted", "at": AT, "note": f"reached {EMAIL} at {PHONE}"}
    reply = client.post("/v1/leads/L-ana/outcomes", json=outcome, headers={**auth, "Idempotency-Key": "o1"})
    assert reply.status_code == 201 and EMAIL not in str(reply.json)
    named = {"type": "meeting_held", "at": AT, "note": "a second note"}
    assert client.post("/v1/leads/L-ana/outcomes", json=named, headers=auth).status_code == 201

    with AuditTrail(db, personal_fields=FIELDS.split(",")) as trail:
        # Before the erasure the raw values live in one place only: the `personal` view (the lead's
        # row's `personal` column and the table of outcome notes' values, m013).
        chained = "".join(
            str(trail.db.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("decisions", "outcomes", "events", "idempotency", "shadow_decisions")
        ) + str(trail.db.execute("SELECT lead_id, profile, answers, stage FROM leads").fetchall())
        assert not any(s in chained for s in SECRETS), [s for s in SECRETS if s in chained]
        # …and what is kept still reaches the engine and replays: the decision is the same one.
        facts = trail.lead_facts("L-ana")
        assert facts["profile"]["email"] == EMAIL and facts["answers"]["need"] == "also " + PHONE
        assert facts["events"][0]["properties"] == lead["events"][0]["properties"]
        assert replay(trail, first.json["decision_id"], evaluator(registry))["identical"]

        assert EMAIL.encode() in raw_bytes(db) and b"a second note" in raw_bytes(db)  # the grep finds them
        trail.erase("L-ana", requested_by="dpo")
        trail.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        on_disk = raw_bytes(db)
        left = [s for s in SECRETS if s.encode() in on_disk]
        assert left == [], left
        assert not re.search(rb"ana\.lopez@", on_disk)
        assert trail.verify() == []


def test_drop_mode_keeps_no_value_found_in_free_text(tmp_path, default):
    with AuditTrail(tmp_path / "d.db", personal_mode="drop", personal_fields=["email"]) as trail:
        lead = {
            "lead_id": "L2",
            "answers": {"need": f"mail {EMAIL} or {PHONE}"},
            "profile": {"country": "US"},
        }
        decide(default, trail, lead, at=AT)
        trail.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert trail.db.execute("SELECT count(*) FROM personal").fetchone()[0] == 0
        assert EMAIL.encode() not in raw_bytes(trail.path) and b"415 555" not in raw_bytes(trail.path)
        assert trail.lead_facts("L2")["answers"]["need"].startswith("mail pii:")


def test_two_leads_with_one_email_each_keep_their_own_copy_until_erased(tmp_path, default):
    with AuditTrail(tmp_path / "two.db") as trail:
        for lead_id in ("A", "B", "A"):  # A last: its row used to replace B's
            decide(default, trail, {"lead_id": lead_id, "profile": {"email": EMAIL, "country": "US"}}, at=AT)
        trail.erase("A")
        assert trail.lead_facts("B")["profile"]["email"] == EMAIL
        assert "email" not in trail.lead_facts("A")["profile"]
        trail.erase("B")
        trail.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert EMAIL.encode() not in raw_bytes(trail.path)
        assert trail.verify() == []


def test_erase_names_records_from_before_tokenising_that_still_hold_free_text_in_clear(tmp_path, default):
    with AuditTrail(tmp_path / "old.db") as trail:
        first = decide(default, trail, {"lead_id": "O", "answers": {"need": f"mail {EMAIL}"}}, at=AT)[0]
        # As a version that did not search free text wrote it:
        digest, stored = trail.db.execute("SELECT ruleset_digest, facts FROM decisions").fetchone()
        facts = json.loads(codec_for(trail.db).unpack(stored, digest))
        facts["answers"]["need"] = f"mail {EMAIL}"
        trail.db.execute("UPDATE decisions SET facts = ?", (json.dumps(facts),))
        assert trail.erase("O")["left_in_clear"] == [first["decision_id"]]
        with AuditTrail(tmp_path / "new.db") as fresh:
            decide(default, fresh, {"lead_id": "N", "answers": {"need": f"mail {EMAIL} or {PHONE}"}}, at=AT)
            assert fresh.erase("N")["left_in_clear"] == []
