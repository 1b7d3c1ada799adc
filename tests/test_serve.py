"""The drawing page's web app: predictions from every input form, and 4xx for bad input."""

import base64
import contextlib
import io
import json
import selectors
import signal
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from nnscratch import Dense, Flatten, NnscratchError, ReLU, Sequential, cli
from nnscratch.app.security import SECURITY_HEADERS
from nnscratch.app.serve import create_app
from nnscratch.data.catalog import CLASS_NAMES


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    return Sequential(
        [Flatten(), Dense(784, 16, rng=rng), ReLU(), Dense(16, 10, rng=rng)],
        input_shape=(28, 28),
        loss="cross_entropy",
    )


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, max_bytes=100_000, max_pixels=1_000_000)) as c:
        yield c


def png(draw_stroke=True, size=200) -> bytes:
    img = Image.new("L", (size, size), 0)
    if draw_stroke:
        ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=255, width=16)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header declares width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def check_prediction(data: dict) -> None:
    assert data["digit"] in range(10)
    assert data["label"] == str(data["digit"])
    assert len(data["probabilities"]) == 10
    assert sum(data["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert data["probabilities"][data["digit"]] == max(data["probabilities"])
    assert data["top"][0]["digit"] == data["digit"] and len(data["top"]) == 3
    # what the page labels its bars with (the model may have changed since it loaded)
    assert data["classes"] == [str(i) for i in range(10)]
    assert np.asarray(data["input"]).shape == (28, 28)
    assert [a["name"] for a in data["activations"]] == ["ReLU 2"]
    values = np.asarray(data["activations"][0]["values"])
    assert values.shape == (16,) and values.min() >= 0


def test_health_lists_classes_and_layers(client):
    data = client.get("/health").json()
    assert data["status"] == "ok"
    assert data["classes"] == [str(i) for i in range(10)]
    assert [layer["name"] for layer in data["layers"]] == [
        "Flatten 0",
        "Dense 1",
        "ReLU 2",
        "Dense 3",
    ]


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css"])
def test_the_page_is_checked_for_changes_on_every_load(client, path):
    # without Cache-Control, a browser may keep a file it has for days (a tenth of its
    # age): after an upgrade, it ran the old app.js against the new page and API
    first = client.get(path)
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304  # unchanged: nothing sent again


def test_raw_png(client):
    response = client.post(
        "/api/predict", content=png(), headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 200
    check_prediction(response.json())


def test_json_pixels_match_the_model(client, model):
    digit = np.zeros((28, 28))
    digit[4:24, 13:16] = 1.0
    response = client.post("/api/predict", json={"pixels": digit.tolist()})
    assert response.status_code == 200
    data = response.json()
    check_prediction(data)
    expected = model.predict(digit[None].astype(np.float32))[0]
    np.testing.assert_allclose(data["probabilities"], expected, atol=1e-6)
    np.testing.assert_allclose(data["input"], digit)


def test_multipart_upload_and_data_url_agree_with_raw(client):
    raw = client.post(
        "/api/predict", content=png(), headers={"Content-Type": "image/png"}
    )
    upload = client.post(
        "/api/predict", files={"file": ("digit.png", png(), "image/png")}
    )
    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    data_url = client.post("/api/predict", json={"image": url})
    for response in (upload, data_url):
        assert response.status_code == 200
        assert response.json()["probabilities"] == raw.json()["probabilities"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": png(draw_stroke=False), "headers": {"Content-Type": "image/png"}},
        {"json": {"pixels": np.zeros((28, 28)).tolist()}},
    ],
    ids=["blank-png", "zero-pixels"],
)
def test_empty_drawing_is_no_digit(client, kwargs):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == 200
    assert response.json() == {
        "digit": None,
        "message": "no digit",
        "classes": [str(i) for i in range(10)],
    }


NAN_PIXELS = "[" + ",".join(["[" + ",".join(["NaN"] + ["0"] * 27) + "]"] * 28) + "]"


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        (
            {"content": b"not a png", "headers": {"Content-Type": "image/png"}},
            422,
            "not an image",
        ),
        (
            {"content": png()[:80], "headers": {"Content-Type": "image/png"}},
            422,
            "image",
        ),
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 422, "empty"),
        ({"files": {"file": ("x.png", b"garbage", "image/png")}}, 422, "not an image"),
        ({"files": {"other": ("x.png", png(), "image/png")}}, 422, "field 'file'"),
        ({"json": {"pixels": [[0.5] * 28] * 27}}, 422, "(27, 28)"),
        ({"json": {"pixels": [[0.5] * 28] * 27 + [[0.5] * 27]}}, 422, "pixels"),
        ({"json": {"pixels": [[2.0] * 28] * 28}}, 422, "[0, 1]"),
        ({"json": {"pixels": [["a"] * 28] * 28}}, 422, "numbers"),
        (
            {
                "content": '{"pixels": ' + NAN_PIXELS + "}",
                "headers": {"Content-Type": "application/json"},
            },
            422,
            "NaN",
        ),
        ({"json": {"image": "data:image/png;base64,@@@"}}, 422, "base64"),
        ({"json": {"image": "http://example.com/x.png"}}, 422, "data URL"),
        ({"json": {"picture": 1}}, 422, "'pixels'"),
        ({"json": [1, 2]}, 422, "object"),
        (
            {"content": b"{bad json", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        (
            {"content": b"[" * 50_000, "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        (
            {
                "content": b"--x\r\nbroken",
                "headers": {"Content-Type": "multipart/form-data; boundary=x"},
            },
            422,
            "field 'file'",
        ),
        (
            {
                "content": b"--x\r\nbroken",
                "headers": {"Content-Type": "multipart/form-data"},
            },
            400,
            "multipart",
        ),
        (
            {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
            415,
            "text/plain",
        ),
        ({"content": b"hello"}, 415, "content type"),
        (
            {
                "content": png_header_only(50_000, 50_000),
                "headers": {"Content-Type": "image/png"},
            },
            413,
            "bomb",
        ),
        (
            {
                "content": png_header_only(2000, 1000),
                "headers": {"Content-Type": "image/png"},
            },
            413,
            "2000x1000",
        ),
        (
            {"content": b"\0" * 100_001, "headers": {"Content-Type": "image/png"}},
            413,
            "limit",
        ),
        (
            {
                "content": iter([b"\0" * 60_000] * 2),
                "headers": {"Content-Type": "image/png"},
            },
            413,
            "limit",
        ),
    ],
    ids=[
        "garbage",
        "truncated-png",
        "empty-body",
        "multipart-garbage",
        "multipart-no-file",
        "wrong-shape",
        "ragged",
        "out-of-range",
        "strings",
        "nan",
        "bad-base64",
        "not-data-url",
        "missing-field",
        "not-object",
        "bad-json",
        "deep-json",
        "bad-multipart",
        "multipart-no-boundary",
        "text-plain",
        "no-content-type",
        "pixel-bomb",
        "over-max-pixels",
        "body-over-content-length",
        "streamed-body-over-limit",
    ],
)
def test_bad_input_is_a_4xx_with_an_error(client, kwargs, status, words):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_a_json_body_of_more_values_than_a_digit_is_refused_unparsed(model):
    # parsing it held the event loop: 8 MB of numbers took 0.5 s, 16 such bodies at
    # once kept every other client (the page, /health) waiting 6 s
    numbers = b"[" + b",".join([b"0.5"] * 500_000) + b"]"
    with TestClient(create_app(model)) as client:
        for body in (b'{"pixels": %s}' % numbers, b'{"image": "", "x": %s}' % numbers):
            response = client.post(
                "/api/predict",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 413
            assert "values is over the limit of 10000" in response.json()["error"]


def test_unknown_routes_answer_json(client):
    assert client.get("/nope").status_code == 404
    response = client.get("/api/predict")
    assert response.status_code == 405 and "error" in response.json()


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_a_wrong_method_is_told_which_one_to_use(client, method):
    # RFC 9110: a 405 must say in Allow which methods the resource takes
    response = client.request(method, "/api/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_model_that_cannot_take_a_digit_is_refused():
    with pytest.raises(NnscratchError, match="28x28"):
        create_app(Sequential([Dense(10, 2)], input_shape=(10,)))


def test_a_model_with_one_output_is_refused():
    regression = Sequential([Flatten(), Dense(784, 1)], input_shape=(28, 28))
    with pytest.raises(NnscratchError, match="not one per class"):
        create_app(regression)


def test_a_model_that_overflows_answers_500_in_json_without_a_traceback(model, caplog):
    huge = Sequential(
        [Flatten(), Dense(784, 32, rng=0), ReLU(), Dense(32, 10, rng=1)],
        input_shape=(28, 28),
    )
    huge.layers[1].params["W"][:] = 3e38  # finite, but float32 overflows on ink
    with TestClient(create_app(huge)) as overflowing:
        response = overflowing.post(
            "/api/predict", content=png(), headers={"content-type": "image/png"}
        )
    assert response.status_code == 500
    assert "NaN or infinite" in response.json()["error"]
    (record,) = [r for r in caplog.records if r.name.startswith("nnscratch")]
    assert record.levelname == "WARNING" and record.exc_info is None
    # a model that overflows even on a blank image is refused before serving
    huge.layers[1].params["b"][:] = 3e38
    with pytest.raises(NnscratchError, match="NaN or infinite"):
        create_app(huge)


def test_concurrent_requests_get_their_own_answers():
    # layers reuse their buffers (and conv's im2col layout) from call to call: the
    # app runs one model call at a time, or parallel digits and numbers would mix
    # their activations (or fail on a layout another request just changed)
    from concurrent.futures import ThreadPoolExecutor

    from nnscratch import Conv2D, MaxPool2D, Reshape

    layers = [Reshape((1, 28, 28)), Conv2D(32, 3, padding="same"), MaxPool2D(2),
              ReLU(), Flatten(), Dense(64), ReLU(), Dense(10)]  # fmt: skip
    model = Sequential(layers, input_shape=(28, 28), seed=0, loss="cross_entropy")
    rng = np.random.default_rng(1)
    image = {"headers": {"content-type": "image/png"}}
    requests = []
    for i in range(16):  # different digits, pictures and numbers of digits
        requests += [
            ("/api/predict", {"json": {"pixels": rng.random((28, 28)).tolist()}}),
            ("/api/predict?number=1", {"content": number_png(1 + i % 4), **image}),
            ("/api/predict", {"content": png(size=60 + 20 * i), **image}),
        ]
    with TestClient(create_app(model)) as client:
        alone = [client.post(url, **kw).json() for url, kw in requests]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda r: client.post(r[0], **r[1]), requests))
    assert [r.json() for r in together] == alone


# ----- raw ASGI: what a test client cannot send ------------------------------------
def call_asgi(app, headers, chunks, stall=False):
    """POST /api/predict with `chunks` as the body; `stall` never ends the body.
    Returns (status, JSON body, headers). A stalled body waits on an event that is
    never set, until the app's own timeout fires."""
    import asyncio

    messages = [
        {"type": "http.request", "body": c, "more_body": True} for c in chunks
    ] + ([] if stall else [{"type": "http.request", "body": b"", "more_body": False}])
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # a client that stopped sending

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/predict",
        "raw_path": b"/api/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    # bounded, so a server that waits forever fails the test instead of hanging it
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    return start["status"], json.loads(body), dict(start["headers"])


def test_a_stalled_body_times_out_with_408(model):
    app = create_app(model, body_timeout=0.2)
    status, data, _ = call_asgi(
        app, {"content-type": "image/png"}, [png()[:50]], stall=True
    )
    assert status == 408 and "not received" in data["error"]


def test_a_body_longer_than_its_content_length_is_cut_at_the_limit(model):
    app = create_app(model, max_bytes=1000)
    chunks = [b"\0" * 600] * 3
    status, data, _ = call_asgi(
        app, {"content-type": "image/png", "content-length": "10"}, chunks
    )
    assert status == 413 and "limit of 1000" in data["error"]


def test_a_wrong_content_type_is_refused_before_the_body_is_read(model):
    app = create_app(model)
    status, data, _ = call_asgi(
        app, {"content-type": "text/html"}, [b"x"], stall=True
    )  # would time out (30 s) if the body were awaited
    assert status == 415 and "text/html" in data["error"]


@pytest.mark.parametrize("value", ["12abc", "-5"])
def test_a_bad_content_length_is_a_400(model, value):
    status, data, _ = call_asgi(
        create_app(model),
        {"content-type": "image/png", "content-length": value},
        [b"x"],
    )
    assert status == 400 and "Content-Length" in data["error"]


# ----- more inputs ---------------------------------------------------------------
def test_other_image_types_and_octet_stream(client):
    img = Image.open(io.BytesIO(png())).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    for content_type in ("image/jpeg", "application/octet-stream"):
        response = client.post(
            "/api/predict",
            content=buf.getvalue(),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        check_prediction(response.json())


def test_a_transparent_canvas_with_black_ink_is_read(client):
    img = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=(0, 0, 0, 255), width=16)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    drawn = client.post(
        "/api/predict", content=buf.getvalue(), headers={"Content-Type": "image/png"}
    ).json()
    raw = client.post(
        "/api/predict", content=png(), headers={"Content-Type": "image/png"}
    ).json()
    np.testing.assert_allclose(drawn["input"], raw["input"], atol=1e-3)


def test_two_files_in_one_upload_are_refused(client):
    files = [
        ("file", ("a.png", png(), "image/png")),
        ("file", ("b.png", png(), "image/png")),
    ]
    response = client.post("/api/predict", files=files)
    assert response.status_code == 400 and "multipart" in response.json()["error"]


def test_health_reports_the_limits_and_size(client, model):
    data = client.get("/health").json()
    assert data["input_shape"] == [28, 28]
    assert data["parameters"] == model.count_params()
    assert (data["max_bytes"], data["max_pixels"]) == (100_000, 1_000_000)


def test_responses_carry_security_headers(client, model):
    with TestClient(create_app(model, allowed_hosts=["testserver"])) as strict:
        bad_host = strict.get("/health", headers={"Host": "evil.example"})
    assert bad_host.status_code == 400
    for response in (client.get("/"), client.get("/health"), client.get("/nope")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src" not in csp
    for response in (client.get("/"), client.get("/nope"), bad_host):
        for name, value in SECURITY_HEADERS:
            assert response.headers.get_list(name.decode()) == [value.decode()]


CONTENT_TYPES = [
    "image/png",
    "application/json",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "application/octet-stream",
    "text/plain",
    "",
]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda tail: png()[:200] + tail, st.binary(max_size=50)),
        st.builds(
            lambda v: json.dumps({"pixels": v}).encode(),
            st.recursive(
                st.one_of(
                    st.none(), st.booleans(), st.floats(), st.integers(), st.text()
                ),
                lambda inner: st.lists(inner, max_size=30),
                max_leaves=60,
            ),
        ),
        st.builds(
            lambda s: json.dumps({"image": s}).encode(),
            st.text(max_size=60).map(lambda t: "data:image/png;base64," + t),
        ),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_no_input_makes_the_server_fail(client, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/predict", content=body, headers=headers)
    assert response.status_code < 500, response.text
    data = response.json()
    assert ("error" in data) == (response.status_code >= 400)


def test_a_fashion_model_gets_pictures_laid_out_like_fashion_mnist():
    model = Sequential([Flatten(), Dense(784, 10, rng=0)], input_shape=(28, 28))
    model.metadata = {"training": {"dataset": "fashion-mnist"}}
    with TestClient(create_app(model)) as fashion:
        answer = fashion.post(
            "/api/predict", content=png(), headers={"content-type": "image/png"}
        ).json()
    rows = np.flatnonzero(np.array(answer["input"]).any(axis=1))
    assert rows.size == 28  # the longer side fills the field (MNIST digits: 20)


@pytest.fixture
def model_file(model, tmp_path) -> Path:
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def test_serve_on_a_busy_port_is_one_error_line(model_file, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["serve", str(model_file), "--port", str(port)])
    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""  # no address that does not work
    assert err.count("\n") == 1
    assert err.startswith(f"error: port {port} is in use")


def test_serve_a_model_with_one_output_is_one_error_line_naming_it(tmp_path, capsys):
    path = tmp_path / "regression.npz"
    Sequential([Flatten(), Dense(784, 1)], input_shape=(28, 28)).save(path)
    assert cli.main(["serve", str(path), "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {path} gives one output per image")


def start_serving(model_file, *options) -> tuple[subprocess.Popen, str]:
    """`nnscratch serve MODEL --port 0 OPTIONS` started; returns it and the first line
    it printed (the caller stops it)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "nnscratch", "serve", str(model_file), "--port", "0",
         *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(server.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "serve printed nothing in 60 s"
        return server, server.stdout.readline()
    except BaseException:
        server.kill()
        server.communicate(timeout=30)
        raise


@contextlib.contextmanager
def serving(model_file, *options):
    """`nnscratch serve MODEL --port 0 OPTIONS` running; yields the first line it
    printed."""
    server, line = start_serving(model_file, *options)
    try:
        yield line
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_serve_on_port_0_prints_the_port_it_got(model_file):
    with serving(model_file) as line:
        assert line.startswith("Drawing page at http://127.0.0.1:"), line
        url = line.split()[3]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert port != 0
        # printed once the socket listens: the page answers at once
        with urllib.request.urlopen(url + "health", timeout=30) as response:
            assert json.load(response)["status"] == "ok"
        # listening on this machine only, it answers to this machine's names only:
        # a page of another site cannot reach it through a name of its own (DNS
        # rebinding)
        rebound = urllib.request.Request(
            url + "health", headers={"Host": "evil.example"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=30)
        assert refused.value.code == 400
        # the security headers, once, on the server's answers as on the app's
        assert refused.value.headers.get_all("x-frame-options") == ["DENY"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stopped_as_soon_as_it_says_its_address_exits_quietly_with_0(
    model_file, signum
):
    # the signal could arrive before Hypercorn set its handlers: "aborted", and exit
    # code 130 or 143 instead of 0, one time in two
    server, line = start_serving(model_file)
    try:
        assert line.startswith("Drawing page at")
    finally:
        server.send_signal(signum)
        _, err = server.communicate(timeout=30)
    assert (server.returncode, err) == (0, "")


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_serve_warns_when_other_machines_can_reach_it(model_file, host):
    server, line = start_serving(model_file, "--host", host)
    try:
        assert line.startswith(f"Drawing page at http://{host}:")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    if host == "0.0.0.0":  # one line, said before the address
        assert err.startswith("warning: listening on 0.0.0.0, other machines can")
        assert err.count("\n") == 1
    else:
        assert err == ""


def test_behind_a_reverse_proxy_the_page_works_under_the_allowed_name(model_file):
    """nginx with `proxy_set_header Host $host` passes on the public name as Host,
    and the page there posts with that Origin: both were refused (400, or 403 with
    nginx's default Host, the server's own address)."""
    with serving(model_file, "--allowed-host", "digits.example") as line:
        url = line.split()[3]
        public = {"Host": "digits.example", "Origin": "https://digits.example"}
        drawing = urllib.request.Request(
            url + "api/predict", data=png(), method="POST",
            headers={**public, "Content-Type": "image/png"},
        )  # fmt: skip
        with urllib.request.urlopen(drawing, timeout=30) as response:
            assert "digit" in json.load(response)
        for host in ("localhost", "evil.example"):  # its own names stay; no other
            asked = urllib.request.Request(url + "health", headers={"Host": host})
            if host == "localhost":
                urllib.request.urlopen(asked, timeout=30).close()
                continue
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(asked, timeout=30)
            assert refused.value.code == 400


def test_an_allowed_host_must_be_a_name_not_a_url(model_file, capsys):
    assert cli.main(["serve", str(model_file), "--allowed-host", "http://x.org"]) == 2
    assert "expected a host name like digits.example.com, got 'http://x.org'" in (
        capsys.readouterr().err
    )


def test_a_post_from_another_site_is_refused(client):
    body = png()
    headers = {"Content-Type": "image/png", "Origin": "http://evil.example"}
    response = client.post("/api/predict", content=body, headers=headers)
    assert response.status_code == 403 and "other sites" in response.json()["error"]
    headers["Origin"] = "http://testserver"  # the page's own origin
    assert client.post("/api/predict", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "host, origin, status",
    [
        # nginx on port 8443 with `proxy_set_header Host $host`, as the README says:
        # the page's own POSTs were refused (403)
        ("digits.example", "https://digits.example:8443", 200),
        ("digits.example", "https://evil.example:8443", 403),
        ("digits.example:8443", "https://digits.example:9443", 403),
        ("localhost:8000", "http://localhost:9999", 403),
        ("[::1]", "http://[::1]:8443", 200),
        ("[::1]:8000", "http://[::1]:8443", 403),
    ],
)
def test_a_host_without_port_is_compared_to_the_origin_by_name(
    client, host, origin, status
):
    headers = {"Content-Type": "image/png", "Host": host, "Origin": origin}
    response = client.post("/api/predict", content=png(), headers=headers)
    assert response.status_code == status, response.text


def number_png(count=3) -> bytes:
    """`count` vertical strokes ("1"s) white on black, as the wide pad draws them."""
    img = Image.new("L", (140 * count, 200), 0)
    for i in range(count):
        x = 70 + 140 * i
        ImageDraw.Draw(img).line([(x, 30), (x, 170)], fill=255, width=16)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_number_is_read_when_asked(client):
    headers = {"Content-Type": "image/png"}
    r = client.post("/api/predict?number=1", content=number_png(), headers=headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (
        len(data["number"]) == 3 and data["lines"] == 1 and data["size"] == [420, 200]
    )
    assert data["number"] == "".join(d["label"] for d in data["digits"])
    assert data["classes"] == [str(i) for i in range(10)]
    for d, left in zip(data["digits"], (62, 202, 342)):
        assert abs(d["box"][0] - left) <= 2 and len(d["top"]) == 3
        assert np.asarray(d["input"]).shape == (28, 28)
    # without ?number the same picture is one digit; a blank picture has no number
    single = client.post("/api/predict", content=number_png(), headers=headers).json()
    assert "digits" not in single and single["label"] in [str(i) for i in range(10)]
    blank = client.post("/api/predict?number=1", content=png(False), headers=headers)
    assert blank.json()["number"] is None and blank.json()["digits"] == []
    pixels = client.post("/api/predict?number=1", json={"pixels": [[0] * 28] * 28})
    assert pixels.status_code == 422 and "picture" in pixels.json()["error"]


def test_a_host_not_answered_gets_the_apps_json_error(model):
    """A request under another Host got Starlette's plain-text 'Invalid host header',
    the one error of the app that was not `{"error": ...}`."""
    names = ["testserver", "[::1]", "*.example.com"]
    with TestClient(create_app(model, allowed_hosts=names)) as strict:
        for host in ("evil.example", "example.com", "testserver.evil", "a b", ""):
            for path in ("/api/predict", "/health", "/"):
                response = strict.post(path, headers={"Host": host})
                assert response.status_code == 400, (host, path)
                assert response.headers["content-type"] == "application/json"
                error = response.json()["error"]
                assert f"Host {host!r} is not one this server answers to" in error
        for host in ("testserver", "TestServer:8000", "[::1]:8000", "a.example.com"):
            assert strict.get("/health", headers={"Host": host}).status_code == 200
    with TestClient(create_app(model, allowed_hosts=["*"])) as anyone:
        assert anyone.get("/health", headers={"Host": "any.name"}).status_code == 200


def test_a_number_is_read_by_a_model_of_digits_only():
    """A model of clothes read '111' as 'SandalSandalSandal'."""
    model = Sequential(
        [Flatten(), Dense(784, 10, rng=0)],
        input_shape=(28, 28),
        class_names=CLASS_NAMES["fashion-mnist"],
    )
    with TestClient(create_app(model)) as fashion:
        response = fashion.post(
            "/api/predict?number=1",
            content=number_png(),
            headers={"content-type": "image/png"},
        )
        assert response.status_code == 422
        assert response.json()["error"] == (
            "a number is read by a model of the digits 0 to 9; this one tells "
            "apart T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, "
            "Sneaker, Bag and Ankle boot"
        )
