"""The audit schema as an ordered list of migrations: each runs in a transaction with the record of it
(sqlite-utils `Migrations`), so a database at any earlier version is brought up to date on open
(audit/schema.py applies them). The first eight made the tables (audit/tables.py); those here change
them. A change to the schema is a new migration at the end, never an edit.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import chain, compact, tables, views

migrations = Migrations("leadgate")


for made in tables.FIRST:  # the tables of the first releases, as they were made (audit/tables.py)
    migrations()(made)


@migrations()
def m009_key_origins(db: Database) -> None:
    # A form key is published in web pages: the browser origins it may be called from (JSON list).
    db["api_keys"].add_column("origins", str)


@migrations()
def m010_request_ids(db: Database) -> None:
    # The caller's X-Request-Id, kept with the decision it asked for (chained when set: chain.LATER_COLUMNS).
    db["decisions"].add_column("request_id", str)
    db["decisions"].create_index(["request_id"])


@migrations()
def m011_compact_decisions(db: Database) -> None:
    # A decision stores what is new and refers to what is stored (audit.compact): its documents are
    # zstd frames with the ruleset's dictionary (source + `sample`, audit.codec), and `summary` holds
    # what a lead's timeline shows, so a page of it decodes no document. Existing rows are compressed
    # in place: their text comes back exactly, so every payload hash and checkpoint still holds.
    compact.migrate(db)


@migrations()
def m012_archives(db: Database) -> None:
    # An archive of old decisions is a chained entry: the digest of the range it took out of the file.
    db["archives"].create(
        {
            "id": str,
            "seq": int,
            "at": str,
            "before": str,
            "file": str,
            "count": int,
            "first_seq": int,
            "last_seq": int,
            "digest": str,
        },
        pk="id",
        not_null={"seq", "at", "before", "count", "first_seq", "last_seq", "digest"},
    )
    db["archives"].create_index(["seq"], unique=True)
    # Each archived decision's link and lead: which leads' derived rows need an archive to be rebuilt.
    db["archived"].create({"ref": str, "seq": int, "lead_id": str, "archive_id": str}, pk="ref")
    db["archived"].create_index(["archive_id", "seq"])


@migrations()
def m013_derived_from_decisions(db: Database) -> None:
    # One decision writes its stage change, hand-off and assignment in its own row (columns outside
    # the chain, see audit.views): the three tables go, their rows move onto their decisions, or
    # into the tables of rows from before m013 where their decisions are archived.
    for column in views.DERIVED_COLUMNS:
        db["decisions"].add_column(column, str)
    for sql in (*views.BEFORE, *views.derived_moves(db.conn)):
        db.execute(*sql) if isinstance(sql, tuple) else db.execute(sql)
    db["leads"].add_column("personal", str)
    db["leads"].add_column("handoff_seq", int)
    for sql in (
        *views.MOVE_PERSONAL,
        views.PERSONAL,
        views.OPEN_HANDOFF_SEQS,
        views.OPEN_HANDOFFS,
        *views.DERIVED_INDEXES,
    ):
        db.execute(sql)


@migrations()
def m014_compact_references(db: Database) -> None:
    # Storage per decision (issue 15): a second zstd dictionary per ruleset, from its first replies
    # (audit.codec: `samples`), with every document compressed again by it; the request-id index,
    # which no query uses, dropped; the Idempotency-Key index holds only the decisions that have one.
    # The chain's hashes as raw bytes (audit.chain.stored_hash). (Profile and answers by reference,
    # `$parts`, need no schema: rows written before hold theirs.)
    db["rulesets"].add_column("samples", str)
    db.execute("DROP INDEX IF EXISTS idx_decisions_request_id")
    db.execute("DROP INDEX IF EXISTS idx_decisions_idempotency_key_client")
    db.execute(
        "CREATE UNIQUE INDEX idx_decisions_idempotency_key_client ON decisions (idempotency_key, client) "
        "WHERE idempotency_key IS NOT NULL"
    )
    compact.second_dictionaries(db)
    chain.raw_hashes(db)


@migrations()
def m015_payload_format(db: Database) -> None:
    # CPU per decision (issue 15): a link says how its payload hash was made (audit.chain); decisions
    # and previews recorded from now on hash their documents' text as stored (format 2) instead of
    # encoding it again inside a canonical JSON array. Links written before keep NULL (format 1),
    # so no hash is rewritten and every checkpoint signed before still holds.
    db["chain"].add_column("payload_format", int)


@migrations()
def m016_handoff_times(db: Database) -> None:
    # The SLA report over a window of time (issue 15): the hand-offs made in it found by their time
    # through two indexes, not by walking every hand-off ever made; and the `handoffs` view knows the
    # open ones from their leads' rows instead of searching for what closed them (audit.views).
    for sql in views.HANDOFF_TIMES:
        db.execute(sql)
