"""What one delivery attempt sends, and where: a destination's signing key and address, the request
body (the event itself, or a Slack-compatible message), and the keep-alive connections it goes over.
service/deliver.py decides what to send when and records what came of it."""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
from urllib.parse import urlsplit

from audit.secrets import MIN_ENV_LENGTH, Secrets
from engine.destinations import Destination, url_problem

MAX_ANSWER_BYTES = 65_536
PREFIX = "whsec_"


class DeliveryFailed(Exception):
    """An attempt that could not even be made (no secret, destination gone)."""


def signing_key(destination: Destination, secrets: Secrets, environ=None) -> bytes:
    """The destination's secret: `whsec_<base64>` or 32+ characters from its variable, else the key file's."""
    environ = os.environ if environ is None else environ
    if destination.secret_env is None:
        return secrets.webhook(destination.id)
    raw = environ.get(destination.secret_env)
    if not raw:
        raise DeliveryFailed(f"{destination.secret_env} is not set")
    if raw.startswith(PREFIX):
        try:
            return base64.b64decode(raw[len(PREFIX) :], validate=True)
        except ValueError:
            raise DeliveryFailed(f"{destination.secret_env} is not whsec_ followed by base64") from None
    if len(raw) < MIN_ENV_LENGTH:
        raise DeliveryFailed(
            f"{destination.secret_env} must be whsec_<base64> or {MIN_ENV_LENGTH}+ characters"
        )
    return raw.encode()


def address(destination: Destination, environ=None) -> str:
    """The destination's URL: from the file, or from the variable its url_env names."""
    if destination.url is not None:
        return destination.url
    raw = (os.environ if environ is None else environ).get(destination.url_env)
    if not raw:
        raise DeliveryFailed(f"{destination.url_env} is not set")
    problem = url_problem(raw)
    if problem:
        raise DeliveryFailed(f"{destination.url_env}: {problem}")
    return raw


def shown_secret(key: bytes) -> str:
    """The form a receiver is given (and standardwebhooks reads): whsec_<base64>."""
    return PREFIX + base64.b64encode(key).decode()


def render(event: dict, fmt: str, public_url: str) -> str:
    """The request body: the event itself (json) or a Slack-compatible incoming-webhook message."""
    if fmt == "json":
        return json.dumps(event, separators=(",", ":"), sort_keys=True)
    data, lead = event["data"], event["lead_id"]
    link = f"{public_url.rstrip('/')}/review/leads/{lead}"
    route = data.get("route") if isinstance(data.get("route"), dict) else {"id": data.get("route")}
    owner = (
        (data.get("assignment") or {}).get("name") or route.get("team") or data.get("team") or "nobody yet"
    )
    due = route.get("due_at") or data.get("due_at") or "no SLA"
    titles = {
        "lead.handed_off": "New hand-off",
        "lead.stage_changed": f"Stage {data.get('previous_stage')} → {data.get('stage')}",
        "lead.disqualified": "Lead disqualified",
        "sla.breached": "SLA breached",
        "outcome.recorded": f"Outcome: {data.get('type')}",
    }
    title = titles.get(event["type"], event["type"])
    text = f"{title}: lead {lead}, route {route.get('id')}, owner {owner}, due {due}. <{link}|Review>"
    fields = [f"*Lead*\n{lead}", f"*Route*\n{route.get('id')}", f"*Owner*\n{owner}", f"*Due*\n{due}"]
    return json.dumps(
        {
            "text": text,
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{title}* · <{link}|review the lead>"},
                },
                {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            ],
        },
        ensure_ascii=False,
    )


class Connections:
    """Keep-alive HTTP/1.1 connections to the destinations, one per delivery thread and address.

    A kept connection the receiver has closed meanwhile fails before any answer: the request is sent
    once more on a new connection (as urllib3 does); the receiver may then see it twice, which at-least-
    once delivery allows."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, url: str, body: str, headers: dict, timeout: float) -> int:
        """POST and return the answer's status (the body is read, bounded, and dropped)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = self._local.__dict__.setdefault("kept", {})
        conn = kept.pop(key, None)
        if conn is not None and conn.sock is None:  # closed by `close`: not to be opened again
            conn = None
        if conn is not None:
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                return self._exchange(kept, key, conn, path, body, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass  # closed by the receiver while it was kept: once more on a new connection
        return self._exchange(kept, key, self._open(parts, timeout), path, body, headers)

    def _exchange(self, kept: dict, key, conn, path: str, body: str, headers: dict) -> int:
        try:
            conn.request("POST", path, body.encode(), headers)
            answer = conn.getresponse()
            answer.read(MAX_ANSWER_BYTES)
        except BaseException:
            self._close(conn)
            raise
        if answer.will_close or not answer.isclosed():  # closing, or an answer too long to finish
            self._close(conn)
        else:
            kept[key] = conn
        return answer.status

    def _open(self, parts, timeout: float) -> http.client.HTTPConnection:
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = connection(parts.hostname, parts.port, timeout=timeout)
        with self._lock:
            self._all.append(conn)
        return conn

    def _close(self, conn) -> None:
        conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
