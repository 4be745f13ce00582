"""A real leadgate server for tests: `leadgate serve` (gunicorn) on a free loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from werkzeug.datastructures import Headers

from audit import AuditTrail
from audit.keys import create
from audit.secrets import Secrets
from tests import contract

ROOT = Path(__file__).resolve().parent.parent
LEADGATE = Path(sys.executable).with_name("leadgate")


# The serving stack before issue 12, for benchmarks side by side: gunicorn's threaded workers running
# the Flask app directly, so a client still sending its body holds a thread.
GTHREAD = [
    str(Path(sys.executable).with_name("gunicorn")),
    "--bind", "127.0.0.1:{port}", "--workers", "{workers}", "--worker-class", "gthread", "--threads", "4",
    "--preload", "--no-control-socket", "wsgi:app",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self, db, workers: int = 2, command: list[str] | None = None, logs: Path | None = None, **env
    ):
        """`command`: another server command line (benchmarks compare stacks); {port} and {workers} filled in.
        `db`: a SQLite file, or a PostgreSQL URL with `secret_file` and `logs` (a directory) given."""
        self.db, self.workers, self.port = db, workers, free_port()
        self.logs = Path(logs) if logs else Path(db).parent
        self.command = command
        self.env = {
            **os.environ,
            "LEADGATE_DB": str(db),
            "LEADGATE_RULESETS": str(ROOT / "rulesets"),
            **{f"LEADGATE_{k.upper()}": str(v) for k, v in env.items()},
        }
        with self.trail() as trail:
            self.key = create(trail, "tests", "admin")[1]
        self.proc = None
        self.contract = None  # the served /openapi.json, read once the server is ready

    def trail(self) -> AuditTrail:
        """The server's audit trail, opened in this process (with its key file, when it names one)."""
        secret = self.env.get("LEADGATE_SECRET_FILE")
        return AuditTrail(self.db, secrets=Secrets(secret) if secret else None)

    def start(self) -> Server:
        # Errors go to a file: a pipe nobody reads fills up under many logged 503s and stalls the server.
        self.log = self.logs / f"server-{self.port}.log"
        self.out = self.logs / f"server-{self.port}.out"  # one JSON line per request (api/logs.py)
        with open(self.log, "ab") as log, open(self.out, "ab") as out:
            command = self.command or [str(LEADGATE), "serve", "--port", "{port}", "--workers", "{workers}"]
            self.proc = subprocess.Popen(
                [part.format(port=self.port, workers=self.workers) for part in command],
                env=self.env,
                stdout=out,
                stderr=log,
                start_new_session=True,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("leadgate serve did not become ready: " + self.log.read_text()[-2000:])

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30):
        """(status, JSON body, headers) of one request; a reply that breaks /openapi.json is a breach
        the test then fails on (tests/contract.py)."""
        status, reply, reply_headers = self._send(method, path, body, headers, timeout)
        if self.contract is None and status == 200 and path == "/readyz":
            self.contract = contract.contract_of(self._send("GET", "/openapi.json", None, None, timeout)[1])
        if self.contract is not None:
            contract.breaches.extend(
                contract.reply_problems(self.contract, method, path, status, reply_headers, reply, "server")
            )
        return status, reply, reply_headers

    def _send(self, method: str, path: str, body, headers, timeout: float):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body) if body is not None else None
            hdrs = {
                "Authorization": f"Bearer {self.key}",
                **({"Content-Type": "application/json"} if data else {}),
                **(headers or {}),
            }
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            raw = response.read()
            # Header names are case-insensitive (the ASGI front sends them in lower case).
            return response.status, (json.loads(raw) if raw else None), Headers(response.getheaders())
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
