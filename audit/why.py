"""Why was this lead routed here? The explanation as data, and the same in plain words."""

from __future__ import annotations

import json

from .codec import codec_for
from .errors import NotFound
from .queries import changes
from .trail import AuditTrail


def explain(trail: AuditTrail, lead_id: str) -> dict:
    """The lead's latest routing decision, explained: stage, route, each score rule by rule, open items."""
    rows = trail._read(
        "SELECT id, evaluated_at, decision, ruleset_digest FROM decisions WHERE lead_id = ? AND kind = 'decision' "
        "ORDER BY seq DESC LIMIT 2",
        (lead_id,),
    )
    if not rows:
        raise NotFound("lead", lead_id)
    codec = codec_for(trail.db)
    documents = [json.loads(codec.unpack(r["decision"], r["ruleset_digest"])) for r in rows]
    decision, previous = documents[0], documents[1] if len(documents) > 1 else None
    scores = {}
    for name, total in decision["scores"].items():
        lines = [
            {"rule": r["rule"], "description": r["description"], "points": e["points"]}
            for r in decision["reasons"]
            for e in r["effects"]
            if e["type"] == "points" and e["score"] == name and e["points"]
        ]
        scores[name] = {"total": total, "grade": decision["grades"].get(name), "breakdown": lines}
    route = decision["route"]
    routed_by = next(
        (r for r in decision["reasons"] for e in r["effects"] if e["type"] == "route" and e.get("applied")),
        None,
    )
    staged_by = [
        r for r in decision["reasons"] for e in r["effects"] if e["type"] == "stage" and e.get("applied")
    ]
    return {
        "lead_id": lead_id,
        "decision_id": rows[0]["id"],
        "evaluated_at": decision["evaluated_at"],
        "ruleset": decision["ruleset"],
        "is_lead": decision["is_lead"],
        "stage": decision["stage"],
        "status_reason": decision["status_reason"],
        "staged_by": [{"rule": r["rule"], "description": r["description"]} for r in staged_by],
        "funnel": decision["funnel"],
        "fit": decision["fit"],
        "ready": decision["ready"],
        "quadrant": decision["quadrant"],
        "route": route,
        "routed_by": {"rule": routed_by["rule"], "description": routed_by["description"]}
        if routed_by
        else None,
        "assignment": decision.get("assignment"),
        "scores": scores,
        "qualification": decision["qualification"],
        "open_questions": decision["next_questions"],
        "changes": changes(previous, decision),
    }


def render(why: dict) -> str:
    """The explanation in plain words, for the terminal."""
    out = [
        f"Lead {why['lead_id']} — decision {why['decision_id']} at {why['evaluated_at']}",
        f"Ruleset {why['ruleset']['name']} v{why['ruleset']['version']} ({why['ruleset']['digest'][:19]}…)",
        "",
    ]
    if why["is_lead"]:
        out.append(
            f"Stage: {why['stage']}"
            + (
                f", set by {', '.join(s['rule'] for s in why['staged_by'])}"
                if why["staged_by"]
                else " (where every lead starts)"
                if why["changes"].get("first")
                else " (kept from the lead's previous decision: stages only move forward)"
            )
        )
    else:
        out.append(f"Not routed as a lead: {why['stage']} — {why['status_reason']}")
    route = why["route"]
    line = f"Route: {route['id']} → {route['destination']}"
    line += f" (team {route['team']})" if route.get("team") else ""
    line += f", track {route['track']}" if route.get("track") else ""
    line += f", due by {route['due_at']}" if route.get("due_at") else ""
    line += f" (handed off at {route['handed_off_at']})" if route.get("handed_off_at") else ""
    out.append(line)
    if why["routed_by"]:
        out.append(f"  because {why['routed_by']['rule']}: {why['routed_by']['description']}")
    assigned = why.get("assignment")
    if assigned:
        who = f"{assigned['name']} ({assigned['owner']})" if assigned["owner"] else "nobody yet"
        out.append(f"Assigned to: {who}, {assigned['reason']}")
    out.append(
        f"Matrix: {why['fit']} fit, {'ready' if why['ready'] else 'not ready'} → {why['quadrant']}; "
        f"funnel {why['funnel']}"
    )
    for name, score in why["scores"].items():
        grade = f" (grade {score['grade']})" if score["grade"] else ""
        out.append("")
        out.append(f"{name.capitalize()}: {score['total']:g}{grade}")
        for line in score["breakdown"]:
            out.append(f"  {line['points']:+8.2f}  {line['rule']}: {line['description']}")
        out.append(f"  {'=' * 8}  {sum(x['points'] for x in score['breakdown']):.2f}")
    out.append("")
    out.append("Qualification: " + ", ".join(f"{k} {v}" for k, v in why["qualification"].items()))
    if why["open_questions"]:
        out.append("Still to ask: " + "; ".join(f"{q['id']} ({q['text']})" for q in why["open_questions"]))
    out.append("")
    c = why["changes"]
    if c.get("first"):
        out.append("This is the lead's first decision.")
    elif not c:
        out.append("Nothing changed since the previous decision.")
    else:
        out.append("Since the previous decision:")
        for key in ("stage", "route", "quadrant", "funnel", "is_lead"):
            if key in c:
                out.append(f"  {key}: {c[key]['from']} → {c[key]['to']}")
        for name, delta in c.get("scores", {}).items():
            out.append(f"  {name}: {delta:+g}")
        for item, change in c.get("qualification", {}).items():
            out.append(f"  {item}: {change['from']} → {change['to']}")
        if c.get("newly_fired"):
            out.append(f"  newly fired: {', '.join(c['newly_fired'])}")
        if c.get("stopped_firing"):
            out.append(f"  stopped firing: {', '.join(c['stopped_firing'])}")
    return "\n".join(out)
