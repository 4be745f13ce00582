"""Why not: why a lead's decision did not reach a route, stage or quadrant, and what would get it there.

For the target asked, every rule that would have led there is explained condition by condition
(engine.explain), nearest misses first; each score is measured against the thresholds that matter
(those of these rules, of the rules that set what they need, and the fit threshold of the matrix).
Then answers and events are tried (engine.whatif): only changes whose decision, evaluated again by
the engine, reaches the target are offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EngineError
from .explain import Check, View
from .model import Rule
from .runtime import CompiledRuleset
from .schema import suggest
from .vocabulary import QUADRANTS
from .whatif import grouped, suggestions

KINDS = ("route", "stage", "quadrant")
_VERDICTS = {"not_a_lead": "not_a_lead", "disqualify": "disqualified", "recycle": "recycled"}


class UnknownTarget(EngineError):
    """A route, stage or quadrant the ruleset does not have."""

    code = "unknown_target"

    def __init__(self, kind: str, value: str, known: list[str]):
        self.kind, self.value, self.known = kind, value, known
        super().__init__(f"unknown {kind} {value!r}{suggest(value, known)}; known: {', '.join(known)}")


@dataclass(frozen=True)
class Target:
    kind: str  # route | stage | quadrant
    value: str

    def reached(self, decision: dict) -> bool:
        got = decision["route"]["id"] if self.kind == "route" else decision[self.kind]
        return got == self.value


def known(compiled: CompiledRuleset, kind: str) -> list[str]:
    model = compiled.model
    if kind == "route":
        return list(model.routes)
    if kind == "stage":
        return [s.id for s in model.stages]
    if kind == "quadrant":
        return list(QUADRANTS)
    raise UnknownTarget("target", kind, list(KINDS))


def target(compiled: CompiledRuleset, kind: str, value: str) -> Target:
    """The target, checked against the ruleset: UnknownTarget names the known ones."""
    names = known(compiled, kind)
    if value not in names:
        raise UnknownTarget(kind, value, names)
    return Target(kind, value)


def leads_to(compiled: CompiledRuleset, goal: Target) -> list[Rule]:
    """The rules whose effect is the target route or stage (a quadrant comes from the matrix alone)."""
    model = compiled.model
    out = []
    for rule in model.rules:
        then = rule.then
        if (
            goal.kind == "route"
            and then.get("route") == goal.value
            or goal.kind == "stage"
            and (
                then.get("stage") == goal.value
                or any(
                    model.stage_of_kind(kind) == goal.value for key, kind in _VERDICTS.items() if key in then
                )
            )
        ):
            out.append(rule)
    return out


def _matrix(compiled: CompiledRuleset, view: View, goal: Target) -> list[dict]:
    """The quadrant comes from the matrix: fit against its threshold, and readiness."""
    fit_wanted, ready_wanted = goal.value.split("_fit_")
    good_at = compiled.model.scores["fit"].good_at
    fit = view.decision["scores"]["fit"]
    op = "gte" if fit_wanted == "good" else "lt"
    held = fit >= good_at if op == "gte" else fit < good_at
    short = 0.0 if held else round(abs(good_at - fit) + (0.01 if op == "lt" else 0), 2)
    fit_check = Check(
        f"fit {'≥' if op == 'gte' else '<'} {good_at:g} ({fit_wanted} fit)",
        held,
        f"fit {fit:g} is {'at least' if fit >= good_at else 'below'} {good_at:g}"
        + ("" if held else f": {short:g} {'short' if op == 'gte' else 'over'}"),
        score="fit",
        threshold=good_at,
        op=op,
        value=fit,
        short=None if held else short,
    )
    ready = view.decision["ready"]
    wants_ready = ready_wanted == "ready"
    ready_check = Check(
        "sales-ready" if wants_ready else "not sales-ready",
        ready == wants_ready,
        "the lead is " + ("sales-ready" if ready else "not sales-ready"),
    )
    checks = [fit_check, ready_check]
    return [_candidate("@matrix", "Fit × readiness matrix", checks, fired=None)]


def _candidate(rule_id: str, description: str, checks: list[Check], fired) -> dict:
    failed = [c for c in checks if not c.held]
    return {
        "rule": rule_id,
        "description": description,
        "fired": fired,
        "held": [c.to_dict() for c in checks if c.held],
        "first_failed": failed[0].to_dict() if failed else None,
        "failed": len(failed),
        "conditions": [c.to_dict() for c in checks],
        "_rank": (len(failed), sum(c.gap for c in failed)),
    }


def candidates(compiled: CompiledRuleset, view: View, goal: Target) -> list[dict]:
    """Every rule that would have led to the target, its conditions checked, nearest misses first."""
    if goal.kind == "quadrant":
        return _matrix(compiled, view, goal)
    fired = {r["rule"]: r for r in view.decision["reasons"]}
    out = []
    for rule in leads_to(compiled, goal):
        reason = fired.get(rule.id)
        note = None
        if reason is not None:
            note = next((e.get("note") for e in reason["effects"] if e.get("applied") is False), None)
        item = _candidate(rule.id, rule.description, view.checks(rule), fired=reason is not None)
        if note:
            item["not_applied"] = note  # it fired, but its effect did not take (e.g. route already set)
        out.append(item)
    out.sort(key=lambda c: c["_rank"])
    return out


def thresholds(compiled: CompiledRuleset, view: View, goal: Target, rules: list[Rule]) -> dict:
    """Each score against every threshold that matters for the target: {score: [..]} nearest first."""
    model = compiled.model
    needed = _needed_rules(compiled, rules, goal)
    found: dict[tuple, dict] = {}
    for rule in needed:
        for check in _flat(view.checks(rule)):
            if check.score and check.threshold is not None:
                found.setdefault((check.score, check.op, check.threshold), {"rules": []})["rules"].append(
                    rule.id
                )
    if goal.kind == "quadrant" or any("quadrant" in _reads(r.when)[2] for r in needed):
        found.setdefault(("fit", "gte", model.scores["fit"].good_at), {"rules": []})["rules"].append(
            "@matrix"
        )
    out: dict[str, list] = {}
    for (score, op, threshold), info in found.items():
        current = view.decision["scores"].get(score)
        distance = round(threshold - current, 2)
        out.setdefault(score, []).append(
            {
                "threshold": threshold,
                "op": op,
                "current": current,
                "distance": distance,  # positive: points still needed; negative: points above it
                "met": _meets(current, op, threshold),
                "rules": sorted(set(info["rules"])),
            }
        )
    for items in out.values():
        items.sort(key=lambda t: abs(t["distance"]))
    return out


def _meets(current, op, threshold) -> bool:
    return {
        "gte": current >= threshold,
        "gt": current > threshold,
        "lt": current < threshold,
        "lte": current <= threshold,
    }[op]


def _flat(checks: list[Check]):
    for c in checks:
        yield c
        yield from _flat(c.parts)


def _reads(when: dict) -> tuple[set[str], set[str], set[str]]:
    """What a condition needs other rules to have set: (stages, qualification items, every key it tests)."""
    stages, items, keys = set(), set(), set()
    stack = [when]
    while stack:
        cond = stack.pop()
        if not isinstance(cond, dict):
            continue
        for key, value in cond.items():
            keys.add(key)
            if key in ("all", "any"):
                stack.extend(value)
            elif key == "not":
                stack.append(value)
            elif key == "stage":
                values = value.get("in", []) if isinstance(value, dict) else [value]
                stages.update(v for v in values if isinstance(v, str))
            elif key == "qualification":
                items.update(value)
    return stages, items, keys


def _needed_rules(compiled: CompiledRuleset, rules: list[Rule], goal: Target) -> list[Rule]:
    """These rules, and those that set the stage, readiness or qualification they test (two steps deep).
    A quadrant needs readiness itself."""
    model = compiled.model
    out, frontier = list(rules), list(rules)
    needs_ready = goal.kind == "quadrant"
    for _ in range(2):
        stages, items, ready = set(), set(), needs_ready
        for rule in frontier:
            wanted_stages, wanted_items, keys = _reads(rule.when)
            stages, items = stages | wanted_stages, items | wanted_items
            ready = ready or bool(keys & {"quadrant", "ready"})
        needs_ready = False
        frontier = [
            r
            for r in model.rules
            if r not in out
            and (
                r.then.get("stage") in stages
                or set(r.then.get("qualify", {})) & items
                or (ready and r.then.get("ready"))
            )
        ]
        out += frontier
    return out


def why_not(
    compiled: CompiledRuleset, facts: dict, at: str, goal: Target, decision: dict | None = None
) -> dict:
    """The whole answer for one lead's facts at one time (the decision is evaluated here unless given)."""
    evaluation = compiled.evaluate(facts, at)
    decision = decision or evaluation.decision
    view = View(compiled.model, evaluation.facts, evaluation.decision, at)
    reached = goal.reached(evaluation.decision)
    rules = leads_to(compiled, goal)
    offers = [] if reached else suggestions(compiled, evaluation.facts, at, goal)
    found = candidates(compiled, view, goal)
    for c in found:
        c.pop("_rank")
    return {
        "target": {"kind": goal.kind, "value": goal.value},
        "reached": reached,
        "decided": {
            "route": decision["route"]["id"],
            "stage": decision["stage"],
            "quadrant": decision["quadrant"],
            "scores": decision["scores"],
        },
        "rules": found,
        "default": _default_note(compiled, goal),
        "thresholds": thresholds(compiled, view, goal, rules),
        "changes": offers,
        "changes_text": grouped(offers),
    }


def _default_note(compiled: CompiledRuleset, goal: Target) -> str | None:
    d = compiled.model.defaults
    if goal.kind != "route":
        return None
    notes = {
        d["route"]: "also the default route of a lead that no routing rule placed",
        d["not_a_lead_route"]: "also where leads that fail the lead definition go",
        d["disqualified_route"]: "also where disqualified leads go",
    }
    return notes.get(goal.value)
