"""How fast the decision diff re-decides history: 100,000 leads under two versions of the default ruleset.

What it measures: `service.diff.run` (what `leadgate rulesets diff` runs) on generated leads (the mix of
bench/engine.py), base = `rulesets/default.yaml`, head = the same with the MQL score threshold at 35
instead of 40 and the version raised (a realistic small change). Every lead is decided twice (once
per version), so 100,000 leads are 200,000 evaluations. It runs once with one process and once with
`--workers` processes (default: every core) on the same leads, and prints the wall time, leads/s,
the speed-up of the parallel run over the single one, how many leads changed (the two runs must agree
exactly: the exit status is 1 if they do not) and PASS/MISS against the target: 100,000 leads in
under 60 s using both cores. Timing is never asserted.

Run from the repository root (about a minute with the defaults):

    .venv/bin/python bench/diff.py [--leads N] [--workers N] [--seed S]
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
import os
import re

from bench.leads import AT, generate
from service import diff

TARGET_SECONDS = 60.0


def head_of(base: str) -> str:
    version = int(re.search(r"(?m)^version: (\d+)$", base).group(1))
    head = base.replace(f"version: {version}\n", f"version: {version + 1}\n", 1).replace(
        "score: {engagement: {gte: 40}, fit: {gte: 40}}", "score: {engagement: {gte: 35}, fit: {gte: 40}}"
    )
    assert head.count("{gte: 35}") == 1, "the default ruleset's mql-score rule changed: update bench/diff.py"
    return head


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    base = (ROOT / "rulesets" / "default.yaml").read_text()
    head = head_of(base)
    leads = [(lead["lead_id"], lead, AT, None) for lead in generate(args.leads, args.seed)]
    print(f"{args.leads:,} generated leads, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    runs = {}
    for workers in sorted({1, args.workers}):
        result = diff.run(base, head, leads, workers=workers)
        runs[workers] = result
        print(
            f"  {workers} process{'es' if workers > 1 else ''}: {result.seconds:6.1f} s  "
            f"{result.leads / result.seconds:8,.0f} leads/s  ({2 * result.leads / result.seconds:,.0f} evaluations/s)  "
            f"{result.any_changed:,} leads change, {len(result.errors)} errors"
        )
    one, many = runs[1], runs[args.workers]
    agree = (one.any_changed, one.changed, one.rules) == (many.any_changed, many.changed, many.rules)
    print(f"speed-up of {args.workers} processes over 1: {one.seconds / many.seconds:.2f}x")
    print(f"the runs agree: {'yes' if agree else 'NO'}")
    scaled = many.seconds * 100_000 / args.leads
    verdict = "PASS" if scaled < TARGET_SECONDS else "MISS"
    print(f"{verdict}  100,000 leads in {scaled:.1f} s (target: under {TARGET_SECONDS:.0f} s)")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
