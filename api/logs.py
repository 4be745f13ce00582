"""One JSON line per request, and the request id that ties it to the reply and to the decision.

The id is the caller's `X-Request-Id` when it is a short token of safe characters (so a log line can
neither be forged nor grown by it), else one made here; it is echoed in every reply's `X-Request-Id`
and stored with the decisions the request made. The line goes to standard output:

    {"time": "…", "level": "info", "request_id": "…", "method": "POST", "path": "/v1/decisions",
     "endpoint": "decisions.post_decision", "status": 201, "latency_ms": 4.1, "key_id": "key_…",
     "decision_ids": ["dec_…"]}

An error reply adds `code` and the names of the fields at fault (`error_fields`), never their
messages, which may quote what was sent; a name that is not a plain field path (an unknown key the
caller chose, such as an email) is written "?". No body, query string, header value or key secret is
written: personal fields never reach the log. The path holds the caller's lead id where the route
has one (a lead id is the caller's reference, not a personal field).
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from datetime import UTC, datetime

from flask import Flask, g, request

from service import metrics

HEADER = "X-Request-Id"
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# A field path as the schemas name them (profile.employees, items[1].events[0].type). An unknown field
# is named by whatever key the caller sent, which may be an email or a phone number: logged as "?".
FIELD = re.compile(
    r"[A-Za-z_][A-Za-z0-9_-]{0,63}(\[\d{1,6}\])*(\.[A-Za-z_][A-Za-z0-9_-]{0,63}(\[\d{1,6}\])*){0,8}"
)
MAX_PATH = 200  # characters of a refused request's path in its line
_writing = threading.Lock()  # one line at a time, whole


def _write(line: str) -> None:
    """One line to the standard output of the moment (tests swap it), written and flushed whole.

    Written directly rather than through `logging` (a record, a formatter and a handler per line cost
    more than the rest of the line); a failing standard output never fails the request, as with a
    logging handler."""
    with _writing:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


def request_id() -> str:
    """The current request's id (made on first use, if the request came without a valid one)."""
    here = g._get_current_object()  # `g` and `request` are context lookups: each resolved once here
    found = getattr(here, "request_id", None)
    if found is None:
        given = request.headers.get(HEADER, "")
        found = here.request_id = given if VALID.fullmatch(given) else f"req_{secrets.token_hex(16)}"
    return found


def error_of(response) -> tuple[str | None, list[str]]:
    """(code, names of the fields at fault) of an error reply in the one JSON shape; (None, [])."""
    if response.status_code < 400 or not response.is_json:
        return None, []
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return None, []
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    return body.get("code"), sorted(name if FIELD.fullmatch(name) else "?" for name in errors)


def decided(ids: list[str]) -> None:
    """Name the decisions this request's reply holds, so that its line need not parse the reply again."""
    g.decision_ids = ids


def _decision_ids(response, endpoint: str, here) -> list[str]:
    if not endpoint.startswith("decisions.") or response.status_code not in (200, 201):
        return []
    ids = getattr(here, "decision_ids", None)
    if ids is not None:
        return ids
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return []
    items = body.get("decisions") if isinstance(body.get("decisions"), list) else [body]
    return [d["decision_id"] for d in items if isinstance(d, dict) and isinstance(d.get("decision_id"), str)]


def init_app(app: Flask) -> None:
    def started():
        g.started = time.perf_counter()
        request_id()

    # First of all: whatever refuses the request later (a key, a limit) is timed and logged too.
    app.before_request_funcs.setdefault(None, []).insert(0, started)

    @app.after_request
    def finished(response):
        here, req = g._get_current_object(), request._get_current_object()  # resolved once
        status, endpoint, ident = response.status_code, req.endpoint, request_id()
        response.headers[HEADER] = ident
        seconds = time.perf_counter() - getattr(here, "started", time.perf_counter())
        code, fields = error_of(response)
        metrics.answered(req.method, endpoint or "unmatched", status, seconds, code)
        key_id = getattr(getattr(here, "key", None), "id", None)
        line = _line(ident, req.method, req.path, endpoint, status, seconds, key_id)
        decisions = _decision_ids(response, endpoint or "", here)
        if decisions:
            line["decision_ids"] = decisions
        if code is not None:
            line.update(code=code, error_fields=fields)
        _write(json.dumps(line, ensure_ascii=True))
        return response


def _line(ident, method, path, endpoint, status: int, seconds: float, key_id) -> dict:
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": "error" if status >= 500 else "info",
        "request_id": ident,
        "method": method,
        "path": path,
        "endpoint": endpoint,
        "status": status,
        "latency_ms": round(seconds * 1000, 3),
        "key_id": key_id,
    }


def refused(
    method: str | None, path: str | None, given_id: str, status: int, code: str, seconds: float
) -> None:
    """The line and metrics of a request the serving front answered before the app saw it (408, 413,
    414, 431: api/front.py, cli/worker.py): endpoint "front", no key (not read), the path cut at
    MAX_PATH characters (a 414's is long); method and path null when the headers never came whole."""
    ident = given_id if VALID.fullmatch(given_id) else f"req_{secrets.token_hex(16)}"
    metrics.answered(method or "-", "front", status, seconds, code)
    shown = path if path is None or len(path) <= MAX_PATH else path[:MAX_PATH] + "…"
    line = _line(ident, method, shown, "front", status, seconds, None)
    line.update(code=code, error_fields=[])
    _write(json.dumps(line, ensure_ascii=True))


def declare(spec) -> None:
    """Declare the X-Request-Id reply header on every reply of the OpenAPI document.

    Not `required`: the serving front's own refusals (408, 413, 414, 431, answered before the app
    sees a request) carry none."""
    spec.components.header(
        HEADER,
        {
            "description": "The request's id: the caller's X-Request-Id when valid, else one made for it; "
            "logged and stored with the decisions the request made",
            "schema": {"type": "string", "pattern": f"^{VALID.pattern}$"},
        },
    )
    ref = {"$ref": f"#/components/headers/{HEADER}"}
    replies = [
        reply
        for item in spec._paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for reply in operation.get("responses", {}).values()
    ]
    for reply in [*replies, *spec.components.responses.values()]:
        if isinstance(reply, dict) and "$ref" not in reply:
            reply["headers"] = {**reply.get("headers", {}), HEADER: ref}
