"""Is the definition of a qualified lead working? Funnel, matrix, conversion and rule lift from outcomes.

Every report looks at each lead once, through its *snapshot*: the last decision made before sales
first reported on it (the decision that handed it off), or its latest decision when sales has said
nothing yet. A lead *converts* when it was won. Rates are plain ratios with their counts beside
them, so a reader can judge how much to trust them.

Reports add up: every report covers the same leads, its rows sum to its stated totals, and the counts
two reports share agree (the matrix's rows, with the leads that are not leads, are the leads of the
funnel and of every conversion table; a lead rejected by sales counts as rejected in each of them).
tests/test_report_totals.py checks it over generated histories.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from .codec import codec_for
from .outcomes import moment
from .trail import AuditTrail, record_of

FUNNEL = ("lead", "mql", "sql", "accepted", "opportunity", "customer")
ACCEPTED = {"accepted", "contacted", "meeting_held", "opportunity", "won"}
BAND = 20  # score bands of 20 points: 0–19, 20–39, …
# The seeds' warnings about the fit × readiness matrix.
BOTTOM_HALF_WARNING = 0.5
NURTURE_WARNING = 0.4


@dataclass
class Lead:
    lead_id: str
    snapshot: dict
    stage: str = ""  # the stage it is at now
    stages: set[str] = field(default_factory=set)
    outcomes: list[dict] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    points: dict[str, dict[str, float]] = field(default_factory=dict)  # rule -> score -> points it gave

    @property
    def types(self) -> set[str]:
        return {o["type"] for o in self.outcomes}

    @property
    def won(self) -> bool:
        return "won" in self.types

    @property
    def lost(self) -> bool:
        return "lost" in self.types

    @property
    def rejected(self) -> bool:
        return "rejected" in self.types

    @property
    def accepted(self) -> bool:
        return bool(self.types & ACCEPTED)


def leads(trail: AuditTrail, ruleset: str | None = None, since: str | None = None, until: str | None = None):
    """Every lead with its snapshot decision, the stages it reached, its outcomes and the rules fired."""
    reported: dict[str, list[dict]] = defaultdict(list)
    for o in trail._read("SELECT lead_id, type, at, reason, amount FROM outcomes ORDER BY lead_id, at, seq"):
        reported[o["lead_id"]].append(o)
    snapshots: dict[str, dict] = {}
    for d in trail._read(
        "SELECT id, lead_id, evaluated_at, channel, ruleset_name, ruleset_version, is_lead, stage, quadrant, "
        "route, destination, fit, engagement FROM decisions WHERE kind = 'decision' AND channel IS NOT 'outcome' "
        "AND (? IS NULL OR ruleset_name = ?) ORDER BY lead_id, seq",
        (ruleset, ruleset),
    ):
        first = reported.get(d["lead_id"])
        if first and d["lead_id"] in snapshots and moment(d["evaluated_at"]) > moment(first[0]["at"]):
            continue  # decided after sales first reported: the hand-off decision stays the snapshot
        snapshots[d["lead_id"]] = d
    out = {
        lead_id: Lead(lead_id, snap, outcomes=reported.get(lead_id, []))
        for lead_id, snap in snapshots.items()
        if (since is None or snap["evaluated_at"] >= since)
        and (until is None or snap["evaluated_at"] < until)
    }
    for row in trail._read("SELECT lead_id, stage FROM leads"):
        if row["lead_id"] in out:
            out[row["lead_id"]].stage = row["stage"]
    for row in trail._read("SELECT lead_id, to_stage FROM stage_history"):
        if row["lead_id"] in out:
            out[row["lead_id"]].stages.add(row["to_stage"])
    ids = [lead.snapshot["id"] for lead in out.values()]
    by_decision = {lead.snapshot["id"]: lead for lead in out.values()}
    codec = codec_for(trail.db)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in trail._read(
            f"SELECT id, decision, ruleset_digest FROM decisions WHERE id IN ({marks})", chunk
        ):
            lead = by_decision[row["id"]]
            for reason in json.loads(codec.unpack(row["decision"], row["ruleset_digest"]))["reasons"]:
                if reason["rule"].startswith("@"):
                    continue
                lead.fired.append(reason["rule"])
                for effect in reason["effects"]:
                    if effect["type"] == "points":
                        scores = lead.points.setdefault(reason["rule"], {})
                        scores[effect["score"]] = scores.get(effect["score"], 0.0) + effect["points"]
            lead.fired = sorted(set(lead.fired))
    return list(out.values())


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _group(items: list[Lead]) -> dict:
    won, lost = sum(x.won for x in items), sum(x.lost for x in items)
    return {
        "leads": len(items),
        "accepted": sum(x.accepted for x in items),
        "rejected": sum(x.rejected for x in items),
        "won": won,
        "lost": lost,
        "conversion": _rate(won, len(items)),
        "win_rate": _rate(won, won + lost),
    }


def funnel(items: list[Lead]) -> dict:
    """Leads now at each stage, and how many reached each funnel stage and went on to the next.

    A lead counts as having reached a stage when it reached that stage or any later one.
    """
    now: dict[str, int] = defaultdict(int)
    for x in items:
        now[x.stage] += 1
    reached = {}
    for i, stage in enumerate(FUNNEL):
        later = set(FUNNEL[i:])
        reached[stage] = sum(1 for x in items if (x.stages | {x.stage}) & later)
    steps = [
        {
            "from": a,
            "to": b,
            "from_count": reached[a],
            "to_count": reached[b],
            "conversion": _rate(reached[b], reached[a]),
        }
        for a, b in zip(FUNNEL, FUNNEL[1:], strict=False)
    ]
    return {"now": dict(sorted(now.items())), "reached": reached, "steps": steps}


def matrix(items: list[Lead]) -> dict:
    """The fit × readiness matrix: counts and conversion per quadrant, with the seeds' warnings.

    Contacts that are not leads (not a lead, disqualified) have no place in the matrix: they are the
    `not_a_lead` row beside it, so that the rows add up to every lead the report covers (`leads`).
    Shares are of all of them; the warnings look at the leads in the matrix only.
    """
    quads = ("good_fit_ready", "good_fit_not_ready", "poor_fit_ready", "poor_fit_not_ready")
    leads_only = [x for x in items if x.snapshot["is_lead"]]
    cells = {q: _group([x for x in leads_only if x.snapshot["quadrant"] == q]) for q in quads}
    outside = _group([x for x in items if not x.snapshot["is_lead"]])
    total = len(leads_only)
    warnings = []
    if total:
        bottom = (cells["poor_fit_ready"]["leads"] + cells["poor_fit_not_ready"]["leads"]) / total
        if bottom > BOTTOM_HALF_WARNING:
            warnings.append(
                f"{bottom:.0%} of leads are a poor fit (the bottom half of the matrix): review the qualification "
                "process or the lead generation strategy."
            )
        nurture = cells["good_fit_not_ready"]["leads"] / total
        if nurture > NURTURE_WARNING:
            warnings.append(
                f"{nurture:.0%} of leads are a good fit but not ready: strengthen nurture to stay relevant until they are."
            )
        if cells["poor_fit_not_ready"]["leads"] / total > BOTTOM_HALF_WARNING:
            warnings.append(
                "Most leads are a poor fit and not ready: the overall marketing strategy has a problem."
            )
    for cell in (*cells.values(), outside):
        cell["share"] = _rate(cell["leads"], len(items))
    return {"leads": len(items), "quadrants": cells, "not_a_lead": outside, "warnings": warnings}


def band(points) -> str:
    if points is None:
        return "none"
    low = int(max(points, 0) // BAND * BAND)
    return f"{low}-{low + BAND - 1}"


DIMENSIONS = {
    "fit_band": lambda x: band(x.snapshot["fit"]),
    "engagement_band": lambda x: band(x.snapshot["engagement"]),
    "route": lambda x: x.snapshot["route"],
    "channel": lambda x: x.snapshot["channel"] or "none",
    "ruleset_version": lambda x: f"{x.snapshot['ruleset_name']} v{x.snapshot['ruleset_version']}",
    "quadrant": lambda x: x.snapshot["quadrant"],
}


def conversion(items: list[Lead], by: str) -> dict:
    """Conversion (won / leads) and win rate (won / (won + lost)) per value of one dimension."""
    key = DIMENSIONS[by]
    groups: dict[str, list[Lead]] = defaultdict(list)
    for x in items:
        groups[key(x)].append(x)
    return {"by": by, "groups": {k: _group(v) for k, v in sorted(groups.items())}}


def rejections(items: list[Lead]) -> dict:
    """How often sales rejected what was handed to it, and why.

    `rejected` counts every lead sales rejected, as the other reports do; `handed_off_rejected` those
    of them whose snapshot handed them off, which the rejection rate divides by the hand-offs. Sales
    may also reject a lead the snapshot did not hand off (moved elsewhere before sales answered):
    `rejected_without_hand_off`. `reasons` counts the rejections (a lead may be rejected twice):
    they add up to `rejections`.
    """
    handed = [x for x in items if x.snapshot["destination"] in ("sales", "qualification")]
    reasons: dict[str, int] = defaultdict(int)
    for x in items:
        for o in x.outcomes:
            if o["type"] == "rejected":
                reasons[o["reason"]] += 1
    rejected = sum(x.rejected for x in items)
    handed_rejected = sum(x.rejected for x in handed)
    return {
        "handed_off": len(handed),
        "rejected": rejected,
        "handed_off_rejected": handed_rejected,
        "rejected_without_hand_off": rejected - handed_rejected,
        "rejection_rate": _rate(handed_rejected, len(handed)),
        "rejections": sum(reasons.values()),
        "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def rule_lift(items: list[Lead]) -> list[dict]:
    """For every rule: conversion of the leads it fired for against those it did not, and the lift."""
    rules = sorted({r for x in items for r in x.fired})
    out = []
    for rule in rules:
        fired = [x for x in items if rule in x.fired]
        others = [x for x in items if rule not in x.fired]
        with_rate, without_rate = (
            _rate(sum(x.won for x in fired), len(fired)),
            _rate(sum(x.won for x in others), len(others)),
        )
        lift = round(with_rate / without_rate, 2) if with_rate is not None and without_rate else None
        out.append(
            {
                "rule": rule,
                "fired": len(fired),
                "conversion_when_fired": with_rate,
                "conversion_otherwise": without_rate,
                "lift": lift,
            }
        )
    return sorted(out, key=lambda r: (-(r["lift"] or 0), r["rule"]))


def snapshot_facts(trail: AuditTrail, ruleset: str | None = None):
    """(lead_id, facts, evaluated_at, ending) of every lead's snapshot decision, personal values kept.

    Re-deciding exactly these facts at that time under another ruleset shows what it would have
    decided when the lead was handed off; `ending` (won, lost, rejected, open) says how it went.
    """
    items = leads(trail, ruleset)
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        ids = [x.snapshot["id"] for x in chunk]
        marks = ",".join("?" * len(ids))
        facts = {
            r["id"]: record_of(r, trail)["facts"]
            for r in trail._read(f"SELECT * FROM decisions WHERE id IN ({marks})", ids)
        }
        lead_ids = [x.lead_id for x in chunk]
        values = {
            r["token"]: r["value"]
            for r in trail._read(f"SELECT token, value FROM personal WHERE lead_id IN ({marks})", lead_ids)
        }
        for x in chunk:
            stored = trail.personal.reveal_facts(facts[x.snapshot["id"]], values)
            ending = "won" if x.won else "lost" if x.lost else "rejected" if x.rejected else "open"
            yield x.lead_id, stored, x.snapshot["evaluated_at"], ending
