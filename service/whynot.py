"""Why not: for a lead's latest decision, why it did not reach a route, stage or quadrant.

The lead's latest decision is read back with the facts and the ruleset source it was evaluated with
(the audit keeps both), and handed to engine.whynot, which explains the rules that would have led
there and tries changes through the engine. The API, the review page and the CLI share this.
"""

from __future__ import annotations

from audit import AuditTrail
from audit.replay import latest, revealed
from engine import Registry
from engine.whynot import target, why_not


def explain(registry: Registry, trail: AuditTrail, lead_id: str, kind: str, value: str) -> dict:
    """Why the lead's latest decision is not at `value` (a route, stage or quadrant), and what would be."""
    record = latest(trail, lead_id)
    facts, source, erased = revealed(trail, record)
    compiled = registry.compile(source, "<stored ruleset>")
    goal = target(compiled, kind, value)
    result = why_not(compiled, facts, record["evaluated_at"], goal, record["decision"])
    out = {
        "lead_id": lead_id,
        "decision_id": record["decision_id"],
        "evaluated_at": record["evaluated_at"],
        "ruleset": compiled.identity,
        **result,
    }
    if erased:
        out["erased_fields"] = erased  # the explanation cannot see values that were erased
    return out


def render(answer: dict) -> str:
    """The answer in plain words, for the terminal."""
    t, d = answer["target"], answer["decided"]
    out = [
        f"Lead {answer['lead_id']} — decision {answer['decision_id']} at {answer['evaluated_at']}",
        f"Decided: route {d['route']}, stage {d['stage']}, quadrant {d['quadrant']}; "
        + ", ".join(f"{k} {v:g}" for k, v in d["scores"].items()),
    ]
    if answer["reached"]:
        out.append(f"The decision is already at {t['kind']} {t['value']}.")
    else:
        out.append(f"Why not {t['kind']} {t['value']}:")
    if answer["default"]:
        out.append(f"  ({t['value']} is {answer['default']})")
    for rule in answer["rules"]:
        total = len(rule["conditions"])
        state = "fired" if rule["fired"] else f"{rule['failed']} of {total} conditions failed"
        out.append(f"  {rule['rule']} ({state}): {rule['description']}")
        for held in rule["held"]:
            out.append(f"    ok    {held['detail']}")
        failed = [c for c in rule["conditions"] if not c["held"]]
        if failed:
            out.append(f"    FAIL  {failed[0]['detail']}")
            out += [f"    also  {c['detail']}" for c in failed[1:]]
        if rule.get("not_applied"):
            out.append(f"    fired, but not applied: {rule['not_applied']}")
    if not answer["rules"]:
        out.append("  no rule of this ruleset leads there")
    if answer["thresholds"]:
        out.append("Scores against the thresholds that matter:")
        for score, items in answer["thresholds"].items():
            for th in items:
                sign = {"gte": "≥", "gt": ">", "lt": "<", "lte": "≤"}[th["op"]]
                how = "met" if th["met"] else f"{abs(th['distance']):g} away"
                out.append(
                    f"  {score} {th['current']:g} vs {sign} {th['threshold']:g}: {how} ({', '.join(th['rules'])})"
                )
    if not answer["reached"]:
        if answer["changes_text"]:
            out.append("Would reach it (checked by deciding again with the change):")
            out += [f"  - {line}" for line in answer["changes_text"]]
        else:
            out.append("No single answer or event (nor any pair) would reach it.")
    return "\n".join(out)
