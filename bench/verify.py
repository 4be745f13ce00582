"""What proving the audit trail costs: verify (chain, derived tables, checkpoints) per decision.

Builds a trail of `--rows` decisions of the default ruleset for generated leads (bench/leads.py) with
the real write path (`AuditTrail.record_many`, durability normal), in a temporary directory, then
times from a fresh connection, each `--repeat` times (the best is printed):

- the hash chain alone (`audit.chain.verify`): every link and the row it records;
- the derived tables (`audit.derived.verify`): leads, events, stage history, hand-offs,
  assignments and keys rebuilt from the chained entries and compared;
- signing a checkpoint (`AuditTrail.checkpoint`) and matching one (`audit.checkpoints.verify`);
- for the record path, what tokenising personal data costs per decision (`Personal.protect_facts`,
  which now also searches free text for emails and phone numbers) against the profile alone.

It prints seconds, microseconds per decision and the ratio derived/chain. Timing is never asserted.

    .venv/bin/python bench/verify.py [--rows N] [--repeat N] [--seed S]
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import os
import tempfile
import time

from audit import AuditTrail, chain, checkpoints, derived
from bench.leads import AT, generate
from engine import compile_source
from service.decide import decide_batch


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ruleset = compile_source((ROOT / "rulesets" / "default.yaml").read_text(), "default.yaml")
    leads = generate(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "verify.db"
        trail = AuditTrail(path, durability="normal")
        started = time.perf_counter()
        for i in range(0, len(leads), 200):
            chunk = leads[i : i + 200]
            decide_batch([ruleset] * len(chunk), trail, chunk, at=AT)
        built = time.perf_counter() - started
        trail.close()
        trail = AuditTrail(path, durability="normal")
        n = trail.db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        print(
            f"{n:,} decisions for {len(leads):,} leads built in {built:.1f} s; load {os.getloadavg()[0]:.2f}"
        )
        db = trail.db
        chain_s = best(lambda: chain.verify(db), args.repeat)
        derived_s = best(lambda: derived.verify(db, trail.personal.fields), args.repeat)
        statement = trail.checkpoint()
        sign_s = best(trail.checkpoint, args.repeat)
        key = checkpoints.public_key(trail.secrets)
        match_s = best(lambda: checkpoints.verify(db, [("s", statement)], [key]), args.repeat)
        assert trail.verify([("s", statement)]) == []
        for name, seconds in [
            ("hash chain", chain_s),
            ("derived tables", derived_s),
            ("sign a checkpoint", sign_s),
            ("match a checkpoint", match_s),
        ]:
            print(f"{name:<22}{seconds:>8.3f} s {seconds / n * 1e6:>8.1f} µs/decision")
        print(f"derived / chain: {derived_s / chain_s:.2f}x")
        facts = [trail.lead_facts(lead["lead_id"]) for lead in leads[:2000]]
        facts = [f for f in facts if f]
        personal = trail.personal
        profile_s = best(lambda: [personal.protect(f.get("profile")) for f in facts], args.repeat)
        full_s = best(lambda: [personal.protect_facts(f) for f in facts], args.repeat)
        print(
            f"tokenising per decision: profile only {profile_s / len(facts) * 1e6:.1f} µs, "
            f"profile + answers + event properties (free-text search) {full_s / len(facts) * 1e6:.1f} µs"
        )
        trail.close()


if __name__ == "__main__":
    main()
