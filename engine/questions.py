"""Question rules: each answer a question settles becomes a generated rule of the ruleset."""

from __future__ import annotations

from .model import Rule, Ruleset


def question_rules(model: Ruleset) -> list[Rule]:
    """One generated rule per outcome of each question: an answer settles its qualification item."""
    rules = []
    for i, q in enumerate(model.questions):
        if q.item is None:
            continue
        least, most = q.met_at_least, q.met_at_most
        within = {k: v for k, v in (("gte", least), ("lte", most)) if v is not None}
        outside = [{k: v} for k, v in (("lt", least), ("gt", most)) if v is not None]
        for status, answers in (("met", q.met), ("unmet", q.unmet)):
            alts: list[dict] = []
            shown = list(answers)
            if answers:
                alts.append({f"answers.{q.id}": {"in": list(answers)}})
            if status == "met" and within:
                alts.append({f"answers.{q.id}": within})
                shown.append(_range_words(least, most))
            if status == "unmet":
                alts += [{f"answers.{q.id}": test} for test in outside]
                shown += [f"{'<' if 'lt' in t else '>'} {_num(next(iter(t.values())))}" for t in outside]
            if not alts:
                continue
            rules.append(
                Rule(
                    id=f"answer-{q.id}-{status}",
                    description=f"Answered {q.id} with {', '.join(shown)}: {q.item} is {status}",
                    priority=-1,
                    when=alts[0] if len(alts) == 1 else {"any": alts},
                    then={"qualify": {q.item: status}},
                    path=("questions", i),
                    generated=True,
                )
            )
    return rules


def _range_words(least, most) -> str:
    if least is not None and most is not None:
        return f"{_num(least)} to {_num(most)}"
    return f"≥ {_num(least)}" if least is not None else f"≤ {_num(most)}"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)
