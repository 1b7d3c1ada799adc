"""A web app served in a thread on 127.0.0.1 as `nnscratch serve` serves it: Hypercorn
with its timeouts, limit on requests and security headers (`app.server.serve_app`)."""

import contextlib
import threading

from nnscratch.app.server import listening_socket, serve_app


@contextlib.contextmanager
def running(app, **options):
    """Serve `app` (built with `security_headers=False`, as `run_server` builds it:
    the server adds them) on a free port of 127.0.0.1; yields its URL. `options` go
    to `serve_app` (max_requests, idle_timeout)."""
    # a socket already listening: the first connections wait in its backlog until
    # the server accepts them, so there is nothing to poll for
    sock = listening_socket("127.0.0.1", 0)
    stop = threading.Event()
    thread = threading.Thread(
        target=serve_app, args=(app, sock), kwargs={**options, "stop": stop}
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(30)
        sock.close()
