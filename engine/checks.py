"""Semantic checks of a ruleset: references, impossible conditions and unreachable thresholds.

These run after the structure passed the JSON Schema; each returns Problems with file, line and rule.
"""

from __future__ import annotations

import math

from .errors import Problem
from .hours import zone_problem
from .model import Rule, Ruleset
from .schema import suggest
from .vocabulary import EVENT_TYPES

ACTION_WRITES = {
    "not_a_lead": "slot:stage",
    "disqualify": "slot:stage",
    "stage": "slot:stage",
    "recycle": "slot:stage",
    "funnel": "slot:funnel",
    "ready": "slot:ready",
    "route": "slot:route",
}


def writes_of(rule: Rule) -> set[str]:
    """The derived kinds a rule's actions change: slot:* and points:*."""
    then = rule.then
    out = {kind for key, kind in ACTION_WRITES.items() if key in then}
    out |= {f"points:{s}" for s in then.get("points", {})}
    out |= {f"slot:qual:{i}" for i in then.get("qualify", {})}
    out |= {f"slot:tag:{t}" for t in _as_list(then.get("tag"))}
    return out


def _as_list(value) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


class Checker:
    def __init__(self, model: Ruleset, file: str, line_of):
        self.model, self.file, self.line_of = model, file, line_of
        self.problems: list[Problem] = []

    def _add(self, path, message, rule=None):
        self.problems.append(Problem(self.file, self.line_of(path), rule, message))

    def _known(self, value, known, what, path, rule=None) -> bool:
        if value in known:
            return True
        self._add(path, f"unknown {what} {value!r}" + suggest(value, list(known)), rule)
        return False

    def document(self) -> list[Problem]:
        m = self.model
        seen: set[str] = set()
        for i, stage in enumerate(m.stages):
            if stage.id in seen:
                self._add(("stages", i, "id"), f"stage {stage.id!r} is listed twice")
            seen.add(stage.id)
        for kind in ("not_a_lead", "disqualified", "recycled"):
            idx = [i for i, s in enumerate(m.stages) if s.kind == kind]
            for i in idx[1:]:
                self._add(("stages", i, "kind"), f"only one stage may be of kind {kind}")
        for kind in ("not_a_lead", "disqualified"):
            if m.stage_of_kind(kind) is None:
                self._add(("stages",), f"a stage of kind {kind} is required")
        if not m.funnel_stages:
            self._add(("stages",), "at least one funnel stage (without a kind) is required")
        if m.scores["fit"].good_at is None:
            self._add(
                ("scores", "fit"), "scores.fit needs good_at: the total from which a lead is a good fit"
            )
        for name, score in m.scores.items():
            if score.good_at is not None and name != "fit":
                self._add(("scores", name, "good_at"), "good_at is for the fit score only")
            if score.min is not None and score.max is not None and score.min >= score.max:
                self._add(("scores", name), f"min ({score.min}) must be below max ({score.max})")
        qids: set[str] = set()
        for i, q in enumerate(m.questions):
            path = ("questions", i)
            if q.id in qids:
                self._add(path + ("id",), f"question {q.id!r} is listed twice")
            qids.add(q.id)
            if q.item is not None:
                self._known(q.item, m.qualification, "qualification item", path + ("item",))
            for key in ("met", "unmet"):
                for answer in getattr(q, key):
                    if answer not in q.answers:
                        self._add(
                            path + (key,),
                            f"{answer!r} is not one of the question's answers" + suggest(answer, q.answers),
                        )
            declared = m.declared_answers.get(q.id)
            if declared not in (None, "string"):
                self._add(
                    ("fields", "answers", q.id),
                    f"question {q.id!r} already defines its answers (text from its list"
                    + (", or an amount" if q.amount else "")
                    + f"); declaring fields.answers.{q.id} as {declared} would refuse them: "
                    "remove it, or give the question amount: true for numbers",
                )
            bounded = q.met_at_least is not None or q.met_at_most is not None
            if (q.met or q.unmet or bounded) and q.item is None:
                self._add(path, "met / unmet need an item to settle")
            for key in ("met_at_least", "met_at_most"):
                if getattr(q, key) is not None and not q.amount:
                    self._add(path + (key,), f"{key} needs amount: true")
            numbers = [v for v in (q.met_at_least, q.met_at_most) if isinstance(v, int | float)]
            for key in ("met_at_least", "met_at_most"):
                ref = getattr(q, key)
                if (
                    isinstance(ref, str)
                    and m.computed_specs.get(ref.split(".", 1)[1], {}).get("type") != "number"
                ):
                    self._add(
                        path + (key,),
                        f"{ref} is not a computed number" + suggest(ref.split(".", 1)[1], m.computed_specs),
                    )
            if len(numbers) == 2 and q.met_at_least > q.met_at_most:
                self._add(path + ("met_at_most",), "met_at_most must not be below met_at_least")
        for name, etype in m.event_types.items():
            if etype.declared and name in EVENT_TYPES:
                self._add(
                    ("events", name),
                    f"{name!r} is a standard event type already: give your own event another name",
                )
        if m.business_hours is not None:
            problem = zone_problem(m.business_hours["timezone"])
            if problem:
                self._add(("business_hours", "timezone"), problem)
            elif m.business_hours["start"] >= m.business_hours["end"]:
                self._add(("business_hours", "end"), "business hours must end after they start")
        for rid, route in m.routes.items():
            if route.business_hours and m.business_hours is None:
                self._add(
                    ("routes", rid, "business_hours"), "business_hours: true needs a top-level business_hours"
                )
            if route.business_hours and not route.sla_minutes:
                self._add(
                    ("routes", rid, "business_hours"), "business_hours counts sla_minutes: give the route one"
                )
        defaults = m.defaults
        for key in ("route", "not_a_lead_route", "disqualified_route"):
            self._known(defaults[key], m.routes, "route", ("defaults", key))
        dq = m.routes.get(defaults["disqualified_route"])
        if dq is not None and dq.destination != "disqualified":
            self._add(
                ("defaults", "disqualified_route"),
                "the disqualified route must have destination disqualified",
            )
        ids: set[str] = set()
        for rule in m.rules:
            if rule.id in ids:
                self._add(rule.path + ("id",), f"rule id {rule.id!r} is used twice", rule.id)
            ids.add(rule.id)
            self._actions(rule)
        return self.problems

    def _actions(self, rule: Rule) -> None:
        m, then, path = self.model, rule.then, rule.path + ("then",)
        for score in then.get("points", {}):
            self._known(score, m.scores, "score", path + ("points", score), rule.id)
        for key in ("per", "cap", "decay"):
            if key in then and "points" not in then:
                self._add(path + (key,), f"{key} only makes sense with points", rule.id)
        if "stage" in then and self._known(
            then["stage"], [s.id for s in m.stages], "stage", path + ("stage",), rule.id
        ):
            kind = next(s.kind for s in m.stages if s.id == then["stage"])
            if kind is not None:
                self._add(
                    path + ("stage",),
                    f"use `{'recycle' if kind == 'recycled' else kind}: <reason>` "
                    f"to move a lead to the {kind} stage",
                    rule.id,
                )
        if "recycle" in then and m.stage_of_kind("recycled") is None:
            self._add(path + ("recycle",), "recycle needs a stage of kind recycled", rule.id)
        if "route" in then and self._known(then["route"], m.routes, "route", path + ("route",), rule.id):
            route = m.routes[then["route"]]
            if "disqualify" in then and route.destination != "disqualified":
                self._add(
                    path + ("route",),
                    f"a disqualified contact's route must have destination disqualified, not {route.destination}",
                    rule.id,
                )
            if "not_a_lead" in then and route.destination == "sales":
                self._add(
                    path + ("route",), "a not-a-lead is never handed to sales: choose another route", rule.id
                )
        for item in then.get("qualify", {}):
            self._known(item, m.qualification, "qualification item", path + ("qualify", item), rule.id)
        for q in _as_list(then.get("ask")):
            self._known(q, m.question_ids, "question", path + ("ask",), rule.id)

    def reachability(self, rule: Rule, alternatives, writers: dict[str, set[str]]) -> None:
        """Flag a rule no lead can ever fire."""
        if rule.generated:
            return
        reasons = [self._impossible(alt, writers) for alt in alternatives]
        if reasons and all(reasons):
            self._add(rule.path + ("when",), f"this rule can never fire: {reasons[0]}", rule.id)

    def _impossible(self, alt, writers) -> str | None:
        m = self.model
        for fact, exprs in alt.tests.items():
            if fact == "slot:stage":
                values = _eq_values(exprs)
                # A stage is reachable from the start, or when some rule moves a lead there (a later
                # decision then starts from it).
                reachable = set(m.funnel_stages[:1]) | writers.get("stage-values", set())
                if values is not None and not values & reachable:
                    return f"no rule moves a lead to stage {sorted(values)[0]}"
            if fact.startswith("slot:tag:") and "slot:" + fact[5:] not in writers:
                return f"no rule sets tag {fact.split(':', 2)[2]}"
            if fact == "slot:route":
                values = _eq_values(exprs)
                if values is not None and not values & writers.get("route-values", set()):
                    return f"no rule routes to {sorted(values)[0]}"
            if fact == "slot:ready" and "slot:ready" not in writers and _eq_values(exprs) == {True}:
                return "no rule marks a lead ready"
            if fact == "slot:quadrant":
                values = _eq_values(exprs) or set()
                if (
                    values
                    and all(v.endswith("_ready") and not v.endswith("not_ready") for v in values)
                    and "slot:ready" not in writers
                ):
                    return "no rule marks a lead ready, so no lead is in a ready quadrant"
            if fact.startswith("score:"):
                name = fact.split(":", 1)[1]
                low, high = _bounds(exprs, "pts")
                most = writers.get(f"max:{name}", math.inf)
                least = writers.get(f"min:{name}", -math.inf)
                if low is not None and low[0] > most or (low is not None and low[0] == most and low[1]):
                    return (
                        f"{name} needs {'more than' if low[1] else 'at least'} {low[0]:g} points but at most "
                        f"{most:g} are available"
                    )
                if high is not None and (high[0] < least or (high[0] == least and high[1])):
                    return f"{name} needs {'less than' if high[1] else 'at most'} {high[0]:g} points but never goes below {least:g}"
            if fact == "lead":
                contradiction = _contradiction(exprs)
                if contradiction:
                    return contradiction
        return None


def _eq_values(exprs) -> set | None:
    """Values a slot must equal, when the tests pin it to a set; None when they do not."""
    values = None
    for e in exprs:
        if e[0] == "cmp" and e[1] == "eq":
            found = {e[3]}
        elif e[0] == "or" and all(x[0] == "cmp" and x[1] == "eq" for x in e[1]):
            found = {x[3] for x in e[1]}
        else:
            continue
        values = found if values is None else values & found
    return values


def _bounds(exprs, key):
    """Lowest and highest allowed value of `key` from plain comparisons: ((value, strict), …)."""
    low = high = None
    for e in exprs:
        parts = e[1] if e[0] == "and" else [e]
        for p in parts:
            if p[0] != "cmp" or p[2] != key:
                continue
            op, v = p[1], p[3]
            if op in ("gt", "gte"):
                cand = (v, op == "gt")
                if low is None or cand > low:
                    low = cand
            elif op in ("lt", "lte"):
                cand = (v, op == "lt")
                if high is None or (v, not cand[1]) < (high[0], not high[1]):
                    high = cand
            elif op == "eq" and isinstance(v, int | float):
                low = (v, False) if low is None or v > low[0] else low
                high = (v, False) if high is None or v < high[0] else high
    return low, high


def _contradiction(exprs) -> str | None:
    equal: dict[str, set] = {}
    keys = set()
    flat = []
    for e in exprs:
        flat.extend(e[1] if e[0] == "and" else [e])
    for p in flat:
        if p[0] == "cmp":
            keys.add(p[2])
            if p[1] == "eq":
                equal.setdefault(p[2], set()).add(json_key(p[3]))
    for key, values in equal.items():
        if len(values) > 1:
            return f"{_label(key)} cannot equal {' and '.join(sorted(values))} at once"
    for key in keys:
        low, high = _bounds(flat, key)
        if low and high and (low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))):
            return f"no value of {_label(key)} is both {'>' if low[1] else '≥'} {low[0]:g} and {'<' if high[1] else '≤'} {high[0]:g}"
    for p in flat:
        if p[0] == "nex" and p[1] in keys:
            return f"{_label(p[1])} cannot be absent and compared at once"
    return None


def json_key(v) -> str:
    return repr(v)


def _label(key: str) -> str:
    prefix, _, name = key.partition(".")
    return {"p": "profile.", "a": "answers.", "an": "answers.", "f": "a computed feature "}.get(
        prefix, ""
    ) + name
