"""What sales reported about each lead, and the hand-offs it answers: the feedback loop's storage.

An outcome (accepted, rejected with a reason, contacted, meeting held, opportunity, won with an amount,
lost with a reason) is a chained entry like a decision. A hand-off opens when a decision routes a
lead to a route with an SLA; the first outcome after it is the first action on it; a later decision
that routes the lead elsewhere closes it. `leadgate sla` reads them.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from engine.times import format_time, parse_time

from . import chain, outbox
from .rows import keep_personal, now_iso

if TYPE_CHECKING:  # the trail calls into this module while it records
    from .trail import AuditTrail

# fact key -> the key of a recorded outcome (what the engine reads of it)
OUTCOME_FACT_KEYS = {"id": "outcome_id", "type": "type", "at": "at", "reason": "reason", "amount": "amount"}


def record(
    db,
    lead_id: str,
    outcome: dict,
    reported_by: str | None,
    source: str,
    note: str | None,
    personal=None,
    head: chain.Head | None = None,
) -> dict:
    """Store one outcome inside the caller's transaction; it is the first action on an open hand-off.

    With `personal` (the trail's), email addresses and phone numbers in the note become tokens, or the
    whole note does when LEADGATE_PERSONAL_FIELDS names `outcomes.note`.
    """
    if personal is not None:
        note, kept = personal.protect_note(note)
        keep_personal(db, lead_id, kept)
    row = {
        "id": "out_" + uuid.uuid4().hex,
        "lead_id": lead_id,
        "type": outcome["type"],
        "at": outcome["at"],
        "reason": outcome.get("reason"),
        # As SQLite gives it back (REAL): an int would hash as 12000 and read back as 12000.0.
        "amount": float(outcome["amount"]) if outcome.get("amount") is not None else None,
        "note": note,
        "reported_by": reported_by,
        "recorded_at": now_iso(),
        "source": source,
    }
    chain.append_entry(db, "outcome", row, head)  # the open hand-off reads it as its first action
    recorded = outcome_of(row)
    outbox.outcome_recorded(db, recorded, row["recorded_at"])
    return recorded


def outcome_of(row: dict) -> dict:
    return {
        "outcome_id": row["id"],
        "seq": row["seq"],
        "lead_id": row["lead_id"],
        "type": row["type"],
        "at": row["at"],
        "reason": row["reason"],
        "amount": row["amount"],
        "note": row["note"],
        "reported_by": row["reported_by"],
        "recorded_at": row["recorded_at"],
        "source": row["source"],
    }


def of_lead(trail: AuditTrail, lead_id: str) -> list[dict]:
    return [
        outcome_of(r)
        for r in trail._read("SELECT * FROM outcomes WHERE lead_id = ? ORDER BY at, seq", (lead_id,))
    ]


def current_handoff(trail: AuditTrail, lead_id: str) -> dict | None:
    """The lead's hand-off still going on, as a fact: {route, at, due_at[, acted_at]}.

    While the lead stays on its route the decision keeps this hand-off's due time (the one `sla`
    measures), acted on or not; `acted_at` tells the overdue feature that someone already answered.
    """
    rows = trail._read("SELECT route, at, due_at, acted_at FROM open_handoffs WHERE lead_id = ?", (lead_id,))
    if not rows:
        return None
    return {k: v for k, v in rows[0].items() if v is not None}


# (id, route) of the lead's open hand-off: read with the lead (audit.unit, audit.recording), through
# the seq its row carries
OPEN_HANDOFF = (
    "SELECT d.seq AS id, d.route FROM leads o JOIN decisions d ON d.seq = o.handoff_seq WHERE o.lead_id = ?"
)


def opens_handoff(route: dict, current: tuple | None) -> bool:
    """Whether a decision routed to `route` opens a hand-off (the `handoffs` view, m013): a route with
    an SLA that the lead's open hand-off (id, route), as the transaction read it, is not already on.
    A decision on another route closes the open one by being recorded."""
    if current is not None and current[1] == route["id"]:
        return False  # the same hand-off goes on: its due time stays the first one
    return bool(route.get("due_at"))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# The per-team statistics of `sla` cover the hand-offs made in a window of time, by default the 30
# days before the report's time; the overdue list is never windowed (every open hand-off past due).
WINDOW_DAYS = 30


def window(at: str, since: str | None = None, until: str | None = None) -> tuple[str, str]:
    """(since, until) of the statistics, as the one time formatter writes them: `until` defaults to
    `at`, `since` to WINDOW_DAYS before until (or the first moment of year 1)."""
    end = parse_time(until or at, "until")
    try:
        start = parse_time(since, "since") if since else end - timedelta(days=WINDOW_DAYS)
    except OverflowError:
        start = datetime.min.replace(tzinfo=UTC)
    return format_time(start), format_time(end)


def window_problem(at: str, since: str | None, until: str | None) -> tuple[str, str] | None:
    """(field, message) when `since` is after `until` (defaults as `window`), naming the field given:
    the one check of GET /v1/sla and `leadgate sla`. None when the window holds."""
    start, end = window(at, since, until)
    if parse_time(start, "since") <= parse_time(end, "until"):
        return None
    if until is not None:
        return "until", f"must not be before since ({start})"
    return "since", f"must not be after until ({end}: the report's time unless given)"


def before(name: str, at: str) -> dict:
    """The parameters `{name}_lt` and `{name}_eq` for which a stored time t is strictly before `at`
    exactly when `t < :{name}_lt OR t = :{name}_eq`, compared as text (so in SQL, through an index).

    Stored times are UTC with a Z, to the second, with six digits of microseconds when they have any
    (format_time; `iso` always writes them): text order is time order except within one second,
    where "…:00Z" sorts after "…:00.5Z" ('.' < 'Z'). So: before "…:00Z" is below "…:00" as text;
    before "…:00.5Z" is below it as text, or "…:00Z" itself (which sorts above it).
    """
    second = at[:19]
    if len(at) > 20:  # with microseconds
        return {f"{name}_lt": at, f"{name}_eq": second + "Z"}
    return {f"{name}_lt": second, f"{name}_eq": None}


def upto(name: str, at: str) -> dict:
    """As `before`, for a stored time at or before `at` (before the next microsecond)."""
    try:
        return before(name, format_time(parse_time(at, name) + timedelta(microseconds=1)))
    except OverflowError:  # the last microsecond of year 9999: every time is at or before it ('~' > 'Z')
        return {f"{name}_lt": "9999-12-31T23:59:59~", f"{name}_eq": None}


# Hand-offs past due and unanswered: the open ones only, through the leads that carry them (the
# partial index leads_open_handoff), whatever their age. `due_at || ''` keeps the planner off the
# index of every hand-off's due time (decisions_handoffs_due): past due is nearly every hand-off
# ever made, open are a few. `total` counts them all in the same pass as the sort.
OVERDUE = (
    "SELECT lead_id, route, team, at, due_at, decision_id, count(*) OVER () AS total FROM open_handoffs "
    "WHERE acted_at IS NULL AND (due_at || '' < :at_lt OR due_at || '' = :at_eq) "
    "AND (:team IS NULL OR team = :team) ORDER BY due_at, id"
)
# The hand-offs made in the window, since and until included (indexes decisions_handoffs_at and
# handoffs_before_at, m016): the index's range is the window to the second, the exact bounds are
# compared on what it finds (`before`).
IN_WINDOW = (
    "SELECT coalesce(team, route) AS name, at, due_at, acted_at, closed_at FROM handoffs "
    "WHERE at >= :since_lt AND at IS DISTINCT FROM :since_eq AND at <= :until_top "
    "AND (at < :until_lt OR at = :until_eq) AND (:team IS NULL OR team = :team)"
)


def overdue(
    trail: AuditTrail, at: str, team: str | None = None, limit: int | None = None
) -> tuple[list, int]:
    """([{lead_id, route, team, at, due_at, minutes_overdue, decision_id}] the most overdue first, at
    most `limit` of them (None: all), and how many there are in all)."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1 (None lists all)")
    params = {**before("at", at), "team": team}
    rows = trail._read(OVERDUE if limit is None else f"{OVERDUE} LIMIT :limit", {**params, "limit": limit})
    total = rows[0]["total"] if rows else 0
    now = moment(at)
    for r in rows:
        del r["total"]
        r["minutes_overdue"] = round((now - moment(r["due_at"])).total_seconds() / 60, 1)
    return rows, total


def team_stats(trail: AuditTrail, at: str, since: str, until: str, team: str | None = None) -> dict:
    """Per team (or route, for a route without one) of the hand-offs made at or after `since` and at
    or before `until`: {handoffs, acted, acted_in_time, acted_late, open, overdue (at `at`),
    median_minutes_to_first_action}."""
    top = upto("until", until)
    params = {**before("since", since), **top, "until_top": top["until_eq"] or top["until_lt"], "team": team}
    now, teams = moment(at), {}
    for r in trail._read(IN_WINDOW, params):
        stats = teams.get(r["name"])
        if stats is None:
            stats = teams[r["name"]] = {
                "handoffs": 0,
                "acted": 0,
                "acted_in_time": 0,
                "acted_late": 0,
                "open": 0,
                "overdue": 0,
                "_minutes": [],
            }
        stats["handoffs"] += 1
        if r["acted_at"] is not None:
            stats["acted"] += 1
            acted = moment(r["acted_at"])
            stats["acted_in_time" if acted <= moment(r["due_at"]) else "acted_late"] += 1
            stats["_minutes"].append((acted - moment(r["at"])).total_seconds() / 60)
        elif r["closed_at"] is None:
            stats["open"] += 1
            stats["overdue"] += moment(r["due_at"]) < now
    for stats in teams.values():
        minutes = stats.pop("_minutes")
        stats["median_minutes_to_first_action"] = round(statistics.median(minutes), 1) if minutes else None
    return dict(sorted(teams.items()))


def sla(
    trail: AuditTrail,
    at: str | None = None,
    team: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> dict:
    """Hand-offs past due and unanswered, and per team how fast the first action came.

    {"at", "since", "until", "overdue": [{lead_id, route, team, at, due_at, minutes_overdue,
    decision_id}], "overdue_total", "teams": {team: {handoffs, acted, acted_in_time, acted_late, open,
    overdue, median_minutes_to_first_action}}}. `overdue` is every open hand-off past due at `at`
    however old (the most overdue first; the first `limit` of them when given, `overdue_total` counts
    all); `teams` counts the hand-offs made in the window, since and until included (`window`).
    """
    at = format_time(parse_time(at or now_iso(), "at"))  # the form `before` reads
    since, until = window(at, since, until)
    listed, total = overdue(trail, at, team, limit)
    return {
        "at": at,
        "since": since,
        "until": until,
        "overdue": listed,
        "overdue_total": total,
        "teams": team_stats(trail, at, since, until, team),
    }
