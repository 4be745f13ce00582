"""Overrides: reviewers mark decisions as wrong; the rules most involved, and cases for the next version.

An override names the route or stage the reviewer expected, checked against the ruleset that made the
decision, and a reason. `report` counts, per (decided route → expected route), the rules that fired in
the overridden decisions, beside how often they fire on that route at large (their lift); `cases` turns overridden decisions into example cases (engine/cases.py's
format) that fail until a new version of the ruleset decides them as the reviewers expect.
"""

from __future__ import annotations

import json
from collections import Counter

import yaml

from audit import AuditTrail, overrides
from engine import EngineError, Registry
from engine.whynot import target


class OverrideRefused(EngineError):
    """An override that says nothing new: the decision already has the route and stage expected."""

    code = "invalid_override"


def override(
    registry: Registry,
    trail: AuditTrail,
    decision_id: str,
    *,
    route: str | None = None,
    stage: str | None = None,
    reason: str,
    reviewer: str | None = None,
) -> dict:
    """Record that a decision was wrong: UnknownTarget for a route or stage its ruleset does not have."""
    if route is None and stage is None:
        raise OverrideRefused("an override names the route or the stage the decision should have had")
    record = trail.decision(decision_id)
    compiled = registry.compile(trail.ruleset_source(record["ruleset"]["digest"]), "<stored ruleset>")
    expected = {}
    for kind, value in (("route", route), ("stage", stage)):
        if value is not None:
            expected[kind] = target(compiled, kind, value).value
    d = record["decision"]
    if (
        expected.get("route", d["route"]["id"]) == d["route"]["id"]
        and expected.get("stage", d["stage"]) == d["stage"]
    ):
        raise OverrideRefused(
            f"decision {decision_id} already has route {d['route']['id']} and stage {d['stage']}: "
            "an override names the route or stage it should have had"
        )
    if not reason or not reason.strip():
        raise OverrideRefused("an override needs a reason")
    return overrides.record(trail, record, expected, reason.strip(), reviewer)


def report(trail: AuditTrail, since: str | None = None, ruleset: str | None = None) -> dict:
    """Per decided route → expected route (or stage), how many overrides and the rules most involved."""
    groups: dict[str, dict] = {}
    total = 0
    for item, _ in overrides.with_decisions(trail, since, ruleset):
        total += 1
        expected = item["expected_route"] or f"stage {item['expected_stage']}"
        key = f"{item['decided_route']} → {expected}"
        group = groups.setdefault(
            key, {"route": item["decided_route"], "overrides": 0, "rules": Counter(), "reasons": Counter()}
        )
        group["overrides"] += 1
        group["rules"].update(set(item["rules"]))
        group["reasons"][item["reason"]] += 1
    out = {}
    base: dict[str, tuple[int, dict]] = {}
    for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["overrides"]):
        if g["route"] not in base:
            base[g["route"]] = overrides.fired_on_route(trail, g["route"], since, ruleset)
        routed, fired = base[g["route"]]
        rules = []
        for rule, n in g["rules"].items():
            share, usual = n / g["overrides"], fired.get(rule, 0) / routed if routed else 0.0
            # lift > 1: the rule fires more often in the overridden decisions than on this route at large.
            lift = round(share / usual, 2) if usual else None
            rules.append(
                {
                    "rule": rule,
                    "overrides": n,
                    "share": round(share, 3),
                    "share_on_route": round(usual, 3),
                    "lift": lift,
                }
            )
        rules.sort(key=lambda r: (-r["overrides"], -(r["lift"] or 0), r["rule"]))
        out[key] = {
            "overrides": g["overrides"],
            "decisions_on_route": routed,
            "rules": rules,
            "reasons": dict(g["reasons"].most_common(5)),
        }
    return {"overrides": total, "by_route": out}


def cases(trail: AuditTrail, name: str, since: str | None = None) -> list[dict]:
    """The overridden decisions of ruleset `name` as cases: the facts, the time, the outcome expected."""
    out = []
    seen = set()
    for item, record in overrides.with_decisions(trail, since, name):
        if item["decision_id"] in seen:  # overridden twice: the latest override says what is expected
            out = [c for c in out if c["_decision"] != item["decision_id"]]
        seen.add(item["decision_id"])
        expect = {}
        if item["expected_route"]:
            expect["route"] = item["expected_route"]
        if item["expected_stage"]:
            expect["stage"] = item["expected_stage"]
        out.append(
            {
                "_decision": item["decision_id"],
                "id": f"override-{item['override_id'][4:16]}",
                "description": (
                    f"Reviewer {item['reviewer'] or 'unknown'} overrode decision {item['decision_id']} "
                    f"({item['decided_route']}, {item['decided_stage']}): {item['reason']}"
                ),
                "at": record["evaluated_at"],
                "facts": _shareable(record["facts"], trail.personal.fields),
                "expect": expect,
            }
        )
    return [{k: v for k, v in c.items() if k != "_decision"} for c in out]


def _shareable(facts: dict, personal: tuple[str, ...]) -> dict:
    """The facts without personal data (a cases file is committed): the configured personal fields
    dropped, but the email kept as someone@ its domain, which rules read."""
    profile = {k: v for k, v in (facts.get("profile") or {}).items() if k == "email" or k not in personal}
    email = profile.get("email")
    if isinstance(email, str):
        if email.startswith("pii:") or "@" not in email:
            del profile["email"]  # erased or never kept: nothing to share
        else:
            profile["email"] = "someone@" + email.rsplit("@", 1)[1]
    return {**facts, "profile": profile}


def cases_yaml(name: str, items: list[dict]) -> str:
    """A cases file (rulesets/<name>.cases.yaml format) for the next pull request."""
    header = (
        f"# Decisions of {name} that reviewers overrode (leadgate rulesets cases-from-overrides).\n"
        "# They fail until a version of the ruleset decides them as the reviewers expected: move the ones\n"
        f"# the next version should satisfy into {name}.cases.yaml. Personal fields are left out.\n"
    )
    # Through JSON: PyYAML writes a shared object as an anchor and alias, which cases files may not hold.
    doc = json.loads(json.dumps({"ruleset": name, "cases": items}))
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
