"""What keeps other sites out of the web app: the Host names it answers (`TrustedHosts`,
against DNS rebinding), refusing requests sent from pages of other origins, and
security headers on every response (added by the server in `nnscratch serve`, see
`server`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse

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
# a Host header: a name or an [IPv6] address, and maybe a port
HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]+)?", re.IGNORECASE)


def from_another_site(request: Request) -> bool:
    """Whether a browser sent this request from a page of another origin (its Origin
    header names another host and port than the one it was sent to). A Host without
    a port is compared by name only: a reverse proxy that passes on its public name
    (nginx's `$host`) drops the port, which the page's Origin has if not 80 or 443."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    netloc, host = urlsplit(origin).netloc, request.headers.get("host", "")
    sent_to = HOST.fullmatch(host)
    if sent_to is None or sent_to.group(2) is not None:
        return netloc != host
    sent_from = HOST.fullmatch(netloc)
    return sent_from is None or sent_from.group(1).lower() != sent_to.group(1).lower()


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


class TrustedHosts:
    """ASGI middleware answering 400, as the app's other errors (`{"error": ...}`), to
    HTTP requests whose Host is not one of `names`: a name (any case, any port),
    "*.example.com" for the names under example.com, or "*" for any. (Starlette's
    TrustedHostMiddleware allows the same, but answers in plain text.)"""

    def __init__(self, app, names: list[str]):
        self.app = app
        self.names = {name.lower() for name in names}
        self.anything = "*" in self.names
        self.domains = tuple(name[1:] for name in self.names if name.startswith("*."))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            if not self.allows(host):
                message = (
                    f"the Host {host!r} is not one this server answers to "
                    "(nnscratch serve --allowed-host NAME adds one)"
                )
                refused = JSONResponse({"error": message}, status_code=400)
                return await refused(scope, receive, send)
        await self.app(scope, receive, send)

    def allows(self, host: str) -> bool:
        """Whether the Host header `host` ("name:port") names one of `names`."""
        match = HOST.fullmatch(host)
        if self.anything or match is None:
            return self.anything
        name = match.group(1).lower()
        return name in self.names or name.endswith(self.domains)
