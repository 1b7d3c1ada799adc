"""The server of `nnscratch serve` (app/server.py) on 127.0.0.1: idle sockets and slow
clients cannot lock others out, requests beyond the limit get 503, and every answer,
the server's own included, carries the security headers. Every wait is bounded."""

import contextlib
import json
import select
import socket
import time

import pytest
from live_server import running

from nnscratch import Dense, Flatten, Sequential
from nnscratch.app.security import LOOPBACK_HOSTS, SECURITY_HEADERS
from nnscratch.app.serve import create_app

TIMEOUT = 10  # seconds any socket of these tests waits, at most


@pytest.fixture(scope="module")
def model():
    """The server is under test, not the model: one layer will do."""
    return Sequential([Flatten(), Dense(784, 10, rng=0)], input_shape=(28, 28))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def exchange(port: int, request: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, [(header, value)], body) of the answer to the raw `request` on a new
    connection, read until the server closes it."""
    with connect(port) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines]
    return int(status.split()[1]), [(k.lower(), v) for k, v in headers], body


def get(port: int, path: str = "/health", host: str = "127.0.0.1"):
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    return exchange(port, request.encode())


def is_closed(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (waits up to its timeout for that)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_sockets_and_slow_headers_do_not_lock_others_out(model):
    # uvicorn, before: its limit of 64 counted connections, so 63 idle sockets made
    # every other client get 503, and neither they nor slow headers were ever cut
    app = create_app(model, security_headers=False)
    with running(app, idle_timeout=1.0) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        opened = time.monotonic()
        idle = [held.enter_context(connect(port)) for _ in range(200)]
        slow = held.enter_context(connect(port))
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(10):
            start = time.monotonic()
            status, _, body = get(port)
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert time.monotonic() - start < 1.0
        # a header line every 0.1 s does not keep the connection: it must be whole
        # within the idle timeout
        for _ in range(100):  # 10 s at most
            readable, _, _ = select.select([slow], [], [], 0.1)
            if readable and is_closed(slow):
                break
            try:
                slow.sendall(b"X-Slow: 1\r\n")
            except OSError:  # closed by the server meanwhile
                break
        else:
            pytest.fail("a client sending headers slowly was kept for 10 s")
        assert time.monotonic() - opened < 4  # 1 s, and some slack
        assert all(is_closed(sock) for sock in idle)
        assert time.monotonic() - opened < 4
        assert get(port)[0] == 200


def test_requests_beyond_the_limit_get_503_but_idle_sockets_hold_no_place(model):
    app = create_app(model, body_timeout=TIMEOUT, security_headers=False)
    with running(app, max_requests=1) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        for _ in range(5):
            held.enter_context(connect(port))
        assert get(port)[0] == 200
        # one request in progress: its body has not all arrived
        stalled = held.enter_context(connect(port))
        stalled.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png"
            b"\r\nContent-Length: 20\r\nConnection: close\r\n\r\n0123456789"
        )
        # (the server may not have started it yet when the first GET arrives)
        for _ in range(20):
            status, headers, body = get(port)
            if status == 503:
                break
        assert status == 503 and "busy" in json.loads(body)["error"]
        assert ("retry-after", "1") in headers
        for name, value in SECURITY_HEADERS:
            assert [v for k, v in headers if k == name.decode()] == [value.decode()]
        stalled.sendall(b"0123456789")  # the rest of the body: the request ends
        assert stalled.recv(100).startswith(b"HTTP/1.1 422")  # not an image
        # its place is free again (once the server has finished with it)
        statuses = [get(port)[0] for _ in range(20)]
        assert 200 in statuses


def test_every_answer_of_the_server_carries_the_security_headers_once(model):
    app = create_app(model, allowed_hosts=list(LOOPBACK_HOSTS), security_headers=False)
    with running(app) as url:
        port = port_of(url)
        answers = {
            "page": (200, get(port, "/")),
            "not found": (404, get(port, "/nope")),
            "bad Host (the app)": (400, get(port, host="evil.example")),
            "malformed (the server)": (400, exchange(port, b"NOT HTTP AT ALL\r\n\r\n")),
        }
    for what, (expected, (status, headers, _)) in answers.items():
        assert status == expected, what
        for name, value in SECURITY_HEADERS:
            found = [v for k, v in headers if k == name.decode()]
            assert found == [value.decode()], (what, name)


def test_an_http2_connection_that_opens_no_stream_is_closed(model):
    app = create_app(model, security_headers=False)
    with running(app, read_timeout=1) as url, connect(port_of(url)) as sock:
        start = time.monotonic()
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # HTTP/2's preface, then
        while sock.recv(65536):  # nothing: the server's settings arrive, then the end
            pass
        assert time.monotonic() - start < 4


def test_headers_over_16_kib_get_431_however_they_arrive(model):
    # Hypercorn's own limit (h11's) counts only headers still incomplete: 17 to 64 KiB
    # of headers arriving in one piece were read whole and answered 200
    app = create_app(model, security_headers=False)
    with running(app) as url:
        port = port_of(url)
        for size in (15_000, 17_000, 40_000):
            request = (
                f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"X-Padding: {'a' * size}\r\n\r\n"
            )
            status, headers, _ = exchange(port, request.encode())
            assert status == (200 if size < 16 * 1024 else 431), size
            for name, value in SECURITY_HEADERS:
                assert (name.decode(), value.decode()) in headers
