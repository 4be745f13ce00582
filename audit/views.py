"""The views of migration 13 and the moves onto them, shared by its SQLite and PostgreSQL forms.

What is a function of a lead's decisions (its stage history, hand-offs and assignments) is read
through views over columns of the decisions, not written beside each one; a lead's kept personal
values and its open hand-off are columns of its row. The rows of the old tables move onto their
decisions, or into the `*_before` tables the views also read where the decision was archived.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

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
# What m013's and m016's views read of a hand-off (its first action, what closed it), and the
# start of the rows they read it from.
_HANDOFF_COLUMNS = """
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
"""
HANDOFFS = (
    _HANDOFF_COLUMNS
    + """        (SELECT n.seq FROM decisions n WHERE n.lead_id = d.lead_id AND n.kind = 'decision'
           AND n.seq > d.seq AND n.route IS DISTINCT FROM d.route ORDER BY n.seq LIMIT 1) AS closed_seq
      FROM decisions d WHERE d.handoff_due_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM handoffs_before b WHERE b.id = d.seq)) AS h
UNION ALL
SELECT id, lead_id, decision_id, route, destination, team, at, due_at, acted_at, acted_by, closed_at, closed_by
FROM handoffs_before
"""
)
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
# m016: `handoffs` again, where a hand-off its lead's row carries as open (`leads.handoff_seq`) is
# known open at once. The search for the decision that closed it walked every later decision of the
# lead on the same route (a chatty lead's hundred) and ran once for each column that needs it; a
# closed hand-off still searches, over the decisions of its own life only.
HANDOFFS_KNOWN_OPEN = (
    _HANDOFF_COLUMNS
    + """        CASE WHEN EXISTS (SELECT 1 FROM leads l WHERE l.handoff_seq = d.seq) THEN NULL
          ELSE (SELECT n.seq FROM decisions n WHERE n.lead_id = d.lead_id AND n.kind = 'decision'
           AND n.seq > d.seq AND n.route IS DISTINCT FROM d.route ORDER BY n.seq LIMIT 1) END AS closed_seq
      FROM decisions d WHERE d.handoff_due_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM handoffs_before b WHERE b.id = d.seq)) AS h
UNION ALL
SELECT id, lead_id, decision_id, route, destination, team, at, due_at, acted_at, acted_by, closed_at, closed_by
FROM handoffs_before
"""
)
# The hand-offs made in a window of time, found by their time (m016): the SLA report's statistics
# read those of its window, never every hand-off ever made (audit.outcomes.IN_WINDOW).
WINDOW_INDEXES = (
    'CREATE INDEX "decisions_handoffs_at" ON "decisions" ("evaluated_at") WHERE "handoff_due_at" IS NOT NULL',
    'CREATE INDEX "handoffs_before_at" ON "handoffs_before" ("at")',
)
HANDOFF_TIMES = (*WINDOW_INDEXES, "DROP VIEW handoffs", HANDOFFS_KNOWN_OPEN)  # m016, on both backends
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
    make the views. `db`: a connection of either backend, read here, before any of them runs."""
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
