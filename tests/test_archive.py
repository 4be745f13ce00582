"""Retention: half a trail archived, both halves proven together; any edit to either is named."""

from __future__ import annotations

import json

import pytest
import zstandard
from click.testing import CliRunner

from audit import AuditTrail, archive
from cli import main
from service.decide import decide, source_digest
from service.outcomes import report_outcome
from tests.conftest import lead
from tests.postgres import secrets_for

EMAIL = "ana.lopez@acme.io"


def fill(path, default, leads=8, rounds=4) -> list[dict]:
    """Decisions for `leads` leads, `rounds` each, one outcome and one preview among them."""
    replies = []
    with AuditTrail(path, secrets=secrets_for(path)) as trail:
        for r in range(rounds):
            for i in range(leads):
                facts = lead(
                    lead_id=f"A-{i}",
                    profile={
                        "email": f"{i}.{EMAIL}",
                        "first_name": "Ana",
                        "country": "US",
                        "employees": 50 + 100 * i,
                    },
                    events=[
                        {
                            "type": ("demo_request", "content_download")[i % 2],
                            "at": f"2026-10-0{r + 1}T10:00:00Z",
                            "id": f"e{r}",
                        }
                    ],
                )
                replies.append(decide(default, trail, facts, at=f"2026-10-0{r + 1}T12:00:00Z", client="t")[0])
        decide(default, trail, lead(lead_id="A-0"), kind="preview", at="2026-10-05T12:00:00Z")
        report_outcome(default, trail, "A-1", {"type": "contacted"}, at="2026-10-05T12:00:00Z")
    return replies


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def halved(tmp_path, default, audit_db):
    """Half a trail archived, on each backend (tests/postgres.py)."""
    db = audit_db
    fill(db, default)
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        times = [r["recorded_at"] for r in trail._read("SELECT recorded_at FROM decisions ORDER BY seq")]
    before = times[len(times) // 2]
    code, out = run("audit", "archive", "--before", before, "--to", tmp_path / "old.jsonl.zst", "--db", db)
    assert code == 0, out
    return db, tmp_path / "old.jsonl.zst", before, len(times)


def test_half_a_trail_archived_and_both_halves_verified(halved):
    db, file, before, total = halved
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        live = trail._read("SELECT id, recorded_at FROM decisions")
        archived = archive.listing(trail)
    content = archive.read(file)
    moved = {d["id"] for d in content["decisions"]}
    assert len(archived) == 1 and archived[0]["count"] == len(moved) >= total // 4
    assert not moved & {r["id"] for r in live} and len(moved) + len(live) == total
    assert all(d["recorded_at"] < before for d in content["decisions"])
    # Every column of every row, and the sources they name.
    assert {"facts", "decision", "input", "ruleset_digest", "request_id"} <= set(content["decisions"][0])
    assert {d["ruleset_digest"] for d in content["decisions"]} <= {r["digest"] for r in content["rulesets"]}
    assert all(source_digest(r["source"]) == r["digest"] for r in content["rulesets"])

    code, out = run("audit", "verify", "--db", db)
    assert code == 0 and f"{len(moved)} archived decision(s) accounted for" in out, out
    code, out = run("audit", "verify", "--db", db, "--archive", file)
    assert code == 0 and "1 archive file(s) proven" in out, out


def test_a_decision_whose_profile_a_live_decision_refers_to_stays_live(halved, registry):
    """A follow-up call stores its unchanged profile and answers as `$parts` (audit.compact): the
    decision holding them is not archived while one that stays live refers to it."""
    from audit.codec import codec_for
    from audit.replay import replay_range
    from service.decide import evaluator

    db, _, before, _ = halved
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        codec = codec_for(trail.db)
        rows = trail._read("SELECT seq, recorded_at, facts, ruleset_digest FROM decisions")
        refers = {json.loads(codec.unpack(r["facts"], r["ruleset_digest"])).get("$parts") for r in rows}
        kept = {r["seq"] for r in rows if r["recorded_at"] < before}
        assert kept & refers  # holders recorded before the time stayed, for the live decisions
        results = list(replay_range(trail, evaluator(registry)))
        assert len(results) == len(rows) and all(r["identical"] for r in results), results


def _rewrite(file, change):
    with file.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as stream:
        text = stream.read().decode()
    lines = [json.loads(line) for line in text.splitlines()]
    change(lines)
    data = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
    file.write_bytes(zstandard.ZstdCompressor().compress(data))


@pytest.mark.parametrize(
    "tamper, named",
    [
        (lambda ls: next(x for x in ls if "decision" in x)["decision"].update(stage="sql"), "was edited"),
        (lambda ls: ls.remove(next(x for x in ls if "decision" in x)), "not the archived range"),
        (lambda ls: ls.insert(1, json.loads(json.dumps(ls[1]))), "not the archived range"),
        (
            lambda ls: next(x for x in ls if "ruleset" in x)["ruleset"].update(source="name: x\n"),
            "source was edited",
        ),
        (lambda ls: ls[0].update(id="arc_forged"), "not recorded in this trail's chain"),
    ],
    ids=["edited", "deleted", "duplicated", "source", "foreign"],
)
def test_a_tampered_archive_fails_verify(halved, tamper, named):
    db, file, _, _ = halved
    _rewrite(file, tamper)
    code, out = run("audit", "verify", "--db", db, "--archive", file)
    assert code == 1 and named in out, out


def test_tampering_with_the_live_record_of_an_archive_is_named(halved):
    db, file, _, _ = halved
    with AuditTrail(db, secrets=secrets_for(db)) as trail:  # to hide a lead from checks
        trail.db.execute(
            "UPDATE archived SET lead_id = 'A-7' "
            "WHERE ref = (SELECT ref FROM archived WHERE lead_id != 'A-7' ORDER BY seq LIMIT 1)"
        )
    code, out = run("audit", "verify", "--db", db)
    assert code == 1 and "no longer matches its chained digest" in out, out


def test_a_decision_deleted_and_called_archived_is_caught(halved):
    db, _, _, _ = halved
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        run_sql = trail.db.execute
        victim, seq, lead_id = run_sql(
            "SELECT id, seq, lead_id FROM decisions WHERE id NOT IN (SELECT last_decision_id FROM leads) LIMIT 1"
        ).fetchone()
        # The foreign keys that would stop the deletion are switched off, as an attacker with the file can.
        if str(db).endswith(".db"):
            run_sql("PRAGMA foreign_keys = OFF")
        else:
            run_sql("ALTER TABLE decisions DISABLE TRIGGER ALL")  # its foreign keys' checks
        run_sql("DELETE FROM decisions WHERE id = ?", (victim,))
        archive_id = run_sql("SELECT id FROM archives").fetchone()[0]
        run_sql("INSERT INTO archived VALUES (?, ?, ?, ?)", (victim, seq, lead_id, archive_id))
    code, out = run("audit", "verify", "--db", db)
    assert code == 1 and "no longer matches its chained digest" in out, out


def test_archives_hold_tokens_and_erasure_reaches_them(halved):
    db, file, _, _ = halved
    content = archive.read(file)
    text = json.dumps(content)
    assert EMAIL not in text and '"Ana"' not in text  # personal values are tokens in every row
    lead_id = content["decisions"][0]["lead_id"]
    with AuditTrail(db, secrets=secrets_for(db)) as trail:
        tokens = trail.personal_values(lead_id)
        assert tokens and all(token in text for token in tokens)  # the archive names them by token
        trail.erase(lead_id, "test")
        assert trail.personal_values(lead_id) == {}  # nothing left to match the archived tokens to
    code, out = run("audit", "verify", "--db", db, "--archive", file)
    assert code == 0, out


def test_a_second_archive_and_nothing_left_to_archive(halved, tmp_path):
    db, first, _, _ = halved
    code, out = run(
        "audit", "archive", "--before", "2999-01-01T00:00:00Z", "--to", tmp_path / "b.zst", "--db", db
    )
    assert code == 0 and "kept live" in out, out
    code, out = run("audit", "verify", "--db", db, "--archive", first, "--archive", tmp_path / "b.zst")
    assert code == 0 and "2 archive file(s) proven" in out, out
    code, out = run(
        "audit", "archive", "--before", "2999-01-01T00:00:00Z", "--to", tmp_path / "c.zst", "--db", db
    )
    assert code == 1 and "can be archived" in out and not (tmp_path / "c.zst").exists()
    code, out = run("audit", "archive", "--before", "2999-01-01T00:00:00Z", "--to", first, "--db", db)
    assert code == 1 and "never overwritten" in out
