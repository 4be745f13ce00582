"""Overload at length: far more concurrent clients than workers, then clients that never finish.

The burst of tests/test_overload.py, larger: `leadgate serve` (gunicorn, two sync workers by default)
on 127.0.0.1 with a fresh audit file; --clients clients post --per-client decisions each, a quarter
of them hanging up after 50 ms. It prints the replies by status, the latency of those answered, how
many requests whose client hung up were recorded anyway (whole: a decision with its lead and events),
the time to answer one request right after the burst (recovery), and checks the audit: every 201
recorded once, nothing half-written, the chain verified. With --slow it then opens one connection
per worker that never finishes its headers and measures how long a plain request waits behind them.
Exit status 1 when a check fails.

    .venv/bin/python bench/overload.py [--clients 96] [--per-client 20] [--workers 2] [--slow]
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
import socket
import tempfile
import time
from collections import Counter

from tests.server import Server
from tests.test_overload import IMPATIENT, assert_recorded_whole, lead, run_burst


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=96)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slow", action="store_true", help="also measure clients that never finish")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadgate-overload-") as directory:
        db = Path(directory) / "overload.db"
        with Server(db, workers=args.workers) as server:
            started = time.monotonic()
            burst = run_burst(server, args.clients, args.per_client, IMPATIENT)
            elapsed = time.monotonic() - started
            recovery_started = time.perf_counter()
            status = server.request("POST", "/v1/decisions", lead(10**8), timeout=30)[0]
            recovery = time.perf_counter() - recovery_started
            stall = None
            if args.slow:
                slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(args.workers)]
                for sock in slow:
                    sock.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: bench\r\n")
                time.sleep(0.3)
                stall_started = time.perf_counter()
                server.request("GET", "/healthz", timeout=120)
                stall = time.perf_counter() - stall_started
                for sock in slow:
                    sock.close()
        try:
            assert not burst.bad, burst.bad[:3]
            assert status == 201
            figures = assert_recorded_whole(db, burst)
        except AssertionError as exc:
            print(f"FAIL: {exc}")
            return 1
    statuses = Counter(str(s) for s in burst.statuses.values())
    print(
        f"workers {args.workers}, clients {args.clients} (a quarter hang up after {IMPATIENT * 1000:.0f} ms)"
    )
    print(f"requests:       {figures['requests']} in {elapsed:.1f} s ({figures['requests'] / elapsed:.0f}/s)")
    print(f"replies:        {dict(sorted(statuses.items()))}")
    print(
        f"latency:        p50 {_percentile(burst.latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {_percentile(burst.latencies, 0.99) * 1000:.0f} ms, max {max(burst.latencies) * 1000:.0f} ms"
    )
    print(f"hung up:        {figures['gave_up']}, of which recorded whole: {figures['gave_up_but_recorded']}")
    print("audit:          every 201 recorded once, nothing half-written, chain verified")
    print(f"recovery:       next request answered in {recovery * 1000:.0f} ms, no restart")
    if stall is not None:
        print(
            f"slow clients:   {args.workers} unfinished requests held every worker: a request waited {stall:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
