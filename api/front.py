"""The app as the server runs it: each request read whole, under a deadline, before a thread sees it.

A WSGI thread that reads the body from the socket is held for as long as the client takes to send it:
eight clients that sent headers with Content-Length: 1000 and then stalled stopped the old threaded
workers. Here gunicorn's asyncio (ASGI) worker owns the sockets; this front reads the request on the
event loop, where a waiting client costs no thread, and only then hands the complete request to
Flask on a thread. A request whose body is not complete within LEADGATE_REQUEST_DEADLINE
seconds gets 408 and its connection is closed; a body over LEADGATE_MAX_BODY gets 413 without being
read, and its connection is closed too (Connection: close). A URL or headers larger than the limits
below get 414 or 431, all in the API's JSON error shape.

The hand-over is one hop: the thread gets the whole request, runs Flask and returns the whole reply,
which the loop then writes. No reply of the API streams, so a bridge that streams (a2wsgi, used
before: four cross-thread calls per request, each waiting on the loop) only cost CPU: about a sixth
of a worker's, measured with py-spy under bench/http.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import logs

MAX_URL = 8192  # bytes of path and query
MAX_HEADER = 8192  # bytes of one header line
MAX_HEADERS = 32768  # bytes of all headers


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


class BufferedFront:
    """ASGI app: read and check the request on the event loop, then run the WSGI app on a thread."""

    def __init__(self, wsgi_app, deadline: float, max_body: int, threads: int):
        self.flask = wsgi_app
        self.deadline, self.max_body, self.threads = deadline, max_body, threads
        self._pool = None  # (pid, ThreadPoolExecutor): threads are made after the fork

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pool[0] != os.getpid():
            self._pool = (os.getpid(), ThreadPoolExecutor(self.threads, thread_name_prefix="flask"))
        return self._pool[1]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan is off (cli/server.py); no websockets
            return
        started = time.perf_counter()
        refused = self._refused(scope)
        if refused:
            await _refuse(scope, send, started, *refused)
            return
        try:
            body = await asyncio.wait_for(self._body(receive), self.deadline)
        except TimeoutError:
            message = f"The request was not sent within {self.deadline:g} seconds."
            await _refuse(scope, send, started, 408, "request_timeout", message)
            return
        except _TooLarge:
            await _refuse(scope, send, started, *self._too_large())
            return
        except _Gone:
            return
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self._threads(), self._run, scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _run(self, scope, body: bytes):
        """On a thread: the whole request through Flask, (status, headers, body) of its whole reply."""
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = status, headers  # nothing is sent before Flask returns: an error reply replaces it
            return chunks.append

        chunks = []
        result = self.flask(_environ(scope, body), start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = started
        payload = b"".join(chunks)
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        return int(status[:3]), raw, payload

    def _refused(self, scope):
        if (
            len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            > MAX_URL
        ):
            return 414, "uri_too_long", f"The URL is longer than {MAX_URL} bytes."
        sizes = [len(name) + len(value) for name, value in scope["headers"]]
        if any(s > MAX_HEADER for s in sizes) or sum(sizes) > MAX_HEADERS:
            return (
                431,
                "headers_too_large",
                f"A header is longer than {MAX_HEADER} bytes, or all are longer than {MAX_HEADERS}.",
            )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return self._too_large()
        return None

    def _too_large(self):
        return 413, "payload_too_large", f"The request body is larger than {self.max_body} bytes."

    async def _body(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _environ(scope, body: bytes) -> dict:
    """The WSGI environ (PEP 3333) of an ASGI request whose body has been read whole."""
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "CONTENT_LENGTH": str(len(body)),  # the body is whole: a chunked one has its length now
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,  # where Flask logs a 500's traceback: the server's error log
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        value = value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def error_body(status: int, code: str, message: str) -> bytes:
    """The API's one error shape (api/errors.py), for errors answered before Flask sees the request."""
    return json.dumps({"status": status, "code": code, "message": message, "errors": {}}).encode()


async def _refuse(scope, send, started: float, status: int, code: str, message: str) -> None:
    """Answer a refusal, then log and count it as the app does its own requests (api/logs.py)."""
    await _reply(send, status, code, message)
    given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
    logs.refused(scope["method"], scope["path"], given, status, code, time.perf_counter() - started)


async def _reply(send, status: int, code: str, message: str) -> None:
    """An error in the API's one shape; the connection closes after it (the body was not read)."""
    body = error_body(status, code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
