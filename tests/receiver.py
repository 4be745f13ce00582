"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies Standard Webhooks
signatures and misbehaves on purpose (fails, answers slowly, is down for a while); and what the
webhook tests share: a destination pointing at it, hand-offs, a deliverer driven poll by poll."""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook, WebhookVerificationError

from audit import AuditTrail, outbox
from service import deploy
from service.config import load_config
from service.decide import decide
from service.deliver import Deliverer
from tests.postgres import secrets_for
from tests.server import ROOT, free_port
from tests.test_api import LEAD


class Receiver:
    def __init__(self, secret: bytes, port: int | None = None, keep_alive: bool = False):
        self.webhook = Webhook(secret)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.seen: list[dict] = []  # every request, on arrival: {at, id, verified, body}
        self.accepted: list[dict] = []  # the ones answered 2xx
        self.fail_all = False
        self.fail_leads: set[str] = set()
        self.delay = 0.0
        self.fail_rate = 0.0  # share of requests answered 500 at random (seeded: the same run each time)
        self._random = random.Random(17)
        self._lock = threading.Lock()
        self._server = None
        self.keep_alive = keep_alive  # HTTP/1.1: the benchmark's; tests close every connection

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    receiver.webhook.verify(body, dict(self.headers), json_parse=False)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                event = json.loads(body)
                seen = {
                    "at": time.time(),
                    "id": self.headers.get("webhook-id"),
                    "verified": verified,
                    "event": event,
                }
                with receiver._lock:
                    receiver.seen.append(seen)
                time.sleep(receiver.delay)
                with receiver._lock:
                    unlucky = receiver._random.random() < receiver.fail_rate
                fail = (
                    unlucky
                    or receiver.fail_all
                    or event.get("lead_id") in receiver.fail_leads
                    or not verified
                )
                if not fail:  # before answering: the deliverer records the delivery as soon as it reads 204
                    with receiver._lock:
                        receiver.accepted.append(seen)
                try:
                    self.send_response(500 if fail else 204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the deliverer gave up waiting (its timeout): it will try again

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a deliverer that timed out closed its end: nothing to report

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self, accepted: bool = True) -> list[str]:
        with self._lock:
            return [s["id"] for s in (self.accepted if accepted else self.seen)]

    def wait(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()


# -- what the webhook tests share ----------------------------------------------------------------

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
ENV = {"LEADGATE_WEBHOOK_SALES_SECRET": SECRET}
ALL = "[lead.handed_off, lead.stage_changed, lead.disqualified, sla.breached, outcome.recorded]"


def write_rulesets(tmp_path: Path, url: str, extra: str = "") -> Path:
    directory = tmp_path / "rulesets"
    if not directory.exists():
        shutil.copytree(ROOT / "rulesets", directory)
    (directory / "destinations.yaml").write_text(
        f"version: 1\ndestinations:\n  sales:\n    url: {url}\n"
        f"    secret_env: LEADGATE_WEBHOOK_SALES_SECRET\n    events: {ALL}\n{extra}"
    )
    return directory


def webhook_world(tmp_path, registry, audit_db):
    """(trail, deliverer factory, receiver) on a fresh database of each backend whose destination is
    the receiver."""
    receiver = Receiver(KEY)
    trail = AuditTrail(audit_db, durability="normal", secrets=secrets_for(audit_db))
    deploy.reload(registry, trail, write_rulesets(tmp_path, receiver.url), "tests")

    made = []

    def deliverer(**settings):
        secret_file = os.environ.get("LEADGATE_SECRET_FILE")
        config = load_config(
            environ={}, db=audit_db, secret_file=secret_file, delivery_backoff_ms=1, **settings
        )
        made.append(Deliverer(config, trail, environ=ENV))
        return made[-1]

    yield trail, deliverer, receiver
    for d in made:
        d.close()
    receiver.stop()
    trail.close()


def hand_off(registry, trail, lead_id: str, **changes) -> dict:
    request = {**copy.deepcopy(LEAD), "lead_id": lead_id, **changes}
    return decide(registry.get("default"), trail, request, teams=registry.deployment.teams)[0]


def drain(deliverer, done, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliverer.step()
        if done():
            return True
        time.sleep(0.01)
    return done()


def event_ids(trail, lead_id=None) -> list[str]:
    return [e["id"] for e in outbox.events(trail, lead_id, limit=10_000)]
