"""Conditions as data: expressions over one fact, alternatives (one durable_rules rule each), features.

Expressions over one fact: ("cmp", op, key, value) | ("ex", key) | ("nex", key) | ("and"|"or", [expr]).
A condition lowers (conditions.py) to a list of Alternatives, a disjunction of conjunctions; `pattern`
turns the tests of one fact into a durable_rules pattern with a positive type discriminator first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .vocabulary import BOOLEAN, DATE, LIST, NUMBER, STRING

MAX_ALTERNATIVES = 32
# Text tests computed in Python (durable_rules has no prefix or substring test, and its regex is wrong).
TEXT_OPS = ("starts_with", "contains", "matches", "in_domain_list", "not_in_domain_list")
_NEGATED = {"eq": "neq", "neq": "eq", "gt": "lte", "lte": "gt", "gte": "lt", "lt": "gte"}
_ORDER_OPS = ("gt", "gte", "lt", "lte")


def negate(expr):
    kind = expr[0]
    if kind == "cmp":
        _, op, key, value = expr
        return ("or", [("nex", key), ("cmp", _NEGATED[op], key, value)])
    if kind == "ex":
        return ("nex", expr[1])
    if kind == "nex":
        return ("ex", expr[1])
    return ("or" if kind == "and" else "and", [negate(e) for e in expr[1]])


def to_durable(expr) -> dict:
    kind = expr[0]
    if kind == "cmp":
        _, op, key, value = expr
        return {key: value} if op == "eq" else {f"${op}": {key: value}}
    if kind in ("ex", "nex"):
        return {f"${kind}": {expr[1]: 1}}
    return {f"${kind}": [to_durable(e) for e in expr[1]]}


@dataclass(frozen=True)
class Feature:
    """A value computed in Python from the lead's facts and put on the lead fact under f.<name>."""

    name: str
    kind: str  # text | contains | given | count | days_since | outcome | overdue
    spec: tuple  # hashable description, see features.compute_feature

    def describe(self) -> str:
        return json.dumps({"kind": self.kind, "spec": self.spec}, default=list)


@dataclass
class Alternative:
    """One way a rule can fire: tests per fact, all joined."""

    tests: dict[str, list] = field(default_factory=dict)  # fact -> [expr]: lead, event:N, slot:*, score:*

    def add(self, fact: str, expr) -> None:
        self.tests.setdefault(fact, []).append(expr)

    def merged(self, other: Alternative) -> Alternative:
        out = Alternative({k: list(v) for k, v in self.tests.items()})
        for fact, exprs in other.tests.items():
            if fact.startswith("event"):
                # Each event condition joins its own event: "downloaded a whitepaper and viewed pricing".
                fact = f"event:{len(out.event_facts)}"
            for e in exprs:
                out.add(fact, e)
        return out

    @property
    def event_facts(self) -> list[str]:
        return [f for f in self.tests if f.startswith("event")]


def _and(dnfs: list[list[Alternative]]) -> list[Alternative]:
    result = [Alternative()]
    for dnf in dnfs:
        result = [a.merged(b) for a in result for b in dnf]
    return result


def _or(dnfs: list[list[Alternative]]) -> list[Alternative]:
    alts = [a for dnf in dnfs for a in dnf]
    # Alternatives over the same single fact collapse into one $or expression: no extra rules.
    by_fact: dict[str, list[Alternative]] = {}
    rest: list[Alternative] = []
    for alt in alts:
        if len(alt.tests) == 1 and not alt.event_facts:
            by_fact.setdefault(next(iter(alt.tests)), []).append(alt)
        else:
            rest.append(alt)
    merged = []
    for fact, group in by_fact.items():
        if len(group) == 1:
            merged.append(group[0])
        else:
            merged.append(Alternative({fact: [("or", [_conj(g.tests[fact]) for g in group])]}))
    return merged + rest


def _conj(exprs: list):
    return exprs[0] if len(exprs) == 1 else ("and", list(exprs))


def _given(present: bool, keys: list[str]):
    """`exists` over a value that may live under any of several keys (text or number)."""
    return ("or", [("ex", k) for k in keys]) if present else ("and", [("nex", k) for k in keys])


def _conj_or(exprs):
    return exprs[0] if len(exprs) == 1 else ("or", exprs)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _article(ftype: str) -> str:
    return {STRING: "text", NUMBER: "a number", BOOLEAN: "true or false", LIST: "a list", DATE: "a date"}[
        ftype
    ]


def _hint(word, known, prefix: str = "") -> str:
    from .schema import suggest

    hint = suggest(word, list(known))
    return hint.replace("'", "'" + prefix, 1) if hint and prefix else hint


def pattern(fact: str, exprs: list) -> dict:
    """The durable_rules pattern for one fact: a positive type discriminator first, always."""
    head: list[dict]
    if fact == "lead":
        head = [{"t": "lead"}]
    elif fact.startswith("event"):
        head = [{"t": "ev"}]
    elif fact.startswith("score:"):
        head = [{"t": "score"}, {"name": fact.split(":", 1)[1]}]
    else:
        head = [{"t": "slot"}, {"slot": fact.split(":", 1)[1]}]
    return {"$and": head + [to_durable(e) for e in exprs]}
