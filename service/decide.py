"""The one flow every caller shares: merge what is known of the lead, evaluate, record, reply.

The CLI (`leadgate decide`) and the HTTP API call these functions; data flows one way through them:
facts validated by the engine → decision evaluated → decision recorded → the recorded reply returned.
Reading the lead, evaluating and recording happen inside one write transaction, so two workers
deciding for the same lead at once cannot lose each other's facts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from audit import AuditTrail, LeadState, merge_facts
from audit.leads import event_key
from audit.secrets import Secrets, default_path
from engine import CompiledRuleset, EngineError, Evaluation, FactsError, Registry, digest_of
from engine.facts import format_time, incoming_problems, parse_time
from engine.features import email_domain
from engine.merging import merge_checked
from engine.teams import Teams
from engine.yamlsource import load

from . import metrics
from .config import Config
from .errors import ServiceError
from .idempotency import IdempotencyConflict, request_hash

__all__ = ["IdempotencyConflict", "ServiceError"]  # what callers catch from the shared operations

CLOCK_SKEW = 300  # seconds; the server passes LEADGATE_CLOCK_SKEW


class TooEarly(ServiceError):
    """An evaluation time earlier than something already recorded for the lead.

    Evaluating at T must see only what was recorded at or before T; the stored facts of a lead are
    its latest ones, so a time before its last decision or outcome is refused rather than answered
    with facts from its future.
    """

    def __init__(self, lead_id: str, at: str, known_at: str):
        self.lead_id, self.at, self.known_at = lead_id, at, known_at
        super().__init__(
            f"Lead {lead_id} has facts or outcomes recorded at {known_at}, later than the evaluation time "
            f"{at}: a decision at {at} would see them. Decide at {known_at} or later."
        )


def check_time(known_at: str | None, lead_id, at: str) -> None:
    """Refuse to decide for a lead at a time before its last recorded decision or outcome (`known_at`)."""
    if known_at is not None and parse_time(known_at, "at") > parse_time(at, "at"):
        raise TooEarly(lead_id, at, known_at)


def open_trail(config: Config) -> AuditTrail:
    fields = tuple(f.strip() for f in config.PERSONAL_FIELDS.split(",") if f.strip())
    secrets = Secrets(config.SECRET_FILE or default_path(config.DB))
    trail = AuditTrail(config.DB, config.DURABILITY, fields, config.PERSONAL_DATA, secrets)
    trail.observe_write_lock(metrics.write_lock)
    return trail


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
    shadow: CompiledRuleset | None = None,
    teams: Teams | None = None,
    clock_skew: int = CLOCK_SKEW,
    request_id: str | None = None,
) -> tuple[dict, bool]:
    """Evaluate the lead's accumulated facts plus `request`, record the decision, return (reply, replayed).

    kind `preview` evaluates the same way but leaves the lead unchanged (recorded as a preview).
    A `shadow` candidate evaluates the same facts at the same time; its result is stored beside the
    decision and never returned. With `teams`, a hand-off to a team is assigned to one of its members.
    With an idempotency key already used by this client for the same request, the first reply is
    returned and nothing is recorded (replayed is True); for a different request, IdempotencyConflict.
    The reply is the recorded document; its `body` is the JSON text stored, to send as it is.
    `request_id` (the caller's X-Request-Id, or one made for it) is stored with the decision.
    """
    # A preview's key never replays a decision of the same body, nor the other way round.
    digest = (
        (request_hash(request if kind == "decision" else {"endpoint": kind, "body": request}))
        if idempotency_key
        else None
    )
    lead_id = request.get("lead_id")

    def evaluate(known: LeadState) -> tuple[Evaluation, tuple | None, float]:
        started = time.perf_counter()
        evaluation = ruleset.evaluate(merged(ruleset, known.facts, sent, checked), at)
        shadowed = _shadow(shadow, evaluation) if shadow is not None and kind == "decision" else None
        return evaluation, shadowed, time.perf_counter() - started

    sent = facts_of(request)
    checked = ruleset.normalise(sent)  # the one check of what was sent, before anything is merged into it
    # Evaluate before taking the write lock, so that workers evaluate in parallel; if another worker
    # decided for the same lead meanwhile, evaluate again under the lock (nothing is ever lost).
    known = trail.lead_state(lead_id)  # the one read of the lead
    told, at = at, at or now()  # after reading the lead: a decision recorded since then changes its version
    problems = incoming_problems(request, at, clock_skew)
    if problems:
        raise FactsError(problems)
    evaluation, shadowed, seconds = evaluate(known)
    # Made ready to record before the lock too (serialised, personal data protected, compressed), as
    # `_assigned` leaves it when no one is assigned: under the lock only the store's part is done.
    unassigned = Evaluation(evaluation.facts, {**evaluation.decision, "assignment": None})
    item = item_of(ruleset, unassigned, request, kind, client, seconds, shadowed, request_id)
    prepared = trail.prepare(known.version, **item, idempotency_key=idempotency_key, request_hash=digest)
    started = time.perf_counter()
    with trail.deciding(lead_id) as uow:
        if teams is not None and kind == "decision":  # its owners are read with the lead, at once
            uow.expect(teams, lead_id, evaluation.decision, _domain(evaluation))
        if idempotency_key:
            first = uow.first_use(client, idempotency_key)
            if first is not None:
                if first["request_hash"] != digest:
                    raise IdempotencyConflict(idempotency_key, first["ref"])
                return first["reply"], True
        if uow.version(lead_id) != known.version:
            # Another worker decided for the lead meanwhile, at its own now: without a time given,
            # this decision is made now too, after it, and sees what it recorded.
            known, at = uow.lead_state(lead_id), told or now()
            evaluation, shadowed, seconds = evaluate(known)
            prepared = None
        check_time(known.known_at, lead_id, at)
        evaluation = assigned(uow, teams if kind == "decision" else None, evaluation, ruleset)
        if prepared is None:
            item = item_of(ruleset, evaluation, request, kind, client, seconds, shadowed, request_id)
            reply = uow.record(**item, idempotency_key=idempotency_key, request_hash=digest)
        else:
            if evaluation.decision["assignment"] is not None:  # assigned under the lock: a new reply
                prepared.decide(evaluation.decision)
            reply = uow.record(prepared)
    if kind == "decision":
        metrics.decided([reply], [seconds], time.perf_counter() - started)
    else:
        metrics.previewed(reply, seconds, time.perf_counter() - started)
    return reply, False


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
    request_id: str | None = None,
) -> list[dict]:
    """Decide for several leads: all are evaluated first, then all recorded in one commit, or none.

    A lead that appears twice sees its earlier item's facts and stage, as with separate calls. Wrong
    facts are a FactsError naming the item: `items[1].profile.employees`.
    """
    problems = {}
    for i, request in enumerate(requests):
        problems.update(incoming_problems(request, at or now(), clock_skew, f"items[{i}]."))
    if problems:
        raise FactsError(problems)
    started = time.perf_counter()
    with trail.unit_of_work() as uow:
        at = at or now()  # under the write lock: no decision of these leads can be later
        known: dict[str, dict] = {}
        items = []
        for i, (ruleset, request, shadow) in enumerate(
            zip(rulesets, requests, shadows or [None] * len(requests), strict=True)
        ):
            evaluating = time.perf_counter()
            sent = facts_of(request)
            try:
                checked = ruleset.normalise(sent)
            except FactsError as exc:
                raise FactsError(
                    {f"items[{i}].{k}" if k else f"items[{i}]": v for k, v in exc.errors.items()}
                ) from exc
            lead_id = request.get("lead_id")
            if lead_id in known:
                stored = known[lead_id]
            else:
                state = uow.lead_state(lead_id)
                check_time(state.known_at, lead_id, at)
                stored = state.facts
            evaluation = assigned(
                uow, teams, ruleset.evaluate(merged(ruleset, stored, sent, checked), at), ruleset
            )
            known[lead_id] = _after(evaluation)
            shadowed = _shadow(shadow, evaluation) if shadow is not None else None
            items.append(
                item_of(
                    ruleset,
                    evaluation,
                    request,
                    "decision",
                    client,
                    time.perf_counter() - evaluating,
                    shadowed,
                    request_id,
                )
            )
        replies = uow.record_many(items)
    # The write's time includes the evaluations made under its lock; they are timed on their own too.
    metrics.decided(replies, [i["latency_ms"] / 1000 for i in items], time.perf_counter() - started)
    return replies


def _after(evaluation: Evaluation) -> dict:
    """What is known of a lead once this evaluation is recorded: its stage, and its hand-off as the
    trail tracks it (the same route keeps its hand-off; another route with an SLA opens a new one)."""
    facts = {**evaluation.facts, "previous_stage": evaluation.decision["stage"]}
    route, current = evaluation.decision["route"], facts.pop("handoff", None)
    if route["due_at"] is not None:
        kept = current is not None and current["route"] == route["id"]
        facts["handoff"] = (
            current
            if kept
            else {"route": route["id"], "at": route["handed_off_at"], "due_at": route["due_at"]}
        )
    return facts


def assigned(uow, teams: Teams | None, evaluation: Evaluation, ruleset: CompiledRuleset) -> Evaluation:
    """The evaluation with its hand-off assigned to a person (the reply's `assignment`, null if none).

    When the team keeps its own business hours (teams.yaml) and the route counts business hours, the
    SLA is counted in the team's hours: `route.due_at` is the team's, and the assignment keeps the
    ruleset's own due time (`hours.ruleset_due_at`), which is what a replay of the ruleset gives."""
    found, decision = None, evaluation.decision
    if teams is not None:
        found = uow.assign(teams, evaluation.facts["lead_id"], decision, _domain(evaluation))
        route = decision["route"]
        hours = teams.hours.get(route.get("team") or "")
        counted = ruleset.model.routes.get(route["id"])
        if (
            found is not None
            and hours is not None
            and route.get("due_at")
            and counted
            and counted.business_hours
        ):
            # From the first hand-off on this route: the due time stays put while the route does.
            started = route.get("handed_off_at") or decision["evaluated_at"]
            due = format_time(hours.add(parse_time(started, "at"), route["sla_minutes"]))
            found = {
                **found,
                "hours": {
                    "team": route["team"],
                    "timezone": hours.timezone,
                    "ruleset_due_at": route["due_at"],
                },
            }
            decision = {**decision, "route": {**route, "due_at": due}}
    return Evaluation(evaluation.facts, {**decision, "assignment": found})


def _domain(evaluation: Evaluation) -> str | None:
    return email_domain(evaluation.facts["profile"].get("email"))


def merged(ruleset: CompiledRuleset, stored: dict | None, sent: dict, checked) -> dict:
    """The facts to evaluate: the request's facts (sent, and as the check returned them) merged into
    the lead's stored ones without checking them again (engine.merging); only when the stored facts
    do not fit this ruleset (another ruleset or version decided the lead) is the merged whole checked."""
    facts = merge_checked(ruleset.model, stored, sent, checked, event_key)
    return facts if facts is not None else ruleset.normalise(merge_facts(stored, sent))


def facts_of(request: dict) -> dict:
    """The lead facts in a request: everything but the ruleset pin, which chooses who decides."""
    return {k: v for k, v in request.items() if k != "ruleset"}


def item_of(ruleset, evaluation, request, kind, client, seconds, shadowed=None, request_id=None) -> dict:
    return {
        "request_id": request_id,
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


def evaluator(registry: Registry):
    """evaluate(source, facts, at) -> decision, for replays of stored decisions."""
    return lambda source, facts, at: registry.compile(source, "<stored ruleset>").evaluate(facts, at).decision


def source_digest(source: str) -> str | None:
    """The digest a stored ruleset source has (what `verify` checks it against); None if unreadable."""
    try:
        return digest_of(load(source, "<stored ruleset>").data)
    except EngineError:
        return None
