"""The one flow every caller shares: merge what is known of the lead, evaluate, record, reply.

The CLI (`leadgate decide`) and the HTTP API call `decide`; data flows one way through it:
facts validated by the engine → decision evaluated → decision recorded → the recorded reply returned.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from audit import AuditTrail, merge_facts
from engine import CompiledRuleset, Registry
from engine.facts import format_time

from .config import Config


def open_trail(config: Config) -> AuditTrail:
    fields = tuple(f.strip() for f in config.PERSONAL_FIELDS.split(",") if f.strip())
    return AuditTrail(config.DB, config.DURABILITY, fields, config.PERSONAL_DATA)


def now() -> str:
    return format_time(datetime.now(UTC))


def decide(
    ruleset: CompiledRuleset,
    trail: AuditTrail,
    request: dict,
    *,
    at: str | None = None,
    kind: str = "decision",
    client: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> dict:
    """Evaluate the lead's accumulated facts plus `request` and record the decision before returning it.

    kind `preview` evaluates the same way but leaves the lead unchanged (recorded as a preview).
    """
    started = time.perf_counter()
    lead_id = request.get("lead_id")
    stored = trail.lead_facts(lead_id) if isinstance(lead_id, str) else None
    facts = merge_facts(stored, request)
    evaluation = ruleset.evaluate(facts, at or now())
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return trail.record(
        facts=evaluation.facts,
        decision=evaluation.decision,
        source=ruleset.source,
        kind=kind,
        request=request,
        channel=request.get("channel"),
        client=client,
        latency_ms=latency_ms,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


def evaluator(registry: Registry):
    """evaluate(source, facts, at) -> decision, for replays of stored decisions."""
    return lambda source, facts, at: registry.compile(source, "<stored ruleset>").evaluate(facts, at).decision
