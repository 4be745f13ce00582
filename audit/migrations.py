"""The audit schema as an ordered list of migrations: each runs in a transaction with the record of it
(sqlite-utils `Migrations`), so a database at any earlier version is brought up to date on open
(audit/schema.py applies them). A change to the schema is a new migration at the end, never an edit.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import chain, compact, rows, views

migrations = Migrations("leadgate")


@migrations()
def m001_initial(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["rulesets"].create(
        {"digest": str, "name": str, "version": int, "source": str, "first_seen_at": str}, pk="digest"
    )
    db["chain"].create(
        {"seq": int, "kind": str, "ref": str, "at": str, "payload_hash": str, "prev_hash": str, "hash": str},
        pk="seq",
    )
    db["decisions"].create(
        {
            "id": str,
            "seq": int,
            "kind": str,
            "lead_id": str,
            "evaluated_at": str,
            "recorded_at": str,
            "channel": str,
            "client": str,
            "ruleset_name": str,
            "ruleset_version": int,
            "ruleset_digest": str,
            "is_lead": int,
            "stage": str,
            "previous_stage": str,
            "funnel": str,
            "quadrant": str,
            "route": str,
            "destination": str,
            "fit": float,
            "engagement": float,
            "input": str,
            "facts": str,
            "decision": str,
            "latency_ms": float,
            "idempotency_key": str,
            "request_hash": str,
        },
        pk="id",
        not_null={
            "seq",
            "kind",
            "lead_id",
            "evaluated_at",
            "recorded_at",
            "ruleset_digest",
            "decision",
            "facts",
        },
        foreign_keys=[("ruleset_digest", "rulesets", "digest")],
    )
    db["decisions"].create_index(["seq"], unique=True)
    db["decisions"].create_index(["lead_id", "seq"])
    db["decisions"].create_index(["evaluated_at"])
    db["decisions"].create_index(["stage", "seq"])
    db["decisions"].create_index(["route", "seq"])
    db["decisions"].create_index(["quadrant", "seq"])
    db["decisions"].create_index(["ruleset_name", "ruleset_version", "seq"])
    db["decisions"].create_index(["channel", "seq"])
    db["decisions"].create_index(["idempotency_key", "client"], unique=True)
    db["leads"].create(
        {
            "lead_id": str,
            "created_at": str,
            "updated_at": str,
            "channel": str,
            "profile": str,
            "answers": str,
            "stage": str,
            "ruleset_name": str,
            "last_decision_id": str,
        },
        pk="lead_id",
    )
    db["events"].create(
        {
            "lead_id": str,
            "event_id": str,
            "type": str,
            "at": str,
            "properties": str,
            "first_seen_at": str,
            "decision_id": str,
        },
        pk=("lead_id", "event_id"),
    )
    db["events"].create_index(["lead_id", "at"])
    db["stage_history"].create(
        {"id": int, "lead_id": str, "at": str, "from_stage": str, "to_stage": str, "decision_id": str},
        pk="id",
    )
    db["stage_history"].create_index(["lead_id", "id"])
    db["personal"].create({"token": str, "lead_id": str, "field": str, "value": str}, pk="token")
    db["personal"].create_index(["lead_id"])
    db["erasures"].create(
        {"id": str, "seq": int, "lead_id": str, "at": str, "requested_by": str, "removed": int}, pk="id"
    )


@migrations()
def m002_api_keys(db: Database) -> None:
    db["api_keys"].create(
        {"id": str, "name": str, "scope": str, "secret_hash": str, "created_at": str, "revoked_at": str},
        pk="id",
        not_null={"name", "scope", "secret_hash", "created_at"},
    )


@migrations()
def m003_deployments(db: Database) -> None:
    # A reload is a chained entry: which ruleset digests were served from then on, and what was refused.
    db["reloads"].create(
        {
            "id": str,
            "seq": int,
            "at": str,
            "requested_by": str,
            "deployment": str,
            "problems": str,
            "changed": int,
        },
        pk="id",
        not_null={"seq", "at", "deployment", "problems", "changed"},
    )
    db["reloads"].create_index(["seq"], unique=True)
    # The result of a shadow candidate for a live decision, kept beside it and never returned.
    db["shadow_decisions"].create(
        {
            "decision_id": str,
            "evaluated_at": str,
            "live_digest": str,
            "ruleset_name": str,
            "ruleset_version": int,
            "ruleset_digest": str,
            "stage": str,
            "route": str,
            "quadrant": str,
            "fit": float,
            "engagement": float,
            "decision": str,
            "error": str,
        },
        pk="decision_id",
        foreign_keys=[("decision_id", "decisions", "id"), ("ruleset_digest", "rulesets", "digest")],
    )
    db["shadow_decisions"].create_index(["ruleset_name", "ruleset_version"])


@migrations()
def m004_outcomes(db: Database) -> None:
    # What sales reported about a lead: a chained entry, like a decision, and the decision it produced.
    db["outcomes"].create(
        {
            "id": str,
            "seq": int,
            "lead_id": str,
            "type": str,
            "at": str,
            "reason": str,
            "amount": float,
            "note": str,
            "reported_by": str,
            "recorded_at": str,
            "source": str,
        },
        pk="id",
        not_null={"seq", "lead_id", "type", "at", "recorded_at"},
        foreign_keys=[("lead_id", "leads", "lead_id")],
    )
    db["outcomes"].create_index(["seq"], unique=True)
    db["outcomes"].create_index(["lead_id", "at"])
    db["outcomes"].create_index(["type", "at"])
    # Hand-offs to a route with an SLA: when due, when first acted on (an outcome), or superseded.
    db["handoffs"].create(
        {
            "id": int,
            "lead_id": str,
            "decision_id": str,
            "route": str,
            "destination": str,
            "team": str,
            "at": str,
            "due_at": str,
            "acted_at": str,
            "acted_by": str,
            "closed_at": str,
        },
        pk="id",
        not_null={"lead_id", "decision_id", "route", "at", "due_at"},
        foreign_keys=[("decision_id", "decisions", "id")],
    )
    db["handoffs"].create_index(["lead_id", "id"])
    db["handoffs"].create_index(["due_at"])


@migrations()
def m005_assignments(db: Database) -> None:
    # Who took each hand-off, and why (lead owner, company owner, round robin): counts per period for caps.
    db["assignments"].create(
        {
            "id": int,
            "lead_id": str,
            "team": str,
            "owner": str,
            "basis": str,
            "domain": str,
            "period": str,
            "at": str,
            "recorded_at": str,
        },
        pk="id",
        not_null={"lead_id", "team", "basis", "period", "at"},
    )
    db["assignments"].create_index(["team", "period", "owner"])
    db["assignments"].create_index(["lead_id", "team"])
    db["assignments"].create_index(["domain", "team"])


@migrations()
def m006_coverage(db: Database) -> None:
    # Key changes are chained entries; keys that existed before are chained as they stand.
    db["key_events"].create(
        {"id": str, "seq": int, "key_id": str, "action": str, "at": str, "snapshot": str},
        pk="id",
        not_null={"seq", "key_id", "action", "at", "snapshot"},
    )
    db["key_events"].create_index(["seq"], unique=True)
    db["key_events"].create_index(["key_id", "seq"])
    for (key_id,) in db.execute("SELECT id FROM api_keys ORDER BY created_at, id").fetchall():
        chain.snapshot(db, "api_keys", key_id, "adopted", rows.now_iso())
    # The first reply to each Idempotency-Key of a client, whatever the endpoint (decisions keep theirs).
    db["idempotency"].create(
        {
            "client": str,
            "key": str,
            "endpoint": str,
            "request_hash": str,
            "status": int,
            "reply": str,
            "at": str,
        },
        pk=("client", "key"),
        not_null={"endpoint", "request_hash", "status", "reply", "at"},
    )
    # One lead's value per token: two leads with the same email share its token, and erasing one of
    # them must neither leave its value behind nor take the other's away.
    db["personal"].transform(pk=("token", "lead_id"))
    # Review sessions held on the server: a cookie names one; signing out or idling ends it.
    db["sessions"].create(
        {"id": str, "key_id": str, "created_at": str, "seen_at": str, "ended_at": str},
        pk="id",
        not_null={"key_id", "created_at", "seen_at"},
    )


@migrations()
def m007_outbox(db: Database) -> None:
    # The transactional outbox: each event is written in the transaction of the decision or outcome
    # that causes it; `seq` orders them. Deliveries (one per event and subscribed destination) and
    # every attempt to deliver them sit beside it.
    db.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
        "type TEXT NOT NULL, lead_id TEXT NOT NULL, ruleset TEXT, route TEXT, team TEXT, "
        "at TEXT NOT NULL, payload TEXT NOT NULL)"
    )
    db["deliveries"].create(
        {
            "id": str,
            "event_seq": int,
            "event_id": str,
            "destination": str,
            "lead_id": str,
            "status": str,
            "attempts": int,
            "next_at": float,
            "created_at": str,
            "updated_at": str,
            "last_status": int,
            "last_error": str,
        },
        pk="id",
        not_null={"event_seq", "event_id", "destination", "lead_id", "status", "attempts", "created_at"},
    )
    db["deliveries"].create_index(["status", "destination", "lead_id", "event_seq"])
    db["deliveries"].create_index(["event_id"])
    db["deliveries"].create_index(["event_seq"])
    db["delivery_attempts"].create(
        {
            "id": int,
            "delivery_id": str,
            "event_id": str,
            "destination": str,
            "attempt": int,
            "at": str,
            "status": int,
            "latency_ms": float,
            "error": str,
        },
        pk="id",
        not_null={"delivery_id", "event_id", "destination", "attempt", "at"},
    )
    db["delivery_attempts"].create_index(["delivery_id", "id"])


@migrations()
def m008_overrides(db: Database) -> None:
    # A reviewer's "this decision was wrong, it should have been …": a chained entry beside the decision.
    db["overrides"].create(
        {
            "id": str,
            "seq": int,
            "decision_id": str,
            "lead_id": str,
            "at": str,
            "reviewer": str,
            "decided_route": str,
            "decided_stage": str,
            "expected_route": str,
            "expected_stage": str,
            "reason": str,
        },
        pk="id",
        not_null={"seq", "decision_id", "lead_id", "at", "decided_route", "decided_stage", "reason"},
        foreign_keys=[("decision_id", "decisions", "id")],
    )
    db["overrides"].create_index(["seq"], unique=True)
    db["overrides"].create_index(["lead_id", "at"])
    db["overrides"].create_index(["decision_id"])
    db["overrides"].create_index(["at"])


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
