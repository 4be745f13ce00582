"""Webhook delivery: events delivered per second, and the lag from commit to receipt under decision load.

What it runs, all on 127.0.0.1 with a fresh audit file (durability `full`) in a temporary directory:
the real server (`leadgate serve`, 2 workers by default), the real deliverer (`leadgate deliver`, its
own process) and a receiver in a third process that verifies every Standard Webhooks signature and
notes when each event id first arrived (tests/receiver.py). The destination subscribes to every event
kind; a hand-off of the default ruleset makes two events (lead.handed_off, lead.stage_changed).

1. **Throughput**: `--backlog` hand-offs are decided while the deliverer is stopped; then it starts, and
   events delivered per second are counted from the first receipt to the last.
2. **Lag under load**: for `--seconds`, hand-offs are posted at a steady `--rate` per second while
   bench/http.py's decision load (its generated leads, its load-generator process, `--clients`
   connections) runs beside them. Lag = first receipt − the event's `timestamp`, which is taken as the
   decision is recorded, just before its commit (so the lag includes waiting for the write lock and
   the commit: conservative). p50, p99 and max over every event of the phase; target p99 < 1 s at
   100 hand-offs/s.

Afterwards every outbox event must have arrived (the exit status is 1 otherwise); duplicates are
counted. Timing is never asserted. Run from the repository root:

    .venv/bin/python bench/delivery.py [--rate 100] [--seconds 20] [--clients 4] [--backlog 1000]
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], where bench/http.py would shadow the standard library's http.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import base64
import copy
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.http import _loadavg, _proc_cpu, generate, percentile, post_request, run_phase
from service.config import load_config
from tests.server import LEADGATE, Server

KEY = os.urandom(32)
SECRET = "whsec_" + base64.b64encode(KEY).decode()
TARGET_P99_S = 1.0
HOT = {
    "channel": "demo_form",
    "profile": {"country": "US", "industry": "software", "employees": 200, "seniority": "vp"},
    "events": [
        {"type": "content_download", "at": "2026-11-20T10:00:00Z", "properties": {"content": "whitepaper"}},
        {"type": "pricing_page_view", "at": "2026-11-22T10:00:00Z"},
        {"type": "demo_request", "at": "2026-11-23T09:00:00Z"},
    ],
    "answers": {"budget": "yes"},
}


def hand_off(prefix: str, i: int) -> dict:
    body = copy.deepcopy(HOT)
    body["lead_id"] = f"{prefix}-{i:06d}"
    body["profile"]["email"] = f"ana{i}@{prefix.lower()}{i}.io"
    return body


def _receive(port: int, key: bytes, pipe) -> None:
    """The receiver's process: serve until told, then send back (id, first receipt, event timestamp)."""
    from tests.receiver import Receiver

    receiver = Receiver(key, port, keep_alive=True).start()
    pipe.send("ready")
    while True:
        if pipe.recv() == "stop":
            break
        with receiver._lock:
            seen = list(receiver.seen)
        pipe.send(
            [(s["id"], s["at"], s["event"]["timestamp"], s["verified"]) for s in seen if s["id"] is not None]
        )
    receiver.stop()


class Remote:
    def __init__(self, port: int):
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_receive, args=(port, KEY, child), daemon=True)
        self.proc.start()
        assert self.pipe.recv() == "ready"

    def seen(self) -> list[tuple]:
        self.pipe.send("poll")
        return self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send("stop")
        self.proc.join(10)


def outbox(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT id, at FROM outbox").fetchall())


def wait_for(remote: Remote, ids: set[str], timeout: float) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        seen = remote.seen()
        if ids <= {s[0] for s in seen} or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def paced(server: Server, prefix: str, rate: float, seconds: float) -> dict:
    """POST hand-offs at a steady rate (open loop: a slow reply does not slow the schedule)."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def post(i):
        status = server.request("POST", "/v1/decisions", hand_off(prefix, i))[0]
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    n = int(rate * seconds)
    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, i)
        issued = time.perf_counter() - started
    return {"sent": n, "statuses": statuses, "issue_rate": n / issued}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="hand-offs per second (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load phase (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="bench/http.py load connections (default 4)")
    parser.add_argument("--backlog", type=int, default=1000, help="hand-offs for the throughput phase")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs; load average {_loadavg()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="leadgate-delivery-") as tmp:
        from tests.server import free_port

        port = free_port()
        rulesets = Path(tmp) / "rulesets"
        shutil.copytree(ROOT / "rulesets", rulesets)
        (rulesets / "destinations.yaml").write_text(
            f"version: 1\ndestinations:\n  bench:\n    url: http://127.0.0.1:{port}/hooks\n"
            "    secret_env: LEADGATE_WEBHOOK_BENCH_SECRET\n"
            "    events: [lead.handed_off, lead.stage_changed, lead.disqualified, sla.breached, outcome.recorded]\n"
        )
        db = Path(tmp) / "bench.db"
        remote = Remote(port)
        server = Server(db, workers=args.workers, rulesets=rulesets).start()
        env = {**os.environ, "LEADGATE_DB": str(db), "LEADGATE_WEBHOOK_BENCH_SECRET": SECRET}
        log = open(Path(tmp) / "deliver.log", "ab")  # noqa: SIM115 - closed below, after the deliverer
        deliverer = None
        try:
            # 1. throughput: a backlog, then the deliverer starts
            print(f"deciding {args.backlog} hand-offs with the deliverer stopped …", flush=True)
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda i: server.request("POST", "/v1/decisions", hand_off("B", i)),
                        range(args.backlog),
                    )
                )
            backlog = set(outbox(db))
            started = time.perf_counter()
            deliverer = subprocess.Popen([str(LEADGATE), "deliver"], env=env, stdout=log, stderr=log)
            seen = wait_for(remote, backlog, 120)
            cpu_backlog = _proc_cpu(deliverer.pid)
            drained = time.perf_counter() - started
            got = {s[0] for s in seen} & backlog
            arrivals = sorted(s[1] for s in seen if s[0] in backlog)
            # From the first receipt to the last: the deliverer's start-up (imports) is not delivery.
            throughput = len(got) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
            print(f"  {len(got)} of {len(backlog)} events in {drained:.2f} s (deliverer start included)")

            # 2. lag under load
            print(
                f"load: {args.rate:.0f} hand-offs/s for {args.seconds:.0f} s beside bench/http.py's decision load "
                f"({args.clients} connections; load {_loadavg()}) …",
                flush=True,
            )
            bodies = [
                post_request(server.port, "/v1/decisions", server.key, b)
                for b in generate(int(args.seconds * 400), 7, "D")
            ]
            background: dict = {}
            worker = threading.Thread(
                target=lambda: background.update(
                    run_phase(
                        "decisions",
                        server.port,
                        server.proc.pid,
                        bodies,
                        args.clients,
                        len(bodies),
                        args.seconds,
                    )
                )
            )
            before = set(outbox(db))
            worker.start()
            handoffs = paced(server, "H", args.rate, args.seconds)
            worker.join()
            events = {k: v for k, v in outbox(db).items() if k not in before}
            seen = wait_for(remote, set(events), 60)
            cpu_load = _proc_cpu(deliverer.pid) - cpu_backlog
        finally:
            if deliverer is not None:
                deliverer.terminate()
                deliverer.wait(20)
            log.close()
            server.stop()
            remote.stop()
        first: dict[str, float] = {}
        for eid, at, _, _ in seen:
            first[eid] = min(at, first.get(eid, at))
        lags = sorted(first[e] - epoch(t) for e, t in events.items() if e in first)
        missing = [e for e in set(events) | backlog if e not in first]
        duplicates = len(seen) - len({s[0] for s in seen})
        unverified = sum(1 for s in seen if not s[3])
        window = [first[e] for e in events if e in first]
        rate = len(window) / (max(window) - min(window)) if len(window) > 1 else float("nan")

    print()
    print(
        f"throughput: {throughput:.0f} events/s delivered from a backlog of {len(backlog)} (one deliverer, "
        f"{load_config().DELIVERY_CONCURRENCY} in flight, each event signed, sent, its attempt committed)"
    )
    print(
        f"hand-offs: {handoffs['sent']} posted at {handoffs['issue_rate']:.0f}/s, replies {handoffs['statuses']}; "
        f"decision load: {background.get('rate', float('nan')):.0f} decisions/s at {args.clients} connections, "
        f"p99 {background.get('p99', float('nan')):.0f} ms, errors {background.get('errors')}"
    )
    print(
        f"delivery under load: {len(lags)} events, {rate:.0f} events/s received; lag commit → receipt "
        f"p50 {percentile(lags, 50) * 1000:.0f} ms, p99 {percentile(lags, 99) * 1000:.0f} ms, "
        f"max {lags[-1] * 1000 if lags else float('nan'):.0f} ms"
    )
    print(
        f"deliverer CPU: {cpu_backlog:.2f} s for the backlog (start-up included), {cpu_load:.2f} s for the "
        f"load phase: {cpu_load / max(len(lags), 1) * 1000:.2f} ms per event"
    )
    print(f"missing events: {len(missing)}; duplicate receipts: {duplicates}; bad signatures: {unverified}")
    ok = percentile(lags, 99) < TARGET_P99_S
    print(f"  {'PASS' if ok else 'MISS'}  p99 lag < {TARGET_P99_S:.0f} s at {args.rate:.0f} hand-offs/s")
    print(f"load average after the run: {_loadavg()}")
    failed = bool(missing) or unverified > 0
    print(
        json.dumps(
            {
                "throughput": round(throughput),
                "p50_ms": round(percentile(lags, 50) * 1000),
                "p99_ms": round(percentile(lags, 99) * 1000),
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
