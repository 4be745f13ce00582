"""Suggestions from outcomes: point values and score thresholds that would have found the won leads better.

The model is deliberately simple and explained: a logistic regression of "won" (against rejected,
lost, or never won after SETTLE_DAYS) on which point-giving rules fired for each lead, at the decision that handed it off. Each
rule's coefficient, rescaled so that a score keeps its overall size, becomes its suggested points;
then every `score: {…: {gte: N}}` threshold is tuned on the rescored leads. The expected hand-off
precision and recall are estimated on the same leads, and the suggestion is written out as a new
version of the ruleset file (comments and layout kept), for `leadgate rulesets diff` and review.

It refuses to suggest anything from fewer than MIN_SAMPLE labelled leads or MIN_CLASS of either
kind: with small samples it fits noise (docs/outcomes.md says when not to trust it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ruamel.yaml import YAML

from engine import CompiledRuleset, compile_source

MIN_SAMPLE = 200
MIN_CLASS = 30
SETTLE_DAYS = 30  # a lead decided this long ago and never won counts as not won
MIN_FIRED = 10  # a rule that fired for fewer labelled leads keeps its points: too little to tell
THRESHOLD_STEP = 5


class SuggestionRefused(Exception):
    """Not enough outcomes to suggest anything trustworthy."""


@dataclass
class Suggestion:
    ruleset: dict
    labelled: int
    won: int
    points: list[dict] = field(default_factory=list)
    thresholds: list[dict] = field(default_factory=list)
    handoff: dict = field(default_factory=dict)
    source: str = ""


def suggest(
    compiled: CompiledRuleset,
    items: list,
    at: str,
    min_sample: int = MIN_SAMPLE,
    settle_days: int = SETTLE_DAYS,
) -> Suggestion:
    """Suggested points and thresholds for `compiled`, learnt from the leads' outcomes as of `at`.

    A lead has a known result when it was won, lost or rejected, or when its snapshot decision is at
    least `settle_days` old without a win: leaving those out would teach the model that every lead
    nobody reported on was won.
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise SuggestionRefused(
            "suggestions need scikit-learn, an optional extra: pip install -e '.[suggest]' "
            "(make run and make test install it)"
        ) from None

    now = _time(at)
    labelled = [
        x
        for x in items
        if x.won or x.lost or x.rejected or (now - _time(x.snapshot["evaluated_at"])).days >= settle_days
    ]
    won = sum(x.won for x in labelled)
    if len(labelled) < min_sample or min(won, len(labelled) - won) < MIN_CLASS:
        raise SuggestionRefused(
            f"{len(labelled)} leads with a known result ({won} won, {len(labelled) - won} not): at least "
            f"{min_sample}, and {MIN_CLASS} of each, are needed before a suggestion means anything"
        )
    model = compiled.model
    point_rules = [
        (rule, score, value)
        for rule in model.rules
        if not rule.generated
        for score, value in (rule.then.get("points") or {}).items()
    ]
    fitted = [
        p for p in point_rules if MIN_FIRED <= sum(p[0].id in x.fired for x in labelled) < len(labelled)
    ]
    features = [[int(rule.id in x.fired) for rule, _, _ in fitted] for x in labelled]
    regression = LogisticRegression(C=1.0, max_iter=2000).fit(features, [int(x.won) for x in labelled])
    coefficients = dict(
        zip([(rule.id, score) for rule, score, _ in fitted], regression.coef_[0], strict=True)
    )

    result = Suggestion(compiled.identity, len(labelled), won)
    new_points: dict[tuple[str, str], float] = {}
    for score in model.scores:
        mine = [(rule.id, value) for rule, s, value in fitted if s == score]
        weight = sum(abs(coefficients[(r, score)]) for r, _ in mine)
        scale = sum(abs(v) for _, v in mine) / weight if weight else 0
        for rule_id, _ in mine:
            new_points[(rule_id, score)] = round(coefficients[(rule_id, score)] * scale)
    for rule, score, value in point_rules:
        suggested = new_points.get((rule.id, score), value)
        result.points.append(
            {
                "rule": rule.id,
                "score": score,
                "current": value,
                "suggested": suggested,
                "coefficient": round(float(coefficients[(rule.id, score)]), 3)
                if (rule.id, score) in coefficients
                else None,
            }
        )

    rescored = [_rescore(x, model, new_points) for x in labelled]
    current = [{s: sum(p.get(s, 0.0) for p in x.points.values()) for s in model.scores} for x in labelled]
    result.thresholds = _thresholds(model, labelled, current, rescored)
    good_at = model.scores["fit"].good_at
    result.handoff = {
        "current": _precision_recall(labelled, [x.snapshot["destination"] == "sales" for x in labelled]),
        "proposed": _precision_recall(
            labelled,
            [
                x.snapshot["is_lead"] and _ready(x) and s["fit"] >= good_at
                for x, s in zip(labelled, rescored, strict=True)
            ],
        ),
    }
    result.source = _write(compiled, result)
    return result


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ready(lead) -> bool:
    return lead.snapshot["quadrant"].endswith("_ready") and not lead.snapshot["quadrant"].endswith(
        "not_ready"
    )


def _rescore(lead, model, new_points) -> dict[str, float]:
    """The lead's scores had the rules given the suggested points (decay kept: each effect is scaled)."""
    out = {}
    for score, spec in model.scores.items():
        total = 0.0
        for rule_id, given in lead.points.items():
            if score not in given:
                continue
            current = next(r.then["points"][score] for r in model.rules if r.id == rule_id)
            suggested = new_points.get((rule_id, score), current)
            total += given[score] * (suggested / current) if current else suggested
        low = spec.min if spec.min is not None else total
        high = spec.max if spec.max is not None else total
        out[score] = min(max(total, low), high)
    return out


def _precision_recall(labelled, predicted) -> dict:
    chosen = [x for x, p in zip(labelled, predicted, strict=True) if p]
    hits = sum(x.won for x in chosen)
    won = sum(x.won for x in labelled)
    return {
        "handed_off": len(chosen),
        "precision": round(hits / len(chosen), 3) if chosen else None,
        "recall": round(hits / won, 3) if won else None,
    }


def _thresholds(model, labelled, current, rescored) -> list[dict]:
    """Each rule's `score: {S: {gte: N}}` tests, tuned one after the other for F1 of "won" on the
    rescored leads (each test keeps the others at their latest value)."""
    out = []
    for rule in model.rules:
        tests = (rule.when.get("score") or {}) if isinstance(rule.when, dict) else {}
        old = {s: t["gte"] for s, t in tests.items() if isinstance(t, dict) and set(t) == {"gte"}}
        if not old:
            continue

        def f1(limits, scores):
            return _f1(labelled, [all(s[k] >= v for k, v in limits.items()) for s in scores])

        new = dict(old)
        for score in old:
            top = int(model.scores[score].max or 100)
            new[score] = max(
                range(0, top + 1, THRESHOLD_STEP),
                key=lambda t, score=score: (f1({**new, score: t}, rescored), -abs(t - old[score])),
            )
        for score in old:
            out.append(
                {
                    "rule": rule.id,
                    "score": score,
                    "current": old[score],
                    "suggested": new[score],
                    "f1_current": round(f1(old, current), 3),
                    "f1_suggested": round(f1(new, rescored), 3),
                }
            )
    return out


def _f1(labelled, predicted) -> float:
    hits = sum(x.won for x, p in zip(labelled, predicted, strict=True) if p)
    chosen, won = sum(predicted), sum(x.won for x in labelled)
    return 2 * hits / (chosen + won) if chosen + won else 0.0


def _write(compiled: CompiledRuleset, result: Suggestion) -> str:
    """The ruleset source with the suggested numbers and the next version: only those numbers change.

    ruamel.yaml's round-trip loader knows where each value stands (line and column), so each edit
    replaces exactly that number and the file's comments, layout and wrapping stay as the owner wrote them.
    """
    doc = YAML(typ="rt").load(compiled.source)
    lines = compiled.source.split("\n")
    edits: list[tuple[int, int, object]] = []
    index = {rule.id: rule.path[1] for rule in compiled.model.rules if not rule.generated}

    def number_at(mapping, key, value) -> None:
        line, column = mapping.lc.value(key)
        edits.append((line, column, value))

    number_at(doc, "version", compiled.version + 1)
    for p in result.points:
        if p["suggested"] != p["current"]:
            number_at(doc["rules"][index[p["rule"]]]["then"]["points"], p["score"], p["suggested"])
    for t in result.thresholds:
        if t["suggested"] != t["current"]:
            number_at(doc["rules"][index[t["rule"]]]["when"]["score"][t["score"]], "gte", t["suggested"])
    for line, column, value in sorted(edits, reverse=True):  # right to left: columns stay valid
        text = lines[line]
        end = column
        while end < len(text) and text[end] in "+-.0123456789":
            end += 1
        if end == column:
            raise ValueError(f"no number at line {line + 1}, column {column + 1} of {compiled.file}")
        lines[line] = text[:column] + _number(value) + text[end:]
    source = "\n".join(lines)
    proposed = compile_source(source, compiled.file).model  # fails loudly if the edit broke the file
    points = {(r.id, s): v for r in proposed.rules for s, v in (r.then.get("points") or {}).items()}
    assert all(points[(p["rule"], p["score"])] == p["suggested"] for p in result.points)
    return source


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
