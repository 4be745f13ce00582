"""The one flow every caller shares: merge what is known of the lead, evaluate, record, reply.

The CLI (`leadgate decide`) and the HTTP API call these functions; data flows one way through them:
facts validated by the engine → decision evaluated → decision recorded → the recorded reply returned.
Reading the lead, evaluating and recording happen inside one write transaction, so two workers
deciding for the same lead at once cannot lose each other's facts.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

from audit import AuditTrail, NotFound, assignment, merge_facts, outcomes
from audit.secrets import Secrets, default_path
from engine import CompiledRuleset, EngineError, Evaluation, FactsError, Registry
from engine.facts import format_time, incoming_problems, outcome_problems, parse_time
from engine.features import email_domain
from engine.teams import Teams

from .config import Config

CLOCK_SKEW = 300  # seconds; the server passes LEADGATE_CLOCK_SKEW


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused with a different request."""

    def __init__(self, key: str, decision_id: str):
        self.key, self.decision_id = key, decision_id
        super().__init__(f"Idempotency-Key {key!r} was used for a different request (decision {decision_id})")


def open_trail(config: Config) -> AuditTrail:
    fields = tuple(f.strip() for f in config.PERSONAL_FIELDS.split(",") if f.strip())
    secrets = Secrets(config.SECRET_FILE or default_path(config.DB))
    return AuditTrail(config.DB, config.DURABILITY, fields, config.PERSONAL_DATA, secrets)


def now() -> str:
    return format_time(datetime.now(UTC))


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def decide(
    ruleset: CompiledRuleset,
    trail: AuditTrail,
    request: dict,
    *,
    at: str | None = None,
    kind: str = "decision",
    client: str | None = None,
    idempotency_key: str | None = None,
    shadow: CompiledRuleset | None = None,
    teams: Teams | None = None,
    clock_skew: int = CLOCK_SKEW,
) -> tuple[dict, bool]:
    """Evaluate the lead's accumulated facts plus `request`, record the decision, return (reply, replayed).

    kind `preview` evaluates the same way but leaves the lead unchanged (recorded as a preview).
    A `shadow` candidate evaluates the same facts at the same time; its result is stored beside the
    decision and never returned. With `teams`, a hand-off to a team is assigned to one of its members.
    With an idempotency key already used by this client for the same request, the first reply is
    returned and nothing is recorded (replayed is True); for a different request, IdempotencyConflict.
    """
    digest = request_hash(request) if idempotency_key else None
    at = at or now()

    def evaluate() -> tuple[Evaluation, tuple | None, float]:
        started = time.perf_counter()
        evaluation = ruleset.evaluate(_merged(trail, request), at)
        shadowed = _shadow(shadow, evaluation) if shadow is not None and kind == "decision" else None
        return evaluation, shadowed, time.perf_counter() - started

    ruleset.normalise(facts_of(request))  # what was sent is checked before anything is merged into it
    problems = incoming_problems(request, at, clock_skew)
    if problems:
        raise FactsError(problems)
    # Evaluate before taking the write lock, so that workers evaluate in parallel; if another worker
    # decided for the same lead meanwhile, evaluate again under the lock (nothing is ever lost).
    seen = trail.lead_version(request.get("lead_id"))
    evaluation, shadowed, seconds = evaluate()
    with trail.transaction() as db:
        if idempotency_key:
            first = trail.by_idempotency_key(client, idempotency_key)
            if first is not None:
                if first["request_hash"] != digest:
                    raise IdempotencyConflict(idempotency_key, first["decision_id"])
                return first["decision"], True
        if trail.lead_version(request.get("lead_id")) != seen:
            evaluation, shadowed, seconds = evaluate()
        if kind == "decision":
            evaluation = _assigned(db, teams, evaluation)
        item = _item(ruleset, evaluation, request, kind, client, seconds, shadowed)
        return trail.record(**item, idempotency_key=idempotency_key, request_hash=digest), False


def decide_batch(
    rulesets: list[CompiledRuleset],
    trail: AuditTrail,
    requests: list[dict],
    *,
    at: str | None = None,
    client: str | None = None,
    shadows: list[CompiledRuleset | None] | None = None,
    teams: Teams | None = None,
    clock_skew: int = CLOCK_SKEW,
) -> list[dict]:
    """Decide for several leads: all are evaluated first, then all recorded in one commit, or none.

    A lead that appears twice sees its earlier item's facts and stage, as with separate calls.
    """
    at = at or now()
    problems = {}
    for i, request in enumerate(requests):
        problems.update(incoming_problems(request, at, clock_skew, f"[{i}]."))
    if problems:
        raise FactsError(problems)
    with trail.transaction() as db:
        known: dict[str, dict] = {}
        items = []
        for ruleset, request, shadow in zip(
            rulesets, requests, shadows or [None] * len(requests), strict=True
        ):
            started = time.perf_counter()
            ruleset.normalise(facts_of(request))
            lead_id = request.get("lead_id")
            stored = known.get(lead_id) if lead_id in known else _stored(trail, lead_id)
            evaluation = _assigned(db, teams, ruleset.evaluate(merge_facts(stored, facts_of(request)), at))
            known[lead_id] = {**evaluation.facts, "previous_stage": evaluation.decision["stage"]}
            shadowed = _shadow(shadow, evaluation) if shadow is not None else None
            items.append(
                _item(
                    ruleset, evaluation, request, "decision", client, time.perf_counter() - started, shadowed
                )
            )
        return trail.record_many(items)


def _assigned(db, teams: Teams | None, evaluation: Evaluation) -> Evaluation:
    """The evaluation with its hand-off assigned to a person (the reply's `assignment`, null if none)."""
    found = None
    if teams is not None:
        domain = email_domain(evaluation.facts["profile"].get("email"))
        found = assignment.assign(db, teams, evaluation.facts["lead_id"], evaluation.decision, domain)
    return Evaluation(evaluation.facts, {**evaluation.decision, "assignment": found})


def _stored(trail: AuditTrail, lead_id) -> dict | None:
    return trail.lead_facts(lead_id) if isinstance(lead_id, str) else None


def _merged(trail: AuditTrail, request: dict) -> dict:
    return merge_facts(_stored(trail, request.get("lead_id")), facts_of(request))


def facts_of(request: dict) -> dict:
    """The lead facts in a request: everything but the ruleset pin, which chooses who decides."""
    return {k: v for k, v in request.items() if k != "ruleset"}


def _item(ruleset, evaluation, request, kind, client, seconds, shadowed=None) -> dict:
    return {
        "shadow": shadowed,
        "facts": evaluation.facts,
        "decision": evaluation.decision,
        "source": ruleset.source,
        "kind": kind,
        "request": request,
        "channel": request.get("channel"),
        "client": client,
        "latency_ms": round(seconds * 1000, 3),
    }


def _shadow(shadow: CompiledRuleset, live: Evaluation) -> tuple:
    """(identity, source, decision or error): a failing shadow never fails the live decision."""
    try:
        result = shadow.evaluate(live.facts, live.decision["evaluated_at"]).decision
    except EngineError as exc:
        result = f"{type(exc).__name__}: {exc}"
    return shadow.identity, shadow.source, result


def report_outcome(
    ruleset: CompiledRuleset,
    trail: AuditTrail,
    lead_id: str,
    outcome: dict,
    *,
    client: str | None = None,
    source: str = "api",
    note: str | None = None,
    at: str | None = None,
    teams: Teams | None = None,
    clock_skew: int = CLOCK_SKEW,
) -> dict:
    """Record what sales reported about a lead and decide the lead again with it: {outcome, decision}.

    Both are recorded in one transaction, or neither; an unknown lead is NotFound, a wrong outcome
    (type, reason not declared by the ruleset, amount) a FactsError naming the field.
    """
    at = at or now()
    outcome = {k: v for k, v in outcome.items() if v is not None}
    outcome.setdefault("at", at)
    problems = outcome_problems(outcome, ruleset.model)
    if problems:
        raise FactsError({f"outcome.{k}" if k else "outcome": [m] for k, m in problems})
    outcome["at"] = format_time(parse_time(outcome["at"], "outcome.at"))
    if parse_time(outcome["at"], "at") > parse_time(at, "at") + timedelta(seconds=clock_skew):
        raise FactsError(
            {"outcome.at": [f"is after the time of the report {at} (clock skew {clock_skew} s)"]}
        )
    with trail.transaction() as db:
        if trail.lead_facts(lead_id) is None:
            raise NotFound("lead", lead_id)
        recorded = outcomes.record(db, lead_id, outcome, client, source, note)
        started = time.perf_counter()
        request = {"lead_id": lead_id, "channel": "outcome", "outcome": outcome}
        evaluation = ruleset.evaluate(_merged(trail, {"lead_id": lead_id, "channel": "outcome"}), at)
        evaluation = _assigned(db, teams, evaluation)
        item = _item(ruleset, evaluation, request, "decision", client, time.perf_counter() - started)
        return {"outcome": recorded, "decision": trail.record(**item)}


def escalate_overdue(
    ruleset_of,
    trail: AuditTrail,
    at: str | None = None,
    client: str | None = None,
    teams: Teams | None = None,
) -> list[dict]:
    """Decide again every lead whose hand-off is overdue, so that escalation rules can re-route it.

    `ruleset_of(name)` gives the ruleset that decides a lead (the one that last decided it).
    """
    at = at or now()
    decisions = []
    for item in outcomes.sla(trail, at)["overdue"]:
        lead = trail.lead(item["lead_id"])
        request = {"lead_id": item["lead_id"], "channel": "sla"}
        ruleset = ruleset_of(lead["ruleset_name"])
        decisions.append(decide(ruleset, trail, request, at=at, client=client, teams=teams)[0])
    return decisions


def evaluator(registry: Registry):
    """evaluate(source, facts, at) -> decision, for replays of stored decisions."""
    return lambda source, facts, at: registry.compile(source, "<stored ruleset>").evaluate(facts, at).decision
