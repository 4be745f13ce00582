"""Lead facts: the one check of a lead's facts against a ruleset, and their canonical form.

durable_rules compares loosely ("abc" > 100 is true, 5 == "5"), fails on floats written with an
exponent and on datetimes, so nothing reaches it unchecked: profile fields are typed by the ruleset's
vocabulary, numbers are finite and bounded, text answers and number answers live under different keys.
Normalised facts are canonical (events in time order, times in UTC), so replaying them gives the same
decision. `normalise` returns them as `CheckedFacts`, which evaluation takes without a second check.
Values are checked one by one in values.py; times are parsed and written in times.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import FactsError
from .eventchecks import check_events
from .model import Ruleset
from .schema import suggest
from .times import DAY, format_time, parse_time
from .values import (
    MAX_EVENTS,
    MAX_NUMBER,
    MAX_TEXT,
    Errors,
    check_value,
    clean_number,
    unstorable,
)
from .vocabulary import DERIVED_PROFILE_FIELDS, NUMBER, OUTCOME_TYPES, OUTCOMES_WITH_REASON

# Times and limits are read from here by the rest of the application, too.
__all__ = [
    "DAY",
    "LEAD_ID",
    "LEAD_ID_RULE",
    "MAX_TEXT",
    "CheckedFacts",
    "format_time",
    "incoming_problems",
    "normalise",
    "outcome_problems",
    "parse_time",
]

# Lead ids travel in URL paths, logs and terminals: letters, digits and . _ : @ + - only, 1 to 128.
# ECMA-262 compatible, as OpenAPI wants; `fullmatch` below also refuses a trailing newline that `$` lets through.
LEAD_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")
LEAD_ID_RULE = "must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ + -"


def incoming_problems(request: dict, at, skew_seconds: int, prefix: str = "") -> dict[str, list[str]]:
    """What a new request may not carry, though a recorded one may (replays never check these):
    a lead id outside LEAD_ID, and events dated after the evaluation time plus the allowed clock
    skew (nothing has happened in the future yet; such an event would score full points until then).
    """
    errors = {}
    lead_id = request.get("lead_id")
    if not isinstance(lead_id, str) or not LEAD_ID.fullmatch(lead_id):
        errors[f"{prefix}lead_id"] = [LEAD_ID_RULE]
    try:
        limit = parse_time(at, "at") + timedelta(seconds=skew_seconds)
    except OverflowError:
        limit = datetime.max.replace(tzinfo=UTC)
    events = request.get("events")
    for i, event in enumerate(events if isinstance(events, list) else []):
        if isinstance(event, dict) and parse_time(event.get("at"), f"{prefix}events[{i}].at") > limit:
            errors[f"{prefix}events[{i}].at"] = [
                f"{event['at']!r} is after the evaluation time {format_time(parse_time(at, 'at'))} "
                f"(clock skew allowed: {skew_seconds} s)"
            ]
    return errors


class CheckedFacts(dict):
    """Lead facts as `normalise` returns them: checked against one ruleset, canonical.

    `CompiledRuleset.evaluate` takes them as they are, without checking them again, when the same
    ruleset checked them; a plain dict, or facts checked by another ruleset, are checked again.
    Read-only by contract: a change made after the check is not checked (copy into a dict to change).
    """

    __slots__ = ("model", "sent")

    def __init__(self, facts: dict, model: Ruleset, sent: list | None = None):
        super().__init__(facts)
        self.model = model
        # The checked events in the order they were sent (None for one whose id came earlier), so
        # that merging them into a lead's stored events (engine.merging) needs no second check.
        self.sent = sent


def normalise(model: Ruleset, facts: dict) -> CheckedFacts:
    """Checked, canonical lead facts; FactsError names every field that is wrong."""
    errors = Errors()
    if not isinstance(facts, dict):
        raise FactsError({"": ["lead facts must be a JSON object"]})
    invalid = unstorable(facts)
    if invalid:
        raise FactsError(invalid)
    known = {"lead_id", "channel", "profile", "answers", "events", "previous_stage", "outcomes", "handoff"}
    for key in facts:
        if key not in known:
            errors.add(key, "unknown field" + suggest(key, known))
    lead_id = facts.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id or len(lead_id) > 200:
        errors.add("lead_id", "must be text of 1 to 200 characters")
    channel = facts.get("channel")
    if channel is not None and (not isinstance(channel, str) or len(channel) > 100):
        errors.add("channel", "must be text of at most 100 characters")

    profile = _section(facts.get("profile"), "profile", model.profile_fields, errors, DERIVED_PROFILE_FIELDS)
    answers = _answers(facts.get("answers"), model, errors)
    sent: list = []
    events = check_events(facts.get("events"), errors, model, sent)
    outcomes = _outcomes(facts.get("outcomes"), model, errors)
    handoff = _handoff(facts.get("handoff"), errors)
    previous = facts.get("previous_stage")
    if previous is not None and (
        not isinstance(previous, str) or previous not in {s.id for s in model.stages}
    ):
        errors.add(
            "previous_stage",
            f"{previous!r} is not a stage of ruleset {model.name}"
            + suggest(previous, [s.id for s in model.stages]),
        )
    if errors:
        raise FactsError(dict(errors))
    out = {"lead_id": lead_id, "channel": channel, "profile": profile, "answers": answers, "events": events}
    return checked_facts(out, model, previous, outcomes, handoff, sent)


def checked_facts(out: dict, model: Ruleset, previous, outcomes, handoff, sent=None) -> CheckedFacts:
    """Checked sections as CheckedFacts: the optional ones only when present (the canonical form)."""
    if previous is not None:
        out["previous_stage"] = previous
    if outcomes:
        out["outcomes"] = outcomes
    if handoff is not None:
        out["handoff"] = handoff
    return CheckedFacts(out, model, sent)


def _answers(raw_answers, model: Ruleset, errors: Errors) -> dict:
    """The checked answers: declared by the ruleset, of their type, one of a question's answers."""
    answers = {}
    raw_answers = raw_answers or {}
    if not isinstance(raw_answers, dict):
        errors.add("answers", "must be an object")
        raw_answers = {}
    questions = {q.id: q for q in model.questions}
    for key, value in raw_answers.items():
        field = f"answers.{key}"
        if key not in model.answer_fields:
            errors.add(
                field,
                "unknown answer"
                + suggest(key, model.answer_fields)
                + f"; the answers of ruleset {model.name} are: {', '.join(model.answer_fields)}",
            )
            continue
        if value is None:
            continue
        question = questions.get(key)
        if question and question.amount and isinstance(value, int | float) and not isinstance(value, bool):
            checked = check_value(value, NUMBER, field, errors)
        else:
            checked = check_value(value, model.answer_fields[key], field, errors)
            if (
                checked is not None
                and question
                and not question.free_text
                and checked not in question.answers
            ):
                errors.add(
                    field,
                    f"{checked!r} is not an allowed answer ({', '.join(question.answers)}"
                    + (", or an amount)" if question.amount else ")")
                    + suggest(checked, question.answers),
                )
                continue
        if checked is not None:
            answers[key] = checked
    return answers


def _outcomes(raw, model: Ruleset, errors: Errors) -> list[dict]:
    """What sales reported, in time order: type, at, and the reason (rejected, lost) or amount (won)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_EVENTS:
        errors.add("outcomes", f"must be a list of at most {MAX_EVENTS} outcomes")
        return []
    out = []
    for i, item in enumerate(raw):
        field = f"outcomes[{i}]"
        problems = outcome_problems(item, model)
        for key, message in problems:
            errors.add(f"{field}.{key}" if key else field, message)
        if problems:
            continue
        clean = {"type": item["type"], "at": format_time(parse_time(item["at"], f"{field}.at"))}
        for key in ("id", "reason", "amount"):
            if item.get(key) is not None:
                clean[key] = clean_number(item[key]) if key == "amount" else item[key]
        out.append(clean)
    out.sort(key=lambda o: (o["at"], o.get("id", ""), o["type"]))
    return out


def outcome_problems(item, model: Ruleset) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with one outcome; the API checks outcomes with it too."""
    if not isinstance(item, dict):
        return [("", "must be an object")]
    out = []
    for key in sorted(set(item) - {"id", "type", "at", "reason", "amount"}):
        out.append((key, "unknown field" + suggest(key, ["id", "type", "at", "reason", "amount"])))
    otype = item.get("type")
    if otype not in OUTCOME_TYPES:
        out.append(
            (
                "type",
                f"{otype!r} is not an outcome ({', '.join(OUTCOME_TYPES)})"
                + suggest(str(otype), OUTCOME_TYPES),
            )
        )
    try:
        parse_time(item.get("at"), "at")
    except FactsError:
        out.append(("at", "must be an ISO 8601 time"))
    oid = item.get("id")
    if oid is not None and (not isinstance(oid, str) or not 1 <= len(oid) <= 200):
        out.append(("id", "must be text of 1 to 200 characters"))
    reason = item.get("reason")
    if otype in OUTCOMES_WITH_REASON:
        allowed = model.outcome_reasons.get(otype, ())
        if reason not in allowed:
            listed = ", ".join(allowed) or f"none: the ruleset declares no outcomes.{otype} reasons"
            out.append(
                (
                    "reason",
                    f"{otype} needs a reason from the ruleset ({listed})" + suggest(str(reason), allowed),
                )
            )
    elif reason is not None:
        out.append(("reason", f"only {' and '.join(OUTCOMES_WITH_REASON)} take a reason"))
    amount = item.get("amount")
    if amount is not None:
        if otype != "won":
            out.append(("amount", "only won takes an amount"))
        elif isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount <= MAX_NUMBER:
            out.append(("amount", f"must be a number from 0 to {MAX_NUMBER:.0e}"))
    return out


def _handoff(raw, errors: Errors) -> dict | None:
    """The lead's current hand-off (route, at, due_at, and acted_at once someone answered it), which
    leadgate supplies from the audit trail."""
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or set(raw) - {"route", "at", "due_at", "acted_at"}
        or not isinstance(raw.get("route"), str)
    ):
        errors.add("handoff", "must be an object with route, at, due_at and optionally acted_at")
        return None
    try:
        out = {
            "route": raw["route"],
            "at": format_time(parse_time(raw.get("at"), "handoff.at")),
            "due_at": format_time(parse_time(raw.get("due_at"), "handoff.due_at")),
        }
        if raw.get("acted_at") is not None:
            out["acted_at"] = format_time(parse_time(raw["acted_at"], "handoff.acted_at"))
        return out
    except FactsError as exc:
        for key, messages in exc.errors.items():
            for m in messages:
                errors.add(key, m)
        return None


def _section(raw, name: str, fields: dict, errors: Errors, derived: dict) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(name, "must be an object")
        return {}
    out = {}
    for key, value in raw.items():
        field = f"{name}.{key}"
        if key in derived:
            errors.add(field, "is derived by leadgate and cannot be sent")
        elif key not in fields:
            errors.add(field, "unknown field" + suggest(key, [f for f in fields if f not in derived]))
        else:
            checked = check_value(value, fields[key], field, errors)
            if checked is not None:
                out[key] = checked
    return out
