"""gunicorn's asyncio worker, with a deadline on the request headers too.

api/front.py bounds the time to send a body, but it only runs once the headers are in. gunicorn's
asyncio worker bounds the wait for the headers of a second request on a connection (its keep-alive
timeout) but not of the first: a client that connects and sends headers a byte at a time would keep
its socket forever. This worker gives the first request's headers the same LEADGATE_REQUEST_DEADLINE,
then answers 408 in the JSON error shape and closes the connection.

gunicorn builds its protocol objects by the module-level name `ASGIProtocol` (there is no setting for
it), so the worker points that name at the subclass below, in its own process only.
"""

from __future__ import annotations

import asyncio

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from api import logs
from api.front import error_body

DEFAULT_DEADLINE = 10.0


class HeaderDeadlineProtocol(ASGIProtocol):
    _headers_timer = None

    @classmethod
    def _check_h1c_protocol_available(cls):
        # gunicorn keeps what it finds on the class it is asked on but reads whether the C parser has
        # limits on ASGIProtocol itself: asked on this subclass, that stayed False and every connection
        # got the Python parser. Asked on the base, both see it.
        return ASGIProtocol._check_h1c_protocol_available()

    def connection_made(self, transport):
        # Armed first: the parent may already parse bytes that arrived with the connection.
        deadline = getattr(self.worker.asgi, "deadline", DEFAULT_DEADLINE)
        self._headers_timer = self.worker.loop.call_later(deadline, self._headers_late, deadline)
        super().connection_made(transport)

    def _on_headers_complete(self):
        if self._headers_timer is not None:
            self._headers_timer.cancel()
        return super()._on_headers_complete()

    def connection_lost(self, exc):
        if self._headers_timer is not None:
            self._headers_timer.cancel()
        return super().connection_lost(exc)

    def _headers_late(self, deadline: float) -> None:
        if self._closed:
            return
        body = error_body(
            408, "request_timeout", f"The request headers were not sent within {deadline:g} seconds."
        )
        self._safe_write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        self._keepalive_timeout()  # gunicorn's own way to close an idle connection
        logs.refused(None, None, "", 408, "request_timeout", deadline)


class TakeTurnsLoop(asyncio.SelectorEventLoop):
    """An event loop that accepts one connection per turn, so the workers share a burst of them.

    On one listening socket shared by every worker (LEADGATE_LISTEN=shared, and `auto` on a kernel
    that does not move waiting connections), asyncio's loop accepts up to 100 connections each time
    it wakes: the first worker awake took all 16 of a benchmark's keep-alive connections in every run
    and one core served them (server 1.06-1.19 cores of 2, /healthz 3,900 req/s against 8,100 with
    sockets of their own). Taking one per turn, a busy worker comes back for the next later than an
    idle one, so connections go where there is time. With a socket of its own it changes nothing.
    """

    def _accept_connection(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, *args):
        super()._accept_connection(protocol_factory, sock, sslcontext, server, 1, *args)


class Worker(gasgi.ASGIWorker):
    def _setup_event_loop(self):
        self.loop = TakeTurnsLoop()  # gunicorn's choice would be uvloop if installed; leadgate installs none
        asyncio.set_event_loop(self.loop)

    def init_process(self):
        gasgi.ASGIProtocol = HeaderDeadlineProtocol
        super().init_process()
