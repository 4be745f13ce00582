"""Replay: re-evaluate a stored decision (its facts, its ruleset source, its time) and compare.

The evaluation is passed in (`evaluate(source, facts, at) -> decision`), so the audit trail stays
storage only; the CLI and the API hand it the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from .errors import ReplayImpossible
from .personal import PREFIX
from .trail import AuditTrail, record_of

Evaluate = Callable[[str, dict, str], dict]


def replay(trail: AuditTrail, decision_id: str, evaluate: Evaluate) -> dict:
    """{decision_id, identical, differences}: differences are the dotted paths that changed."""
    return _replay(trail, trail.decision(decision_id), evaluate)


def replay_range(
    trail: AuditTrail, evaluate: Evaluate, since: str | None = None, until: str | None = None
) -> Iterator[dict]:
    after = 0
    while True:
        rows = trail._read(
            "SELECT * FROM decisions WHERE seq > ? AND (? IS NULL OR evaluated_at >= ?) "
            "AND (? IS NULL OR evaluated_at < ?) ORDER BY seq LIMIT 500",
            (after, since, since, until, until),
        )
        if not rows:
            return
        for row in rows:
            yield _replay(trail, record_of(row, trail), evaluate)
        after = rows[-1]["seq"]


def revealed(trail: AuditTrail, record: dict) -> tuple[dict, str, list[str]]:
    """What a stored decision was evaluated with: (facts with personal values still kept, ruleset
    source, the personal fields whose values were erased)."""
    facts, missing = _reveal(trail, record)
    return facts, trail.ruleset_source(record["ruleset"]["digest"]), missing


def _reveal(trail: AuditTrail, record: dict) -> tuple[dict, list[str]]:
    facts = record["facts"]
    values = trail.personal_values(record["lead_id"])
    profile = facts.get("profile") or {}
    missing = sorted(
        k for k, v in profile.items() if isinstance(v, str) and v.startswith(PREFIX) and v not in values
    )
    return trail.personal.reveal_facts({**facts, "profile": profile}, values), missing


def latest(trail: AuditTrail, lead_id: str) -> dict:
    """The lead's latest decision record (NotFound for an unknown lead)."""
    return trail.decision(trail.lead(lead_id)["last_decision_id"])


def decided(
    trail: AuditTrail, since: str | None = None, until: str | None = None, ruleset: str | None = None
) -> Iterator[dict]:
    """Every recorded decision (not previews) evaluated in [since, until), oldest first, in batches:
    the record with the facts it was evaluated with (personal values still kept put back)."""
    after = 0
    while True:
        rows = trail._read(
            "SELECT * FROM decisions WHERE kind = 'decision' AND seq > ? AND (? IS NULL OR evaluated_at >= ?) "
            "AND (? IS NULL OR evaluated_at < ?) AND (? IS NULL OR ruleset_name = ?) ORDER BY seq LIMIT 500",
            (after, since, since, until, until, ruleset, ruleset),
        )
        if not rows:
            return
        for row in rows:
            record = record_of(row, trail)
            yield {**record, "facts": _reveal(trail, record)[0]}
        after = rows[-1]["seq"]


def _replay(trail: AuditTrail, record: dict, evaluate: Evaluate) -> dict:
    facts, source, missing = revealed(trail, record)
    stored = dict(record["decision"])
    # Not the engine's: the id of the record, and who took the hand-off (the audit's own state decides it).
    stored.pop("decision_id", None)
    assigned = stored.pop("assignment", None) or {}
    if assigned.get("hours"):  # the team's business hours moved the due time; the ruleset's is kept there
        stored["route"] = {**stored["route"], "due_at": assigned["hours"]["ruleset_due_at"]}
    try:
        again = evaluate(source, facts, record["evaluated_at"])
    except Exception as exc:  # noqa: BLE001 - any failure to re-evaluate is the answer
        raise ReplayImpossible(f"decision {record['decision_id']} cannot be re-evaluated: {exc}") from exc
    differences = diff(stored, again)
    result = {"decision_id": record["decision_id"], "identical": not differences, "differences": differences}
    if missing:
        result["erased_fields"] = missing
    return result


def diff(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) else [path or "(root)"]
