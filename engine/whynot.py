"""Why not: why a lead's decision did not reach a route, stage or quadrant, and what would get it there.

For the target asked, every rule that would have led there is explained condition by condition
(engine.explain), nearest misses first; each score is measured against the thresholds that matter
(those of these rules, of the rules that set what they need, and the fit threshold of the matrix).
Then answers and events are tried: each change is applied to the lead's facts and the lead is
evaluated again by the real engine at the same time; only changes whose decision reaches the target
are offered. Single changes first; pairs only when no single change is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EngineError
from .explain import Check, View
from .model import Rule
from .runtime import CompiledRuleset
from .schema import suggest

KINDS = ("route", "stage", "quadrant")
MAX_PAIRS = 400  # evaluations spent on pairs of changes, at most
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
        return [f"{f}_fit_{r}" for f in ("good", "poor") for r in ("ready", "not_ready")]
    raise UnknownTarget("target", kind, list(KINDS))


def target(compiled: CompiledRuleset, kind: str, value: str) -> Target:
    """The target, checked against the ruleset: UnknownTarget names the known ones."""
    names = known(compiled, kind)
    if value not in names:
        raise UnknownTarget(kind, value, names)
    return Target(kind, value)


def leads_to(compiled: CompiledRuleset, goal: Target) -> list[Rule]:
    """The rules whose effect is the target (a route, a stage, or readiness for a `ready` quadrant)."""
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
    if goal.kind == "quadrant" or any("quadrant" in str(r.when) for r in needed):
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


def _needed_rules(compiled: CompiledRuleset, rules: list[Rule], goal: Target) -> list[Rule]:
    """These rules, and those that set the stage, readiness or qualification they test (two steps deep)."""
    model = compiled.model
    out, frontier = list(rules), list(rules)
    for _ in range(2):
        wanted_stages, items, ready = set(), set(), False
        for rule in frontier:
            text = rule.when
            stack = [text]
            while stack:
                cond = stack.pop()
                if not isinstance(cond, dict):
                    continue
                for key, value in cond.items():
                    if key in ("all", "any"):
                        stack.extend(value)
                    elif key == "not":
                        stack.append(value)
                    elif key == "stage":
                        vals = value.get("in", []) if isinstance(value, dict) else [value]
                        wanted_stages.update(v for v in vals if isinstance(v, str))
                    elif key == "qualification":
                        items.update(value)
                    elif key == "quadrant" or key == "ready":
                        ready = True
        frontier = [
            r
            for r in model.rules
            if r not in out
            and (
                r.then.get("stage") in wanted_stages
                or set(r.then.get("qualify", {})) & items
                or (ready and r.then.get("ready"))
            )
        ]
        out += frontier
    return out


# -- what would change the outcome ---------------------------------------------------------------


def changes(compiled: CompiledRuleset, facts: dict, at: str) -> list[dict]:
    """Candidate changes: every other answer to each question, and one more event of each kind rules test."""
    model = compiled.model
    answers = facts.get("answers") or {}
    out = []
    for q in model.questions:
        options = [a for a in q.answers if answers.get(q.id) != a]
        if q.amount and q.met_at_least is not None and answers.get(q.id) != q.met_at_least:
            options.append(q.met_at_least)
        out += [{"answers": {q.id: a}} for a in options]
    seen = set()
    for rule in model.rules:
        for event in _events_of(rule.when):
            key = (event["type"], tuple(sorted(event.get("properties", {}).items())))
            if key not in seen:
                seen.add(key)
                out.append({"events": [{**event, "at": at}]})
    return out


def _events_of(cond) -> list[dict]:
    """Events that a condition asks for, with the property values it names (`where: {content: whitepaper}`)."""
    out = []
    if isinstance(cond, list):
        for c in cond:
            out += _events_of(c)
        return out
    if not isinstance(cond, dict):
        return out
    for key, value in cond.items():
        if key in ("all", "any"):
            out += _events_of(value)
        elif key in ("count", "days_since") and isinstance(value, dict):
            types = value["event"] if isinstance(value["event"], list) else [value["event"]]
            out += [_event(t, value.get("where")) for t in types if t != "any"]
    if "event" in cond and isinstance(cond["event"], str):
        out.append(_event(cond["event"], cond.get("where")))
    return [e for e in out if e is not None]


def _event(etype: str, where) -> dict | None:
    props = {}
    for prop, test in (where or {}).items():
        if isinstance(test, dict):
            if "eq" in test:
                test = test["eq"]
            elif test.get("in"):
                test = test["in"][0]
            else:
                return None  # ne, comparisons: no single value to offer
        props[prop] = test
    return {"type": etype, **({"properties": props} if props else {})}


def apply(facts: dict, change: dict) -> dict:
    """The facts with a change (or several merged) applied: answers replace, events add."""
    out = dict(facts)
    if "answers" in change:
        out["answers"] = {**(facts.get("answers") or {}), **change["answers"]}
    if "events" in change:
        out["events"] = [*(facts.get("events") or []), *change["events"]]
    return out


def merge(a: dict, b: dict) -> dict:
    out = {}
    if "answers" in a or "answers" in b:
        out["answers"] = {**a.get("answers", {}), **b.get("answers", {})}
    if "events" in a or "events" in b:
        out["events"] = [*a.get("events", []), *b.get("events", [])]
    return out


def describe(change: dict) -> str:
    parts = [f"answering {q} with {a}" for q, a in change.get("answers", {}).items()]
    for e in change.get("events", []):
        props = e.get("properties")
        parts.append(
            f"{_article(e['type'])} {e['type']} event"
            + (f" ({', '.join(f'{k} {v}' for k, v in props.items())})" if props else "")
        )
    return " and ".join(parts)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def suggestions(compiled: CompiledRuleset, facts: dict, at: str, goal: Target) -> list[dict]:
    """Changes whose re-evaluation by the engine reaches the target, each with the decision it gives."""
    tried = changes(compiled, facts, at)
    good, rest = [], []
    for change in tried:
        decision = _evaluate(compiled, facts, change, at)
        if decision is None:
            continue
        (good if goal.reached(decision) else rest).append((change, decision))
    if not good:
        budget = MAX_PAIRS
        for i, (a, _) in enumerate(rest):
            for b, _ in rest[i + 1 :]:
                if (
                    "answers" in a and "answers" in b and set(a["answers"]) & set(b["answers"])
                ) or budget <= 0:
                    continue
                budget -= 1
                pair = merge(a, b)
                decision = _evaluate(compiled, facts, pair, at)
                if decision is not None and goal.reached(decision):
                    good.append((pair, decision))
    return [_offer(change, decision) for change, decision in good]


def _evaluate(compiled: CompiledRuleset, facts: dict, change: dict, at: str) -> dict | None:
    try:
        return compiled.evaluate(apply(facts, change), at).decision
    except EngineError:
        return None  # a change the facts cannot take is not offered


def _offer(change: dict, decision: dict) -> dict:
    return {
        "change": change,
        "text": describe(change),
        "gives": {
            "route": decision["route"]["id"],
            "stage": decision["stage"],
            "quadrant": decision["quadrant"],
            "scores": decision["scores"],
        },
    }


def grouped(offers: list[dict]) -> list[str]:
    """The offers in words, answers to one question together: "answering timeline with now or this_quarter"."""
    by_question: dict[str, list] = {}
    lines = []
    for offer in offers:
        change = offer["change"]
        if set(change) == {"answers"} and len(change["answers"]) == 1:
            ((q, a),) = change["answers"].items()
            by_question.setdefault(q, []).append(a)
        else:
            lines.append(offer["text"])
    return [
        f"answering {q} with {' or '.join(map(str, answers))}" for q, answers in by_question.items()
    ] + lines


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
