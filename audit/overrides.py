"""Reviewers' overrides: "this decision was wrong; it should have been route X / stage Y, because …".

An override is a chained entry (audit.chain), like a decision or an outcome: it can be added, never
edited or removed without `audit verify` naming it. It keeps what the decision said beside what the
reviewer expected, so reports and cases need no second look at the decision.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from . import chain
from .codec import codec_for
from .replay import revealed
from .rows import now_iso
from .trail import AuditTrail, record_of


def record(trail: AuditTrail, decision: dict, expected: dict, reason: str, reviewer: str | None) -> dict:
    """Store an override of a recorded decision (a record as trail.decision returns it)."""
    d = decision["decision"]
    row = {
        "id": "ovr_" + uuid.uuid4().hex,
        "decision_id": decision["decision_id"],
        "lead_id": decision["lead_id"],
        "at": now_iso(),
        "reviewer": reviewer,
        "decided_route": d["route"]["id"],
        "decided_stage": d["stage"],
        "expected_route": expected.get("route"),
        "expected_stage": expected.get("stage"),
        "reason": reason,
    }
    with trail._transaction() as db:
        chain.append_entry(db, "override", row)
    return override_of(row, fired(d))


def fired(decision: dict) -> list[str]:
    """The rules of the ruleset that fired in a decision (not leadgate's own steps, which start with @)."""
    return [r["rule"] for r in decision["reasons"] if not r["rule"].startswith("@")]


def summarised(summary: str) -> list[str]:
    """`fired` from a decision's summary (audit.compact), without decoding its reply."""
    return [rule for rule in json.loads(summary)["fired"] if not rule.startswith("@")]


def override_of(row: dict, rules: list[str]) -> dict:
    return {
        "override_id": row["id"],
        "seq": row["seq"],
        "decision_id": row["decision_id"],
        "lead_id": row["lead_id"],
        "at": row["at"],
        "reviewer": row["reviewer"],
        "decided_route": row["decided_route"],
        "decided_stage": row["decided_stage"],
        "expected_route": row["expected_route"],
        "expected_stage": row["expected_stage"],
        "reason": row["reason"],
        "rules": rules,
    }


def of_lead(trail: AuditTrail, lead_id: str) -> list[dict]:
    """Every override of the lead's decisions, oldest first."""
    rows = trail._read(
        "SELECT o.*, d.summary, d.ruleset_digest FROM overrides o JOIN decisions d ON d.id = o.decision_id "
        "WHERE o.lead_id = ? ORDER BY o.seq",
        (lead_id,),
    )
    codec = codec_for(trail.db)
    return [override_of(r, summarised(codec.unpack(r["summary"], r["ruleset_digest"]))) for r in rows]


def by_decision(trail: AuditTrail, lead_id: str) -> dict[str, list[dict]]:
    """The lead's overrides, by the decision they override, oldest first."""
    out: dict[str, list[dict]] = {}
    for item in of_lead(trail, lead_id):
        out.setdefault(item["decision_id"], []).append(item)
    return out


def with_decisions(
    trail: AuditTrail, since: str | None = None, ruleset: str | None = None
) -> Iterator[tuple[dict, dict]]:
    """(override, its decision's record with the facts it was evaluated with), oldest first, in batches.

    Personal values still kept are put back into the facts, so that the decision can be evaluated again.
    """
    after = 0
    while True:
        rows = trail._read(
            "SELECT o.id AS o_id, o.seq AS o_seq, o.at AS o_at, o.reviewer, o.decided_route, o.decided_stage, "
            "o.expected_route, o.expected_stage, o.reason, d.* FROM overrides o "
            "JOIN decisions d ON d.id = o.decision_id "
            "WHERE o.seq > ? AND (? IS NULL OR o.at >= ?) AND (? IS NULL OR d.ruleset_name = ?) "
            "ORDER BY o.seq LIMIT 500",
            (after, since, since, ruleset, ruleset),
        )
        if not rows:
            return
        for r in rows:
            record = record_of(r, trail)
            facts, source, _ = revealed(trail, record)
            override = override_of(
                {**r, "id": r["o_id"], "seq": r["o_seq"], "at": r["o_at"], "decision_id": r["id"]},
                fired(record["decision"]),
            )
            yield override, {**record, "facts": facts, "source": source}
        after = rows[-1]["o_seq"]


def fired_on_route(trail: AuditTrail, route: str, since: str | None = None, ruleset: str | None = None):
    """(decisions, {rule: decisions it fired in}) over every decision routed to `route`: the base rate
    that the rules of overridden decisions are compared with."""
    counts: dict[str, int] = {}
    total, after = 0, 0
    while True:
        rows = trail._read(
            "SELECT seq, summary, ruleset_digest FROM decisions WHERE kind = 'decision' AND route = ? AND seq > ? "
            "AND (? IS NULL OR evaluated_at >= ?) AND (? IS NULL OR ruleset_name = ?) ORDER BY seq LIMIT 1000",
            (route, after, since, since, ruleset, ruleset),
        )
        if not rows:
            return total, counts
        for row in rows:
            total += 1
            for rule in set(summarised(codec_for(trail.db).unpack(row["summary"], row["ruleset_digest"]))):
                counts[rule] = counts.get(rule, 0) + 1
        after = rows[-1]["seq"]
