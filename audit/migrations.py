"""The audit schema as an ordered list of migrations: each runs in a transaction with the record of it
(sqlite-utils `Migrations`), so a database at any earlier version is brought up to date on open
(audit/schema.py applies them). A change to the schema is a new migration at the end, never an edit.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import chain, compact, rows

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


# What is derived from a lead's decisions is read through views over them instead of written beside
# each decision (audit.derived still rebuilds every one from the chained entries and compares):
# - stage history: the decisions whose stage differs from the lead's decision before;
# - hand-offs: the decisions that opened one (`handoff_due_at`, `team`: columns outside the chain);
#   closed by the lead's next decision on another route, first acted on by the first outcome recorded
#   while open at or after its time;
# - assignments: the decisions that assigned the lead (`team`, `owner`, `basis`, `domain`, `period`).
STAGE_HISTORY = """
CREATE VIEW stage_history AS
SELECT seq AS id, lead_id, recorded_at AS at, from_stage, stage AS to_stage, id AS decision_id
FROM (SELECT seq, id, lead_id, recorded_at, stage,
        LAG(stage) OVER (PARTITION BY lead_id ORDER BY seq) AS from_stage
      FROM (SELECT seq, id, lead_id, recorded_at, stage FROM decisions WHERE kind = 'decision'
            UNION ALL
            SELECT seq, decision_id, lead_id, at, to_stage FROM stage_history_before) AS s) AS d
WHERE from_stage IS DISTINCT FROM stage
"""
HANDOFFS = """
CREATE VIEW handoffs AS
SELECT h.id, h.lead_id, h.decision_id, h.route, h.destination, h.team, h.at, h.due_at,
  (SELECT o.at FROM outcomes o WHERE o.lead_id = h.lead_id AND o.seq > h.id
     AND (h.closed_seq IS NULL OR o.seq < h.closed_seq) AND o.at >= h.at ORDER BY o.seq LIMIT 1) AS acted_at,
  (SELECT o.type FROM outcomes o WHERE o.lead_id = h.lead_id AND o.seq > h.id
     AND (h.closed_seq IS NULL OR o.seq < h.closed_seq) AND o.at >= h.at ORDER BY o.seq LIMIT 1) AS acted_by,
  (SELECT n.evaluated_at FROM decisions n WHERE n.seq = h.closed_seq) AS closed_at,
  (SELECT n.id FROM decisions n WHERE n.seq = h.closed_seq) AS closed_by
FROM (SELECT d.seq AS id, d.lead_id, d.id AS decision_id, d.route, d.destination, d.team,
        d.evaluated_at AS at, d.handoff_due_at AS due_at,
        (SELECT n.seq FROM decisions n WHERE n.lead_id = d.lead_id AND n.kind = 'decision'
           AND n.seq > d.seq AND n.route IS DISTINCT FROM d.route ORDER BY n.seq LIMIT 1) AS closed_seq
      FROM decisions d WHERE d.handoff_due_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM handoffs_before b WHERE b.id = d.seq)) AS h
UNION ALL
SELECT id, lead_id, decision_id, route, destination, team, at, due_at, acted_at, acted_by, closed_at, closed_by
FROM handoffs_before
"""
ASSIGNMENTS = """
CREATE VIEW assignments AS
SELECT seq AS id, lead_id, team, owner, basis, domain, period, evaluated_at AS at, recorded_at
FROM decisions WHERE basis IS NOT NULL
UNION ALL
SELECT id, lead_id, team, owner, basis, domain, period, at, recorded_at FROM assignments_before
"""
# The hand-offs still open, one per lead at most: its row carries the seq of the decision that opened it
# (`handoff_seq`, written with the lead by each decision, rebuilt by verify), so what is open is an
# indexed read of the leads, never a walk over every hand-off; `acted_at` as in `handoffs`.
OPEN_HANDOFFS = """
CREATE VIEW open_handoffs AS
SELECT d.seq AS id, l.lead_id, d.id AS decision_id, d.route, d.destination, d.team, d.evaluated_at AS at,
  d.handoff_due_at AS due_at,
  (SELECT o.at FROM outcomes o WHERE o.lead_id = l.lead_id AND o.seq > d.seq AND o.at >= d.evaluated_at
     ORDER BY o.seq LIMIT 1) AS acted_at,
  l.ruleset_name
FROM leads l JOIN decisions d ON d.seq = l.handoff_seq
WHERE l.handoff_seq IS NOT NULL
"""
OPEN_HANDOFF_SEQS = (
    "UPDATE leads SET handoff_seq = h.id FROM (SELECT lead_id, max(id) AS id FROM handoffs "
    "WHERE closed_at IS NULL GROUP BY lead_id) AS h WHERE h.lead_id = leads.lead_id"
)
# The rows of the three tables (as m013 found them) that the views cannot compute: those of decisions
# archived before m013 (an archive then kept only a hand-off's decision), and hand-offs whose closing
# decision was archived. They are kept as they were, at their decisions' seq (an assignment whose
# decision is gone: at the seq of one of its lead's archived decisions between its neighbours, so the
# order holds), and the views read them too; verify rebuilds them from the archive like the rest.
BEFORE = (
    'CREATE TABLE "stage_history_before" ("seq" INTEGER PRIMARY KEY, "lead_id" TEXT, "at" TEXT, '
    '"from_stage" TEXT, "to_stage" TEXT, "decision_id" TEXT)',
    'CREATE TABLE "handoffs_before" ("id" INTEGER PRIMARY KEY, "lead_id" TEXT, "decision_id" TEXT, '
    '"route" TEXT, "destination" TEXT, "team" TEXT, "at" TEXT, "due_at" TEXT, "acted_at" TEXT, '
    '"acted_by" TEXT, "closed_at" TEXT, "closed_by" TEXT)',
    'CREATE TABLE "assignments_before" ("n" INTEGER PRIMARY KEY, "id" INTEGER, "lead_id" TEXT, '
    '"team" TEXT, "owner" TEXT, "basis" TEXT, "domain" TEXT, "period" TEXT, "at" TEXT, "recorded_at" TEXT)',
    'CREATE INDEX "stage_history_before_lead" ON "stage_history_before" ("lead_id", "seq")',
    'CREATE INDEX "handoffs_before_lead" ON "handoffs_before" ("lead_id", "id")',
    'CREATE INDEX "assignments_before_lead" ON "assignments_before" ("lead_id", "team")',
    'CREATE INDEX "assignments_before_domain" ON "assignments_before" ("domain", "team")',
    'CREATE INDEX "assignments_before_period" ON "assignments_before" ("team", "period", "owner")',
)
DERIVED_INDEXES = (
    'CREATE INDEX "decisions_handoffs" ON "decisions" ("lead_id", "seq") WHERE "handoff_due_at" IS NOT NULL',
    'CREATE INDEX "decisions_handoffs_due" ON "decisions" ("handoff_due_at") WHERE "handoff_due_at" IS NOT NULL',
    'CREATE INDEX "decisions_assigned" ON "decisions" ("team", "period", "owner") WHERE "basis" IS NOT NULL',
    'CREATE INDEX "decisions_assigned_lead" ON "decisions" ("lead_id", "team", "seq") WHERE "basis" IS NOT NULL',
    'CREATE INDEX "decisions_assigned_domain" ON "decisions" ("domain", "team", "seq") WHERE "basis" IS NOT NULL',
    'CREATE INDEX "leads_open_handoff" ON "leads" ("handoff_seq") WHERE "handoff_seq" IS NOT NULL',
)
DERIVED_COLUMNS = ("handoff_due_at", "team", "owner", "basis", "domain", "period")
# A lead's kept personal values are a column of its row ({token: [field, value]}), written with it;
# the table keeps those of outcome notes. `personal` reads both, as the table did (a value in both
# once: a token names its field and value). UNION ALL, not UNION: SQLite pushes `lead_id = ?` into
# each arm of it (an index search), where UNION made every read walk every lead's values.
PERSONAL = """
CREATE VIEW personal AS
SELECT token, lead_id, field, value FROM personal_notes
UNION ALL
SELECT j.key AS token, l.lead_id, j.value ->> 0 AS field, j.value ->> 1 AS value
FROM leads l, json_each(l.personal) AS j
WHERE NOT EXISTS (SELECT 1 FROM personal_notes n WHERE n.token = j.key AND n.lead_id = l.lead_id)
"""
PERSONAL_PG = PERSONAL.replace("json_each(l.personal)", "json_each(CAST(l.personal AS json))")


@migrations()
def m013_derived_from_decisions(db: Database) -> None:
    # One decision writes its stage change, hand-off and assignment in its own row (columns outside
    # the chain, see the views above): the three tables go, their rows move onto their decisions, or
    # into the tables of rows from before m013 where their decisions are archived.
    for column in DERIVED_COLUMNS:
        db["decisions"].add_column(column, str)
    for sql in (*BEFORE, *derived_moves(db.conn)):
        db.execute(*sql) if isinstance(sql, tuple) else db.execute(sql)
    db["leads"].add_column("personal", str)
    db["leads"].add_column("handoff_seq", int)
    for sql in (*MOVE_PERSONAL, PERSONAL, OPEN_HANDOFF_SEQS, OPEN_HANDOFFS, *DERIVED_INDEXES):
        db.execute(sql)


MOVE_PERSONAL = (
    "UPDATE leads SET personal = (SELECT json_group_object(token, json_array(field, value)) "
    "FROM personal p WHERE p.lead_id = leads.lead_id) "
    "WHERE lead_id IN (SELECT lead_id FROM personal)",
    "DELETE FROM personal WHERE lead_id IN (SELECT lead_id FROM leads)",
    "ALTER TABLE personal RENAME TO personal_notes",
)


def derived_moves(db) -> list:
    """The statements (SQL, or (SQL, parameters)) that move the rows of stage_history, handoffs and
    assignments onto their decisions or into the tables of rows from before m013, drop the tables and
    make the views. `db`: a connection of either backend, with BEFORE's tables made."""
    moves: list = [
        "UPDATE decisions SET handoff_due_at = h.due_at, team = h.team FROM handoffs h "
        "WHERE h.decision_id = decisions.id",
        "INSERT INTO stage_history_before (seq, lead_id, at, from_stage, to_stage, decision_id) "
        "SELECT a.seq, s.lead_id, s.at, s.from_stage, s.to_stage, s.decision_id FROM stage_history s "
        "JOIN archived a ON a.ref = s.decision_id",
    ]
    moved, kept = move_assignments(db)
    moves += [
        ("UPDATE decisions SET team = ?, owner = ?, basis = ?, domain = ?, period = ? WHERE id = ?", row)
        for row in moved
    ]
    moves += [
        (
            "INSERT INTO assignments_before (n, id, lead_id, team, owner, basis, domain, period, at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        for row in kept
    ]
    moves += [
        ("INSERT INTO handoffs_before VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        for row in _closes(db)
    ]
    moves += [f"DROP TABLE {table}" for table in ("stage_history", "handoffs", "assignments")]
    return [*moves, STAGE_HISTORY, HANDOFFS, ASSIGNMENTS]


def _closes(db) -> list[tuple]:
    """The hand-offs whose close (or first action) the view would not find: their lead's decision that
    closed it was archived. As stored (closed ones never change again), at their decision's seq."""
    kept = []
    for row in db.execute(
        "SELECT d.seq, h.lead_id, h.decision_id, h.route, h.destination, h.team, h.at, h.due_at, "
        "h.acted_at, h.acted_by, h.closed_at FROM handoffs h JOIN decisions d ON d.id = h.decision_id "
        "WHERE h.lead_id IN (SELECT lead_id FROM archived) ORDER BY d.seq"
    ).fetchall():
        seq, lead_id, route, at, acted_at, closed_at = row[0], row[1], row[3], row[6], row[8], row[10]
        close = db.execute(
            "SELECT seq, evaluated_at, id FROM decisions WHERE lead_id = ? AND kind = 'decision' AND seq > ? "
            "AND route IS DISTINCT FROM ? ORDER BY seq LIMIT 1",
            (lead_id, seq, route),
        ).fetchone()
        acted = db.execute(
            "SELECT at FROM outcomes WHERE lead_id = ? AND seq > ? AND (? IS NULL OR seq < ?) AND at >= ? "
            "ORDER BY seq LIMIT 1",
            (lead_id, seq, close and close[0], close and close[0], at),
        ).fetchone()
        if (close and close[1]) != closed_at or (acted and acted[0]) != acted_at:
            by = close[2] if close and close[1] == closed_at else None
            kept.append((*row, by))
    return kept


def move_assignments(db) -> tuple[list[tuple], list[tuple]]:
    """(team, owner, basis, domain, period, decision id) of each stored assignment: written in its
    decision's transaction, at its evaluation time, so each is the lead's next decision with that time
    that routed it to a person (sales or qualification), in order. And the rows whose decision is gone
    (archived before m013), as rows of assignments_before."""
    decisions: dict[tuple, list[tuple]] = {}
    for lead_id, at, decision_id, seq in db.execute(
        "SELECT lead_id, evaluated_at, id, seq FROM decisions WHERE kind = 'decision' AND is_lead = 1 "
        "AND destination IN ('sales', 'qualification') ORDER BY seq"
    ).fetchall():
        decisions.setdefault((lead_id, at), []).append((decision_id, seq))
    archived: dict[str, list[int]] = {}
    for lead_id, seq in db.execute("SELECT lead_id, seq FROM archived ORDER BY seq").fetchall():
        archived.setdefault(lead_id, []).append(seq)
    placed: dict[str, list] = {}  # lead id -> [(seq or None, row)] in the order the rows were written
    for row in db.execute(
        "SELECT id, lead_id, team, owner, basis, domain, period, at, recorded_at FROM assignments ORDER BY id"
    ).fetchall():
        candidates = decisions.get((row[1], row[7]))
        placed.setdefault(row[1], []).append((candidates.pop(0) if candidates else None, row))
    live = sorted(db.execute("SELECT recorded_at, seq FROM decisions").fetchall())
    times = [at for at, _ in live]
    below = list(accumulate((seq for _, seq in live), max))  # the latest seq recorded up to each time
    above = list(accumulate((seq for _, seq in reversed(live)), min))[::-1]
    moved, kept = [], []
    for lead_id, written in placed.items():
        last = 0
        for i, (decision, row) in enumerate(written):
            if decision is not None:
                moved.append((*row[2:7], decision[0]))
                last = decision[1]
                continue
            upper = next((d[1] for d, _ in written[i + 1 :] if d is not None), None)
            seqs = [s for s in archived.get(lead_id, []) if s > last and (upper is None or s < upper)]
            # Among them, one recorded between the live decisions recorded before and after it.
            i, j = bisect_left(times, row[8]), bisect_right(times, row[8])
            after, until = below[i - 1] if i else 0, above[j] if j < len(above) else None
            near = [s for s in seqs if s > after and (until is None or s < until)]
            last = (near or seqs or [last])[0]
            kept.append((row[0], last, *row[1:]))
    return moved, kept


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
