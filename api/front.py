"""The app as the server runs it: each request read whole, under a deadline, before a thread sees it.

A WSGI thread that reads the body from the socket is held for as long as the client takes to send it:
eight clients that sent headers with Content-Length: 1000 and then stalled stopped the old threaded
workers. Here gunicorn's asyncio (ASGI) worker owns the sockets; this front reads the request on the
event loop, where a waiting client costs no thread, and only then hands the complete request to
Flask on a thread (a2wsgi). A request whose body is not complete within LEADGATE_REQUEST_DEADLINE
seconds gets 408 and its connection is closed; a body over LEADGATE_MAX_BODY gets 413 without being
read, and its connection is closed too (Connection: close). A URL or headers larger than the limits
below get 414 or 431, all in the API's JSON error shape.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from a2wsgi import WSGIMiddleware

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
        self._bridge = None  # (pid, WSGIMiddleware): its thread pool is made after the fork

    def _wsgi(self) -> WSGIMiddleware:
        if self._bridge is None or self._bridge[0] != os.getpid():
            self._bridge = (os.getpid(), WSGIMiddleware(self._to_flask, workers=self.threads))
        return self._bridge[1]

    def _to_flask(self, environ, start_response):
        # a2wsgi hands Flask sys.stdout as wsgi.errors, where Flask logs a 500's traceback: stdout is
        # the access log (and /dev/null under the tests), so the error was lost. The error log is stderr.
        environ["wsgi.errors"] = sys.stderr
        return self.flask(environ, start_response)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan is off (cli/server.py); no websockets
            return
        refused = self._refused(scope)
        if refused:
            await _reply(send, *refused)
            return
        try:
            body = await asyncio.wait_for(self._body(receive), self.deadline)
        except TimeoutError:
            await _reply(
                send, 408, "request_timeout", f"The request was not sent within {self.deadline:g} seconds."
            )
            return
        except _TooLarge:
            await _reply(send, *self._too_large())
            return
        except _Gone:
            return
        # The body is whole now: Flask reads it by its length (a chunked body has none on the wire).
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-length", b"transfer-encoding")]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        given = False

        async def replay():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._wsgi()(scope, replay, send)

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


async def _reply(send, status: int, code: str, message: str) -> None:
    """An error in the API's one shape; the connection closes after it (the body was not read)."""
    body = json.dumps({"status": status, "code": code, "message": message, "errors": {}}).encode()
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
