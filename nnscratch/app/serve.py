"""`nnscratch serve MODEL`: a web page to draw a digit and watch the network read it.

`create_app(model)` builds a Starlette app: the page (nnscratch/app/static/, served by
`PageFiles`, which has browsers check it for changes on every load), `GET
/health` and `POST /api/predict`, which takes a PNG (raw body, multipart field "file"
or a JSON data URL) or 28x28 pixels as JSON, and answers with the prediction, the 28x28
input the network saw (with `?number=1`, a picture's whole number: `read_number`), the hidden activations (of the activation layers with at
most MAX_CELLS values: conv feature maps are left out) and the model's class names. `DigitService` holds the model,
the limits and the lock; its methods are the API's handlers and the steps that read a
digit from a request. Bad input gets a 4xx JSON `{"error": ...}`; the body is bounded
while it streams (`request_body`) and images are checked for their declared size
before any pixel is decoded. `security` keeps other sites out. `run_server` serves the
app with Hypercorn (`server`: timeouts and a limit on requests in progress).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import NnscratchError, NonFiniteOutputError
from ..imaging import decode, images
from ..nn.activations import Activation
from .limits import MAX_BYTES, MAX_PIXELS
from .number import number_refusal, read_number
from .predict import (
    as_classifier,
    class_names,
    model_dataset,
    model_input,
    top_classes,
)
from .request_body import (
    FORM_TYPES,
    RequestError,
    decode_data_url,
    media_type,
    multipart_file,
    read_body,
)
from .security import (
    LOOPBACK_HOSTS,
    SecurityHeaders,
    TrustedHosts,
    from_another_site,
)
from .server import MAX_REQUESTS, listening_socket, serve_app

STATIC_DIR = Path(__file__).parent / "static"
# Hidden layers shown on the page: the activations (what a neuron "fires")
SHOWN_LAYERS = (Activation,)  # the element-wise activations' outputs are shown
MAX_CELLS = 1024  # larger per-sample outputs (conv feature maps) are left out
BODY_TIMEOUT = 30.0  # seconds to receive a body: a trickling client cannot hang on
# values in a JSON body, counted before parsing: 28x28 pixels are 784, a data URL one.
# Parsing (and NumPy's reading of the lists) holds the event loop: 8 MB of numbers
# took 0.5 s, and 16 such bodies kept every other client waiting 6 s
MAX_JSON_VALUES = 10_000
# The page's files are checked on every load (304 if unchanged): without it, a browser
# may keep a file for a tenth of its age, and run an old app.js after an upgrade
REVALIDATE = {"cache-control": "no-cache"}

log = logging.getLogger(__name__)


def create_app(
    model,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    body_timeout: float = BODY_TIMEOUT,
    allowed_hosts: list[str] | None = None,
    security_headers: bool = True,
) -> Starlette:
    """The web app serving the drawing page for `model` (a Sequential on 28x28 input).

    Request bodies over `max_bytes` (declared or streamed) get 413, as do JSON bodies
    of more than MAX_JSON_VALUES values (before they are parsed) and images declaring
    more than `max_pixels` pixels (before any pixel is decoded); a body not received
    within `body_timeout` seconds gets 408. `allowed_hosts`: the Host headers
    answered (others get 400, in JSON: `TrustedHosts`), against DNS rebinding: a web
    page on another site cannot reach the server through a name of its own. A POST
    from a page of another origin gets 403. `security_headers`: add SECURITY_HEADERS
    to every response (`run_server`'s server adds them itself, to its own error pages
    too). The limits on requests in progress and on the body bytes they hold at once
    are the server's (see `run_server`).
    Raises NnscratchError if the model cannot take a 28x28 image.
    """
    service = DigitService(as_classifier(model), max_bytes, max_pixels, body_timeout)
    files = PageFiles(directory=STATIC_DIR)
    app = Starlette(
        routes=[
            Route("/", files.index),
            Route("/health", service.health),
            Route("/api/predict", service.predict, methods=["POST"]),
            Mount("/static", files, name="static"),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    if allowed_hosts is not None:
        app.add_middleware(TrustedHosts, names=allowed_hosts)
    if security_headers:  # added last, so outermost: on the 400 of a bad Host too
        app.add_middleware(SecurityHeaders)
    return app


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
        # the page offers its number mode only where this is None (it tells by the
        # class names too)
        self.number_refusal = number_refusal(self.names)
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
        number = request.query_params.get("number", "").lower() in ("1", "true")
        if number and self.number_refusal:
            return error_response(422, self.number_refusal)
        try:
            digit = await self.digit_from_request(request, number)
            if number:  # a gray picture, not a digit
                return JSONResponse(await run_in_threadpool(self.read_number, digit))
            if digit is None:
                return JSONResponse(
                    {"digit": None, "message": "no digit", "classes": self.names}
                )
            return JSONResponse(await run_in_threadpool(self.run_model, digit))
        except RequestError as e:
            return error_response(e.status, str(e), e.headers)
        except ClientDisconnect:
            message = "the client disconnected before sending the whole body"
            return error_response(400, message)
        except NonFiniteOutputError as e:
            # the model's fault, not the request's: one line in the log, no traceback
            log.warning("POST /api/predict: %s", e)
            return error_response(500, str(e))
        except NnscratchError as e:
            return error_response(422, str(e))

    def run_model(self, digit: np.ndarray) -> dict:
        """(28, 28) digit -> top_classes()'s answer plus "input", the "activations"
        and the model's "classes".

        Blocking: called in the thread pool.
        """
        x = model_input(self.model, digit)
        with self.lock:  # NonFiniteOutputError if the weights overflow float32
            probs = self.model.predict(x)[0]
            outputs = self.model.layer_outputs(x)
        result = top_classes(probs, self.names)
        # the page labels its bars with the names of the model that answered: the
        # server may have been restarted with another model since the page loaded
        result["classes"] = self.names
        result["input"] = np.round(digit, 4).tolist()
        result["activations"] = [
            {
                "name": self.layers[i]["name"],
                "values": np.round(outputs[i][0].ravel(), 4).tolist(),
            }
            for i in self.shown
        ]
        return result

    def read_number(self, gray: np.ndarray) -> dict:
        """A gray picture -> `read_number`'s answer, inputs rounded, and the model's
        "classes"; "number" is None when no digit is found. Blocking: called in the
        thread pool."""
        # only the network's calls take turns: finding the digits, the slow part,
        # runs beside other requests
        result = read_number(LockedPredict(self.model, self.lock), gray, self.layout)
        for d in result["digits"]:
            d["input"] = np.round(d["input"], 4).tolist()
        if not result["digits"]:
            result.update(number=None, message="no digit")
        result["classes"] = self.names
        return result

    # ----- reading the digit from a request --------------------------------------
    async def digit_from_request(
        self, request: Request, number: bool = False
    ) -> np.ndarray | None:
        """The (28, 28) digit in the body (None if blank), read as its type says;
        with `number`, the body's whole picture as gray (H, W) instead."""
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
        body = await read_body(request, self.max_bytes, self.body_timeout)
        if is_image:
            return await self.digit_from_image(body, number)
        if content_type == "multipart/form-data":
            return await self.digit_from_image(
                await multipart_file(request.headers, body), number
            )
        return await self.digit_from_json(body, number)

    async def digit_from_json(self, body: bytes, number: bool) -> np.ndarray | None:
        """`{"pixels": 28x28 numbers}` or `{"image": data URL}` -> (28, 28) or None."""
        if (values := body.count(b",") + 1) > MAX_JSON_VALUES:  # a count, not a parse
            raise RequestError(
                413,
                f"JSON of {values} values is over the limit of {MAX_JSON_VALUES}: "
                "expected 28x28 'pixels' or an 'image' data URL",
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as e:
            raise RequestError(400, f"body is not valid JSON: {e}") from None
        if not isinstance(payload, dict):
            raise RequestError(422, "JSON: expected an object with 'pixels' or 'image'")
        if "pixels" in payload and number:
            raise RequestError(422, "a number is read from a picture, not 28x28 pixels")
        if "pixels" in payload:
            digit = images.from_array(payload["pixels"])
            return digit if digit.any() else None
        if "image" in payload:
            data = decode_data_url(payload["image"])
            return await self.digit_from_image(data, number)
        raise RequestError(422, "JSON: expected a 'pixels' (28x28) or 'image' field")

    async def digit_from_image(self, data: bytes, number: bool) -> np.ndarray | None:
        """Image bytes -> (28, 28) MNIST-style digit or None (with `number`, the
        gray picture); 413 if too large."""
        try:
            # Pillow blocks while it decodes: the event loop keeps serving meanwhile
            return await run_in_threadpool(self.decode_image, data, number)
        except decode.ImageTooLargeError as e:
            raise RequestError(413, str(e)) from None

    def decode_image(self, data: bytes, number: bool = False) -> np.ndarray | None:
        """Image bytes -> (28, 28) float32 digit or None, or with `number` the
        gray picture (H, W); blocking."""
        gray = decode.load_image(data, max_pixels=self.max_pixels)
        return gray if number else images.to_mnist(gray, **self.layout)


class PageFiles(StaticFiles):
    """The page's static files, with REVALIDATE (and 304 when unchanged)."""

    async def index(self, request: Request) -> Response:
        """GET /: the drawing page."""
        return await self.get_response("index.html", request.scope)

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(REVALIDATE)
        return response


class LockedPredict:
    """A model whose `predict` holds `lock` (its layers reuse their buffers from call
    to call); its other attributes are the model's."""

    def __init__(self, model, lock: threading.Lock):
        self._model, self._lock = model, lock

    def predict(self, *args, **kwargs) -> np.ndarray:
        with self._lock:
            return self._model.predict(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def hidden_layers(model, outputs: list[np.ndarray]) -> list[int]:
    """Indices of the hidden activation layers to show (not the last layer)."""
    return [
        i
        for i, layer in enumerate(model.layers[:-1])
        if isinstance(layer, SHOWN_LAYERS) and outputs[i][0].size <= MAX_CELLS
    ]


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The app's one error format: `{"error": message}` with this status."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own errors (404, 405, ...) in the same JSON form, with their
    headers (a 405's Allow: the methods to use instead)."""
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    # a bug, not bad input: log it, and still answer in JSON
    log.error("error on %s", request.url.path, exc_info=exc)
    return error_response(500, "internal error")


def run_server(
    model,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    on_ready: Callable[[str], None] | None = None,
    public_names: tuple[str, ...] = (),
) -> None:
    """Serve the drawing page for `model` on host:port until stopped (Ctrl+C).

    The socket is bound before `on_ready(url)` is called, so a busy port is a
    NnscratchError before any address is given, and port 0 gives the port the system
    picked. Listening on this machine only (the default), the app answers to its own
    names only (see create_app), and to `public_names`: the names a reverse proxy in
    front of it passes on as the Host. Listening on another address, it answers to
    any name, or to `public_names` only, if given. At most MAX_REQUESTS requests are
    in progress at once (503 past them), holding MAX_REQUESTS times `max_bytes` of
    bodies at most (503 past it). What protects the server from clients that hold
    connections: see `server`.
    """
    names = [*(LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else ()), *public_names]
    app = create_app(
        model,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        allowed_hosts=names or None,  # None: any name
        security_headers=False,  # serve_app's server adds them to every response
    )
    with listening_socket(host, port) as sock:
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        try:
            if on_ready is not None:
                on_ready(f"http://{shown}:{port}/")
            serve_app(app, sock, max_buffered=MAX_REQUESTS * max_bytes)
        except KeyboardInterrupt:
            # Ctrl+C, or SIGTERM (`cli` makes it one), before Hypercorn had set its
            # own handlers (while the address was printed): stopped all the same, not
            # "aborted" with exit code 130 or 143
            pass
