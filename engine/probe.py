"""Probing a ruleset with leads: can a route be reached where its next step does not fit the lead?

Two warnings of `rulesets validate` come from evaluating leads rather than reading rules: a route
whose next step asks questions reached with no question left to ask (and no `next_step_when_answered`),
and a route whose text speaks of something the lead did ("your download") reached by a lead that never
did it. Which leads reach a route depends on every rule at once, so the probe evaluates the ruleset's
own cases and variants of them: every question answered (each allowed answer in turn), all but one
answered, and no events at all. A warning names the lead that shows it; finding none is evidence from
those leads, not a proof.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import EngineError, Problem, RulesetError
from .runtime import CompiledRuleset
from .yamlsource import load

# Phrases by which a next step's text presumes the lead did something, and the events that make it true.
PRESUMES = {
    r"\byour downloads?\b|\byou downloaded\b": ("content_download",),
    r"\byour webinar\b|\bthe webinar you\b|\byou (registered|attended)\b": (
        "webinar_registered",
        "webinar_attended",
    ),
    r"\byour (free )?trial (is|has|account|workspace)\b|\byou started (a|your) (free )?trial\b": (
        "free_trial",
    ),
    r"\byour demo request\b|\byou (asked for|requested) a demo\b": ("demo_request",),
    r"\byour application\b|\byou applied\b": ("application",),
}


def leads_of_cases(path: Path) -> list[tuple[str, dict, str]]:
    """(label, facts, at) of each case in a cases file; [] when there is none or it does not load."""
    try:
        data = load(path.read_text("utf-8"), str(path)).data
    except (OSError, RulesetError):
        return []
    cases = data.get("cases") if isinstance(data, dict) else None
    return [
        (f"case {c['id']}", c["facts"], str(c["at"]))
        for c in cases or []
        if isinstance(c, dict) and isinstance(c.get("facts"), dict) and "id" in c and "at" in c
    ]


def variants(compiled: CompiledRuleset, leads: list[tuple[str, dict, str]]):
    """Each lead as it is, with every question answered (each allowed answer in turn), with every
    question but one answered, and with no events."""
    questions = compiled.model.questions
    widest = max((len(q.answers) for q in questions), default=0)
    for label, facts, at in leads:
        yield label, facts, at
        yield f"{label} without events", {**facts, "events": []}, at
        for k in range(widest):
            answers = {q.id: q.answers[k % len(q.answers)] for q in questions if q.answers}
            yield f"{label} answering {_listed(answers)}", {**facts, "answers": answers}, at
            for q in questions:
                rest = {i: a for i, a in answers.items() if i != q.id}
                yield f"{label} answering {_listed(rest)}", {**facts, "answers": rest}, at


def probe(compiled: CompiledRuleset, leads: list[tuple[str, dict, str]]) -> list[Problem]:
    """Warnings, one per route and kind, each naming a lead that shows it."""
    model = compiled.model
    found: dict[tuple, str] = {}
    for label, facts, at in variants(compiled, leads):
        try:
            decision = compiled.evaluate(facts, at).decision
        except EngineError:
            continue  # the cases runner reports leads that do not evaluate
        route = model.routes[decision["route"]["id"]]
        if (
            route.next_step["action"] == "ask_questions"
            and route.next_step_when_answered is None
            and not decision["next_questions"]
        ):
            found.setdefault(
                (route.id, "ask"),
                f"route {route.id} asks questions, but {label} reaches it with none left to ask: "
                "give it a next_step_when_answered",
            )
        done = {e.get("type") for e in facts.get("events") or [] if isinstance(e, dict)}
        text = decision["route"]["next_step"]["text"]
        for pattern, needs in PRESUMES.items():
            said = re.search(pattern, text, re.IGNORECASE)
            if said and not done & set(needs):
                found.setdefault(
                    (route.id, "text", pattern),
                    f"route {route.id}'s text says {said.group(0)!r}, but {label} reaches it without "
                    f"any {' or '.join(needs)} event: word it for every lead that reaches it",
                )
    doc = load(compiled.source, compiled.file)
    return [
        Problem(compiled.file, doc.line(("routes", key[0])), key[0], message)
        for key, message in found.items()
    ]


def _listed(answers: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in answers.items()) or "nothing"
