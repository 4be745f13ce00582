"""What the service counts and times, for Prometheus: decisions, evaluations, audit writes, requests.

Every worker of `leadgate serve` counts into files under PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multi-process mode, which `serve` sets up), and GET /metrics adds them up. prometheus-client chooses
that mode when it is first imported, from the environment: so it is imported here on first use, never
at import time (the CLI imports this module long before `serve` has made the directory). Outside
`serve` (tests, the CLI) the counts live in this process's own registry.

The gauges that describe the trail (hand-offs, deliveries, the file's size) are not counted here:
they are read from the trail when /metrics is scraped (api/metrics.py).
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: decisions take milliseconds; a write waits for the lock up to the busy timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A group holds the write lock for a fraction of a millisecond to a few: finer at the low end.
LOCK_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.05, 0.25, 1.0)

_made: SimpleNamespace | None = None
_lock = threading.Lock()


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def instruments() -> SimpleNamespace:
    """The counters and histograms, made once per process (on first use, see the module's docstring)."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                from prometheus_client import CollectorRegistry, Counter, Histogram

                # In multi-process mode the values go to files, not to a registry.
                registry = None if multiprocess() else CollectorRegistry()
                _made = SimpleNamespace(
                    registry=registry,
                    decisions=Counter(
                        "leadgate_decisions",
                        "Decisions recorded, by ruleset, version, route and stage",
                        ["ruleset", "version", "route", "stage"],
                        registry=registry,
                    ),
                    evaluation=Histogram(
                        "leadgate_evaluation_seconds",
                        "Time to evaluate a lead's facts with its ruleset",
                        ["ruleset"],
                        buckets=BUCKETS,
                        registry=registry,
                    ),
                    audit_write=Histogram(
                        "leadgate_audit_write_seconds",
                        "Time from asking for the audit trail's write lock to the commit of the decision(s)",
                        buckets=BUCKETS,
                        registry=registry,
                    ),
                    lock_wait=Histogram(
                        "leadgate_write_lock_wait_seconds",
                        "Time a group commit waited for the audit file's write lock",
                        buckets=BUCKETS,
                        registry=registry,
                    ),
                    lock_hold=Histogram(
                        "leadgate_write_lock_hold_seconds",
                        "Time a group commit held the audit file's write lock, BEGIN to COMMIT and fsync "
                        "(count: groups committed)",
                        buckets=LOCK_BUCKETS,
                        registry=registry,
                    ),
                    lock_cpu=Counter(
                        "leadgate_write_lock_cpu_seconds",
                        "CPU time the writing threads spent inside the write lock (the rest of a hold is "
                        "waiting: for the GIL, the disk)",
                        registry=registry,
                    ),
                    lock_blocks=Counter(
                        "leadgate_write_lock_blocks",
                        "Write blocks (a decision, a batch, an outcome...) committed in the groups",
                        registry=registry,
                    ),
                    requests=Counter(
                        "leadgate_http_requests",
                        "HTTP requests answered by the app (endpoint front: refused by the serving front), by method, endpoint and status",
                        ["method", "endpoint", "status"],
                        registry=registry,
                    ),
                    request=Histogram(
                        "leadgate_http_request_seconds",
                        "Time the app took to answer a request (once it was read whole)",
                        ["method", "endpoint"],
                        buckets=BUCKETS,
                        registry=registry,
                    ),
                    errors=Counter(
                        "leadgate_http_errors",
                        "Error replies, by status and error code",
                        ["status", "code"],
                        registry=registry,
                    ),
                    children={},
                )
    return _made


def _child(name: str, *labels: str):
    """The metric's child for these label values, looked up once: `labels()` checks and locks on
    every call, a few % of a decision's CPU when five are counted per request."""
    made = instruments()
    key = (name, labels)
    child = made.children.get(key)
    if child is None:
        child = made.children[key] = getattr(made, name).labels(*labels)
    return child


def decided(replies: list[dict], evaluation_seconds: list[float], write_seconds: float) -> None:
    """Count recorded decisions (previews are not decisions) and time their evaluation and write."""
    for reply, seconds in zip(replies, evaluation_seconds, strict=True):
        ruleset = reply["ruleset"]
        _child("evaluation", ruleset["name"]).observe(seconds)
        _child(
            "decisions", ruleset["name"], str(ruleset["version"]), reply["route"]["id"], reply["stage"]
        ).inc()
    instruments().audit_write.observe(write_seconds)


def previewed(reply: dict, evaluation_seconds: float, write_seconds: float) -> None:
    """A preview is evaluated and recorded like a decision, but not counted as one."""
    _child("evaluation", reply["ruleset"]["name"]).observe(evaluation_seconds)
    instruments().audit_write.observe(write_seconds)


def write_lock(waited: float, held: float, cpu: float, blocks: int) -> None:
    """One group commit's turn at the write lock (audit.group): waited for it, held it, CPU inside it."""
    made = instruments()
    made.lock_wait.observe(waited)
    made.lock_hold.observe(held)
    made.lock_cpu.inc(cpu)
    made.lock_blocks.inc(blocks)


def answered(method: str, endpoint: str, status: int, seconds: float, code: str | None) -> None:
    """One HTTP request answered by the app; `code`: the error code of an error reply."""
    _child("requests", method, endpoint, str(status)).inc()
    _child("request", method, endpoint).observe(seconds)
    if code is not None:
        _child("errors", str(status), code).inc()
