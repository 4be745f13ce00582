"""What observing costs: a decision through the app with its JSON log line and metrics, and without.

Two apps on two fresh audit files in one process, through Flask's test client (no network, so the
difference is not lost in it): one as served, one with the request hooks of api/logs.py removed and
the metrics calls of service/metrics.py made no-ops. They decide for the same leads in alternating
blocks, so both see the same machine. It prints the mean and p50/p99 time per POST /v1/decisions of
each, their ratio, and the time of one GET /metrics scrape of the observed app's trail. The log
lines go to /dev/null. Timing is never asserted.

    .venv/bin/python bench/observe.py [--decisions N] [--block N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], and bench/http.py would shadow the http package.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import create_app, state  # noqa: E402
from audit.keys import create  # noqa: E402
from service import metrics  # noqa: E402


def lead(i: int) -> dict:
    return {
        "lead_id": f"B-{i}",
        "profile": {"country": "US", "industry": "software", "employees": 20 + i % 900, "seniority": "vp"},
        "events": [{"type": ("demo_request", "content_download")[i % 2], "at": "2026-11-22T10:00:00Z"}],
    }


def app_on(path: Path, observed: bool):
    app = create_app(db=str(path), rulesets=str(ROOT / "rulesets"))
    if not observed:
        app.before_request_funcs[None] = [
            f for f in app.before_request_funcs[None] if f.__name__ != "started"
        ]
        app.after_request_funcs[None] = [f for f in app.after_request_funcs[None] if f.__name__ != "finished"]
    with app.app_context():
        key = create(state.trail(), "bench", "admin")[1]
    return app, app.test_client(), {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def silent_metrics():
    saved = metrics.decided, metrics.previewed, metrics.answered
    metrics.decided = metrics.previewed = metrics.answered = lambda *a, **k: None
    try:
        yield
    finally:
        metrics.decided, metrics.previewed, metrics.answered = saved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--block", type=int, default=100)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"observed": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        apps = {name: app_on(Path(tmp) / f"{name}.db", name == "observed") for name in times}
        stdout, sys.stdout = sys.stdout, devnull
        try:
            for start in range(0, args.decisions, args.block):
                for name, (_, client, auth) in apps.items():
                    with silent_metrics() if name == "bare" else contextlib.nullcontext():
                        for i in range(start, start + args.block):
                            began = time.perf_counter()
                            response = client.post("/v1/decisions", json=lead(i), headers=auth)
                            times[name].append(time.perf_counter() - began)
                            assert response.status_code == 201, response.json
            _, client, auth = apps["observed"]
            began = time.perf_counter()
            scraped = client.get("/metrics", headers=auth)
            scrape = time.perf_counter() - began
        finally:
            sys.stdout = stdout
            for app, _, _ in apps.values():
                state.close(app)
    for name, values in times.items():
        ms = sorted(v * 1000 for v in values)
        print(
            f"{name:>8}: {len(ms)} decisions, mean {statistics.mean(ms):.3f} ms, "
            f"p50 {ms[len(ms) // 2]:.3f} ms, p99 {ms[int(len(ms) * 0.99)]:.3f} ms"
        )
    ratio = statistics.mean(times["observed"]) / statistics.mean(times["bare"])
    extra = (statistics.mean(times["observed"]) - statistics.mean(times["bare"])) * 1000
    p50 = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    print(
        f"observed / bare: mean {ratio:.3f} (+{extra:.3f} ms a decision), "
        f"p50 {p50['observed'] / p50['bare']:.3f} (+{(p50['observed'] - p50['bare']) * 1000:.3f} ms)"
    )
    print(f"GET /metrics over {args.decisions} decisions: {scrape * 1000:.1f} ms, {len(scraped.data)} bytes")


if __name__ == "__main__":
    main()
