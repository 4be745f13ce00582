"""What would change the outcome: answers and events tried on a lead, each decided again by the engine.

Candidates are every other answer to each question (and the amount that meets an amount question) and
one more event of each kind a rule tests, with the property values its condition names, at the
evaluation time. Each is applied to the lead's facts and evaluated by the compiled ruleset at the same
time; only those whose decision reaches the target are offered. Single changes first; pairs only when
no single change is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import EngineError
from .runtime import CompiledRuleset

if TYPE_CHECKING:  # whynot imports this module
    from .whynot import Target

MAX_PAIRS = 400  # evaluations spent looking for pairs of changes that work, at most
MAX_OFFERS = 50  # pairs offered (each checked by one more evaluation), at most


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
    baseline = _evaluate(compiled, facts, {}, at)
    good = []
    alike: dict[tuple, list[dict]] = {}  # decision state -> the changes that lead to it
    for change in changes(compiled, facts, at):
        decision = _evaluate(compiled, facts, change, at)
        if decision is None:
            continue
        if goal.reached(decision):
            good.append((change, decision))
        elif baseline is None or _state(decision) != _state(baseline):
            alike.setdefault(_state(decision), []).append(change)  # a change that moves nothing is not paired
    if good:
        return [_offer(change, decision) for change, decision in good]
    # Pairs: one change of each kind of effect is tried with one of each other; when a pair reaches the
    # target, every pair of changes with those same effects is tried too (and offered only if it reaches it).
    groups, budget = list(alike.values()), MAX_PAIRS
    for i, first in enumerate(groups):
        for second in groups[i + 1 :]:
            if budget <= 0:
                break
            pairs = [(a, b) for a in first for b in second if not _clash(a, b)]
            if not pairs:
                continue
            budget -= 1
            if not _reaches(compiled, facts, merge(*pairs[0]), at, goal):
                continue
            for a, b in pairs[: MAX_OFFERS - len(good)]:
                pair = merge(a, b)
                decision = _evaluate(compiled, facts, pair, at)
                if decision is not None and goal.reached(decision):
                    good.append((pair, decision))
    return [_offer(change, decision) for change, decision in good]


def _clash(a: dict, b: dict) -> bool:
    """Two answers to one question cannot be given together."""
    return bool(set(a.get("answers", {})) & set(b.get("answers", {})))


def _reaches(compiled, facts, change, at, goal) -> bool:
    decision = _evaluate(compiled, facts, change, at)
    return decision is not None and goal.reached(decision)


def _state(decision: dict) -> tuple:
    """What a decision settles, without its reasons: what a change can move."""
    return (
        decision["stage"],
        decision["funnel"],
        decision["quadrant"],
        decision["ready"],
        decision["route"]["id"],
        tuple(sorted(decision["scores"].items())),
        tuple(sorted(decision["qualification"].items())),
        tuple(decision["tags"]),
        tuple(q["id"] for q in decision["next_questions"]),
    )


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
