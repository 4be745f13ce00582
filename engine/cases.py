"""Example cases that ship beside each ruleset (rulesets/<name>.cases.yaml), and their runner.

Like OPA's policy tests: a ruleset's cases are its contract. Each case gives facts and an evaluation
time and says what must come out; the runner reports every mismatch with file, line and case id,
and names the rules no case made fire. A cases file with no case fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import EngineError, Problem, RulesetError
from .runtime import CompiledRuleset
from .yamlsource import load

# What a case may expect, and how to read it off a decision.
_EXPECT = {
    "is_lead": lambda d: d["is_lead"],
    "stage": lambda d: d["stage"],
    "status_reason": lambda d: d["status_reason"],
    "funnel": lambda d: d["funnel"],
    "fit": lambda d: d["fit"],
    "ready": lambda d: d["ready"],
    "quadrant": lambda d: d["quadrant"],
    "route": lambda d: d["route"]["id"],
    "destination": lambda d: d["route"]["destination"],
    "team": lambda d: d["route"]["team"],
    "track": lambda d: d["route"]["track"],
    "due_at": lambda d: d["route"]["due_at"],
    "tags": lambda d: d["tags"],
    "next_questions": lambda d: [q["id"] for q in d["next_questions"]],
}
_PARTIAL = ("scores", "grades", "qualification")  # only the named entries are compared
_RULE_LISTS = ("fired", "not_fired")
CASE_KEYS = {"id", "description", "at", "facts", "expect"}


@dataclass
class CaseResult:
    id: str
    line: int
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class CasesReport:
    ruleset: str
    file: str
    results: list[CaseResult]
    rules: list[str]
    fired: set[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def unexercised(self) -> list[str]:
        return [r for r in self.rules if r not in self.fired]

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.results) and all(r.passed for r in self.results)

    def failures(self) -> list[str]:
        out = [str(p) for p in self.problems]
        for r in self.results:
            out += [f"{self.file}:{r.line}: [{r.id}] {f}" for f in r.failures]
        if not self.results and not self.problems:
            out.append(f"{self.file}:1: no cases: every ruleset ships at least one")
        return out


def cases_path(ruleset_path: Path) -> Path:
    return ruleset_path.with_name(ruleset_path.name.removesuffix(".yaml") + ".cases.yaml")


def run_cases(compiled: CompiledRuleset, path: Path) -> CasesReport:
    file = str(path)
    rules = [r.id for r in compiled.model.rules if not r.generated]
    report = CasesReport(compiled.name, file, [], rules, set())
    if not path.exists():
        report.problems.append(Problem(file, 1, None, f"ruleset {compiled.name} has no cases file"))
        return report
    try:
        doc = load(path.read_text("utf-8"), file)
    except RulesetError as exc:
        report.problems.extend(exc.problems)
        return report
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        report.problems.append(Problem(file, 1, None, "a cases file is a mapping with a list under `cases`"))
        return report
    if data.get("ruleset") != compiled.name:
        report.problems.append(
            Problem(file, doc.line(("ruleset",)), None, f"`ruleset:` must name {compiled.name!r}")
        )
    seen: set[str] = set()
    for i, case in enumerate(data["cases"]):
        line = doc.line(("cases", i))
        if not isinstance(case, dict) or not {"id", "at", "facts", "expect"} <= set(case):
            report.problems.append(Problem(file, line, None, "each case needs id, at, facts and expect"))
            continue
        result = CaseResult(str(case["id"]), line)
        report.results.append(result)
        if result.id in seen:
            result.failures.append("case id used twice")
        seen.add(result.id)
        for key in sorted(set(case) - CASE_KEYS):
            result.failures.append(f"unknown key {key!r} in case")
        try:
            decision = compiled.evaluate(case["facts"], case["at"]).decision
        except EngineError as exc:
            result.failures.append(f"evaluation failed: {exc}")
            continue
        fired = [r["rule"] for r in decision["reasons"]]
        report.fired.update(fired)
        result.failures.extend(compare(case["expect"], decision, fired))
    return report


def compare(expect: dict, decision: dict, fired: list[str]) -> list[str]:
    """Every way the decision differs from what the case expects."""
    if not isinstance(expect, dict):
        return ["expect must be a mapping"]
    out = []
    for key, wanted in expect.items():
        if key in _EXPECT:
            got = _EXPECT[key](decision)
            if got != wanted:
                out.append(f"{key}: expected {wanted!r}, got {got!r}")
        elif key in _PARTIAL:
            if not isinstance(wanted, dict):
                out.append(f"{key}: expected a mapping")
                continue
            for name, value in wanted.items():
                got = decision[key].get(name)
                if got != value:
                    out.append(f"{key}.{name}: expected {value!r}, got {got!r}")
        elif key == "computed":
            # Computed values are shown in the reasons (@computed.<name>), with their inputs.
            values = {
                r["rule"].split(".", 1)[1]: r["effects"][0]["value"]
                for r in decision["reasons"]
                if r["rule"].startswith("@computed.")
            }
            for name, value in (wanted or {}).items():
                if values.get(name) != value:
                    out.append(f"computed.{name}: expected {value!r}, got {values.get(name)!r}")
        elif key in _RULE_LISTS:
            for rule in wanted or []:
                if (rule in fired) != (key == "fired"):
                    out.append(f"rule {rule} {'did not fire' if key == 'fired' else 'fired'}")
        else:
            out.append(
                f"unknown expectation {key!r} (known: "
                f"{', '.join(sorted([*_EXPECT, *_PARTIAL, *_RULE_LISTS, 'computed']))})"
            )
    return out
