"""The tamper matrix: every kind of edit to a copy of a real audit file is caught, with the entry named.

One history (decisions with events, hand-offs and assignments, an outcome, an erasure, a reload, keys
created and revoked) is recorded once and checkpointed; each case copies it, tampers with it the way
an attacker holding the file would (SQL on the file, re-hashing the chain where the attack needs
it), and checks what `verify` says. The untouched copy verifies.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from audit import AuditTrail, chain, deployments
from audit.codec import codec_for
from audit.keys import create, revoke
from cli import main
from engine.teams import load_teams
from service.decide import decide, source_digest
from service.outcomes import report_outcome
from tests.test_assignment import TEAMS, hand_off

AT = "2026-11-23T10:00:00Z"


@pytest.fixture(scope="module")
def original(tmp_path_factory, registry):
    """(path, ids, statement): a recorded history, closed, and a checkpoint of its head."""
    default = registry.get("default")
    path = tmp_path_factory.mktemp("tamper") / "audit.db"
    teams = load_teams(TEAMS)
    with AuditTrail(path, durability="normal") as trail:
        ids = {"keep": create(trail, "form", "decide")[0].id, "revoked": create(trail, "old", "review")[0].id}
        revoke(trail, ids["revoked"])
        for i in range(4):
            reply = decide(default, trail, hand_off(i), at=AT, client="t", teams=teams)[0]
            ids[f"A-{i}"] = reply["decision_id"]
        more = {"lead_id": "A-1", "events": [{"type": "pricing_page_view", "at": AT, "id": "p1"}]}
        ids["A-1 again"] = decide(default, trail, more, at=AT, client="t", teams=teams)[0]["decision_id"]
        result = report_outcome(
            default, trail, "A-0", {"type": "accepted", "at": AT}, client="t", teams=teams
        )
        ids["outcome"] = result["outcome"]["outcome_id"]
        ids["erasure"] = trail.erase("A-2")["id"]
        ids["reload"] = deployments.record_reload(trail, {"default": "sha256:x"}, [], [], "test")["reload_id"]
        ids["last"] = decide(default, trail, hand_off(9), at=AT, client="t", teams=teams)[0]["decision_id"]
        assert trail.verify() == []
        statement = trail.checkpoint()
        trail.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, ids, statement


@pytest.fixture
def copy(tmp_path, original):
    """(trail on a fresh copy of the history, ids, statement)."""
    path, ids, statement = original
    target = tmp_path / "copy.db"
    shutil.copy(path, target)
    shutil.copy(f"{path}.key", f"{target}.key")
    with AuditTrail(target, durability="normal") as trail:
        trail.db.execute("PRAGMA foreign_keys = OFF")  # the attacker's own connection ignores them
        yield trail, ids, statement


def sql(trail, statement, *params):
    trail.db.execute(statement, params)


def seq_of(trail, ref) -> int:
    return trail.db.execute("SELECT seq FROM chain WHERE ref = ?", (ref,)).fetchone()[0]


def rehash_from(trail, seq: int) -> None:
    """What an attacker does after an edit: recompute every payload hash and link from `seq` on."""
    db = trail.db
    prev = db.execute("SELECT hash FROM chain WHERE seq = ?", (seq - 1,)).fetchone()
    prev = chain.hex_of(prev[0]) if prev else chain.GENESIS
    for s, kind, ref, at in db.execute(
        "SELECT seq, kind, ref, at FROM chain WHERE seq >= ? ORDER BY seq", (seq,)
    ).fetchall():
        payload = chain.stored_payload(db, kind, ref)
        digest = chain.link_hash(s, kind, ref, at, payload, prev)
        db.execute(
            "UPDATE chain SET payload_hash = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (payload, prev, digest, s),
        )
        prev = digest


def renumber(trail, order: list[str]) -> None:
    """Give the chain's links (and their rows' seq) the order of `order` (refs), then re-hash."""
    db = trail.db
    db.execute("UPDATE chain SET seq = -seq")
    for table in ("decisions", "outcomes", "erasures", "reloads", "key_events"):
        db.execute(f"UPDATE {table} SET seq = -seq")
    for new, ref in enumerate(order, 1):
        db.execute("UPDATE chain SET seq = ? WHERE ref = ?", (new, ref))
        for table in ("decisions", "outcomes", "erasures", "reloads", "key_events"):
            db.execute(f"UPDATE {table} SET seq = ? WHERE id = ?", (new, ref))
    rehash_from(trail, 1)


def refs(trail) -> list[str]:
    return [r for (r,) in trail.db.execute("SELECT ref FROM chain ORDER BY seq")]


def test_the_untouched_copy_verifies_with_its_checkpoint(copy):
    trail, _, statement = copy
    assert trail.verify([("stmt", statement)], source_digest=source_digest) == []


def edit_text(t, ids):
    sql(t, "UPDATE decisions SET route = 'nurture_basic' WHERE id = ?", ids["A-3"])
    return f"link {seq_of(t, ids['A-3'])} ({ids['A-3']}): the decision it records was edited"


def edit_json(t, ids):
    # The reply is a zstd frame (audit.codec): the attacker decodes it with the file's own dictionary.
    codec = codec_for(t.db)
    digest, stored = t.db.execute(
        "SELECT ruleset_digest, decision FROM decisions WHERE id = ?", (ids["A-3"],)
    ).fetchone()
    decision = json.loads(codec.unpack(stored, digest))
    sql(
        t,
        "UPDATE decisions SET decision = ? WHERE id = ?",
        codec.pack(json.dumps({**decision, "stage": "sql"}), digest),
        ids["A-3"],
    )
    return f"({ids['A-3']}): the decision it records was edited"


def delete_decision(t, ids):
    seq = seq_of(t, ids["A-3"])
    sql(t, "DELETE FROM chain WHERE seq = ?", seq)
    sql(t, "DELETE FROM decisions WHERE id = ?", ids["A-3"])
    return f"links {seq}–{seq} are missing (deleted)"


def swap_links(t, ids):
    a, b = seq_of(t, ids["A-0"]), seq_of(t, ids["A-1"])
    sql(t, "UPDATE chain SET seq = -1 WHERE seq = ?", a)
    sql(t, "UPDATE chain SET seq = ? WHERE seq = ?", a, b)
    sql(t, "UPDATE chain SET seq = ? WHERE seq = -1", b)
    return f"link {a} ({ids['A-1']}): does not follow the link before it"


def truncate_tail(t, ids):
    last = seq_of(t, ids["last"])
    for ref in refs(t)[-3:]:
        for table in ("decisions", "outcomes", "erasures", "reloads"):
            sql(t, f"DELETE FROM {table} WHERE id = ?", ref)
    sql(t, "DELETE FROM chain WHERE seq > ?", last - 3)
    return f"the chain was truncated: it ends at link {last - 3}; links {last - 2}–{last} are gone"


def rehash_tail(t, ids):
    sql(t, "UPDATE decisions SET latency_ms = 0 WHERE id = ?", ids["A-3"])
    rehash_from(t, seq_of(t, ids["A-3"]))
    return "entries up to it were rewritten and the chain re-hashed"


def reorder_rehashed(t, ids):
    order = refs(t)
    i, j = order.index(ids["A-0"]), order.index(ids["A-3"])
    order[i], order[j] = order[j], order[i]
    renumber(t, order)
    return "entries before it were reordered and the chain re-hashed"


def insert_before_checkpoint(t, ids):
    sql(
        t,
        "INSERT INTO reloads SELECT 'rld_forged', 0, at, 'attacker', deployment, problems, changed "
        "FROM reloads WHERE id = ?",
        ids["reload"],
    )
    sql(t, "INSERT INTO chain (seq, kind, ref, at) VALUES (0, 'reload', 'rld_forged', '')")
    renumber(t, ["rld_forged", *refs(t)[1:]])  # refs(t)[0] is the forged one (seq 0)
    return f"1 entr(ies) were inserted before it: its last entry {ids['last']} is now link"


def delete_before_checkpoint(t, ids):
    order = refs(t)
    order.remove(ids["A-3"])
    sql(t, "DELETE FROM decisions WHERE id = ?", ids["A-3"])
    sql(t, "DELETE FROM chain WHERE ref = ?", ids["A-3"])
    renumber(t, order)
    return f"1 entr(ies) before it were deleted and the chain renumbered: its last entry {ids['last']}"


def edit_ruleset_source(t, ids):
    sql(t, "UPDATE rulesets SET source = replace(source, '{points: {fit: 20}}', '{points: {fit: 90}}')")
    version = t.db.execute("SELECT version FROM rulesets WHERE name = 'default'").fetchone()[0]
    return f"the source of ruleset default v{version} was edited: it no longer has its digest"


# Tamperings that are one SQL statement: (statement, the id in `ids` its ? stands for, what verify says,
# with {name} standing for ids[name]).
ONE_STATEMENT = {
    "edit_number": (
        "UPDATE decisions SET fit = fit + 1 WHERE id = ?",
        "A-3",
        "({A-3}): the decision it records was edited",
    ),
    "edit_flag": (
        "UPDATE decisions SET is_lead = 1 - is_lead WHERE id = ?",
        "A-3",
        "({A-3}): the decision it records was edited",
    ),
    "fill_null": (
        "UPDATE decisions SET previous_stage = 'sql' WHERE id = ?",
        "A-3",
        "({A-3}): the decision it records was edited",
    ),
    "edit_link": (
        "UPDATE chain SET at = '2020-01-01T00:00:00Z' WHERE ref = ?",
        "A-3",
        "({A-3}): the link itself was edited",
    ),
    "edit_outcome": (
        "UPDATE outcomes SET type = 'rejected' WHERE id = ?",
        "outcome",
        "({outcome}): the outcome it records was edited",
    ),
    "insert_decision": (
        "INSERT INTO decisions (id, seq, kind, lead_id, evaluated_at, recorded_at, channel, client, "
        "ruleset_name, ruleset_version, ruleset_digest, is_lead, stage, previous_stage, funnel, quadrant, "
        "route, destination, fit, engagement, input, facts, decision, latency_ms, idempotency_key, "
        "request_hash) SELECT 'dec_forged', 999, kind, lead_id, evaluated_at, recorded_at, channel, "
        "client, ruleset_name, ruleset_version, ruleset_digest, is_lead, stage, previous_stage, funnel, "
        "quadrant, route, destination, fit, engagement, input, facts, decision, latency_ms, NULL, NULL "
        "FROM decisions WHERE id = ?",
        "A-3",
        "outside the chain (dec_forged): a decision row no link records (inserted)",
    ),
    "edit_lead_stage": (
        "UPDATE leads SET stage = 'customer' WHERE lead_id = 'A-3'",
        None,
        "({A-3}): leads.stage of A-3 is 'customer', its entries say",
    ),
    "edit_event": (
        "UPDATE events SET at = '2020-01-01T00:00:00Z' WHERE lead_id = 'A-1' AND event_id = 'p1'",
        None,
        "({A-1 again}): event p1 of A-1 was edited (at)",
    ),
    "delete_event": (
        "DELETE FROM events WHERE lead_id = 'A-1' AND event_id = 'p1'",
        None,
        "({A-1 again}): event p1 of A-1 is gone (deleted)",
    ),
    "insert_event": (
        f"INSERT INTO events (lead_id, event_id, type, at, properties) VALUES ('A-3', 'x', 'demo_request', '{AT}', '{{}}')",
        None,
        "outside the chain (A-3): event x of A-3: no decision carried it (inserted)",
    ),
    "key_scope": (
        "UPDATE api_keys SET scope = 'admin' WHERE id = ?",
        "keep",
        "key {keep} was changed outside the trail: scope is 'admin', chained 'decide'",
    ),
    "revive_key": (
        "UPDATE api_keys SET revoked_at = NULL WHERE id = ?",
        "revoked",
        "key {revoked} was changed outside the trail: revoked_at is None",
    ),
    "insert_key": (
        f"INSERT INTO api_keys (id, name, scope, secret_hash, created_at) VALUES ('abcdefabcdef', 'x', 'admin', 'h', '{AT}')",
        None,
        "outside the chain (abcdefabcdef): key abcdefabcdef has no chained creation (inserted)",
    ),
    "delete_outcome": (
        "DELETE FROM outcomes WHERE id = ?",
        "outcome",
        "({outcome}): the outcome it records is gone (deleted)",
    ),
    "edit_reload": (
        "UPDATE reloads SET deployment = '{}' WHERE id = ?",
        "reload",
        "({reload}): the reload it records was edited",
    ),
    # Hand-offs and assignments are views over columns of the decisions outside the chain (m013):
    # these edit those columns, which verify rebuilds from the chained entries.
    "edit_handoff": (
        "UPDATE decisions SET handoff_due_at = '2020-01-01T00:00:00Z' WHERE lead_id = 'A-0' "
        "AND handoff_due_at IS NOT NULL",
        None,
        "({A-0}): handoffs of A-0, row 1 is",
    ),
    "edit_assignment": (
        "UPDATE decisions SET owner = 'ola' WHERE lead_id = 'A-3' AND basis IS NOT NULL",
        None,
        "({A-3}): assignments of A-3, row 1 is",
    ),
    "delete_assignment": (
        "UPDATE decisions SET basis = NULL WHERE lead_id = 'A-3'",
        None,
        "({A-3}): assignments of A-3, row 1 is gone (deleted)",
    ),
    # Stage history is a view over the decisions' stages since m013: changing it means changing a
    # chained decision, which the chain names.
    "edit_stage_history": (
        "UPDATE decisions SET stage = 'customer' WHERE lead_id = 'A-3'",
        None,
        "({A-3}): the decision it records was edited",
    ),
    "edit_erasure": (
        "UPDATE erasures SET requested_by = 'someone else' WHERE id = ?",
        "erasure",
        "({erasure}): the erasure it records was edited",
    ),
    "edit_personal_value": (
        # kept in the lead's row since m013 ({token: [field, value]})
        "UPDATE leads SET personal = (SELECT json_group_object(j.key, json_array(j.value ->> 0, "
        "CASE WHEN j.value ->> 0 = 'email' THEN 'someone.else@example.com' ELSE j.value ->> 1 END)) "
        "FROM json_each(leads.personal) AS j) WHERE lead_id = 'A-3'",
        None,
        "outside the chain (A-3): a personal value of A-3 (email) was edited",
    ),
}


def one_statement(name: str):
    statement, ref, says = ONE_STATEMENT[name]

    def tamper(t, ids):
        sql(t, statement, *([ids[ref]] if ref else []))
        return says.format_map(ids)

    tamper.__name__ = name
    return tamper


CASES = [
    edit_text,
    one_statement("edit_number"),
    one_statement("edit_flag"),
    one_statement("fill_null"),
    one_statement("edit_link"),
    edit_json,
    one_statement("edit_outcome"),
    delete_decision,
    one_statement("insert_decision"),
    swap_links,
    truncate_tail,
    rehash_tail,
    reorder_rehashed,
    insert_before_checkpoint,
    delete_before_checkpoint,
    one_statement("edit_lead_stage"),
    one_statement("edit_event"),
    one_statement("delete_event"),
    one_statement("insert_event"),
    one_statement("key_scope"),
    one_statement("revive_key"),
    one_statement("insert_key"),
    one_statement("delete_outcome"),
    one_statement("edit_reload"),
    one_statement("edit_handoff"),
    one_statement("edit_assignment"),
    one_statement("delete_assignment"),
    one_statement("edit_stage_history"),
    one_statement("edit_erasure"),
    edit_ruleset_source,
    one_statement("edit_personal_value"),
]


@pytest.mark.parametrize("tamper", CASES, ids=[c.__name__ for c in CASES])
def test_every_tampering_is_caught_and_named(copy, tamper):
    trail, ids, statement = copy
    expected = tamper(trail, ids)
    problems = trail.verify([("stmt", statement)], source_digest=source_digest)
    assert any(expected in p for p in problems), "\n".join(problems)


@pytest.mark.parametrize("tamper", [rehash_tail, reorder_rehashed, insert_before_checkpoint])
def test_a_consistently_rewritten_chain_needs_a_checkpoint_to_be_caught(copy, tamper):
    """Without a statement kept elsewhere, a rewrite with every hash recomputed passes: hence checkpoints."""
    trail, ids, _ = copy
    tamper(trail, ids)
    assert not any("re-hashed" in p or "inserted before" in p for p in trail.verify())


def test_a_forged_or_altered_statement_is_refused(copy):
    trail, _, statement = copy
    altered = {**statement, "seq": statement["seq"] - 1}
    problems = trail.verify([("a", altered), ("b", {"hello": 1}), ("c", None)])
    assert problems == [
        "checkpoint a: the signature does not verify: the statement was altered or forged",
        "checkpoint b: not a leadgate checkpoint statement",
        "checkpoint c: not a leadgate checkpoint statement",
    ]


def test_cli_checkpoint_and_verify_with_only_the_public_key(copy, tmp_path):
    trail, ids, _ = copy
    db = trail.path
    runner = CliRunner()
    key = runner.invoke(main, ["audit", "checkpoint", "--public-key", "--db", db]).output.strip()
    statements = tmp_path / "heads.jsonl"
    for _ in range(2):
        assert (
            runner.invoke(main, ["audit", "checkpoint", "--out", str(statements), "--db", db]).exit_code == 0
        )
    assert len(statements.read_text().splitlines()) == 2
    assert json.loads(statements.read_text().splitlines()[0])["key"] == key
    # A verifier with another key file trusts the statements through the public key alone.
    env = {"LEADGATE_SECRET_FILE": str(tmp_path / "verifier.key")}
    args = ["audit", "verify", "--db", db, "--checkpoint", str(statements)]
    refused = runner.invoke(main, args, env=env)
    assert refused.exit_code == 1 and "not a trusted checkpoint key" in refused.output
    ok = runner.invoke(main, [*args, "--public-key", key], env=env)
    assert ok.exit_code == 0 and "chain intact, 2 checkpoint(s) matched" in ok.output, ok.output
    truncate_tail(trail, ids)
    broken = runner.invoke(main, [*args, "--public-key", key], env=env)
    assert broken.exit_code == 1 and "the chain was truncated" in broken.output


def test_a_long_generated_history_verifies(history_db):
    """1,500 leads with hand-offs, rejections, recycles, wins and losses: the rebuilt tables match."""
    _, trail, _ = history_db
    assert trail.verify() == []


def test_a_key_column_added_later_is_covered_without_a_migration_of_the_snapshots(copy):
    """Another feature adds a column to api_keys (as a form key's origins did): NULL matches the old
    snapshots, and a value set outside the trail is named."""
    trail, ids, statement = copy
    sql(trail, "ALTER TABLE api_keys ADD COLUMN team TEXT")
    assert trail.verify([("stmt", statement)]) == []
    sql(trail, "UPDATE api_keys SET team = '*' WHERE id = ?", ids["keep"])
    assert any(f"key {ids['keep']} was changed outside the trail: team is '*'" in p for p in trail.verify())
