"""What computed values (CEL) cost per decision, in the same run as the decision they feed.

What it measures: for the leads of `rulesets/product-led.cases.yaml` (cycled), the time of
`engine.computed.evaluate` alone (the ruleset's three CEL values: budget per seat, minimum budget,
days to renewal, each a compiled `common-expression-language` program run on a fresh context) and of
a whole `CompiledRuleset.evaluate` of the same facts; it prints the p50 and mean of both and the share
of a decision spent on computed values. Timing is never asserted: the exit status is always 0.

Run from the repository root (a few seconds):

    .venv/bin/python bench/computed.py [--evaluations N]
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], and bench/engine.py would shadow the engine package.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from engine import Registry, computed
from engine.facts import parse_time
from engine.files import load_directory
from engine.yamlsource import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=20_000)
    args = parser.parse_args()
    registry = Registry()
    assert load_directory(registry, ROOT / "rulesets") == []
    ruleset = registry.get("product-led")
    path = ROOT / "rulesets" / "product-led.cases.yaml"
    cases = load(path.read_text("utf-8"), str(path)).data["cases"]
    leads = [(ruleset.normalise(c["facts"]), c["at"]) for c in cases]
    values = ruleset.model.computed

    def timed(fn) -> list[float]:
        out = []
        for i in range(args.evaluations):
            facts, at = leads[i % len(leads)]
            started = time.perf_counter()
            fn(facts, at)
            out.append((time.perf_counter() - started) * 1e6)
        return out

    parsed = {at: parse_time(at, "at") for _, at in leads}
    only = timed(lambda f, at: computed.evaluate(values, f["profile"], f["answers"], parsed[at]))
    whole = timed(lambda f, at: ruleset.evaluate(f, at))
    print(
        f"product-led: {len(values)} computed values, {len(leads)} leads cycled, {args.evaluations} runs each"
    )
    for name, xs in (("computed values alone", only), ("whole decision", whole)):
        print(f"  {name:22} p50 {statistics.median(xs):8.1f} µs   mean {statistics.fmean(xs):8.1f} µs")
    print(
        f"  share of a decision spent on computed values: {statistics.fmean(only) / statistics.fmean(whole):.1%}"
    )


if __name__ == "__main__":
    main()
