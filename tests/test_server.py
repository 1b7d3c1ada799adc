"""The server of `nnscratch serve` (app/server.py) on 127.0.0.1: idle sockets and slow
clients cannot lock others out, requests beyond the limit get 503, and every answer,
the server's own included, carries the security headers. Every wait is bounded."""

import asyncio
import contextlib
import json
import select
import socket
import threading
import time

import pytest
from live_server import running

from nnscratch import Dense, Flatten, Sequential
from nnscratch.app.security import LOOPBACK_HOSTS, SECURITY_HEADERS
from nnscratch.app.serve import create_app
from nnscratch.app.server import listening_socket

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
        data = read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines]
    return int(status.split()[1]), [(k.lower(), v) for k, v in headers], body


def get(port: int, path: str = "/health", host: str = "127.0.0.1"):
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    return exchange(port, request.encode())


def read_all(sock: socket.socket) -> bytes:
    """What the server sends on `sock` until it closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


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


def holding(app, release: threading.Event):
    """`app`, but GET /hold is in progress until `release` is set (then a 404)."""

    async def held_app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/hold":
            await asyncio.to_thread(release.wait, TIMEOUT)
        await app(scope, receive, send)

    return held_app


def stall(port: int, body: bytes = b"0123456789", length: int = 1000) -> socket.socket:
    """A connection whose POST has sent `body` of its `length` bytes, then nothing."""
    sock = connect(port)
    sock.sendall(
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png"
        b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % length + body
    )
    return sock


def test_requests_beyond_the_limit_get_503_but_idle_sockets_hold_no_place(model):
    release = threading.Event()
    app = holding(create_app(model, security_headers=False), release)
    with running(app, max_requests=1) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        for _ in range(5):
            held.enter_context(connect(port))
        assert get(port)[0] == 200
        in_progress = held.enter_context(connect(port))
        in_progress.sendall(b"GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # (the server may not have started it yet when the first GET arrives)
        for _ in range(20):
            status, headers, body = get(port)
            if status == 503:
                break
        assert status == 503 and "busy" in json.loads(body)["error"]
        assert ("retry-after", "1") in headers
        for name, value in SECURITY_HEADERS:
            assert [v for k, v in headers if k == name.decode()] == [value.decode()]
        release.set()  # the request ends
        assert in_progress.recv(100).startswith(b"HTTP/1.1 404")
        # its place is free again (once the server has finished with it)
        statuses = [get(port)[0] for _ in range(20)]
        assert 200 in statuses


def test_clients_stalling_mid_body_do_not_lock_others_out(model):
    # before, a request waiting for its body held its place: 64 clients sending
    # headers and a byte each got every other client 503 until their 408, 30 s later
    app = create_app(model, body_timeout=TIMEOUT, security_headers=False)
    with running(app, max_requests=2) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        for _ in range(5):
            held.enter_context(stall(port))
        for _ in range(20):  # (until the server has read what they sent)
            if get(port)[0] == 200:
                break
        assert [get(port)[0] for _ in range(10)] == [200] * 10
    # a body that ends while the limit's requests are in progress gets 503
    release = threading.Event()
    app = holding(create_app(model, security_headers=False), release)
    with running(app, max_requests=1) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        stalled = held.enter_context(stall(port))
        for _ in range(20):  # until the server waits for the rest of its body
            if get(port)[0] == 200:
                break
        in_progress = held.enter_context(connect(port))
        in_progress.sendall(b"GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for _ in range(20):  # until /hold is in progress
            if get(port)[0] == 503:
                break
        stalled.sendall(b"x" * 990)
        answer = read_all(stalled)
        release.set()
        assert answer.startswith(b"HTTP/1.1 503") and b"busy" in answer
        assert b"\r\nretry-after: 1\r\n" in answer


def test_the_bodies_held_at_once_are_bounded(model):
    app = create_app(model, body_timeout=TIMEOUT, security_headers=False)
    with running(app, max_buffered=500) as url, contextlib.ExitStack() as held:
        port = port_of(url)
        stalled = held.enter_context(stall(port, b"0" * 300, length=400))
        # the first's 300 bytes are held: 300 more are over 500 (the server may not
        # have read the first's yet when the second arrives: then try again)
        for _ in range(20):
            with stall(port, b"1" * 300, length=400) as second:
                second.settimeout(0.5)
                with contextlib.suppress(TimeoutError):
                    answer = read_all(second)
                    break
        assert (
            answer.startswith(b"HTTP/1.1 503")
            and b"bodies received fill 500 bytes" in answer
        )
        stalled.settimeout(TIMEOUT)
        stalled.sendall(b"x" * 100)  # the first ends: 400 bytes, under 500
        assert read_all(stalled).startswith(b"HTTP/1.1 422")  # not an image
        with stall(port, b"1" * 300, length=400) as second:  # its bytes are free
            second.sendall(b"x" * 100)
            assert read_all(second).startswith(b"HTTP/1.1 422")


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


def test_listening_on_every_ipv6_address_takes_ipv4_clients_too():
    # Python's create_server made "::" IPv6 only: `--host ::` refused IPv4 clients
    with listening_socket("::", 0) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            pass
        with socket.create_connection(("::1", port), timeout=TIMEOUT):
            pass
