"""Which conditions of a rule held for a lead, and how far each failed one was from holding.

For reading only: this never decides anything. Each atomic condition of a rule's `when` (one score
test, one profile test, one event condition…) is lowered by the compiler's own `Lowering` and the
resulting expressions are checked against a *view* of one evaluation: the lead's normalised facts and
the slots and scores its decision ended with. So "engagement 49.07 is below 60: 10.93 short" is
read off the same expressions durable_rules matched. Decisions themselves always come from the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from . import computed
from .conditions import Lowering
from .features import compute_feature, email_domain, event_ages
from .model import Rule, Ruleset
from .times import parse_time

_ORDER = {"gte": "at least", "gt": "above", "lte": "at most", "lt": "below"}
_EVENT_KEYS = ("event", "where", "within_days")


@dataclass
class Check:
    """One condition of a rule, as it stood for one lead."""

    text: str  # what it asks, in words: "score engagement ≥ 60"
    held: bool
    detail: str  # what was found: "engagement 49.07 is below 60: 10.93 short"
    score: str | None = None  # set for score thresholds
    threshold: float | None = None
    op: str | None = None
    value: object = None
    short: float | None = None  # how much is missing for a failed numeric test
    parts: list[Check] = field(default_factory=list)  # for any / not groups

    def to_dict(self) -> dict:
        out = {"condition": self.text, "held": self.held, "detail": self.detail}
        if self.threshold is not None:
            out.update(value=self.value, op=self.op, threshold=self.threshold)
            if self.score:
                out["score"] = self.score
            if self.short is not None:
                out["short"] = self.short
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out

    @property
    def gap(self) -> float:
        """How far from holding, for ranking: 0 when it held, the relative shortfall of a number, else 1."""
        if self.held:
            return 0.0
        if self.short is not None and self.threshold is not None:
            return min(1.0, self.short / max(abs(self.threshold), 1.0))
        if self.parts:
            return min(p.gap for p in self.parts) if self.text.startswith("any") else 1.0
        return 1.0


class Conditions:
    """The conditions of one ruleset lowered once each, to be checked against many evaluations."""

    def __init__(self, model: Ruleset):
        self.lowering = Lowering(model, "<explain>", lambda path: 0)
        self._alternatives: dict[tuple[str, str], list] = {}
        self.features: dict[str, object] = {}

    def alternatives(self, rule: Rule, cond: dict) -> list:
        key = (rule.id, json.dumps(cond, sort_keys=True, default=str))
        if key not in self._alternatives:
            self._alternatives[key] = self.lowering.rule(rule.id, cond, rule.path)[0]
            self.features.update((f.name, f) for f in self.lowering.features.values())
        return self._alternatives[key]


class View:
    """One evaluation as the explainer reads it: facts at a time, and the decision they gave."""

    def __init__(
        self,
        model: Ruleset,
        facts: dict,
        decision: dict,
        at: datetime | str,
        conditions: Conditions | None = None,
    ):
        self.model, self.facts, self.decision = model, facts, decision
        self.at = parse_time(at, "at")
        self.conditions = conditions or Conditions(model)
        profile = dict(facts.get("profile") or {})
        domain = email_domain(profile.get("email"))
        if domain:
            profile["email_domain"] = domain
        self.profile = profile
        self.ages = event_ages(facts["events"], self.at)
        # The ruleset's computed values, as the runtime derives them before matching (engine/computed.py).
        self.computed = computed.evaluate(model.computed, profile, facts.get("answers") or {}, self.at)[0]
        self._features: dict[str, object] = {}
        self.events = []
        for event, age in zip(facts["events"], self.ages, strict=True):
            props = event.get("properties") or {}
            self.events.append(
                {
                    "type": event["type"],
                    "age": age,
                    "p": {k: v for k, v in props.items() if isinstance(v, str)},
                    "n": {k: v for k, v in props.items() if _number(v)},
                }
            )
        answers = facts.get("answers") or {}
        self.lead = {
            "p": {k: v for k, v in profile.items() if not isinstance(v, list)},
            "a": {k: v for k, v in answers.items() if isinstance(v, str)},
            "an": {k: v for k, v in answers.items() if _number(v)},
            "c": facts.get("channel"),
        }

    # -- the facts the expressions test --------------------------------------------------------
    def fact(self, name: str) -> dict:
        d = self.decision
        if name == "lead":
            return self.lead
        if name.startswith("score:"):
            score = name[6:]
            return {"pts": d["scores"].get(score), "grade": d["grades"].get(score)}
        slot = name[5:]
        if slot.startswith("qual:"):
            return {"v": d["qualification"].get(slot[5:])}
        if slot.startswith("tag:"):
            return {"v": slot[4:] in d["tags"]}
        if slot == "route":
            return {"v": d["route"]["id"]}
        return {"v": d.get(slot)}

    def value(self, fact: dict, key: str):
        if key.startswith("f."):
            return self.feature(key[2:])
        for part in key.split("."):
            if not isinstance(fact, dict):
                return None
            fact = fact.get(part)
        return fact

    def feature(self, name: str):
        if name not in self._features:
            feature = self.conditions.features[name]
            self._features[name] = compute_feature(
                feature, self.facts, self.profile, self.ages, self.at, self.computed
            )
        return self._features[name]

    def holds(self, fact: dict, expr) -> bool:
        kind = expr[0]
        if kind == "and":
            return all(self.holds(fact, e) for e in expr[1])
        if kind == "or":
            return any(self.holds(fact, e) for e in expr[1])
        if kind in ("ex", "nex"):
            return (self.value(fact, expr[1]) is not None) == (kind == "ex")
        _, op, key, wanted = expr
        got = self.value(fact, key)
        if got is None:
            return False  # every comparison on a missing field is false, as in durable_rules
        if op == "eq":
            return got == wanted
        if op == "neq":
            return got != wanted
        if not (_number(got) and _number(wanted)):
            return False
        return {"gt": got > wanted, "gte": got >= wanted, "lt": got < wanted, "lte": got <= wanted}[op]

    # -- conditions ----------------------------------------------------------------------------
    def atom(self, rule: Rule, cond: dict) -> bool:
        """Whether one atomic condition held: some alternative of it has every fact test true."""
        for alt in self.conditions.alternatives(rule, cond):
            ok = True
            for fact_name, exprs in alt.tests.items():
                if fact_name.startswith("event"):
                    ok = any(all(self.holds(e, x) for x in exprs) for e in self.events)
                else:
                    fact = self.fact(fact_name)
                    ok = all(self.holds(fact, x) for x in exprs)
                if not ok:
                    break
            if ok:
                return True
        return False

    def checks(self, rule: Rule, when: dict | None = None) -> list[Check]:
        """Each condition of the rule (top-level conjunction), in the order the file writes them."""
        when = rule.when if when is None else when
        out = []
        if "event" in when:
            out.append(self._event(rule, {k: when[k] for k in _EVENT_KEYS if k in when}))
        for key, value in when.items():
            if key in _EVENT_KEYS:
                continue
            if key == "all":
                for sub in value:
                    out += self.checks(rule, sub)
            elif key == "any":
                parts = [self._group(rule, sub) for sub in value]
                held = any(p.held for p in parts)
                text = "any of: " + "; ".join(p.text for p in parts)
                detail = next(
                    (p.detail for p in parts if p.held), "none held: " + "; ".join(p.detail for p in parts)
                )
                out.append(Check(text, held, detail, parts=parts))
            elif key == "not":
                inner = self._group(rule, value)
                out.append(Check(f"not ({inner.text})", not inner.held, inner.detail, parts=[inner]))
            else:
                out += self._leaf(rule, key, value)
        return out

    def _group(self, rule: Rule, cond: dict) -> Check:
        parts = self.checks(rule, cond)
        if len(parts) == 1:
            return parts[0]
        failed = next((p for p in parts if not p.held), None)
        return Check(
            " and ".join(p.text for p in parts),
            failed is None,
            failed.detail if failed else "; ".join(p.detail for p in parts),
            parts=parts,
        )

    def _event(self, rule: Rule, cond: dict) -> Check:
        held = self.atom(rule, cond)
        where = cond.get("where")
        what = f"{cond['event']} event" + (f" where {_show(where)}" if where else "")
        if cond.get("within_days") is not None:
            what += f" within {cond['within_days']:g} days"
        text = ("an " if what[0] in "aeiou" else "a ") + what
        return Check(text, held, ("has " + text) if held else ("no " + what))

    def _leaf(self, rule: Rule, key: str, value) -> list[Check]:
        if key in ("score", "grade", "qualification"):
            return [c for name, test in value.items() for c in self._tests(rule, key, name, test)]
        if key.startswith(("profile.", "answers.")) or key in (
            "channel",
            "stage",
            "funnel",
            "quadrant",
            "route",
            "fit",
        ):
            return self._tests(rule, key, None, value)
        if key in ("count", "days_since"):
            ops = {k: v for k, v in value.items() if k not in _EVENT_KEYS}
            base = {k: v for k, v in value.items() if k in _EVENT_KEYS}
            label = f"{key.replace('_', ' ')} of {_show(value['event'])}" + (
                f" where {_show(value['where'])}" if value.get("where") else ""
            )
            feature = _feature_of(self.conditions.alternatives(rule, {key: {**base, "exists": True}}))
            actual = self.feature(feature) if feature else None
            return [
                self._compare(rule, {key: {**base, op: v}}, label, op, v, actual) for op, v in ops.items()
            ]
        held = self.atom(rule, {key: value})
        if key == "ready":
            text = "sales-ready" if value else "not sales-ready"
            found = "the lead is " + ("sales-ready" if self.decision["ready"] else "not sales-ready")
            return [Check(text, held, found)]
        if key == "overdue":
            text = "the hand-off is overdue" if value else "no overdue hand-off"
        elif key == "tag":
            text = f"tagged {value}"
        elif key == "outcome":
            text = f"sales reported {_show(value)}"
        else:
            text = f"{key} {_show(value)}"
        return [Check(text, held, f"{text}: {'yes' if held else 'no'}")]

    def _tests(self, rule: Rule, key: str, name: str | None, test) -> list[Check]:
        ops = test if isinstance(test, dict) else {"eq": test}
        label = name if key == "score" else f"{key} {name}" if name else key
        actual = self._actual(key, name)
        out = []
        for op, v in ops.items():
            cond = {key: {name: {op: v}}} if name else {key: {op: v}}
            out.append(
                self._compare(rule, cond, label, op, v, actual, score=name if key == "score" else None)
            )
        return out

    def _actual(self, key: str, name: str | None):
        d = self.decision
        if key == "score":
            return d["scores"].get(name)
        if key == "grade":
            return d["grades"].get(name)
        if key == "qualification":
            return d["qualification"].get(name)
        if key == "route":
            return d["route"]["id"]
        if key == "channel":
            return self.facts.get("channel")
        if key.startswith("profile."):
            return self.profile.get(key[8:])
        if key.startswith("answers."):
            return (self.facts.get("answers") or {}).get(key[8:])
        return d.get(key)

    def _compare(self, rule, cond, label, op, wanted, actual, score=None) -> Check:
        held = self.atom(rule, cond)
        if op in _ORDER and isinstance(wanted, str):  # a threshold that is a computed value, by name
            name = wanted.removeprefix("computed.")
            wanted = self.computed.get(name)
            if not _number(wanted):
                return Check(f"{label} {op} {name}", held, f"{name} is not computed for this lead", op=op)
        if op in _ORDER:
            sign = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}[op]
            text = f"{label} {sign} {_num(wanted)}"
            check = Check(text, held, "", score=score, threshold=wanted, op=op, value=actual)
            if not _number(actual):
                check.detail = f"{label} is not given" if actual is None else f"{label} is {_show(actual)}"
            elif held:
                check.detail = f"{label} {_num(actual)} is {_ORDER[op]} {_num(wanted)}"
            else:
                short = round(abs(wanted - actual), 2)
                if op in ("gte", "gt"):
                    check.short = short if op == "gte" else round(short + 0.01, 2)
                    check.detail = (
                        f"{label} {_num(actual)} is below {_num(wanted)}: {_num(check.short)} short"
                    )
                else:
                    check.short = short if op == "lte" else round(short + 0.01, 2)
                    check.detail = f"{label} {_num(actual)} is above {_num(wanted)}: {_num(check.short)} over"
            return check
        words = {
            "eq": "is",
            "ne": "is not",
            "in": "is one of",
            "not_in": "is not one of",
            "in_list": "is in the list",
            "not_in_list": "is not in the list",
            "matches": "matches",
            "contains": "contains",
            "exists": "is given" if wanted else "is not given",
        }
        text = f"{label} {words.get(op, op)}" + ("" if op == "exists" else f" {_show(wanted)}")
        found = "not given" if actual is None else _show(actual)
        if held or op not in ("eq", "in"):
            detail = f"{label} is {found}" + ("" if held else f": `{text}` does not hold")
        else:
            detail = f"{label} is {found}, not {'one of ' if op == 'in' else ''}{_show(wanted)}"
        return Check(text, held, detail, value=actual)


def _feature_of(alternatives) -> str | None:
    for alt in alternatives:
        for exprs in alt.tests.values():
            for e in exprs:
                if e[0] in ("ex", "nex", "cmp") and str(e[1 if e[0] != "cmp" else 2]).startswith("f."):
                    return str(e[1 if e[0] != "cmp" else 2])[2:]
    return None


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(v) -> str:
    """A number as people write it: 10000000, 49.07 (never 1e+07)."""
    if not _number(v):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{round(v, 2)}"


def _show(v) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(_show(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_show(x)}" for k, x in v.items())
    return _num(v) if _number(v) else str(v)
