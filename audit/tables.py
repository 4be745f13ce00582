"""The tables of the first releases (migrations 1 to 8), each as it was first made: plain functions that
audit/migrations.py registers first, in this order, under these names. Never edited: a change to a
table is a later migration there."""

from __future__ import annotations

from sqlite_utils import Database

from . import chain, rows


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


def m002_api_keys(db: Database) -> None:
    db["api_keys"].create(
        {"id": str, "name": str, "scope": str, "secret_hash": str, "created_at": str, "revoked_at": str},
        pk="id",
        not_null={"name", "scope", "secret_hash", "created_at"},
    )


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


FIRST = (
    m001_initial,
    m002_api_keys,
    m003_deployments,
    m004_outcomes,
    m005_assignments,
    m006_coverage,
    m007_outbox,
    m008_overrides,
)
