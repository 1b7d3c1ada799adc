"""Serving the web app over HTTP with Hypercorn, so that clients holding connections
cannot lock others out.

- A connection must deliver a request's headers in full within `idle_timeout` seconds
  of opening, or of the previous answer; else it is closed. This one timer (Hypercorn's
  keep-alive timer, which runs until the headers are complete) covers idle sockets and
  headers sent a byte at a time alike. uvicorn's starts only after a first answer:
  there, a socket that sends nothing, or headers slowly, is kept forever.
- `RequestLimit` bounds the requests in progress, not the connections: idle sockets
  hold no place. (uvicorn's `limit_concurrency` counts connections: 63 idle sockets
  and every other client got 503.) Nor does a request while it waits for its body:
  64 clients that sent headers and one byte each got everyone else 503 for 30 s.
  The bodies' bytes are bounded instead, by `max_buffered` for all requests at once.
- A body must arrive within the app's own `body_timeout` (408, see `serve`); a request
  the app answers without reading its body has its connection closed after the answer.
- A connection that sends nothing for READ_TIMEOUT seconds is closed, whatever its
  state: this ends HTTP/2 connections that open no stream, which the timer above
  misses (Hypercorn stops it on reading the HTTP/2 preface as a request).
- A request whose target and headers are over MAX_HEADER_BYTES gets 431. Hypercorn's
  own limit (h11's `max_incomplete_event_size`) counts only headers still incomplete,
  so up to 64 KiB arriving in one read passed it.
- Every response carries SECURITY_HEADERS, Hypercorn's own error pages included.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.responses import JSONResponse

from ..errors import NnscratchError
from .limits import MAX_BYTES
from .request_body import RequestError
from .security import SECURITY_HEADERS

MAX_REQUESTS = 64  # requests in progress at once; more get 503
MAX_BUFFERED = MAX_REQUESTS * MAX_BYTES  # body bytes held by all requests at once
IDLE_TIMEOUT = 5.0  # seconds from connecting (or from an answer) to a request's headers
# seconds without a byte from the client: longer than the slowest answer (a large
# photo decodes in well under a second, more under load)
READ_TIMEOUT = 60
MAX_HEADER_BYTES = 16 * 1024  # a request's target and headers; more get 431
BACKLOG = 2048  # connections waiting to be accepted (uvicorn's default; Hypercorn: 100)


def header_bytes(scope: dict) -> int:
    """The bytes of an HTTP request's target and headers (each as name, colon, space,
    value, CRLF)."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
    return target + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def busy(why: str) -> tuple[str, dict[str, str]]:
    """The message and headers of a 503."""
    return f"busy: {why}, try again", {"Retry-After": "1"}


class RequestLimit:
    """ASGI middleware answering 431 to HTTP requests with headers over
    MAX_HEADER_BYTES, and 503 to those beyond `limit` in progress.

    A request waiting for its body holds no place (a client that stalls is no more
    than an idle socket), so its body is refused with 503 (a RequestError raised by
    `receive`, which the app answers) if, once received, `limit` others are in
    progress, or if the body bytes of all requests in progress pass `max_buffered`.
    """

    def __init__(self, app, limit: int, max_buffered: int = MAX_BUFFERED):
        self.app, self.limit, self.max_buffered = app, limit, max_buffered
        self.active = 0  # one event loop: no lock needed
        self.buffered = 0  # body bytes received by the requests in progress

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if (size := header_bytes(scope)) > MAX_HEADER_BYTES:
            too_large = JSONResponse(
                {"error": f"headers of {size} bytes are over {MAX_HEADER_BYTES}"},
                status_code=431,
            )
            return await too_large(scope, receive, send)
        if self.active >= self.limit:
            message, headers = busy(f"{self.limit} requests in progress")
            full = JSONResponse({"error": message}, status_code=503, headers=headers)
            return await full(scope, receive, send)
        self.active += 1
        held = 0  # this request's body bytes

        async def receive_holding_no_place():
            nonlocal held
            self.active -= 1
            try:
                message = await receive()
            finally:
                self.active += 1
            size = len(message.get("body", b""))
            held, self.buffered = held + size, self.buffered + size
            if self.active > self.limit:
                why = f"{self.limit} requests in progress"
            elif self.buffered > self.max_buffered:
                why = f"the bodies received fill {self.max_buffered} bytes"
            else:
                return message
            raise RequestError(503, *busy(why))

        try:
            await self.app(scope, receive_holding_no_place, send)
        finally:
            self.active -= 1
            self.buffered -= held


class HeadersConfig(Config):
    """Hypercorn's settings, with SECURITY_HEADERS on every response it sends: the
    app's and its own (400 for a malformed request, 500 if the app fails)."""

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        return [*super().response_headers(protocol), *SECURITY_HEADERS]


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port (port 0: a free one); NnscratchError if not.

    "::" (every IPv6 address) takes IPv4 clients too where the system can, as
    Hypercorn, Go and Python's http.server do (Python's create_server alone does not:
    IPv4 clients were refused)."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        both = host == "::" and socket.has_dualstack_ipv6()
        return socket.create_server(
            infos[0][4], family=infos[0][0], dualstack_ipv6=both
        )
    except socket.gaierror as e:
        raise NnscratchError(f"cannot listen on {host!r}: {e.strerror}") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise NnscratchError(
                f"port {port} is in use on {host}: stop the program using it, or "
                "pick another port with --port (--port 0 picks a free one)"
            ) from None
        raise NnscratchError(
            f"cannot listen on {host} port {port}: {e.strerror or e}"
        ) from None


def serve_app(
    app,
    sock: socket.socket,
    *,
    max_requests: int = MAX_REQUESTS,
    max_buffered: int = MAX_BUFFERED,
    idle_timeout: float = IDLE_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    stop: threading.Event | None = None,
) -> None:
    """Serve the ASGI `app` on the listening `sock` until Ctrl+C (or SIGTERM), or until
    `stop` is set (which it must be, to end, when given: for serving from a thread).

    `max_requests` in progress at once, holding `max_buffered` body bytes at most
    (`RequestLimit`). The app gets SECURITY_HEADERS from the server: build it without
    its own.
    """
    config = HeadersConfig()
    # Hypercorn closes the sockets it serves: it gets its own copy of this one
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.keep_alive_timeout = idle_timeout
    config.read_timeout = read_timeout
    config.backlog = BACKLOG
    config.h11_max_incomplete_size = MAX_HEADER_BYTES  # headers arriving in pieces
    config.loglevel = "WARNING"
    trigger = None if stop is None else (lambda: asyncio.to_thread(stop.wait))
    limited = RequestLimit(app, max_requests, max_buffered)
    asyncio.run(_serve(limited, config, trigger))


async def _serve(app, config: Config, shutdown_trigger) -> None:
    asyncio.get_running_loop().set_exception_handler(_ignore_cancelled)
    await serve(app, config, shutdown_trigger=shutdown_trigger)


def _ignore_cancelled(loop, context: dict) -> None:
    """The event loop's error handler, quiet about connections still open on Ctrl+C:
    Hypercorn cancels them after a grace period, and asyncio (Python 3.11) reports
    each as an error with a traceback."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)
