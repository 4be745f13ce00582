"""How long the reviewers' questions take: why not (per lead) and production coverage (per decision).

What it measures, on generated leads (the mix of bench/engine.py) and the shipped default ruleset:
- `engine.whynot.why_not` for each lead and each of three targets (route sales_handoff, stage sql,
  quadrant good_fit_ready): the p50 and p95 time of one answer, and how many engine evaluations the
  suggestions cost (every candidate change is decided again), against one plain evaluation of the lead;
- `service.coverage.coverage` over the same leads recorded in a fresh audit file: decisions/s.
Timing is never asserted. Run from the repository root:

    .venv/bin/python bench/insight.py [--leads N] [--seed S]
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import statistics
import tempfile
import time

from audit import AuditTrail
from bench.leads import AT, generate
from engine import Registry
from engine.files import load_directory
from engine.whynot import target, why_not
from service.coverage import coverage
from service.decide import decide_batch

TARGETS = (("route", "sales_handoff"), ("stage", "sql"), ("quadrant", "good_fit_ready"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    registry = Registry()
    load_directory(registry, ROOT / "rulesets")
    compiled = registry.get("default")
    leads = generate(args.leads, args.seed)

    started = time.perf_counter()
    for lead in leads:
        compiled.evaluate(lead, AT)
    one = (time.perf_counter() - started) / len(leads)
    print(f"one evaluation: {one * 1e3:.2f} ms per lead ({len(leads)} leads)")

    for kind, value in TARGETS:
        goal = target(compiled, kind, value)
        times, offered = [], 0
        for lead in leads:
            t0 = time.perf_counter()
            answer = why_not(compiled, lead, AT, goal)
            times.append(time.perf_counter() - t0)
            offered += bool(answer["changes"])
        times.sort()
        p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
        print(
            f"why not {kind} {value}: p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms "
            f"({p50 / one:.0f}x one evaluation at p50); a change offered for {offered}/{len(leads)} leads"
        )

    with tempfile.TemporaryDirectory() as tmp:
        trail = AuditTrail(Path(tmp) / "bench.db", durability="normal")
        for i in range(0, len(leads), 100):
            decide_batch([compiled] * len(leads[i : i + 100]), trail, leads[i : i + 100], at=AT)
        started = time.perf_counter()
        report = coverage(Registry(), trail)
        seconds = time.perf_counter() - started
        trail.close()
    n = report["decisions"]
    print(f"coverage: {n} decisions in {seconds:.2f} s ({n / seconds:,.0f} decisions/s)")


if __name__ == "__main__":
    main()
