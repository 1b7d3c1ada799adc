"""What keeps other sites out of the web app: the Host names it answers (against DNS
rebinding), refusing requests sent from pages of other origins, and security headers
on every response (added by the server in `nnscratch serve`, see `server`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

# the names a server listening on this machine only answers to (see create_app)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [
    # the page loads nothing from elsewhere and runs no inline script
    (
        b"content-security-policy",
        (
            b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
            b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-frame-options", b"DENY"),  # frame-ancestors, for browsers before CSP 2
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def from_another_site(request: Request) -> bool:
    """Whether a browser sent this request from a page of another origin (its Origin
    header names another host and port than the one it was sent to)."""
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
