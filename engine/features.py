"""Features: what the engine matches badly, computed in Python from the normalised facts.

Regular expressions (durable_rules' own are anchored and miss matches), list membership, event
aggregates (count, days since), what sales reported (outcomes) and whether a hand-off is overdue.
Each becomes a value on the lead fact (f.<name>) that durable_rules then matches by equality or
comparison; the lowering of conditions (conditions.py) decides which features a ruleset needs.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from .regexes import search
from .times import DAY, parse_time, seconds


@lru_cache(maxsize=4096)
def _parsed(test_json: str):
    return json.loads(test_json)


def where_matches(props: dict, where: tuple) -> bool:
    """Python twin of an event-property pattern, for aggregates (same semantics: missing is false)."""
    for prop, test_json in where:
        test = _parsed(test_json)
        value = props.get(prop)
        ops = test if isinstance(test, dict) else {"eq": test}
        for op, expected in ops.items():
            if op == "exists":
                if (value is not None) != expected:
                    return False
                continue
            if value is None:
                return False
            if op in _WHERE_TEXT_OPS:
                if not isinstance(value, str):
                    return False
                kind = "domain" if op.endswith("in_domain") else op
                if text_test(kind, tuple(expected) if isinstance(expected, list) else (expected,), value) != (
                    not op.startswith("not_")
                ):
                    return False
                continue
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if op in ("gt", "gte", "lt", "lte"):
                if not numeric:
                    return False
                ok = {
                    "gt": value > expected,
                    "gte": value >= expected,
                    "lt": value < expected,
                    "lte": value <= expected,
                }[op]
            elif op in ("in", "not_in"):
                ok = any(_same(value, v) for v in expected) == (op == "in")
            else:
                ok = _same(value, expected) == (op == "eq")
            if not ok:
                return False
    return True


_WHERE_TEXT_OPS = ("starts_with", "contains", "matches", "in_domain", "not_in_domain")


def domain_of(value: str) -> str:
    """The host of an email address, URL or bare domain, lower case: 'Ana@EU.Rival.io' -> 'eu.rival.io'."""
    text = value.strip().casefold()
    text = text.rsplit("@", 1)[-1]
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0].split(":", 1)[0].rstrip(".")


def text_test(op: str, values: tuple, value: str) -> bool:
    """starts_with / contains / matches (any of `values`, ignoring case), or domain: the value's domain is
    one of `values` or a subdomain of one."""
    if op == "domain":
        domain = domain_of(value)
        return any(domain == d or domain.endswith("." + d) for d in values)
    if op == "matches":
        return any(search(pattern, value) for pattern in values)
    folded = value.casefold()
    if op == "starts_with":
        return any(folded.startswith(v.casefold()) for v in values)
    return any(v.casefold() in folded for v in values)  # contains


def _same(a, b) -> bool:
    return (
        type(a) is type(b)
        and a == b
        or (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def event_ages(events: list[dict], at: datetime) -> list[float]:
    """Age in days of each event at the evaluation time; an event later than it counts as fresh."""
    now = at.timestamp()
    ages = []
    for event in events:
        age = round((now - seconds(event["at"], "at")) / DAY, 4)
        ages.append(age if age > 0.0 else 0.0)  # max(0.0, age), without the call
    return ages


def compute_feature(feature, facts: dict, profile: dict, ages: list[float], at: datetime, computed: dict):
    """The value of one feature for these (normalised) facts at time `at`; None when it has none."""
    kind, spec = feature.kind, feature.spec
    answers = facts["answers"]
    if kind == "text":  # the most common kinds first
        key, op, values = spec
        value = _lookup(key, profile, answers)
        return text_test(op, values, value) if isinstance(value, str) else None
    if kind == "contains":
        key, wanted = spec
        value = _lookup(key, profile, answers)
        if not isinstance(value, list):
            return None
        wanted = wanted.casefold()
        return any(v.casefold() == wanted for v in value)
    if kind in AGGREGATES:
        return EventAggregates((feature,)).values(facts["events"], ages)[feature.name]
    if kind == "compare":
        key, op, other = spec
        value, limit = _lookup(key, profile, answers), computed.get(other)
        if not isinstance(value, int | float) or isinstance(value, bool) or limit is None:
            return None
        return {"gt": value > limit, "gte": value >= limit, "lt": value < limit, "lte": value <= limit}[op]
    if kind == "outcome":
        return _outcome_holds(spec, facts, at)
    if kind == "overdue":
        handoff = facts.get("handoff")
        unanswered = handoff and "acted_at" not in handoff
        return True if unanswered and parse_time(handoff["due_at"], "due_at") < at else None
    return True if isinstance(_lookup(spec[0], profile, answers), list) else None  # given


AGGREGATES = frozenset({"count", "days_since"})


class EventAggregates:
    """The event aggregates of a ruleset (count, days_since), all computed in one pass over a lead's
    events: each event meets only the aggregates whose event types admit it, found once per type."""

    def __init__(self, features):
        self.features = [f for f in features if f.kind in AGGREGATES]
        self._start = {f.name: 0 if f.kind == "count" else None for f in self.features}
        self._by_type: dict[str, list[tuple]] = {}

    def _admitting(self, etype: str) -> list[tuple]:
        found = self._by_type.get(etype)
        if found is None:
            found = []
            for f in self.features:
                types, where, within, excluded = f.spec
                if types == ("any",) and etype not in excluded or etype in types:
                    found.append((f.name, f.kind == "count", within, where))
            if len(self._by_type) < 1000:  # event types are the ruleset's: a bound that is never met
                self._by_type[etype] = found
        return found

    def values(self, events: list[dict], ages: list[float]) -> dict:
        """Each aggregate's value: the number of matching events, or the age of the freshest one (None
        when none matches)."""
        out = dict(self._start)
        if not self.features:
            return out
        for event, age in zip(events, ages, strict=True):
            for name, counting, within, where in self._admitting(event["type"]):
                if (within is None or age <= within) and (
                    not where or where_matches(event.get("properties", {}), where)
                ):
                    if counting:
                        out[name] += 1
                    elif out[name] is None or age < out[name]:
                        out[name] = age
        return out


def _outcome_holds(spec: tuple, facts: dict, at: datetime):
    """True when an outcome of the lead matches (types, reasons, within_days, latest, after_events)."""
    types, reasons, within, latest, after_events = spec
    outcomes = facts.get("outcomes") or []
    candidates = outcomes[-1:] if latest else outcomes
    last_event = facts["events"][-1]["at"] if facts["events"] else None
    for o in candidates:
        if o["type"] not in types or (reasons and o.get("reason") not in reasons):
            continue
        if within is not None and (at - parse_time(o["at"], "at")).total_seconds() / DAY > within:
            continue
        if (
            after_events
            and last_event is not None
            and parse_time(last_event, "at") > parse_time(o["at"], "at")
        ):
            continue  # the lead re-engaged since: the outcome no longer decides
        return True
    return None


def _lookup(key: str, profile: dict, answers: dict):
    if key[:2] == "p.":
        return profile.get(key[2:])
    return answers.get(key[key.index(".") + 1 :])  # a. and an. are both answers


def email_domain(email) -> str | None:
    if isinstance(email, str) and "@" in email:
        return email.rsplit("@", 1)[1].strip().casefold() or None
    return None
