"""`leadgate deliver`: the outbox's events sent to their webhook destinations, signed, until they arrive.

One process per database (a lock file beside it says so). Each poll it serves the destinations of
the latest recorded reload, writes sla.breached for hand-offs whose SLA just passed unanswered (every
few seconds), fans new outbox events out to the destinations subscribed to them, and
sends the head of every (destination, lead) queue in a pool of threads: the lead's later events wait
for it, other leads do not. Requests are signed the Standard Webhooks way (`webhook-id` is the event
id, the same on every attempt); a 2xx answer delivers, anything else (an error status, a refused
connection, a timeout) is retried after an exponential backoff with jitter, and the last allowed
attempt makes a dead letter. Every attempt is kept in the audit. Nothing here logs a secret.

The attempts finished between two polls are recorded in one commit, without an fsync of its own
(`synchronous=NORMAL`): a power cut may forget the last attempts, and then their events are sent
again, under the same ids — at least once, as always. Decisions keep their own durability.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from standardwebhooks import Webhook

from audit import AuditTrail, StorageUnavailable, deliveries, deployments, outbox, postgres, writelock
from audit.backends import is_postgres
from audit.rows import now_iso
from engine.destinations import Destination, Destinations

from .config import Config
from .deploy import stored_destinations
from .errors import ServiceError
from .webhooks import Connections, DeliveryFailed, address, render, signing_key

log = logging.getLogger("leadgate.deliver")
MAX_BACKOFF_S = 3600
BREACH_CHECK_S = 5  # how often hand-offs past their SLA are looked for
HOLD_CHECK_S = 5  # how often a deliverer makes sure it is still the only one


class AlreadyRunning(ServiceError):
    """Another `leadgate deliver` holds this database."""


def backoff(attempt: int, base_s: float) -> float:
    """Seconds before the next try: doubled per attempt, at most an hour, jittered down to half."""
    return min(MAX_BACKOFF_S, base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class Deliverer:
    def __init__(self, config: Config, trail: AuditTrail, environ=None):
        self.config, self.trail, self.environ = config, trail, environ
        self.destinations: dict[str, Destination] = {}
        self._digest: str | None = None
        self._reload_id: str | None = None
        # (destination, lead) with an attempt in flight, or failed and not yet recorded: the lead waits.
        self._busy: set[tuple[str, str]] = set()
        self._finished: list[dict] = []
        self._sent: set[str] = set()  # delivered, not yet recorded: the lead's next event may go
        self._wake = threading.Event()
        self.connections = Connections()
        self._breaches_checked = float("-inf")
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Serve the destinations of the latest recorded reload (one indexed row when it has not moved)."""
        reload_id = deployments.current_id(self.trail)
        if reload_id == self._reload_id:
            return
        self._reload_id = reload_id
        latest = deployments.current(self.trail)
        recorded = latest["deployment"] if latest else {}
        if recorded.get("destinations") != self._digest:
            found: Destinations | None = stored_destinations(self.trail, recorded)
            self.destinations = dict(found.destinations) if found else {}
            self._digest = recorded.get("destinations")
            log.info("destinations: %s", ", ".join(sorted(self.destinations)) or "none")

    def step(self, pool: ThreadPoolExecutor | None = None) -> int:
        """One poll: record finished attempts, sync, fan out, start the due heads (in `pool`, or here).

        How many were started. A lead's next event goes once its previous one was delivered, or
        once a failed attempt is recorded (with its backoff), so order holds; the attempts finished
        since the last poll share one commit."""
        self.sync()
        if time.monotonic() - self._breaches_checked >= BREACH_CHECK_S:
            outbox.breaches(self.trail, datetime.now(UTC))
            self._breaches_checked = time.monotonic()
        self.record(fan_out=True)
        with self._lock:
            free = self.config.DELIVERY_CONCURRENCY - len(self._busy)
            due = (
                deliveries.ready(self.trail, time.time(), free, frozenset(self._busy), frozenset(self._sent))
                if free > 0
                else []
            )
            self._busy.update(_key(d) for d in due)
        for delivery in due:
            if pool is None:
                self._attempt(delivery)
            else:
                pool.submit(self._attempt, delivery)
        if pool is None:
            self.record()
        return len(due)

    def run(self, stop: threading.Event, held=lambda: True) -> None:
        """Deliver until `stop`; `held` (see `exclusive`) is asked every HOLD_CHECK_S whether this is
        still the one deliverer: when another took over, stop (AlreadyRunning) rather than send twice."""
        checked, lost = time.monotonic(), False
        with ThreadPoolExecutor(self.config.DELIVERY_CONCURRENCY, thread_name_prefix="deliver") as pool:
            while not stop.is_set():
                if time.monotonic() - checked >= HOLD_CHECK_S:
                    checked = time.monotonic()
                    lost = not _still(held)
                    if lost:
                        break
                try:
                    self.step(pool)
                except StorageUnavailable as exc:
                    log.warning("the audit database is unavailable, retrying: %s", exc)
                except Exception:  # a deliverer that stops tells nobody: log it and poll again
                    log.exception("a poll failed; trying again in a second")
                    stop.wait(1)
                # Poll again when an attempt finishes (its lead's next event may go) or after the interval.
                self._wake.wait(self.config.DELIVERY_POLL_MS / 1000)
                self._wake.clear()
        self.record()  # what finished while stopping
        self.close()
        if lost:
            raise AlreadyRunning(
                "this deliverer lost its lock and another leadgate deliver holds it: stopped"
            )

    def close(self) -> None:
        self.connections.close()

    def record(self, fan_out: bool = False) -> None:
        """Commit the attempts finished so far (and fan out new events: one write transaction for both),
        then let the leads of failed attempts go on (delivered ones did already; see `_attempt`)."""
        with self._lock:
            results, self._finished = self._finished, []
        held = [_key(r["delivery"]) for r in results if r["outcome"] != deliveries.DELIVERED]
        fan_out = fan_out and deliveries.unfanned(self.trail)
        if not results and not fan_out:
            return
        try:
            with self.trail.unit_of_work():
                deliveries.record_attempts(self.trail, results)
                if fan_out:
                    deliveries.fan_out(self.trail, {d.id: d.wants for d in self.destinations.values()})
        except StorageUnavailable:
            log.exception("%d attempts could not be recorded: they will be sent again", len(results))
            results = [{**r, "outcome": "not recorded"} for r in results]
        for r in results:
            d = r["delivery"]
            log.info(
                "%s %s to %s (attempt %d, %s, %.0f ms)",
                r["outcome"],
                d["event_id"],
                d["destination"],
                d["attempts"] + 1,
                r["error"] or f"HTTP {r['status']}",
                r["latency_ms"],
            )
        with self._lock:
            self._sent.difference_update(r["delivery"]["id"] for r in results)
            self._busy.difference_update(held)

    def _attempt(self, delivery: dict) -> None:
        try:
            result = self.attempt(delivery)
        except Exception:  # not an answer but a fault here (the key file unreadable…): try again later
            log.exception("delivery %s could not be attempted", delivery["id"])
            with self._lock:
                self._busy.discard(_key(delivery))
            return
        with self._lock:
            self._finished.append(result)
            if result["outcome"] == deliveries.DELIVERED:
                # The lead's next event may go before this is committed: if the commit is lost, this
                # one is sent again after it, and receivers keep the first receipt of each id.
                self._sent.add(delivery["id"])
                self._busy.discard(_key(delivery))
        self._wake.set()

    def attempt(self, delivery: dict) -> dict:
        """Send one delivery once: the attempt's result (recorded by `record`)."""
        status, error = None, None
        started = time.perf_counter()
        try:
            destination = self.destinations.get(delivery["destination"])
            if destination is None:
                raise DeliveryFailed(f"destination {delivery['destination']!r} is no longer declared")
            event = deliveries.payload(delivery)
            body = render(event, destination.format, self.config.PUBLIC_URL)
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "user-agent": "leadgate-webhooks",
                "webhook-id": event["id"],
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(signing_key(destination, self.trail.secrets, self.environ)).sign(
                    event["id"], now, body
                ),
            }
            status = self.connections.post(
                address(destination, self.environ), body, headers, self.config.DELIVERY_TIMEOUT_MS / 1000
            )
            if not 200 <= status < 300:
                error = f"answered HTTP {status}"
        except (OSError, http.client.HTTPException, DeliveryFailed) as exc:
            error = str(exc) or type(exc).__name__
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        attempt = delivery["attempts"] + 1
        if error is None:
            outcome, next_at = deliveries.DELIVERED, 0.0
        elif attempt >= self.config.DELIVERY_ATTEMPTS:
            outcome, next_at = deliveries.DEAD, 0.0
        else:
            outcome = deliveries.PENDING
            next_at = time.time() + backoff(attempt, self.config.DELIVERY_BACKOFF_MS / 1000)
        return {
            "delivery": delivery,
            "at": now_iso(),
            "status": status,
            "latency_ms": latency_ms,
            "error": error,
            "outcome": outcome,
            "next_at": next_at,
        }


def _key(delivery: dict) -> tuple[str, str]:
    return delivery["destination"], delivery["lead_id"]


def _still(held) -> bool:
    try:
        return held()
    except StorageUnavailable as exc:  # unreachable: nobody else can take it meanwhile either
        log.warning("the deliverer's lock cannot be checked, delivering on: %s", exc)
        return True


def exclusive(db_path: str):
    """Hold the deliverer's lock (a lock file beside the database, released when the process ends,
    even killed; on PostgreSQL, a lock in the database that every machine's deliverer asks for):
    a function that tells whether it is still held."""
    if is_postgres(db_path):
        if not postgres.exclusive(db_path, postgres.DELIVER_LOCK):
            raise AlreadyRunning("another leadgate deliver is running on this PostgreSQL database")
        return lambda: postgres.still_holds(postgres.DELIVER_LOCK)
    fd = writelock.hold(db_path, "deliver")
    if fd is None:
        raise AlreadyRunning(f"another leadgate deliver is running on {db_path}")
    return lambda: fd is not None  # the descriptor holds it for as long as the process lives
