"""Crash safety at length: SIGKILL the server under load many times, then check that nothing was lost.

The same rounds as tests/test_crash.py (which runs 20 in `make test`), as many as asked: each starts
`leadgate serve` (gunicorn, two workers) on one audit file in a temporary directory, lets four
clients post decisions on 127.0.0.1, and SIGKILLs the server at a random moment (master and workers
together, workers first, or master first); requests cut by a kill are sent again after the restart
with the same Idempotency-Key. At the end it checks that every decision that got a 2xx reply is in
the audit, that no retried request was recorded twice, that `leadgate audit verify` passes and that
no partial rows exist, and prints the figures. Exit status 1 when a check fails.

Bounded: it stops starting new rounds after --max-seconds. Loopback only.

    .venv/bin/python bench/crash.py [--rounds 100] [--seed N] [--max-seconds 600]
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], and bench/http.py would shadow the standard library's http
# package: the repository root takes its place (which also makes `tests` importable).
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import tempfile
import time

from tests import test_crash


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="leadgate-crash-") as directory:
        report = test_crash.Report()
        done = 0
        # Rounds in batches of ten, each on the same file, so the time bound is checked between them.
        while done < args.rounds and time.monotonic() - started < args.max_seconds:
            batch = min(10, args.rounds - done)
            report = test_crash.run_rounds(Path(directory), batch, args.seed + done, report=report)
            done += batch
        try:
            figures = test_crash.check(Path(directory) / "crash.db", report)
        except AssertionError as exc:
            print(f"FAIL: {exc}")
            return 1
    elapsed = time.monotonic() - started
    print(f"kills survived:               {figures['kills']} (SIGKILL of master and workers, under load)")
    print(f"requests attempted:           {report.attempts}")
    print(f"decisions acknowledged (2xx): {figures['acknowledged']}, all in the audit")
    print(f"decision rows checked:        {figures['stored']}")
    print(
        f"cut by a kill, sent again:    {figures['retried']} ({figures['replayed']} had been recorded: replayed)"
    )
    print("audit verify:                 ok; integrity and foreign keys ok; no partial rows")
    print(f"elapsed:                      {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
