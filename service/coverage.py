"""Production coverage: which rules fire on the decisions actually recorded, and which never do.

For a window of recorded decisions (`--since 30d`), per ruleset version: how often each rule fired,
the rules that never fired, the rules that fired in every decision, and the conditions that were
never true. Which rules fired is read from each decision's reasons (what the engine did); whether a
condition was true is checked by engine.explain against each decision's facts and results.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from audit import AuditTrail
from audit.replay import decided
from engine import EngineError, Registry
from engine.explain import Conditions, View
from engine.facts import format_time, parse_time

_SPAN = re.compile(r"^(\d{1,5})([hdw])$")
_UNIT = {"h": "hours", "d": "days", "w": "weeks"}


def since_time(value: str | None, now: datetime | None = None) -> str | None:
    """`30d`, `12h`, `2w` back from now, or an ISO 8601 time; None for the whole trail."""
    if value is None:
        return None
    span = _SPAN.match(value.strip())
    if span:
        now = now or datetime.now(UTC).replace(microsecond=0)
        return format_time(now - timedelta(**{_UNIT[span.group(2)]: int(span.group(1))}))
    return format_time(parse_time(value, "since"))


class _Version:
    """The tallies of one ruleset version."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.rules = [r for r in compiled.model.rules if not r.generated]
        self.conditions = Conditions(compiled.model)
        self.decisions = 0
        self.leads: set[str] = set()
        self.fired: dict[str, int] = {r.id: 0 for r in self.rules}
        self.fired_leads: dict[str, set[str]] = {r.id: set() for r in self.rules}
        self.true: dict[tuple[str, str], int] = {}
        self.parts: dict[tuple[str, str], list[tuple[str, str]]] = {}  # an any / not group -> its parts
        self.unreadable = 0

    def add(self, record: dict) -> None:
        self.decisions += 1
        self.leads.add(record["lead_id"])
        decision = record["decision"]
        fired = {r["rule"] for r in decision["reasons"]}
        for rule in self.rules:
            if rule.id in fired:
                self.fired[rule.id] += 1
                self.fired_leads[rule.id].add(record["lead_id"])
        try:
            facts = self.compiled.normalise(record["facts"])
        except EngineError:
            self.unreadable += 1
            return
        view = View(self.compiled.model, facts, decision, record["evaluated_at"], self.conditions)
        for rule in self.rules:
            for check in _atoms(view.checks(rule)):
                key = (rule.id, check.text)
                self.true[key] = self.true.get(key, 0) + check.held
                if check.parts and key not in self.parts:
                    self.parts[key] = [(rule.id, p.text) for p in check.parts]

    def report(self) -> dict:
        n = self.decisions
        rules = [
            {
                "rule": r.id,
                "description": r.description,
                "fired": self.fired[r.id],
                "leads": len(self.fired_leads[r.id]),
                "share": round(self.fired[r.id] / n, 4) if n else 0.0,
            }
            for r in self.rules
        ]
        return {
            "ruleset": self.compiled.identity,
            "decisions": n,
            "leads": len(self.leads),
            "rules": rules,
            "never_fired": [r["rule"] for r in rules if r["fired"] == 0],
            "fired_for_every_lead": [r["rule"] for r in rules if n and r["leads"] == len(self.leads)],
            "conditions_never_true": [
                {"rule": rule, "condition": text}
                for (rule, text), count in self.true.items()
                # A group is named only when no part of it is named already: its parts say it better.
                if count == 0 and not any(self.true.get(p) == 0 for p in self.parts.get((rule, text), ()))
            ],
            "unreadable": self.unreadable,
        }


def _atoms(checks):
    """Every condition at every level (the parts of any / not groups too)."""
    for check in checks:
        yield check
        yield from _atoms(check.parts)


def coverage(
    registry: Registry,
    trail: AuditTrail,
    since: str | None = None,
    until: str | None = None,
    ruleset: str | None = None,
) -> dict:
    """Per ruleset version decided in the window: each rule's firings, never fired, always fired, dead conditions."""
    versions: dict[str, _Version] = {}
    for record in decided(trail, since, until, ruleset):
        digest = record["ruleset"]["digest"]
        if digest not in versions:
            versions[digest] = _Version(registry.compile(trail.ruleset_source(digest), "<stored ruleset>"))
        versions[digest].add(record)
    reports = sorted(
        (v.report() for v in versions.values()),
        key=lambda r: (r["ruleset"]["name"], -r["ruleset"]["version"]),
    )
    return {
        "since": since,
        "until": until,
        "decisions": sum(r["decisions"] for r in reports),
        "rulesets": reports,
    }


def render(report: dict) -> str:
    """The coverage in plain words, for the terminal and pull requests."""
    window = f"since {report['since']}" if report["since"] else "in the whole trail"
    out = [f"Production coverage {window}: {report['decisions']} decisions"]
    if not report["rulesets"]:
        out.append("no decisions recorded in this window")
    for v in report["rulesets"]:
        r = v["ruleset"]
        out += [
            "",
            f"{r['name']} v{r['version']} ({r['digest'][:19]}…): {v['decisions']} decisions, {v['leads']} leads",
        ]
        width = max(len(x["rule"]) for x in v["rules"]) if v["rules"] else 4
        for x in sorted(v["rules"], key=lambda x: -x["fired"]):
            out.append(f"  {x['rule']:<{width}}  {x['fired']:>7}  {x['share']:>6.1%}")
        out.append("never fired: " + (", ".join(v["never_fired"]) or "none"))
        out.append("fired for every lead: " + (", ".join(v["fired_for_every_lead"]) or "none"))
        if v["conditions_never_true"]:
            out.append("conditions never true:")
            out += [f"  {c['rule']}: {c['condition']}" for c in v["conditions_never_true"]]
        else:
            out.append("conditions never true: none")
    return "\n".join(out)
