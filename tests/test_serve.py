"""The drawing page's web app: predictions from every input form, and 4xx for bad input."""

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from nnscratch import Dense, Flatten, NnscratchError, ReLU, Sequential
from nnscratch.serve import create_app


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    return Sequential(
        [Flatten(), Dense(784, 16, rng=rng), ReLU(), Dense(16, 10, rng=rng)],
        input_shape=(28, 28),
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
    assert response.json() == {"digit": None, "message": "no digit"}


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


def test_unknown_routes_answer_json(client):
    assert client.get("/nope").status_code == 404
    response = client.get("/api/predict")
    assert response.status_code == 405 and "error" in response.json()


def test_model_that_cannot_take_a_digit_is_refused():
    with pytest.raises(NnscratchError, match="28x28"):
        create_app(Sequential([Dense(10, 2)], input_shape=(10,)))


def test_concurrent_requests_get_their_own_answers(client, model):
    # layers reuse buffers: without the lock, parallel requests would mix results
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    digits = [rng.random((28, 28)) for _ in range(16)]
    expected = model.predict(np.stack(digits).astype(np.float32))
    with ThreadPoolExecutor(4) as pool:
        responses = list(
            pool.map(
                lambda d: client.post("/api/predict", json={"pixels": d.tolist()}),
                digits,
            )
        )
    got = [r.json()["probabilities"] for r in responses]
    np.testing.assert_allclose(got, expected, atol=1e-6)
