"""Decisions per second through HTTP, with durable audit writes, against a trivial endpoint of the same app.

What it measures: the real server (`leadgate serve`: gunicorn's asyncio worker behind the buffering
front of api/front.py, 2 workers by default; `--stack gthread` the threaded workers used before, and
`--stack both` one after the other, then side by side) on
127.0.0.1 with a fresh SQLite audit file in a temporary directory and the default durability
(`full`: every commit fsynced). For 2 and 16 concurrent clients it runs

- the ceiling: `GET /healthz`, a trivial endpoint of the same app (same gunicorn, same Flask stack);
- `POST /v1/decisions` with realistic, varied lead bodies for the default ruleset (mostly new leads,
  some repeat leads sending a new event or a chatbot answer, so facts accumulate), each recorded in
  the audit trail before the reply;

and prints requests/s, p50/p99/p99.9 latency, errors (any non-2xx, refused or timed-out request), the
ratio decisions/ceiling, the server's CPU per request and the CPU the load generator and any other
process took during each phase. Afterwards it counts the decision rows in the SQLite file and
compares them with the 2xx decision replies (they must match), then prints PASS/MISS against the
targets: at 16 clients, at least 1,500 decisions/s, at least a third of the ceiling, p99 under 25 ms.
Timing is never asserted: the exit status is 1 only when the row count does not match.

How it measures: the load generator is a separate process (so it never shares the server's
interpreter): one event loop (`selectors`) driving N concurrent connections with precomputed
request bytes. It speaks HTTP/1.1 keep-alive, but gunicorn's sync workers answer every request with
`Connection: close`, so every request pays a new TCP connection; latency is measured from the start
of the connect to the last byte of the reply (what a form posting to the API sees). The table says
how many replies came with `Connection: close`. With `--client wrk` (or `auto` when `wrk` is on
PATH) the ceiling phase is measured a second time with wrk as a cross-check of the Python client;
the decisions phases always use the Python client, which stops issuing at the bounds and waits for
the requests in flight, so the audit rows can be compared exactly with the replies.

Every phase is bounded by a request count (`--requests`) and a wall-time cap (`--seconds`); the whole
run takes about a minute with the defaults. Loopback only: nothing is sent to any other address.

Run from the repository root:

    .venv/bin/python bench/http.py [--workers N] [--requests N] [--seconds S] [--client auto|python|wrk]
                                   [--durability full|normal] [--stack front|gthread|both]
                                   [--db postgresql://…]

`--db postgresql://…` runs the same phases a second time on PostgreSQL, in the same run: two replicas
(two servers of --workers workers each, on two ports) sharing a fresh database made on that server,
the load generator's connections spread over both; then prints the two side by side. The audit check
counts the PostgreSQL rows. Durability `full` is `synchronous_commit=on` there: the server must run
with fsync on for the comparison to mean anything.

`--durability normal` (no fsync per commit) is for diagnosis only; the targets are for `full`.

Other CPU-heavy work on the machine skews every figure: the load average and the CPU share taken by
other processes are printed with each phase; re-run on a quiet machine when they are high.
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is named http.py: run as a script, its directory is sys.path[0] and would shadow the
# standard library's http package (which tests.server and multiprocessing import). Put the
# repository root there instead, which also makes `tests.server` importable.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import contextlib
import errno
import http.client
import json
import multiprocessing
import os
import random
import re
import resource
import selectors
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from array import array
from collections import Counter
from datetime import UTC, datetime

from audit.backends import shown
from bench.leads import ANSWERS, EVENT_MIX, SENIORITIES, event, make_lead
from cli.server import own_sockets
from tests.server import GTHREAD, Server

HOST = "127.0.0.1"  # loopback only, never any other address
CLIENTS = (2, 16)
TARGET_RATE = 1500.0
TARGET_RATIO = 1 / 3
TARGET_P99_MS = 25.0
REQUEST_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- Realistic leads for the default ruleset ------------------------------------------------------


def new_lead(rng: random.Random, lead_id: str, now: datetime) -> dict:
    """A first contact from a form, as bench/leads.py makes them (what the API accepts of it)."""
    lead = make_lead(rng, 0, now, lead_id=lead_id)
    lead.pop("previous_stage", None)  # the stage is the API's to remember, not the caller's to send
    return lead


def repeat_lead(rng: random.Random, lead_id: str, now: datetime, seq: int) -> dict:
    """A later call for a known lead: a chatbot answer, or new behaviour, or a profile update."""
    roll = rng.random()
    if roll < 0.45:
        key = rng.choice(sorted(ANSWERS))
        return {"lead_id": lead_id, "channel": "chatbot", "answers": {key: rng.choice(ANSWERS[key])}}
    if roll < 0.9:
        kinds = rng.choices(*zip(*EVENT_MIX, strict=True), k=rng.randint(1, 3))
        events = [event(rng, lead_id, 100 + seq * 3 + k, kind, now, (0, 0.4)) for k, kind in enumerate(kinds)]
        return {"lead_id": lead_id, "channel": "web", "events": events}
    return {
        "lead_id": lead_id,
        "channel": "crm_sync",
        "profile": {"employees": rng.randrange(5, 20000), "seniority": rng.choice(SENIORITIES)},
    }


def generate(n: int, seed: int, prefix: str, repeat_share: float = 0.2) -> list[dict]:
    """n decision requests: mostly new leads, `repeat_share` of them for a lead seen at least 40 earlier."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies, known = [], []
    for i in range(n):
        if len(known) > 40 and rng.random() < repeat_share:
            lead_id = known[rng.randrange(len(known) - 40)]
            bodies.append(repeat_lead(rng, lead_id, now, i))
        else:
            lead_id = f"{prefix}-{i:06d}"
            known.append(lead_id)
            bodies.append(new_lead(rng, lead_id, now))
    return bodies


# -- HTTP requests as bytes -----------------------------------------------------------------------


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: leadgate-bench\r\n\r\n".encode()


def post_request(port: int, path: str, key: str, body: dict) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: leadgate-bench\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


# -- The load generator (runs in its own process) -------------------------------------------------

_CL = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.I)


class _Slot:
    __slots__ = ("sock", "buf", "sent", "request", "started", "head_end", "length", "port")

    def __init__(self, port):
        self.sock, self.port = None, port


def _load(port, requests, concurrency, max_requests, max_seconds, pipe):
    """Keep `concurrency` requests in flight until max_requests are issued or max_seconds pass.

    `port` may be a tuple of ports (replicas): the connections are spread over them in turn."""
    ports = port if isinstance(port, tuple) else (port,)
    sel = selectors.DefaultSelector()
    latencies = array("d")
    statuses: Counter = Counter()
    closes = connects = 0
    issued = done = 0
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    last = t0
    refused: list[_Slot] = []  # connects that failed at once: finished from the loop, not recursively

    def start(slot, now):
        nonlocal issued, connects
        slot.request = requests[issued % len(requests)]
        issued += 1
        slot.buf, slot.sent, slot.head_end, slot.length = bytearray(), 0, -1, None
        slot.started = now
        if slot.sock is None:
            connects += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex((HOST, slot.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                refused.append(slot)
                return
            slot.sock = sock
            sel.register(sock, selectors.EVENT_WRITE, slot)
        else:
            sel.modify(slot.sock, selectors.EVENT_WRITE, slot)

    def finish(slot, status, now, close):
        nonlocal done, closes, last
        done += 1
        last = now
        statuses[status] += 1
        latencies.append((now - slot.started) * 1000.0)
        if close and slot.sock is not None:
            sel.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None
        if issued < max_requests and now < deadline:
            start(slot, now)
        elif slot.sock is not None:
            sel.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None

    slots = [_Slot(ports[i % len(ports)]) for i in range(concurrency)]
    now = time.perf_counter()
    for slot in slots[: min(concurrency, max_requests)]:
        start(slot, now)
    while done < issued:
        events = sel.select(timeout=0 if refused else 0.5)
        now = time.perf_counter()
        while refused:
            finish(refused.pop(), 0, now, close=True)
        for k, mask in events:
            slot = k.data
            try:
                if mask & selectors.EVENT_WRITE:
                    slot.sent += slot.sock.send(slot.request[slot.sent :])
                    if slot.sent == len(slot.request):
                        sel.modify(slot.sock, selectors.EVENT_READ, slot)
                    continue
                chunk = slot.sock.recv(262144)
            except OSError:
                finish(slot, 0, now, close=True)
                continue
            if not chunk:  # closed before a complete reply
                finish(slot, 0, now, close=True)
                continue
            slot.buf += chunk
            if slot.head_end < 0:
                slot.head_end = slot.buf.find(b"\r\n\r\n")
                if slot.head_end < 0:
                    continue
                m = _CL.search(slot.buf, 0, slot.head_end + 2)
                slot.length = int(m.group(1)) if m else 0
            if len(slot.buf) - slot.head_end - 4 >= slot.length:
                head = bytes(slot.buf[: slot.head_end + 2])
                close = bool(_CLOSE.search(head)) or head.startswith(b"HTTP/1.0")
                closes += close
                finish(slot, int(head[9:12]), now, close=close)
        for slot in slots:  # requests that never complete count as errors
            if slot.sock is not None and now - slot.started > REQUEST_TIMEOUT and slot.buf is not None:
                finish(slot, -1, now, close=True)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    pipe.send(
        {
            "latencies": latencies.tobytes(),
            "statuses": dict(statuses),
            "elapsed": last - t0,
            "client_cpu": cpu,
            "connects": connects,
            "closes": closes,
        }
    )
    pipe.close()


# -- CPU accounting from /proc --------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def server_cpu(master) -> dict[int, float]:
    """CPU seconds used so far by the gunicorn master (or masters: replicas) and each of its workers, by pid."""
    masters = master if isinstance(master, tuple) else (master,)
    return {pid: _proc_cpu(pid) for m in masters for pid in (m, *_children(m))}


def cpu_since(master: int, before: dict[int, float]) -> float:
    """CPU seconds the master and its workers used since `before` (a worker born since counts from 0)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in server_cpu(master).items())


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


# -- Phases ---------------------------------------------------------------------------------------


_LOCK = re.compile(
    r"^leadgate_write_lock_(hold_seconds_count|hold_seconds_sum|wait_seconds_sum|cpu_seconds_total|blocks_total) (\S+)$",
    re.M,
)


def lock_totals(port: int, key: str) -> dict[str, float]:
    """The write lock's totals so far, every worker's added up (GET /metrics, service/metrics.py):
    groups committed, and seconds held, waited and of CPU inside the lock, blocks written."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {name: float(value) for name, value in _LOCK.findall(text)}


def lock_figures(before: dict[str, float], after: dict[str, float], elapsed: float) -> str:
    """Per group commit of one phase: how long the write lock was held, the CPU inside it, the wait."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    groups = d.get("hold_seconds_count", 0.0)
    if not groups:
        return "no group commits counted"
    held = d["hold_seconds_sum"]
    return (
        f"{groups:.0f} groups of {d['blocks_total'] / groups:.2f} blocks; held {held / groups * 1e3:.2f} ms "
        f"a group ({held / elapsed:.0%} of the phase's wall time), CPU inside "
        f"{d['cpu_seconds_total'] / groups * 1e3:.2f} ms a group, waited {d['wait_seconds_sum'] / groups * 1e3:.2f} ms"
    )


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def run_phase(name, port, master, requests, clients, max_requests, max_seconds) -> dict:
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    load1 = os.getloadavg()[0]
    srv0 = server_cpu(master)
    busy0, total0 = machine_busy()
    proc = ctx.Process(target=_load, args=(port, requests, clients, max_requests, max_seconds, writer))
    proc.start()
    writer.close()
    result = reader.recv()
    proc.join()
    busy1, total1 = machine_busy()
    server = cpu_since(master, srv0)
    lat = sorted(array("d", result["latencies"]))
    statuses = result["statuses"]
    n = len(lat)
    ok = sum(c for s, c in statuses.items() if 200 <= s < 300)
    elapsed = result["elapsed"] or float("nan")
    wall = (total1 - total0) / (os.cpu_count() or 1)
    other = (busy1 - busy0) - server - result["client_cpu"]
    return {
        "name": name,
        "clients": clients,
        "requests": n,
        "ok": ok,
        "errors": n - ok,
        "statuses": statuses,
        "rate": n / elapsed,
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "p999": percentile(lat, 99.9),
        "max": lat[-1] if lat else float("nan"),
        "elapsed": elapsed,
        "server_us": server / n * 1e6 if n else float("nan"),
        "server_cores": server / wall if wall else float("nan"),
        "client_cores": result["client_cpu"] / wall if wall else float("nan"),
        "other_cores": max(0.0, other) / wall if wall else float("nan"),
        "closes": result["closes"],
        "connects": result["connects"],
        "load1": load1,
        "client": "python",
    }


_WRK_SCRIPT = """
function done(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %.1f %.1f %.1f %.1f\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout + summary.errors.status, summary.duration, 0,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(port, master, clients, seconds) -> dict | None:
    """GET /healthz with wrk (one thread), bounded in time only: a cross-check of the ceiling.

    wrk times a request from its first byte written, so its latencies leave out the TCP connect that
    the Python client's include; its CPU is counted as the client's.
    """
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_SCRIPT)
    load1 = os.getloadavg()[0]
    srv0, client0 = server_cpu(master), _children_cpu()
    busy0, total0 = machine_busy()
    try:
        cmd = [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", f.name]
        run = subprocess.run(
            [*cmd, f"http://{HOST}:{port}/healthz"], capture_output=True, text=True, timeout=seconds + 30
        )
    finally:
        os.unlink(f.name)
    busy1, total1 = machine_busy()
    server, client = cpu_since(master, srv0), _children_cpu() - client0
    line = next((x for x in run.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        print("wrk failed:", run.stdout[-500:], run.stderr[-500:])
        return None
    n, errors, duration_us, _, p50, p99, p999, mx = (float(x) for x in line.split()[1:])
    wall = (total1 - total0) / (os.cpu_count() or 1)
    return {
        "name": "GET /healthz (wrk)",
        "clients": clients,
        "requests": int(n),
        "errors": int(errors),
        "rate": n / (duration_us / 1e6),
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "p999": p999 / 1000,
        "max": mx / 1000,
        "server_us": server / n * 1e6 if n else float("nan"),
        "server_cores": server / wall,
        "client_cores": client / wall,
        "other_cores": max(0.0, (busy1 - busy0) - server - client) / wall,
        "load1": load1,
        "client": "wrk",
    }


# -- Report ---------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    head = (
        f"{'phase':<22} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'max ms':>7} {'srv CPU µs/req':>14} {'srv cores':>9} "
        f"{'client cores':>12} {'other cores':>11} {'load1':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<22} {r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['rate']:>7.0f} "
            f"{r['p50']:>7.2f} {r['p99']:>7.2f} {r['p999']:>8.2f} {r['max']:>7.1f} {r['server_us']:>14.0f} "
            f"{r['server_cores']:>9.2f} {r['client_cores']:>12.2f} {r['other_cores']:>11.2f} "
            f"{r['load1']:>5.2f}"
        )
    return "\n".join(lines)


def disk_commits(directory: str, durability: str, seconds: float = 1.0) -> float:
    """Single-row SQLite commits per second in `directory`, one writer, WAL, this durability.

    With durability full each is an fsync: no path that makes one durable commit per decision, with
    one writer at a time, can decide faster than this on this disk (only grouping commits can).
    """
    path = Path(directory) / "disk-probe.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        conn.execute("CREATE TABLE t (v TEXT)")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            conn.execute("INSERT INTO t VALUES (?)", ("x" * 2000,))  # autocommit: one transaction each
            n += 1
        rate = n / (time.perf_counter() - t0)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    return rate


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _wait_for_workers(master: int, workers: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_children(master)) < workers and time.monotonic() < deadline:
        time.sleep(0.05)


# plain: the yardstick (bench/plain.py), the decision's parts alone behind the same front and worker
PLAIN = [
    str(Path(sys.executable).with_name("gunicorn")),
    "--bind", "127.0.0.1:{port}", "--workers", "{workers}", "--worker-class", "cli.worker.Worker",
    "--preload", "--no-control-socket", "bench.plain:app",
]  # fmt: skip
STACKS = {"front": None, "gthread": GTHREAD, "plain": PLAIN}
# the decisions each stack records, counted afterwards against its 2xx replies
RECORDED = {
    "front": "SELECT count(*) FROM decisions WHERE kind = 'decision'",
    "gthread": "SELECT count(*) FROM decisions WHERE kind = 'decision'",
    "plain": "SELECT count(*) FROM plain",
}


@contextlib.contextmanager
def fresh_database(url: str | None):
    """A new database on the PostgreSQL server of `url` for one run, dropped afterwards (None: SQLite)."""
    if url is None:
        yield None
        return
    import psycopg

    name = f"leadgate_bench_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield _with_db(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _with_db(url: str, name: str) -> str:
    """`url` naming database `name` instead of its own (scheme://authority/NAME?query)."""
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}" + (f"?{query}" if query else "")


def count_rows(db, query: str) -> int:
    """The count `query` finds in the run's store: the SQLite file read-only, or the PostgreSQL database."""
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute(query).fetchone()[0]
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(query).fetchone()[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per phase (default 10000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall-time cap per phase (default 20)")
    parser.add_argument(
        "--client",
        choices=("auto", "python", "wrk"),
        default="auto",
        help="auto or wrk: also measure the ceiling with wrk when it is installed (default auto)",
    )
    parser.add_argument(
        "--durability",
        choices=("full", "normal"),
        default="full",
        help="LEADGATE_DURABILITY of the server (default full, the product default; normal for diagnosis)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated leads")
    parser.add_argument(
        "--db",
        help="also run on PostgreSQL: two replicas (two servers of --workers each, the clients spread over "
        "both) on a fresh database made on the server of this postgresql:// URL and dropped afterwards; "
        "printed beside the SQLite run",
    )
    parser.add_argument(
        "--stack",
        default="front",
        help="front: leadgate serve (asyncio worker, requests buffered before a thread sees them); "
        "gthread: the threaded workers used before; plain: the decision's parts alone (bench/plain.py) "
        "behind the same front; both: front,gthread; a comma list runs each in turn, then side by side",
    )
    args = parser.parse_args(argv)
    stacks = ["front", "gthread"] if args.stack == "both" else args.stack.split(",")
    if not stacks or any(s not in STACKS for s in stacks):
        parser.error(f"--stack: one or more of {', '.join(STACKS)} (comma-separated), or both")
    codes, summaries = [], {}
    for stack in stacks:
        print(f"=== stack: {stack} ===")
        code, by = run_stack(args, stack)
        codes.append(code)
        summaries[stack] = by
    if args.db:
        print("=== PostgreSQL: two replicas, stack front ===")
        code, by = run_stack(args, "front", args.db)
        codes.append(code)
        lite = summaries.get("front") or summaries[stacks[0]]
        if lite and by:
            print("\nside by side (same run, same machine):")
            for c in CLIENTS:
                f, pg = lite[("POST /v1/decisions", c)], by[("POST /v1/decisions", c)]
                print(
                    f"  {c:>2} clients: SQLite, one server {f['rate']:.0f}/s p99 {f['p99']:.1f} ms; PostgreSQL, "
                    f"two replicas {pg['rate']:.0f}/s p99 {pg['p99']:.1f} ms → throughput ratio "
                    f"{pg['rate'] / f['rate']:.2f}"
                )
    if len(stacks) > 1 and all(summaries.values()):
        first = stacks[0]
        print("\nside by side (same run, same machine):")
        for c in CLIENTS:
            f = summaries[first][("POST /v1/decisions", c)]
            for other in stacks[1:]:
                t = summaries[other][("POST /v1/decisions", c)]
                print(
                    f"  {c:>2} clients: {first} {f['rate']:.0f}/s p99 {f['p99']:.1f} ms "
                    f"({f['server_us']:.0f} µs CPU); {other} {t['rate']:.0f}/s p99 {t['p99']:.1f} ms "
                    f"({t['server_us']:.0f} µs CPU) → throughput ratio {f['rate'] / t['rate']:.2f}"
                )
    return max(codes)


def run_stack(args, stack: str, postgres_url: str | None = None):
    """One stack's full run: (exit code, {(phase, clients): figures}); on PostgreSQL with two replicas."""
    wrk = shutil.which("wrk") if args.client != "python" else None
    if args.client == "wrk" and not wrk:
        print("wrk is not installed (apt-get install -y wrk): falling back to the Python client only")

    cores = os.cpu_count() or 1
    busy0, total0 = machine_busy()
    time.sleep(1.0)
    busy1, total1 = machine_busy()
    busy = (busy1 - busy0) / ((total1 - total0) / cores)
    print(f"machine: {cores} CPUs; load average {_loadavg()}; {busy:.2f} cores busy in the last second")
    if busy > 0.3:
        print("WARNING: other processes are using the CPU; figures will be low and noisy. Re-run when quiet.")

    n = args.requests
    results, wrk_rows = [], []
    decision_ok = decision_sent = 0
    with tempfile.TemporaryDirectory(prefix="leadgate-bench-") as tmp, fresh_database(postgres_url) as url:
        if not url:  # the local disk's commit rate: PostgreSQL's flush is the server's
            disk = disk_commits(tmp, args.durability)
            print(
                f"disk: {disk:.0f} single-row commits/s, one writer, durability {args.durability} "
                "(the ceiling of one durable commit per decision without grouping commits)"
            )
        db = url or Path(tmp) / "bench.db"
        extra = {"secret_file": Path(tmp) / "bench.key", "logs": Path(tmp)} if url else {}
        servers = [
            Server(
                db, workers=args.workers, command=STACKS[stack], durability=args.durability, **extra
            ).start()
            for _ in range(2 if url else 1)
        ]
        server = servers[0]
        try:
            port, key, master = server.port, server.key, server.proc.pid
            for s in servers:
                _wait_for_workers(s.proc.pid, args.workers)
            if url:  # the load generator spreads its connections over both replicas
                port, master = tuple(s.port for s in servers), tuple(s.proc.pid for s in servers)
            for s in servers:
                print(
                    f"server: {stack} (gunicorn, {args.workers} workers, master pid {s.proc.pid}, "
                    f"workers {_children(s.proc.pid)}) on {HOST}:{s.port}, durability {args.durability}, db {shown(db)}, "
                    f"{'sockets of their own' if own_sockets(os.environ.get('LEADGATE_LISTEN', 'auto')) else 'one shared socket'} "
                    "(LEADGATE_LISTEN)"
                )
            status, reply, headers = server.request("POST", "/v1/decisions", generate(1, 0, "CHECK")[0])
            decision_sent += 1
            if status != 201 or "decision_id" not in (reply or {}):
                print(f"a sample decision failed: {status} {reply}")
                return 1, {}
            decision_ok += 1
            print(
                f"sample decision: {status}, stage {reply['stage']}, route {reply['route']['id']}; "
                f"reply header Connection: {headers.get('Connection', '(none: keep-alive)')}"
            )

            print("generating lead bodies …", flush=True)
            health = [get_request(server.port, "/healthz")]
            bodies = {
                c: [
                    post_request(server.port, "/v1/decisions", key, b)
                    for b in generate(n, args.seed + c, f"B{c}")
                ]
                for c in CLIENTS
            }
            warm = [post_request(server.port, "/v1/decisions", key, b) for b in generate(300, 999, "WARM")]
            # Warm-up, not reported (its decisions are counted in the audit check).
            run_phase("warm-up", port, master, health, 2, 500, 5)
            w = run_phase("warm-up", port, master, warm, 2, 300, 10)
            decision_ok, decision_sent = decision_ok + w["ok"], decision_sent + w["requests"]

            for c in CLIENTS:
                for name, reqs in (("GET /healthz", health), ("POST /v1/decisions", bodies[c])):
                    print(f"  {name} at {c} clients (load {_loadavg()}) …", flush=True)
                    locked = None if url or name.startswith("GET") else lock_totals(server.port, key)
                    r = run_phase(name, port, master, reqs, c, n, args.seconds)
                    if locked is not None:
                        r["lock"] = lock_figures(locked, lock_totals(server.port, key), r["elapsed"])
                    results.append(r)
                    if name.startswith("POST"):
                        decision_ok, decision_sent = decision_ok + r["ok"], decision_sent + r["requests"]
            if wrk:
                for c in CLIENTS:
                    print(f"  GET /healthz at {c} clients with wrk (load {_loadavg()}) …", flush=True)
                    row = (
                        run_wrk(server.port, server.proc.pid, c, min(args.seconds, 5.0)) if not url else None
                    )
                    if row:
                        wrk_rows.append(row)
        finally:
            for s in servers:
                s.stop()
        rows = count_rows(db, RECORDED[stack])

    print()
    print(
        "client: Python (one separate process, one selectors event loop, precomputed HTTP/1.1 requests)"
        + (" for every phase; wrk for the extra ceiling rows" if wrk_rows else "; wrk not used")
    )
    closed = sum(r["closes"] for r in results)
    replies = sum(r["requests"] - r["statuses"].get(0, 0) - r["statuses"].get(-1, 0) for r in results)
    print(
        f"connections: {closed} of {replies} replies came with Connection: close; "
        + (
            "those requests opened a new TCP connection, and their latency includes the connect"
            if closed
            else "keep-alive throughout"
        )
    )
    print()
    print(table(results + wrk_rows))
    for r in results:
        if "lock" in r:
            print(f"write lock, {r['name']} at {r['clients']} clients: {r['lock']}")
    print(
        "srv = the gunicorn master and workers; cores = CPU seconds per wall second during the phase "
        f"(the machine has {cores}); other = every other process; load1 (at the start of each phase) "
        "counts this benchmark's own processes too"
    )
    print()
    by = {(r["name"], r["clients"]): r for r in results}
    ceilings = {}
    for c in CLIENTS:
        d, h = by[("POST /v1/decisions", c)], by[("GET /healthz", c)]
        via_wrk = next((r for r in wrk_rows if r["clients"] == c), None)
        ceiling = max(h["rate"], via_wrk["rate"] if via_wrk else 0.0)
        ceilings[c] = ceiling
        source = "Python client"
        if via_wrk:
            source = f"{'wrk' if via_wrk['rate'] > h['rate'] else 'Python client'}, the higher of the two"
        bad = {s: k for s, k in d["statuses"].items() if not 200 <= s < 300}
        print(
            f"{c:>2} clients: {d['rate']:.0f} decisions/s; ceiling {ceiling:.0f} req/s "
            f"({source}) "
            f"→ ratio {d['rate'] / ceiling:.2f}" + (f"; decision errors by status {bad}" if bad else "")
        )
    match = rows == decision_ok
    print(
        f"audit: {rows} decision rows in {'PostgreSQL' if postgres_url else 'SQLite'}; {decision_ok} 2xx decision replies "
        f"(of {decision_sent} sent, warm-up and sample included) → {'match' if match else 'MISMATCH'}"
    )
    d16, d2 = by[("POST /v1/decisions", 16)], by[("POST /v1/decisions", 2)]
    ratio = d16["rate"] / ceilings[16]
    checks = [
        (f"decisions/s at 16 clients >= {TARGET_RATE:.0f}", f"{d16['rate']:.0f}", d16["rate"] >= TARGET_RATE),
        ("decisions/ceiling at 16 clients >= 1/3", f"{ratio:.2f}", ratio >= TARGET_RATIO),
        (f"p99 at 16 clients < {TARGET_P99_MS:.0f} ms", f"{d16['p99']:.1f} ms", d16["p99"] < TARGET_P99_MS),
        (
            "no errors in the decision phases",
            str(d2["errors"] + d16["errors"]),
            d2["errors"] + d16["errors"] == 0,
        ),
        ("audit rows = 2xx decision replies", f"{rows} / {decision_ok}", match),
    ]
    print("targets:")
    for label, value, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {value}")
    if not url:
        print(f"disk probe before the run: {disk:.0f} commits/s; load average after the run: {_loadavg()}")
    return (0 if match else 1), by


if __name__ == "__main__":
    sys.exit(main())
