"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies Standard Webhooks
signatures and misbehaves on purpose (fails, answers slowly, is down for a while)."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from tests.server import free_port


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
