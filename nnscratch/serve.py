"""`nnscratch serve MODEL`: a web page to draw a digit and watch the network read it.

`create_app(model)` builds a Starlette app: the page (nnscratch/static/), `GET /health`
and `POST /api/predict`, which takes a PNG (raw body, multipart field "file" or a JSON
data URL) or 28x28 pixels as JSON, and answers with the prediction, the 28x28 input the
network saw and the hidden layers' activations. Bad input gets a 4xx JSON
`{"error": ...}`; the body is bounded while it streams and images are checked for
their declared size before any pixel is decoded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
from pathlib import Path

import click
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import images
from .errors import NnscratchError
from .predict import class_names, describe, model_input

STATIC_DIR = Path(__file__).parent / "static"
# Hidden layers shown on the page: the activations (what a neuron "fires")
ACTIVATIONS = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "GELU"}
MAX_CELLS = 1024  # larger per-sample outputs (conv feature maps) are left out
MAX_BYTES = 8_000_000  # a phone photo fits; the drawing pad sends ~10 KB
MAX_PIXELS = 25_000_000  # 6000x4000; larger images are refused before decoding
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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def hidden_layers(model, outputs: list[np.ndarray]) -> list[int]:
    """Indices of the hidden activation layers to show (not the last layer)."""
    return [
        i
        for i, layer in enumerate(model.layers[:-1])
        if type(layer).__name__ in ACTIVATIONS and outputs[i][0].size <= MAX_CELLS
    ]


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


def create_app(
    model,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    body_timeout: float = BODY_TIMEOUT,
) -> Starlette:
    """The web app serving the drawing page for `model` (a Sequential on 28x28 input).

    Request bodies over `max_bytes` (declared or streamed) get 413, images declaring
    more than `max_pixels` pixels get 413 before any pixel is decoded, and a body not
    received within `body_timeout` seconds gets 408.
    Raises NnscratchError if the model cannot take a 28x28 image.
    """
    # Layers reuse their buffers between calls: one forward pass at a time
    lock = threading.Lock()
    probe = model_input(model, np.zeros((28, 28), np.float32))
    probe_outputs = model.layer_outputs(probe)
    n_classes = int(probe_outputs[-1].shape[-1])
    names = class_names(model, n_classes)
    shown = hidden_layers(model, probe_outputs)
    layers = [
        {
            "name": f"{type(layer).__name__} {i}",
            "units": int(out[0].size),
            "hidden": i in shown,
        }
        for i, (layer, out) in enumerate(zip(model.layers, probe_outputs))
    ]

    def run_model(digit: np.ndarray) -> dict:
        x = model_input(model, digit)
        with lock:
            probs = model.predict(x)[0]
            outputs = model.layer_outputs(x)
        result = describe(probs, names)
        result["input"] = np.round(digit, 4).tolist()
        result["activations"] = [
            {
                "name": layers[i]["name"],
                "values": np.round(outputs[i][0].ravel(), 4).tolist(),
            }
            for i in shown
        ]
        return result

    def decode(data: bytes) -> np.ndarray | None:
        gray = images.load_image(data, max_pixels=max_pixels)
        return images.to_mnist(gray)

    async def from_image(data: bytes) -> np.ndarray | None:
        try:
            return await run_in_threadpool(decode, data)
        except images.ImageTooLargeError as e:
            raise RequestError(413, str(e)) from None

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise RequestError(400, f"bad Content-Length header {length!r}")
            if int(length) > max_bytes:
                raise RequestError(
                    413, f"body of {length} bytes is over the limit of {max_bytes}"
                )

        async def receive_all() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:  # a missing or lying Content-Length
                    raise RequestError(
                        413, f"body is over the limit of {max_bytes} bytes"
                    )
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            return await asyncio.wait_for(receive_all(), body_timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            raise RequestError(
                408, f"the body was not received within {body_timeout:g} s"
            ) from None

    async def digit_from_request(request: Request) -> np.ndarray | None:
        content_type = (
            request.headers.get("content-type", "").split(";")[0].strip().lower()
        )
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
        body = await read_body(request)
        if is_image:
            return await from_image(body)
        if content_type == "multipart/form-data":
            return await from_image(await multipart_file(request.headers, body))
        # application/json
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
            return await from_image(decode_data_url(payload["image"]))
        raise RequestError(422, "JSON: expected a 'pixels' (28x28) or 'image' field")

    async def predict(request: Request) -> JSONResponse:
        try:
            digit = await digit_from_request(request)
            if digit is None:
                return JSONResponse({"digit": None, "message": "no digit"})
            return JSONResponse(await run_in_threadpool(run_model, digit))
        except RequestError as e:
            return _error(e.status, str(e))
        except ClientDisconnect:
            return _error(400, "the client disconnected before sending the whole body")
        except NnscratchError as e:
            return _error(422, str(e))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "classes": names,
                "layers": layers,
                "input_shape": list(probe.shape[1:]),
                "parameters": int(model.count_params()),
                "max_bytes": max_bytes,
                "max_pixels": max_pixels,
            }
        )

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # a bug, not bad input: log it, and still answer in JSON
        log.error("error on %s", request.url.path, exc_info=exc)
        return _error(500, "internal error")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/api/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.add_middleware(SecurityHeaders)
    return app


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
    import uvicorn

    from .serialization import load_model

    app = create_app(load_model(model_path), max_bytes=max_bytes, max_pixels=max_pixels)
    click.echo(f"Draw digits at http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
