"""`nnscratch serve MODEL`: a web page to draw a digit and watch the network read it.

`create_app(model)` builds a Starlette app: the page (nnscratch/static/), `GET /health`
and `POST /api/predict`, which takes a PNG (raw body, multipart field "file" or a JSON
data URL) or 28x28 pixels as JSON, and answers with the prediction, the 28x28 input the
network saw and the hidden layers' activations. Bad input gets a 4xx JSON
`{"error": ...}`; the body is bounded while it streams and images are checked for
their declared size before any pixel is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import warnings
from pathlib import Path

import click
import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
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


def check_declared_size(data: bytes, max_pixels: int) -> None:
    """Raise RequestError(413) if the image header declares more than max_pixels.

    Only the header is read (Image.open is lazy); data that is not an image is left
    for `images.load_image` to report.
    """
    try:
        with images._WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise RequestError(413, f"image refused as a decompression bomb: {e}") from None
    except Exception:  # noqa: BLE001 - not an image: load_image says why (422)
        return
    if width * height > max_pixels:
        raise RequestError(
            413,
            f"image is {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}",
        )


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
    model, max_bytes: int = 2_000_000, max_pixels: int = 4_000_000
) -> Starlette:
    """The web app serving the drawing page for `model` (a Sequential on 28x28 input).

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

    def from_image(data: bytes) -> np.ndarray | None:
        check_declared_size(data, max_pixels)
        gray = images.load_image(data, max_pixels=max_pixels)
        return images.to_mnist(gray)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise RequestError(400, f"bad Content-Length header {length!r}")
            if int(length) > max_bytes:
                raise RequestError(
                    413, f"body of {length} bytes is over the limit of {max_bytes}"
                )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestError(413, f"body is over the limit of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def digit_from_request(request: Request) -> np.ndarray | None:
        content_type = (
            request.headers.get("content-type", "").split(";")[0].strip().lower()
        )
        body = await read_body(request)
        if (
            content_type.startswith("image/")
            or content_type == "application/octet-stream"
        ):
            return await run_in_threadpool(from_image, body)
        if content_type == "multipart/form-data":
            request._body = body  # form() parses the body already read
            try:
                form = await request.form(max_files=1, max_fields=10)
            except Exception as e:  # noqa: BLE001 - malformed multipart of any kind
                raise RequestError(400, f"bad multipart body: {e}") from None
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestError(
                    422, "multipart: expected an image file in field 'file'"
                )
            return await run_in_threadpool(from_image, await upload.read())
        if content_type == "application/json":
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError) as e:
                raise RequestError(400, f"body is not valid JSON: {e}") from None
            if not isinstance(payload, dict):
                raise RequestError(
                    422, "JSON: expected an object with 'pixels' or 'image'"
                )
            if "pixels" in payload:
                digit = images.from_array(payload["pixels"])
                return digit if digit.any() else None
            if "image" in payload:
                return await run_in_threadpool(
                    from_image, decode_data_url(payload["image"])
                )
            raise RequestError(
                422, "JSON: expected a 'pixels' (28x28) or 'image' field"
            )
        raise RequestError(
            415,
            f"unsupported content type {content_type or '(none)'!r}: send image/png, "
            "multipart/form-data or application/json",
        )

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
        return JSONResponse({"status": "ok", "classes": names, "layers": layers})

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/api/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: http_error},
    )


@click.command("serve")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve_command(model_path: Path, host: str, port: int) -> None:
    """Serve a page to draw digits and see MODEL's prediction live."""
    import uvicorn

    from .serialization import load_model

    app = create_app(load_model(model_path))
    click.echo(f"Draw digits at http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
