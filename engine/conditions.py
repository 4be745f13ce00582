"""Lowering a rule's `when` onto durable_rules patterns.

A condition becomes a disjunction of conjunctions ("alternatives"); each alternative is one
durable_rules rule, holding one pattern per fact it joins: the lead, one event, a slot (stage, funnel,
route, qualification item, fit, quadrant, ready, tag) or a score total. Tests on one fact stay one
durable expression ($and / $or), so `any` over profile fields does not multiply rules.

durable_rules does the matching. What it does badly is computed in Python first as a *feature* of the
lead fact, then matched by equality or comparison: regular expressions (its $mt is an anchored match
with false negatives), list membership, text tests, comparisons with computed values and aggregates
over events (count, days since). The data (expressions, alternatives) lives in expressions.py, the
event conditions in events.py.
Every comparison on a missing field is false, as in durable_rules itself; `not` is exact (De Morgan,
with a missing field counting as "not").
"""

from __future__ import annotations

from typing import Any

from .errors import Problem
from .events import EventConditions
from .expressions import (
    _ORDER_OPS,
    MAX_ALTERNATIVES,
    TEXT_OPS,
    Alternative,
    Feature,
    _and,
    _article,
    _conj,
    _conj_or,
    _given,
    _hint,
    _is_number,
    _or,
    negate,
    pattern,
)
from .model import Ruleset
from .regexes import regex_problem
from .vocabulary import BOOLEAN, DATE, FUNNEL_POSITIONS, LIST, NUMBER, OUTCOME_TYPES, QUADRANTS, STRING

__all__ = ["Alternative", "Feature", "Lowering", "pattern"]


class Lowering(EventConditions):
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

    def _feature(self, kind: str, spec: tuple) -> Feature:
        key = (kind, spec)
        if key not in self.features:
            self.features[key] = Feature(f"x{len(self.features) + 1}", kind, spec)
        return self.features[key]
