"""Decisions must not depend on the Python that computed them: a trail recorded under one, replayed under another.

    python -m tests.compat record PATH   record a fresh audit file at PATH (and PATH.json saying what)
    python -m tests.compat check PATH    `leadgate audit verify` and `leadgate audit replay` on PATH with
                                         this interpreter's leadgate: chain intact, every decision identical

The trail holds every case shipped beside every ruleset (each as its own lead, at the case's time) and
the sample leads of examples/leads.jsonl under the default ruleset, a fifth of them with a second turn of
qualification answers, so accumulated facts and decayed scores are replayed too.
`make test-compat` records under each supported interpreter and checks under every other one.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path

from audit import AuditTrail
from engine import Registry
from engine.cases import cases_path
from engine.files import load_directory, ruleset_files
from engine.yamlsource import load
from service.decide import decide

ROOT = Path(__file__).resolve().parent.parent
RULESETS = ROOT / "rulesets"
LEADS = ROOT / "examples" / "leads.jsonl"
# After every event of examples/leads.jsonl: an event dated after its decision is refused (clock skew).
FIRST, SECOND = "2026-11-24T10:00:00Z", "2026-11-30T16:30:00Z"
ANSWERS = {"budget": "yes", "authority": "decision_maker", "need": "yes", "timeline": "this_quarter"}


class CompatFailure(Exception):
    """The recorded trail did not replay identically (or could not be checked)."""


def record(path: Path) -> int:
    """Record the trail at `path` (which must not exist); returns the number of decisions recorded."""
    path = Path(path)
    if path.exists():
        raise CompatFailure(f"{path} exists: record into a fresh file")
    registry = Registry()
    problems = load_directory(registry, RULESETS)
    if problems:
        raise CompatFailure(f"the shipped rulesets do not load: {problems}")
    count = 0
    # Personal fields are tokenised as in production; the examples hold two leads sharing an email,
    # each of which keeps its own value.
    trail = AuditTrail(path, durability="normal")
    try:
        for file in ruleset_files(RULESETS):
            compiled = registry.get(file.stem)
            cases = cases_path(file)
            for case in load(cases.read_text("utf-8"), str(cases)).data["cases"]:
                facts = {**case["facts"], "lead_id": f"{file.stem}:{case['id']}"}
                decide(compiled, trail, facts, at=case["at"], client="compat")
                count += 1
        default = registry.get("default")
        for i, line in enumerate(LEADS.read_text("utf-8").splitlines()):
            lead = json.loads(line)
            decide(default, trail, lead, at=FIRST, client="compat")
            count += 1
            if i % 5 == 0:
                decide(default, trail, {"lead_id": lead["lead_id"], "answers": ANSWERS}, at=SECOND)
                count += 1
    finally:
        trail.close()
    path.with_name(path.name + ".json").write_text(
        json.dumps({"python": platform.python_version(), "decisions": count})
    )
    return count


def check(path: Path) -> str:
    """Verify and replay the trail at `path` with this interpreter's `leadgate`; a line saying so, or CompatFailure."""
    path = Path(path)
    recorded = json.loads(path.with_name(path.name + ".json").read_text())
    leadgate = str(Path(sys.executable).with_name("leadgate"))
    for command in (["audit", "verify"], ["audit", "replay"]):
        run = subprocess.run([leadgate, *command, "--db", str(path)], capture_output=True, text=True)
        if run.returncode != 0:
            raise CompatFailure(
                f"`leadgate {' '.join(command)}` under Python {platform.python_version()} failed on the trail "
                f"recorded under Python {recorded['python']}:\n{run.stdout}{run.stderr}"
            )
    summary = run.stdout.strip().splitlines()[-1]
    n = recorded["decisions"]
    if not re.fullmatch(rf"{n} replayed, {n} identical, 0 different", summary):
        raise CompatFailure(f"expected all {n} recorded decisions replayed identically, got: {summary}")
    return (
        f"Python {platform.python_version()} replayed the {n} decisions recorded under Python "
        f"{recorded['python']}: chain intact, every decision identical"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "record":
            n = record(Path(argv[1]))
            print(f"recorded {n} decisions under Python {platform.python_version()} in {argv[1]}")
        else:
            print(check(Path(argv[1])))
    except CompatFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
