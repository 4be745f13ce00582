"""Lowering a rule's `when` onto durable_rules patterns.

A condition becomes a disjunction of conjunctions ("alternatives"); each alternative is one
durable_rules rule, holding one pattern per fact it joins: the lead, one event, a slot (stage, funnel,
route, qualification item, fit, quadrant, ready, tag) or a score total. Tests on one fact stay one
durable expression ($and / $or), so `any` over profile fields does not multiply rules.

durable_rules does the matching. What it does badly is computed in Python first as a *feature* of the
lead fact, then matched by equality or comparison: regular expressions (its $mt is an anchored match
with false negatives), list membership, and aggregates over events (count, days since).
Every comparison on a missing field is false, as in durable_rules itself; `not` is exact (De Morgan,
with a missing field counting as "not").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import Problem
from .model import Ruleset
from .regexes import regex_problem
from .vocabulary import BOOLEAN, DATE, FUNNEL_POSITIONS, LIST, NUMBER, OUTCOME_TYPES, QUADRANTS, STRING

MAX_ALTERNATIVES = 32
# Text tests computed in Python (durable_rules has no prefix or substring test, and its regex is wrong).
TEXT_OPS = ("starts_with", "contains", "matches", "in_domain_list", "not_in_domain_list")
_NEGATED = {"eq": "neq", "neq": "eq", "gt": "lte", "lte": "gt", "gte": "lt", "lt": "gte"}
_ORDER_OPS = ("gt", "gte", "lt", "lte")

# Expressions over one fact: ("cmp", op, key, value) | ("ex", key) | ("nex", key) | ("and"|"or", [expr])


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


class Lowering:
    """Lowers the conditions of one ruleset, collecting features and problems as it goes."""

    def __init__(self, model: Ruleset, file: str, line_of):
        self.model, self.file, self.line_of = model, file, line_of
        self.features: dict[tuple, Feature] = {}
        self.event_features: dict[tuple, str] = {}  # (property, op, values) -> name on the event fact
        self.problems: list[Problem] = []
        self.rule_id: str | None = None
        self.reads: set[str] = set()
        self.tests_tags: set[str] = set()

    # -- entry point -------------------------------------------------------------------------
    def rule(self, rule_id: str, when: dict, path: tuple) -> tuple[list[Alternative], set[str]]:
        """Alternatives for one rule, and the derived kinds it reads (slot:*, total:*)."""
        self.rule_id, self.reads = rule_id, set()
        alts = self._map(when, path + ("when",), negated=False)
        if len(alts) > MAX_ALTERNATIVES:
            self._problem(
                path + ("when",),
                f"the condition expands to {len(alts)} alternatives; at most "
                f"{MAX_ALTERNATIVES} are allowed (split the rule)",
            )
            alts = alts[:MAX_ALTERNATIVES]
        return alts, set(self.reads)

    def _problem(self, path, message: str) -> None:
        self.problems.append(Problem(self.file, self.line_of(path), self.rule_id, message))

    # -- structure ---------------------------------------------------------------------------
    def _map(self, cond: dict, path: tuple, negated: bool) -> list[Alternative]:
        parts = []
        event_keys = {"event", "where", "within_days"} & set(cond)
        if event_keys:
            if "event" not in cond:
                self._problem(path, f"{' and '.join(sorted(event_keys))} need an `event` beside them")
            else:
                parts.append(self._event(cond, path, negated))
        for key, value in cond.items():
            if key in event_keys:
                continue
            sub = path + (key,)
            if key == "all":
                dnfs = [self._map(c, sub + (i,), negated) for i, c in enumerate(value)]
                parts.append(_or(dnfs) if negated else _and(dnfs))
            elif key == "any":
                dnfs = [self._map(c, sub + (i,), negated) for i, c in enumerate(value)]
                parts.append(_and(dnfs) if negated else _or(dnfs))
            elif key == "not":
                parts.append(self._map(value, sub, not negated))
            else:
                parts.append(self._leaf(key, value, sub, negated))
        return _or(parts) if negated else _and(parts)

    def _single(self, fact: str, expr, negated: bool) -> list[Alternative]:
        return [Alternative({fact: [negate(expr) if negated else expr]})]

    # -- leaves ------------------------------------------------------------------------------
    def _leaf(self, key: str, value, path: tuple, negated: bool) -> list[Alternative]:
        if key.startswith("profile.") or key.startswith("answers."):
            return self._single("lead", self._field_test(key, value, path), negated)
        if key.startswith("computed."):
            name = key.split(".", 1)[1]
            spec = self.model.computed_specs.get(name)
            if spec is None:
                self._problem(
                    path,
                    f"unknown computed value {key!r}"
                    + _hint(name, self.model.computed_specs, prefix="computed.")
                    + " (declare it under computed)",
                )
                return [Alternative()]
            return self._single("lead", self._test(f"v.{name}", value, spec["type"], path, key), negated)
        if key == "channel":
            return self._single("lead", self._test("c", value, STRING, path, "channel"), negated)
        if key in ("count", "days_since"):
            return self._single("lead", self._aggregate(key, value, path), negated)
        if key == "outcome":
            return self._single("lead", ("ex", "f." + self._outcome(value, path).name), negated)
        if key == "overdue":
            feature = self._feature("overdue", ())
            return self._single("lead", ("ex" if value else "nex", "f." + feature.name), negated)
        if key in ("score", "grade"):
            exprs = []
            for name, test in value.items():
                score = self.model.scores.get(name)
                if score is None:
                    self._problem(path + (name,), f"unknown score {name!r}" + _hint(name, self.model.scores))
                    continue
                self.reads.add(f"total:{name}")
                if key == "score":
                    expr = self._test("pts", test, NUMBER, path + (name,), f"score {name}")
                else:
                    letters = [g for g, _ in score.grades]
                    expr = self._test(
                        "grade", test, STRING, path + (name,), f"grade of {name}", allowed=letters
                    )
                exprs.append((f"score:{name}", expr))
            return self._conjunction(exprs, negated)
        if key == "qualification":
            exprs = []
            for item, test in value.items():
                if item not in self.model.qualification:
                    self._problem(
                        path + (item,),
                        f"unknown qualification item {item!r}" + _hint(item, self.model.qualification),
                    )
                    continue
                self.reads.add(f"slot:qual:{item}")
                exprs.append(
                    (
                        f"slot:qual:{item}",
                        self._test(
                            "v", test, STRING, path + (item,), item, allowed=["met", "unmet", "unknown"]
                        ),
                    )
                )
            return self._conjunction(exprs, negated)
        slot_values = {
            "stage": [s.id for s in self.model.stages],
            "funnel": list(FUNNEL_POSITIONS),
            "quadrant": list(QUADRANTS),
            "route": list(self.model.routes),
            "fit": ["good", "poor"],
        }
        if key in slot_values:
            self.reads.add(f"slot:{key}")
            return self._single(
                f"slot:{key}", self._test("v", value, STRING, path, key, allowed=slot_values[key]), negated
            )
        if key == "ready":
            self.reads.add("slot:ready")
            return self._single("slot:ready", ("cmp", "eq", "v", bool(value)), negated)
        if key == "tag":
            self.reads.add(f"slot:tag:{value}")
            self.tests_tags.add(value)
            return self._single(f"slot:tag:{value}", ("cmp", "eq", "v", True), negated)
        self._problem(path, f"unknown condition {key!r}")
        return [Alternative()]

    def _conjunction(self, exprs: list[tuple[str, Any]], negated: bool) -> list[Alternative]:
        if not exprs:
            return [Alternative()]
        dnfs = [self._single(fact, e, negated) for fact, e in exprs]
        return _or(dnfs) if negated else _and(dnfs)

    def _field_test(self, key: str, test, path: tuple):
        section, name = key.split(".", 1)
        known = self.model.profile_fields if section == "profile" else self.model.answer_fields
        ftype = known.get(name)
        if ftype is None:
            self._problem(
                path,
                f"unknown field {key!r}"
                + _hint(name, known, prefix=section + ".")
                + f" (declare it under fields.{section} to add it)",
            )
            return ("ex", "p.unknown")
        if section == "profile":
            return self._test(f"p.{name}", test, ftype, path, key)
        # Answers may be text or an amount: text lives under a., numbers under an., so "5" never compares as 5.
        question = next((q for q in self.model.questions if q.id == name), None)
        allowed = list(question.answers) if question and not question.free_text else None
        return self._test(f"a.{name}", test, ftype, path, key, allowed=allowed, number_key=f"an.{name}")

    def _test(self, key: str, test, ftype: str, path: tuple, label: str, allowed=None, number_key=None):
        """One expression for a test on one value of one fact."""
        ops = test if isinstance(test, dict) else {"eq": test}
        exprs = []
        for op, value in ops.items():
            exprs.append(
                self._op(
                    key,
                    op,
                    value,
                    ftype,
                    path + ((op,) if isinstance(test, dict) else ()),
                    label,
                    allowed,
                    number_key,
                )
            )
        exprs = [e for e in exprs if e is not None]
        if not exprs:
            return ("ex", key)
        return _conj(exprs)

    def _op(self, key, op, value, ftype, path, label, allowed, number_key):
        if op in ("in_list", "not_in_list"):
            values = self.model.lists.get(value)
            if values is None:
                self._problem(path, f"unknown list {value!r}" + _hint(value, self.model.lists))
                return None
            op, value = ("in" if op == "in_list" else "not_in"), list(values)
        if op == "exists":
            if ftype == LIST:  # lists never reach the engine's lead fact: their presence is a feature
                key = "f." + self._feature("given", (key,)).name
            if number_key:  # an answer is given as text or as an amount: either one counts
                return _given(value, [key, number_key])
            return ("ex" if value else "nex", key)
        if op == "contains" and ftype == LIST:
            return ("cmp", "eq", "f." + self._feature("contains", (key, value)).name, True)
        if op in TEXT_OPS:
            if ftype != STRING:
                self._problem(path, f"{label} is {_article(ftype)}: `{op}` needs a text field")
                return None
            test = self._text_test(op, value, path)
            if test is None:
                return None
            feature = self._feature("text", (key, *test))
            return ("cmp", "eq", "f." + feature.name, not op.startswith("not_"))
        if ftype == LIST:
            self._problem(path, f"{label} is a list: test it with `contains` or `exists`")
            return None
        if op in _ORDER_OPS and isinstance(value, str) and value.startswith("computed."):
            # Compared with a computed value (a threshold that depends on the lead): computed in Python.
            other = value.split(".", 1)[1]
            if self.model.computed_specs.get(other, {}).get("type") != NUMBER:
                self._problem(
                    path, f"{value} is not a computed number" + _hint(other, self.model.computed_specs)
                )
                return None
            if ftype not in (NUMBER, STRING) or (ftype == STRING and not number_key):
                self._problem(path, f"{label} is {_article(ftype)}: `{op}` needs a number field")
                return None
            return ("cmp", "eq", "f." + self._feature("compare", (number_key or key, op, other)).name, True)
        values = value if op in ("in", "not_in") else [value]
        numeric = op in _ORDER_OPS or all(_is_number(v) for v in values)
        if number_key and numeric:
            key, ftype = number_key, NUMBER
        if op in _ORDER_OPS and ftype != NUMBER:
            hint = (
                " (count days with a computed value: days_until(...) or days_since(...))"
                if ftype == DATE
                else ""
            )
            self._problem(path, f"{label} is {_article(ftype)}: `{op}` needs a number field{hint}")
            return None
        for v in values:
            if isinstance(v, str) and "*" in v and op in ("eq", "ne", "in", "not_in"):
                self._problem(
                    path,
                    f"{label}: {v!r} holds a *, but values compare exactly (a * is not a wildcard): "
                    f"use starts_with: {v.split('*', 1)[0]!r}, contains, or matches",
                )
                return None
            if not self._type_ok(v, ftype):
                self._problem(path, f"{label} is {_article(ftype)}, but {v!r} is not")
                return None
            if _is_number(v) and "e" in repr(float(v)).lower() and float(v) != 0:
                self._problem(path, f"number {v!r} is too large or too small (write it without an exponent)")
                return None
            if allowed is not None and v not in allowed and ftype != NUMBER:  # amounts are not listed
                self._problem(
                    path, f"{label}: {v!r} is not one of {', '.join(map(str, allowed))}" + _hint(v, allowed)
                )
        if op == "in":
            return _conj_or([("cmp", "eq", key, v) for v in values])
        if op == "not_in":
            return _conj([("cmp", "neq", key, v) for v in values])
        if op == "ne":
            op = "neq"
        return ("cmp", op, key, value)

    def _text_test(self, op: str, value, path) -> tuple | None:
        """(op, values) for a text operator, checked; values are a tuple of text. None when refused."""
        if op in ("in_domain_list", "not_in_domain_list"):
            values = self.model.lists.get(value)
            if values is None:
                self._problem(path, f"unknown list {value!r}" + _hint(value, self.model.lists))
                return None
            return ("domain", tuple(v.casefold().lstrip(".") for v in values))
        values = [value] if isinstance(value, str) else list(value)
        if not values or not all(isinstance(v, str) and v for v in values):
            self._problem(path, f"`{op}` needs text, or a list of texts")
            return None
        if op == "matches":
            for v in values:
                problem = regex_problem(v)
                if problem:
                    self._problem(path, problem)
                    return None
        return (op, tuple(values))

    @staticmethod
    def _type_ok(value, ftype: str) -> bool:
        if ftype == NUMBER:
            return _is_number(value)
        if ftype == BOOLEAN:
            return isinstance(value, bool)
        return isinstance(value, str)

    def _aggregate(self, kind: str, spec: dict, path: tuple):
        types = self._event_types(spec["event"], path + ("event",), allow_any=True)
        where = self._where_spec(spec.get("where") or {}, path + ("where",), self._declared_properties(types))
        excluded = ()
        if "except" in spec:
            if types != ("any",):
                self._problem(path + ("except",), "except needs `event: any` (every type but these)")
            excluded = self._event_types(spec["except"], path + ("except",))
        feature = self._feature(kind, (types, where, spec.get("within_days"), excluded))
        ops = {k: v for k, v in spec.items() if k not in ("event", "where", "within_days", "except")}
        if not ops:
            self._problem(path, f"{kind} needs a comparison (gte, lt, eq, … or exists)")
            return ("ex", "f." + feature.name)
        return self._test("f." + feature.name, ops, NUMBER, path, kind)

    def _outcome(self, spec, path: tuple) -> Feature:
        """`outcome: won`, or {type, reason, within_days, latest, after_events}: computed in Python."""
        spec = {"type": spec} if isinstance(spec, str) else spec
        types = [spec["type"]] if isinstance(spec["type"], str) else list(spec["type"])
        for name in types:
            if name not in OUTCOME_TYPES:
                self._problem(path + ("type",), f"unknown outcome {name!r}" + _hint(name, OUTCOME_TYPES))
        reasons = spec.get("reason")
        reasons = [reasons] if isinstance(reasons, str) else list(reasons or [])
        known = {r for t in types for r in self.model.outcome_reasons.get(t, ())}
        for reason in reasons:
            if reason not in known:
                self._problem(
                    path + ("reason",),
                    f"unknown reason {reason!r} for {', '.join(types)} (declare it under outcomes)"
                    + _hint(reason, known),
                )
        return self._feature(
            "outcome",
            (
                tuple(sorted(types)),
                tuple(sorted(reasons)),
                spec.get("within_days"),
                bool(spec.get("latest", False)),
                bool(spec.get("after_events", False)),
            ),
        )

    def _event_types(self, value, path, allow_any=False) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else list(value)
        if allow_any and names == ["any"]:
            return ("any",)
        known = self.model.event_types
        for name in names:
            if name not in known:
                declared = self.model.declared_event_types
                self._problem(
                    path,
                    f"unknown event type {name!r}"
                    + _hint(name, known)
                    + (
                        f" (declared in this ruleset: {', '.join(declared)})"
                        if declared
                        else " (declare it under `events` to add it)"
                    ),
                )
        return tuple(sorted(names))

    def _declared_properties(self, types: tuple[str, ...]) -> dict[str, str] | None:
        """The typed properties the events of `types` can carry; None when any of them takes any property."""
        out: dict[str, str] = {}
        for name in types:
            etype = self.model.event_types.get(name)
            if etype is None or not etype.declared:
                return None
            for prop, ptype in etype.properties.items():
                out.setdefault(prop, ptype)
        return out

    def _where_spec(self, where: dict, path, declared=None) -> tuple:
        """Event property tests as data, for Python aggregates; checked like pattern tests.

        Named lists are resolved here, so the Python twin (features.where_matches) needs no ruleset."""
        spec = []
        for prop, test in where.items():
            self._event_property_expr(prop, test, path + (prop,), declared)
            ops = dict(test) if isinstance(test, dict) else {"eq": test}
            for op in ("in_list", "not_in_list", "in_domain_list", "not_in_domain_list"):
                if op in ops:
                    values = list(self.model.lists.get(ops.pop(op)) or [])
                    ops[op.removesuffix("_list")] = values  # in, not_in, in_domain, not_in_domain
            spec.append((prop, json.dumps(ops, sort_keys=True)))
        return tuple(sorted(spec))

    def _event_property_expr(self, prop, test, path, declared=None):
        ops = dict(test) if isinstance(test, dict) else {"eq": test}
        exprs = []
        if declared is not None and prop not in declared:
            self._problem(
                path,
                f"the event has no property {prop!r}"
                + _hint(prop, declared)
                + f" (its properties: {', '.join(declared) or 'none'}; declare more under events)",
            )
            return None
        ptype = declared.get(prop) if declared else None
        if "exists" in ops:
            # A property is text or true/false (under p.) or a number (under n.): either one is "given".
            exprs.append(_given(bool(ops.pop("exists")), ["p." + prop, "n." + prop]))
        for op in ("in_list", "not_in_list"):
            if op in ops:
                values = self.model.lists.get(ops[op])
                if values is None:
                    self._problem(
                        path + (op,), f"unknown list {ops[op]!r}" + _hint(ops[op], self.model.lists)
                    )
                    return None
                del ops[op]
                ops["in" if op == "in_list" else "not_in"] = list(values)
        for op in [o for o in ops if o in TEXT_OPS]:
            if ptype not in (None, STRING):
                self._problem(path + (op,), f"property {prop} is {_article(ptype)}: `{op}` needs text")
                return None
            test = self._text_test(op, ops.pop(op), path + (op,))
            if test is None:
                return None
            name = self._event_feature(prop, test)
            exprs.append(("cmp", "eq", "g." + name, not op.startswith("not_")))
        if ops:
            if ptype is not None:  # a declared property: its type decides, so a wrong value is reported
                ftype = ptype
            elif any(op in _ORDER_OPS for op in ops) or all(
                _is_number(v)
                for op, v in ops.items()
                if op in ("eq", "ne", "in", "not_in")
                for v in (v if isinstance(v, list) else [v])
            ):
                ftype = NUMBER
            else:
                ftype = STRING
            expr = self._test(
                ("n." if ftype == NUMBER else "p.") + prop, ops, ftype, path, f"property {prop}"
            )
            if expr is None:
                return None
            exprs.append(expr)
        return _conj(exprs) if exprs else None

    def _event_feature(self, prop: str, test: tuple) -> str:
        """A text test on an event property, computed in Python on each event fact (g.<name>)."""
        key = (prop, *test)
        if key not in self.event_features:
            self.event_features[key] = f"g{len(self.event_features) + 1}"
        return self.event_features[key]

    def _event(self, cond: dict, path: tuple, negated: bool) -> list[Alternative]:
        etype = cond["event"]
        declared = self._declared_properties(self._event_types(etype, path + ("event",)))
        if negated:
            # "no such event" is a count of zero: durable's negation is unreliable on late facts.
            feature = self._feature(
                "count",
                (
                    (etype,),
                    self._where_spec(cond.get("where") or {}, path + ("where",), declared),
                    cond.get("within_days"),
                    (),
                ),
            )
            return self._single("lead", ("cmp", "eq", "f." + feature.name, 0), False)
        exprs = [("cmp", "eq", "type", etype)]
        for prop, test in (cond.get("where") or {}).items():
            e = self._event_property_expr(prop, test, path + ("where", prop), declared)
            if e is not None:
                exprs.append(e)
        if cond.get("within_days") is not None:
            exprs.append(("cmp", "lte", "age", cond["within_days"]))
        return [Alternative({"event:0": [_conj(exprs)]})]

    def _feature(self, kind: str, spec: tuple) -> Feature:
        key = (kind, spec)
        if key not in self.features:
            self.features[key] = Feature(f"x{len(self.features) + 1}", kind, spec)
        return self.features[key]


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
