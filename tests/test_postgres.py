"""The audit trail on PostgreSQL: the dialect layer, the derived schema and its migrations, one chain under
concurrent writers on separate pools (as separate machines), lost connections, and what refuses to open.

The behaviour shared with SQLite is tested on both backends where it is tested (tests/test_audit.py,
tests/test_api.py, ...); this file holds what only PostgreSQL has.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from click.testing import CliRunner

from audit import AuditTrail, StorageUnavailable, chain, pgschema, postgres, recording
from audit.backends import shown
from audit.codec import COMPRESSED, codec_for
from audit.keys import create
from audit.postgres import translate
from audit.replay import replay_range
from audit.secrets import Secrets, SecretsError
from cli import main
from service.decide import decide, evaluator
from service.deliver import AlreadyRunning, exclusive
from service.outcomes import report_outcome
from tests.conftest import lead
from tests.postgres import old_schema

AT = "2026-11-23T10:00:00Z"
LATER = "2026-11-23T11:00:00Z"
HOT = {"country": "US", "industry": "software", "employees": 200, "seniority": "vp", "email": "x@acme.io"}


def opened(url, tmp_path) -> AuditTrail:
    return AuditTrail(url, durability="normal", secrets=Secrets(tmp_path / "pg.key"))


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        (
            "SELECT a FROM t WHERE b = ? AND c IS ?",
            "SELECT a FROM t WHERE b = %s AND c IS NOT DISTINCT FROM %s",
        ),
        ("SELECT 1 WHERE channel IS NOT 'outcome' AND x IS NULL", None),
        ("INSERT OR IGNORE INTO rulesets (digest, name) VALUES (?, ?)", None),
        (
            "SELECT value FROM json_each(?)",
            "SELECT value FROM json_array_elements_text(CAST(%s AS json)) AS j(value)",
        ),
        ("SELECT '100%' LIKE ?", "SELECT '100%%' LIKE %s"),
        # core's one-statement reads (audit.state, audit.unit, audit.assignment)
        (
            "SELECT a FROM t WHERE b = :lead AND c = :lead",
            "SELECT a FROM t WHERE b = %(lead)s AND c = %(lead)s",
        ),
        (
            "SELECT json_group_array(json_array(a, json(b))) FROM (SELECT a, b FROM t ORDER BY a)",
            "SELECT coalesce(json_agg(json_build_array(a, CAST(b AS json))), '[]') FROM "
            "(SELECT a, b FROM t ORDER BY a) AS _q1",
        ),
        (
            "SELECT json_group_object(k, v) FROM t",
            "SELECT coalesce(json_object_agg(k, v), '{}') FROM t",
        ),
        (
            "SELECT c.seq FROM (SELECT 1) LEFT JOIN (SELECT seq FROM chain) c ON true",
            "SELECT c.seq FROM (SELECT 1) AS _q1 LEFT JOIN (SELECT seq FROM chain) c ON true",
        ),
    ],
)
def test_the_dialect_translates_what_differs_and_nothing_else(sqlite, postgres):
    expected = {
        "SELECT 1 WHERE channel IS NOT 'outcome' AND x IS NULL": (
            "SELECT 1 WHERE channel IS DISTINCT FROM 'outcome' AND x IS NULL"
        ),
        "INSERT OR IGNORE INTO rulesets (digest, name) VALUES (?, ?)": (
            "INSERT INTO rulesets (digest, name) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        ),
    }
    assert translate(sqlite) == (postgres or expected[sqlite])


def test_connection_statements_of_sqlite_do_nothing_and_begin_takes_the_write_lock(pg_url, tmp_path):
    assert translate("PRAGMA wal_checkpoint(TRUNCATE)") is None
    with opened(pg_url, tmp_path) as trail:
        with trail._transaction() as db:
            locks = db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ).fetchone()[0]
            setting = db.execute("SHOW synchronous_commit").fetchone()[0]
        assert (locks, setting) == (1, "off")  # durability normal
        assert trail._read("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'")[0]["n"] == 0


def test_the_schema_is_the_sqlite_schema_in_postgres_types(pg_url, tmp_path):
    scratch = pgschema.scratch()
    try:
        want = {  # the compressed documents (zstd frames) are bytea: SQLite declares them TEXT
            t: [
                (c[0], "BLOB" if c[0] in pgschema.BYTEA.get(t, ()) else c[1].upper())
                for c in pgschema.columns(scratch, t)
            ]
            for t in pgschema.tables(scratch)
        }
        indexes = set(pgschema.indexes(scratch))
        views = set(pgschema.views(scratch))
    finally:
        scratch.close()
    kinds = {"text": "TEXT", "bigint": "INTEGER", "double precision": "REAL", "bytea": "BLOB"}
    with opened(pg_url, tmp_path) as trail:
        rows = trail._read(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name != '_leadgate_migrations' AND table_name IN "
            "(SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE') "
            "ORDER BY table_name, ordinal_position"
        )
        have: dict[str, list] = {}
        for r in rows:
            have.setdefault(r["table_name"], []).append((r["column_name"], kinds[r["data_type"]]))
        assert have == {t: [(n, "REAL" if k == "FLOAT" else k) for n, k in cols] for t, cols in want.items()}
        made = {
            r["indexname"]
            for r in trail._read("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        assert indexes <= made
        # what is derived from the decisions (m013) is a view on both
        assert views == {
            r["table_name"]
            for r in trail._read(
                "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'"
            )
        }
        assert pgschema.applied(trail.db) == sorted(pgschema.names())


def test_a_migration_without_a_postgres_form_refuses_to_open(pg_url, tmp_path, monkeypatch):
    opened(pg_url, tmp_path).close()
    monkeypatch.setattr(
        pgschema, "names", lambda: [*[m.name for m in pgschema.migrations._migrations], "m999_next"]
    )
    with pytest.raises(RuntimeError, match="migration m999_next has no PostgreSQL form: add it to PG_FORMS"):
        opened(pg_url, tmp_path)


def test_a_later_migration_that_only_adds_is_applied_as_its_difference(pg_url, tmp_path):
    before, after = pgschema.scratch(), pgschema.scratch()
    after.execute("ALTER TABLE leads ADD COLUMN score REAL")
    after.execute("ALTER TABLE leads ADD COLUMN packed BLOB")
    after.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, lead_id TEXT NOT NULL, body TEXT)")
    after.execute("CREATE INDEX idx_notes_lead_id ON notes (lead_id)")
    ddl = pgschema.difference(before, after, "m999_notes")
    before.close()
    assert ddl == [
        'CREATE TABLE notes (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, lead_id text COLLATE "C" '
        'NOT NULL, body text COLLATE "C")',
        'ALTER TABLE "leads" ADD COLUMN "score" double precision',
        'ALTER TABLE "leads" ADD COLUMN "packed" bytea',
        "CREATE INDEX idx_notes_lead_id ON notes (lead_id)",
    ]
    after.execute("CREATE TABLE leads2 AS SELECT * FROM leads")
    after.execute("DROP TABLE leads")
    fresh = pgschema.scratch()
    with pytest.raises(RuntimeError, match="migration m999_x drops table leads"):
        pgschema.difference(fresh, after, "m999_x")
    fresh.close()
    after.close()
    with opened(pg_url, tmp_path) as trail:
        for sql in ddl:
            trail.db.execute(sql)
        trail.db.execute("INSERT INTO notes (lead_id, body) VALUES (?, ?)", ("L1", "called"))
        assert trail._read("SELECT id, body FROM notes") == [{"id": 1, "body": "called"}]
        trail.db.execute("INSERT INTO leads (lead_id, packed) VALUES (?, ?)", ("L1", b"\x28\xb5\x2f\xfd\x00"))
        assert (
            trail._read("SELECT packed FROM leads")[0]["packed"] == b"\x28\xb5\x2f\xfd\x00"
        )  # bytes as bytes


def test_concurrent_first_opens_migrate_once(pg_url, tmp_path):
    start = threading.Barrier(4)

    def open_one(_):
        start.wait()
        with opened(pg_url, tmp_path) as trail:
            return pgschema.applied(trail.db)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(open_one, range(4)))
    assert all(r == sorted(pgschema.names()) for r in results)


def test_writers_on_separate_pools_keep_one_chain_and_one_lead_history(pg_url, tmp_path, default):
    """Three trails (three pools, as three machines) decide at once: the chain has no gap and verifies,
    a lead decided from all of them has every event once and one stage history."""
    trails = [opened(pg_url, tmp_path) for _ in range(3)]
    try:

        def work(i):
            trail = trails[i % 3]
            events = [{"type": "page_view", "at": AT, "id": f"e{i}", "properties": {"path": "/"}}]
            decide(default, trail, lead(lead_id="shared", profile=HOT, events=events), at=AT)
            decide(default, trail, lead(lead_id=f"own-{i}", profile=HOT), at=AT)

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(work, range(24)))
        trail = trails[0]
        seqs = [r["seq"] for r in trail._read("SELECT seq FROM chain ORDER BY seq")]
        assert seqs == list(range(1, 49))
        assert trail.verify() == []
        events = trail._read("SELECT event_id FROM events WHERE lead_id = 'shared' ORDER BY event_id")
        assert sorted(r["event_id"] for r in events) == sorted(f"e{i}" for i in range(24))
    finally:
        for t in trails:
            t.close()


def test_a_connection_lost_in_the_middle_of_a_write_leaves_nothing_half_written(
    pg_url, tmp_path, default, monkeypatch
):
    tables = ("decisions", "chain", "leads", "events", "stage_history", "personal", "outbox")
    with opened(pg_url, tmp_path) as trail:
        decide(default, trail, lead(lead_id="L1", profile=HOT), at=AT)
        count = lambda: {t: trail._read(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}  # noqa: E731
        before = count()
        update = recording._update_lead

        def cut_off(db, *args):
            update(db, *args)  # the decision, its link, the lead and its events are written...
            pid = db.execute("SELECT pg_backend_pid()").fetchone()[0]
            with psycopg.connect(pg_url, autocommit=True) as admin:  # ...then the server loses the client
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        monkeypatch.setattr(recording, "_update_lead", cut_off)
        with pytest.raises(StorageUnavailable, match="cannot be"):
            decide(
                default,
                trail,
                lead(lead_id="L2", profile=HOT, events=[{"type": "demo_request", "at": AT}]),
                at=AT,
            )
        monkeypatch.undo()
        assert count() == before
        assert trail.verify() == []
        decide(
            default, trail, lead(lead_id="L2", profile=HOT), at=AT
        )  # the pool replaced the lost connection
        assert trail.verify() == [] and count()["decisions"] == before["decisions"] + 1


def test_a_postgres_trail_needs_its_key_file_named(pg_url):
    with pytest.raises(SecretsError, match="needs LEADGATE_SECRET_FILE: the same key file on every machine"):
        AuditTrail(pg_url)


def test_an_unreachable_server_is_storage_unavailable(tmp_path):
    url = f"postgresql:///leadgate?host={tmp_path}&user=leadgate"  # no server listens there
    with pytest.raises(StorageUnavailable, match="the audit database cannot be reached"):
        opened(url, tmp_path)


# -- leadgate audit copy ------------------------------------------------------------------------------


def sqlite_trail_with_everything(path, default) -> AuditTrail:
    """A SQLite trail with decisions, hand-offs, an outcome, an erasure and a key: every chained kind."""
    trail = AuditTrail(path)
    for i in range(5):
        events = [{"type": "demo_request", "at": AT, "id": f"d{i}"}]
        decide(
            default,
            trail,
            lead(lead_id=f"C-{i}", profile={**HOT, "email": f"p{i}@acme.io"}, events=events),
            at=AT,
        )
    report_outcome(
        default, trail, "C-1", {"type": "accepted"}, at="2026-11-23T10:05:00Z", note="called p1@acme.io"
    )
    trail.erase("C-2", requested_by="dpo")
    create(trail, "crm", "admin")
    return trail


def test_copy_moves_a_sqlite_trail_to_postgres_verified_on_both_sides(pg_url, tmp_path, default, monkeypatch):
    source_path = tmp_path / "source.db"
    with sqlite_trail_with_everything(source_path, default) as source:
        statement = source.checkpoint()
        links = source._read("SELECT count(*) AS n FROM chain")[0]["n"]
        head = chain.hex_of(source._read("SELECT hash FROM chain ORDER BY seq DESC LIMIT 1")[0]["hash"])
        assert isinstance(source._read("SELECT hash FROM chain LIMIT 1")[0]["hash"], bytes)  # raw on SQLite
    (tmp_path / "heads.jsonl").write_text(json.dumps(statement) + "\n")
    runner = CliRunner()
    copied = runner.invoke(main, ["audit", "copy", "--db", str(source_path), "--to", pg_url])
    assert copied.exit_code == 0, copied.output
    assert f"chain of {links} links verified on both sides, head {head}" in copied.output
    # served from PostgreSQL with the source's key file: verify, the source's checkpoint, replay
    monkeypatch.setenv("LEADGATE_SECRET_FILE", f"{source_path}.key")
    verified = runner.invoke(
        main, ["audit", "verify", "--db", pg_url, "--checkpoint", str(tmp_path / "heads.jsonl")]
    )
    assert verified.exit_code == 0 and "chain intact, 1 checkpoint(s) matched" in verified.output
    assert runner.invoke(main, ["audit", "replay", "--db", pg_url]).exit_code == 0
    with AuditTrail(pg_url, secrets=Secrets(f"{source_path}.key")) as target:
        # the copy continues: new links after the copied head, identity ids after the copied ones
        decide(default, target, lead(lead_id="C-1", profile=HOT, answers={"budget": "no"}), at=LATER)
        decide(default, target, lead(lead_id="C-new", profile=HOT), at=LATER)
        assert target.verify() == []
        assert target._read("SELECT max(seq) AS n FROM chain")[0]["n"] == links + 2
        assert target.lead_facts("C-3")["profile"]["email"] == "p3@acme.io"  # tokens kept their values
    again = runner.invoke(main, ["audit", "copy", "--db", str(source_path), "--to", pg_url])
    assert again.exit_code == 1 and "the target is not empty: rulesets, chain, decisions" in again.output


def test_copy_refuses_a_source_that_does_not_verify_and_writes_nothing(pg_url, tmp_path, default):
    source_path = tmp_path / "source.db"
    with sqlite_trail_with_everything(source_path, default) as source:
        source.db.execute("UPDATE decisions SET route = 'forged' WHERE lead_id = 'C-4'")
    copied = CliRunner().invoke(main, ["audit", "copy", "--db", str(source_path), "--to", pg_url])
    # the edited decision, and its hand-off (a view over the decisions since m013) with it
    assert copied.exit_code == 1 and "the source does not verify (" in copied.output, copied.output
    assert "the decision it records was edited" in copied.output
    with AuditTrail(pg_url, secrets=Secrets(f"{source_path}.key")) as target:
        assert target._read("SELECT count(*) AS n FROM chain")[0]["n"] == 0


def test_a_mistyped_url_is_named_never_taken_for_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageUnavailable, match="the audit database URL is not valid"):
        opened("postgresql:/leadgate?host=/tmp", tmp_path)
    assert not (tmp_path / "postgresql:").exists()


def test_connections_the_server_dropped_are_replaced_before_use(pg_url, tmp_path, default):
    """A restart of the server (every connection dropped) costs no request once a moment has passed:
    a connection idle for longer than CHECK_AFTER_IDLE_S is checked before it is lent."""
    with opened(pg_url, tmp_path) as trail:
        decide(default, trail, lead(lead_id="R1", profile=HOT), at=AT)
        name = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid != pg_backend_pid()",
                (name,),
            ).fetchone()[0]
        assert dropped >= 1
        time.sleep(postgres.CHECK_AFTER_IDLE_S + 0.2)
        decide(default, trail, lead(lead_id="R2", profile=HOT), at=AT)
        assert trail.lead("R2")["stage"] and trail.verify() == []


def test_one_deliverer_of_all_machines_holds_the_lock(pg_url):
    held = exclusive(pg_url)  # this process delivers
    try:
        assert held()
        with pytest.raises(AlreadyRunning, match="another leadgate deliver is running on this PostgreSQL"):
            exclusive(pg_url)  # a second deliverer, on any machine, asks on its own connection
    finally:
        postgres._held.pop(postgres.DELIVER_LOCK)[1].close()  # the holder ends: its lock goes with it
    held = exclusive(pg_url)
    postgres._held.pop(postgres.DELIVER_LOCK)[1].close()


def _end_the_holding_session(pg_url):
    """What a server restart, a failover or an idle-connection reaper does to the lock's session."""
    holder = postgres._held[postgres.DELIVER_LOCK][1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (holder.info.backend_pid,))


def test_a_deliverer_whose_lock_session_ended_takes_it_again_or_stops(pg_url):
    held = exclusive(pg_url)
    _end_the_holding_session(pg_url)
    assert held()  # nobody took it meanwhile: taken again, on a new session
    _end_the_holding_session(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as other:  # another machine's deliverer starts
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (postgres.DELIVER_LOCK,)).fetchone()[0]
        assert not held()  # this one must stop: two would send every webhook twice
    assert postgres.DELIVER_LOCK not in postgres._held


def test_a_url_password_is_never_printed():
    assert (
        shown("postgresql://lg:s3cret@db.internal:5432/leadgate")
        == "postgresql://lg:***@db.internal:5432/leadgate"
    )
    assert shown("postgresql:///leadgate?host=/run/pg") == "postgresql:///leadgate?host=/run/pg"


def test_a_postgres_trail_made_before_compact_storage_is_migrated_in_place(
    pg_url, tmp_path, default, registry, monkeypatch
):
    """m010-m015 on a PostgreSQL database made by the code of m009: m011's own form turns the
    documents into bytea zstd frames in place; every document reads back as it was, verify and
    replay hold, and the trail keeps deciding."""
    ddl, columns = old_schema("m009_key_origins")
    names = pgschema.names()
    source_path = tmp_path / "source.db"
    # The m009 code hashed every payload in format 1 (its chain has no payload_format column).
    monkeypatch.setattr(chain, "payload_format", lambda kind: None)
    with sqlite_trail_with_everything(source_path, default) as source:
        codec = codec_for(source.db)
        texts = {r["id"]: codec.text_row(r) for r in source._read("SELECT * FROM decisions")}
        with psycopg.connect(pg_url, autocommit=True) as pg:  # the database as the m009 code left it
            for sql in ddl:
                pg.execute(sql)
            pg.execute("CREATE TABLE _leadgate_migrations (name text PRIMARY KEY, applied_at text NOT NULL)")
            for name in names[: names.index("m009_key_origins") + 1]:
                pg.execute("INSERT INTO _leadgate_migrations VALUES (%s, %s)", (name, AT))
            for table, cols in columns.items():
                for row in source._read(f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid"):
                    values = [texts[row["id"]][c] if table == "decisions" else row[c] for c in cols]
                    values = [chain.hex_of(v) for v in values]  # SQLite's raw hashes: text in m009's chain
                    marks = ", ".join(["%s"] * len(cols))
                    pg.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", values)
            assert (
                pg.execute(
                    "SELECT data_type FROM information_schema.columns WHERE table_name = "
                    "'decisions' AND column_name = 'decision'"
                ).fetchone()[0]
                == "text"
            )
    monkeypatch.undo()  # this code from here on
    with AuditTrail(pg_url, secrets=Secrets(f"{source_path}.key")) as trail:
        postgres.advance_identities(trail.db)  # rows were loaded with their ids, as audit copy does
        assert pgschema.applied(trail.db) == sorted(names)
        kinds = dict(
            trail.db.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'decisions'"
            ).fetchall()
        )
        assert {kinds[c] for c in COMPRESSED} == {"bytea"}
        codec = codec_for(trail.db)
        stored = trail._read("SELECT * FROM decisions")
        assert len(stored) == len(texts) and all(isinstance(r["decision"], bytes) for r in stored)
        for row in stored:
            assert codec.text_row(row) == texts[row["id"]]  # every document, and the summary m011 made
            assert len(row["decision"]) < len(texts[row["id"]]["decision"])
        assert trail.verify() == []
        results = list(replay_range(trail, evaluator(registry)))
        assert results and all(r["identical"] for r in results)
        reply = decide(default, trail, lead(lead_id="C-1", profile=HOT, answers={"budget": "no"}), at=LATER)[
            0
        ]
        formats = trail.db.execute(
            "SELECT DISTINCT payload_format FROM chain WHERE ref = ?", (reply["decision_id"],)
        )
        assert formats.fetchall() == [(chain.TEXT_FORMAT,)]  # m015's column, added by its schema form
        assert trail.verify() == []


def test_the_write_paths_one_statement_reads_agree_on_both_backends(pg_url, tmp_path, default):
    """audit.state's lead read (JSON aggregates), audit.unit's head read and the multi-row inserts
    give the same lead on SQLite and on PostgreSQL (the same key file: the same tokens)."""
    seen = []
    for location in (tmp_path / "s.db", pg_url):
        with AuditTrail(location, secrets=Secrets(tmp_path / "same.key")) as trail:
            assert trail.lead_state("S").facts is None
            for i in range(3):
                events = [
                    {
                        "type": ("demo_request", "content_download")[j % 2],
                        "at": AT,
                        "id": f"e{i}-{j}",
                        "properties": {"n": j},
                    }
                    for j in range(3)
                ]
                decide(default, trail, lead(lead_id="S", profile=HOT, events=events), at=LATER)
            handed = trail.lead_state("S").facts.get("handoff")  # the open hand-off, before the outcome
            report_outcome(default, trail, "S", {"type": "accepted"}, at=LATER, note="called")
            state = trail.lead_state("S")
            with trail.deciding("S") as uow:
                assert uow.version("S") == state.version  # the head read under the lock agrees
            [outcome] = state.facts["outcomes"]
            assert outcome.pop("id").startswith("out_")  # random: the rest must agree
            seen.append((state.facts, state.known_at, handed))
    sqlite, postgresql = seen
    assert len(sqlite[0]["events"]) == 9 and sqlite[0]["profile"]["email"] == HOT["email"]
    assert sqlite[2]["route"] and sqlite[0]["outcomes"] == [{"type": "accepted", "at": LATER}]
    assert postgresql == sqlite


def test_translations_kept_are_bounded():
    """A multi-row INSERT has one text per row count: a worker must not keep every one it met."""
    for rows in range(1, 1001):
        translate("INSERT INTO events (lead_id, event_id) VALUES " + ",".join(["(?, ?)"] * rows))
    assert translate.cache_info().currsize <= 512


def test_a_copy_out_of_postgresql_reads_a_snapshot_and_stops_no_writer(pg_url, tmp_path):
    """`audit copy` from a PostgreSQL trail reads in one snapshot: a writer of any machine goes on
    meanwhile (a BEGIN there takes every machine's write lock) and what it writes is not in the copy."""
    with opened(pg_url, tmp_path) as source, opened(pg_url, tmp_path) as writer:
        create(source, "before", "decide")
        with source._lock, source.db.snapshot():
            started = time.monotonic()
            create(writer, "meanwhile", "decide")  # its own transaction, on another connection
            assert time.monotonic() - started < 5  # not held up to lock_timeout (30 s, then 503)
            names = [r[0] for r in source.db.execute("SELECT name FROM api_keys ORDER BY name").fetchall()]
            assert names == ["before"]
        assert sorted(r["name"] for r in source._read("SELECT name FROM api_keys")) == ["before", "meanwhile"]
