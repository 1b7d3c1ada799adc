"""`nnscratch serve MODEL`: a web page to draw a digit and watch the network read it.

`create_app(model)` builds a Starlette app: the page (nnscratch/static/), `GET /health`
and `POST /api/predict`, which takes a PNG (raw body, multipart field "file" or a JSON
data URL) or 28x28 pixels as JSON, and answers with the prediction, the 28x28 input the
network saw and the hidden activations (of the activation layers with at most MAX_CELLS
values: conv feature maps are left out). `DigitService` holds the model, the
limits and the lock; its methods are the route handlers and the steps that read a digit
from a request. Bad input gets a 4xx JSON `{"error": ...}`; the body is bounded while
it streams and images are checked for their declared size before any pixel is decoded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import json
import logging
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import click
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import NnscratchError
from ..imaging import images
from ..nn.activations import Activation
from ..nn.loading import load_model
from .predict import class_names, describe, model_dataset, model_input

STATIC_DIR = Path(__file__).parent / "static"
# Hidden layers shown on the page: the activations (what a neuron "fires")
SHOWN_LAYERS = (Activation,)  # the element-wise activations' outputs are shown
MAX_CELLS = 1024  # larger per-sample outputs (conv feature maps) are left out
MAX_BYTES = 8_000_000  # a phone photo fits; the drawing pad sends ~10 KB
# 6000x4000, refused above before decoding: half of `nnscratch predict`'s limit, as a
# server decodes for several clients at once in one process
MAX_PIXELS = 25_000_000
# the names a server listening on this machine only answers to (see create_app)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
BODY_TIMEOUT = 30.0  # seconds to receive a body: a trickling client cannot hang on
SECURITY_HEADERS = [
    # the page loads nothing from elsewhere and runs no inline script
    (
        b"content-security-policy",
        (
            b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
            b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

FORM_TYPES = ("multipart/form-data", "application/json")

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A client error: becomes `{"error": message}` with this HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(
    model,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    body_timeout: float = BODY_TIMEOUT,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The web app serving the drawing page for `model` (a Sequential on 28x28 input).

    Request bodies over `max_bytes` (declared or streamed) get 413, images declaring
    more than `max_pixels` pixels get 413 before any pixel is decoded, and a body not
    received within `body_timeout` seconds gets 408. `allowed_hosts`: the Host headers
    answered (others get 400), against DNS rebinding: a web page on another site
    cannot reach the server through a name of its own. A POST from a page of another
    origin gets 403.
    Raises NnscratchError if the model cannot take a 28x28 image.
    """
    service = DigitService(model, max_bytes, max_pixels, body_timeout)
    app = Starlette(
        routes=[
            Route("/", service.index),
            Route("/health", service.health),
            Route("/api/predict", service.predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.add_middleware(SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    return app


def from_another_site(request: Request) -> bool:
    """Whether a browser sent this request from a page of another origin (its Origin
    header names another host and port than the one it was sent to)."""
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


class DigitService:
    """The app's routes for one model, and the steps that read a digit from a request.

    Raises NnscratchError if the model cannot take a 28x28 image.
    """

    def __init__(self, model, max_bytes: int, max_pixels: int, body_timeout: float):
        self.model = model
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.body_timeout = body_timeout
        # pictures are laid out like the images the model learned from
        self.layout = images.layout_for(model_dataset(model))
        # Layers reuse their buffers between calls: one forward pass at a time
        self.lock = threading.Lock()
        # a blank digit checks the model takes 28x28 and gives every layer's size
        probe = model_input(model, np.zeros((28, 28), np.float32))
        probe_outputs = model.layer_outputs(probe)
        self.input_shape = list(probe.shape[1:])
        self.names = class_names(model, int(probe_outputs[-1].shape[-1]))
        self.shown = hidden_layers(model, probe_outputs)
        self.layers = [
            {
                "name": f"{type(layer).__name__} {i}",
                "units": int(out[0].size),
                "hidden": i in self.shown,
            }
            for i, (layer, out) in enumerate(zip(model.layers, probe_outputs))
        ]

    # ----- routes ---------------------------------------------------------------
    async def index(self, request: Request) -> FileResponse:
        """GET /: the drawing page."""
        return FileResponse(STATIC_DIR / "index.html")

    async def health(self, request: Request) -> JSONResponse:
        """GET /health: the model's classes, layers and size, and the limits."""
        return JSONResponse(
            {
                "status": "ok",
                "classes": self.names,
                "layers": self.layers,
                "input_shape": self.input_shape,
                "parameters": int(self.model.count_params()),
                "max_bytes": self.max_bytes,
                "max_pixels": self.max_pixels,
            }
        )

    async def predict(self, request: Request) -> JSONResponse:
        """POST /api/predict: what the model reads in the body's digit, or a 4xx."""
        if from_another_site(request):
            return error_response(403, "requests from other sites are not answered")
        try:
            digit = await self.digit_from_request(request)
            if digit is None:
                return JSONResponse({"digit": None, "message": "no digit"})
            return JSONResponse(await run_in_threadpool(self.run_model, digit))
        except RequestError as e:
            return error_response(e.status, str(e))
        except ClientDisconnect:
            message = "the client disconnected before sending the whole body"
            return error_response(400, message)
        except NnscratchError as e:
            return error_response(422, str(e))

    def run_model(self, digit: np.ndarray) -> dict:
        """(28, 28) digit -> describe()'s answer plus "input" and the "activations".

        Blocking: called in the thread pool.
        """
        x = model_input(self.model, digit)
        with self.lock:
            probs = self.model.predict(x)[0]
            outputs = self.model.layer_outputs(x)
        result = describe(probs, self.names)
        result["input"] = np.round(digit, 4).tolist()
        result["activations"] = [
            {
                "name": self.layers[i]["name"],
                "values": np.round(outputs[i][0].ravel(), 4).tolist(),
            }
            for i in self.shown
        ]
        return result

    # ----- reading the digit from a request --------------------------------------
    async def digit_from_request(self, request: Request) -> np.ndarray | None:
        """The (28, 28) digit in the body (None if blank), read as its type says."""
        content_type = media_type(request)
        is_image = content_type.startswith("image/") or (
            content_type == "application/octet-stream"
        )
        if not is_image and content_type not in FORM_TYPES:
            # refused before reading a byte of the body
            raise RequestError(
                415,
                f"unsupported content type {content_type or '(none)'!r}: send "
                "image/png, multipart/form-data or application/json",
            )
        body = await self.read_body(request)
        if is_image:
            return await self.digit_from_image(body)
        if content_type == "multipart/form-data":
            return await self.digit_from_image(
                await multipart_file(request.headers, body)
            )
        return await self.digit_from_json(body)

    async def read_body(self, request: Request) -> bytes:
        """The whole body: 413 past `max_bytes`, 408 past `body_timeout` seconds."""
        self.check_content_length(request.headers.get("content-length"))
        try:
            return await asyncio.wait_for(
                self.receive_bounded(request), self.body_timeout
            )
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            raise RequestError(
                408, f"the body was not received within {self.body_timeout:g} s"
            ) from None

    def check_content_length(self, length: str | None) -> None:
        """Refuse a malformed (400) or too large (413) declared length, if any."""
        if length is None:
            return
        if not length.isdigit():
            raise RequestError(400, f"bad Content-Length header {length!r}")
        if int(length) > self.max_bytes:
            raise RequestError(
                413, f"body of {length} bytes is over the limit of {self.max_bytes}"
            )

    async def receive_bounded(self, request: Request) -> bytes:
        """The body as it streams, refused (413) as soon as it passes `max_bytes`."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:  # a missing or lying Content-Length
                raise RequestError(
                    413, f"body is over the limit of {self.max_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def digit_from_json(self, body: bytes) -> np.ndarray | None:
        """`{"pixels": 28x28 numbers}` or `{"image": data URL}` -> (28, 28) or None."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as e:
            raise RequestError(400, f"body is not valid JSON: {e}") from None
        if not isinstance(payload, dict):
            raise RequestError(422, "JSON: expected an object with 'pixels' or 'image'")
        if "pixels" in payload:
            digit = images.from_array(payload["pixels"])
            return digit if digit.any() else None
        if "image" in payload:
            return await self.digit_from_image(decode_data_url(payload["image"]))
        raise RequestError(422, "JSON: expected a 'pixels' (28x28) or 'image' field")

    async def digit_from_image(self, data: bytes) -> np.ndarray | None:
        """Image bytes -> (28, 28) MNIST-style digit or None; 413 if too large."""
        try:
            # Pillow blocks while it decodes: the event loop keeps serving meanwhile
            return await run_in_threadpool(self.decode_image, data)
        except images.ImageTooLargeError as e:
            raise RequestError(413, str(e)) from None

    def decode_image(self, data: bytes) -> np.ndarray | None:
        """Image bytes -> (28, 28) float32 digit or None; blocking."""
        gray = images.load_image(data, max_pixels=self.max_pixels)
        return images.to_mnist(gray, **self.layout)


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case: "" if there is none."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def decode_data_url(value) -> bytes:
    """'data:image/png;base64,....' -> the image bytes."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        raise RequestError(
            422, "image: expected a data URL 'data:image/png;base64,...'"
        )
    header, _, payload = value.partition(",")
    if not header.endswith(";base64") or not payload:
        raise RequestError(
            422, "image: expected a base64 data URL 'data:image/...;base64,...'"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, "image: the data URL is not valid base64") from None


async def multipart_file(headers, body: bytes) -> bytes:
    """The bytes of the image in field 'file' of a multipart body (already read)."""

    async def replay():
        yield body

    parser = MultiPartParser(headers, replay(), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise RequestError(400, f"bad multipart body: {e}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestError(422, "multipart: expected an image file in field 'file'")
        return await upload.read()
    finally:
        await form.close()


def hidden_layers(model, outputs: list[np.ndarray]) -> list[int]:
    """Indices of the hidden activation layers to show (not the last layer)."""
    return [
        i
        for i, layer in enumerate(model.layers[:-1])
        if isinstance(layer, SHOWN_LAYERS) and outputs[i][0].size <= MAX_CELLS
    ]


def error_response(status: int, message: str) -> JSONResponse:
    """The app's one error format: `{"error": message}` with this status."""
    return JSONResponse({"error": message}, status_code=status)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own errors (404, 405, ...) in the same JSON form."""
    return error_response(exc.status_code, str(exc.detail))


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    # a bug, not bad input: log it, and still answer in JSON
    log.error("error on %s", request.url.path, exc_info=exc)
    return error_response(500, "internal error")


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


@click.command("serve")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-bytes",
    default=MAX_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted (an uploaded photo).",
)
@click.option(
    "--max-pixels",
    default=MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest image accepted, in pixels (checked before decoding).",
)
def serve_command(
    model_path: Path, host: str, port: int, max_bytes: int, max_pixels: int
) -> None:
    """Serve a page to draw digits and see MODEL's prediction live."""
    # on this machine only (the default), only its own names: see create_app
    local = host in LOOPBACK_HOSTS
    app = create_app(
        load_model(model_path),
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        allowed_hosts=list(LOOPBACK_HOSTS) if local else None,
    )
    # bound before the address is printed: a busy port is one error line, and
    # --port 0 prints the port the system picked
    with listening_socket(host, port) as sock:
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"Drawing page at http://{shown}:{port}/ (Ctrl+C to stop)")
        # a bound on requests handled at once (more get 503); uvicorn has no time
        # limit on receiving headers: see the README before using --host
        config = uvicorn.Config(app, log_level="warning", limit_concurrency=64)
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
    if not server.started:
        raise NnscratchError(f"the server on port {port} failed to start")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port (port 0: a free one); NnscratchError if not."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        return socket.create_server(infos[0][4], family=infos[0][0])
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
