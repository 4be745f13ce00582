"""The plain composition of a decision's parts, served like leadgate, for `bench/http.py --stack plain`.

The issue's yardstick: marshmallow validation, a durable_rules evaluation and one fsynced SQLite
commit per decision, with nothing else (no key check, no lead history merged, no hash chain, no
idempotency, no outbox). It runs behind the same buffering front and gunicorn worker as
`leadgate serve`, so the difference between the two stacks in one run is what leadgate's own path
costs on top of its parts; what both lose to `GET /healthz` is what the parts cost on this machine.

    gunicorn --worker-class cli.worker.Worker bench.plain:app   (LEADGATE_DB names the SQLite file)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from marshmallow import ValidationError

from api.front import BufferedFront
from api.schemas import DecisionRequestSchema
from engine import Registry
from engine.files import load_directory

ROOT = Path(__file__).resolve().parent.parent
REQUEST = DecisionRequestSchema()
registry = Registry()
load_directory(registry, Path(os.environ.get("LEADGATE_RULESETS", ROOT / "rulesets")))
RULESET = registry.get("default", None)
_local = threading.local()


def _db() -> sqlite3.Connection:
    """This thread's connection (made after the fork): WAL, every commit fsynced (durability full)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["LEADGATE_DB"], timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        normal = os.environ.get("LEADGATE_DURABILITY") == "normal"
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if normal else 'FULL'}")
        conn.execute("CREATE TABLE IF NOT EXISTS plain (id TEXT PRIMARY KEY, lead_id TEXT, reply TEXT)")
        _local.conn = conn
    return conn


def _reply(start_response, status: str, body: bytes):
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# No operations: tests/server.py checks replies against the served document, and this one has none.
OPENAPI = b'{"openapi":"3.0.3","info":{"title":"plain composition","version":"0"},"paths":{}}'


def wsgi(environ, start_response):
    if environ["REQUEST_METHOD"] == "GET":  # /healthz, /readyz: the ceiling and the start-up probe
        body = OPENAPI if environ["PATH_INFO"] == "/openapi.json" else b'{"status":"ok"}'
        return _reply(start_response, "200 OK", body)
    try:
        body = REQUEST.load(json.loads(environ["wsgi.input"].read()))
    except (ValueError, ValidationError) as exc:
        return _reply(start_response, "422 Unprocessable Entity", json.dumps({"error": str(exc)}).encode())
    facts = {k: body[k] for k in ("lead_id", "profile", "events", "answers") if k in body}
    decision = RULESET.evaluate(facts, datetime.now(UTC)).decision
    reply = {"decision_id": "dec_" + uuid.uuid4().hex, "lead_id": body.get("lead_id"), **decision}
    text = json.dumps(reply, separators=(",", ":"))
    db = _db()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO plain VALUES (?, ?, ?)", (reply["decision_id"], reply["lead_id"], text))
    db.execute("COMMIT")
    return _reply(start_response, "201 Created", text.encode())


app = BufferedFront(wsgi, deadline=10, max_body=1 << 20, threads=4)
