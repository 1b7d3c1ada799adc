"""End to end: a small MLP trained on real MNIST, served by uvicorn, used in Chromium.

Draws a "1" with the mouse on the page and checks the live prediction.
"""

import socket
import threading

import numpy as np
import pytest

from nnscratch import Dense, Flatten, ReLU, Sequential, load_dataset
from nnscratch.serve import create_app

# predicates are functions, not expressions: Playwright evaluates expression strings
# with eval(), which the page's Content-Security-Policy (rightly) forbids
PREDICTED = "() => document.querySelector('#digit').dataset.digit !== undefined"


@pytest.fixture(scope="module")
def trained_model(data_dir):
    (x, y), _ = load_dataset("mnist", data_dir)
    rng = np.random.default_rng(0)
    model = Sequential(
        [Flatten(), Dense(784, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng)],
        input_shape=(28, 28),
    )
    model.fit(x[:5000], y[:5000], epochs=2, batch_size=64, seed=0, verbose=0)
    return model


@pytest.fixture(scope="module")
def server_url(trained_model):
    import uvicorn

    # a socket already listening: the browser's first connection waits in its
    # backlog until uvicorn accepts it, so there is nothing to poll for
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(trained_model), log_level="warning")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def watch_errors(page) -> list[str]:
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def draw_stroke(page, points):
    """Drag the mouse through `points`, given as fractions (x, y) of the pad."""
    box = page.locator("#pad").bounding_box()
    xy = [
        (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        for fx, fy in points
    ]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y)
    page.mouse.up()


def test_drawing_a_one_predicts_one(browser, server_url, artifacts_dir):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = watch_errors(page)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(
        "() => document.querySelector('#digit').dataset.digit !== undefined"
        " && document.querySelector('#status').textContent.includes('sure')"
    )
    # the last request (on pointerup) is the one shown once all are answered
    page.wait_for_load_state("networkidle")
    assert page.locator("#digit").get_attribute("data-digit") == "1"
    probs = [
        float(p)
        for p in page.locator("#bars li").evaluate_all(
            "items => items.map(li => li.dataset.probability)"
        )
    ]
    assert len(probs) == 10 and sum(probs) == pytest.approx(1.0, abs=1e-3)
    assert page.locator("#activations canvas").count() == 1
    # the winning bar is drawn (most of its track filled), the others nearly empty
    page.wait_for_function(
        """() => {
          const li = document.querySelectorAll('#bars li')[1];
          const fill = li.querySelector('.fill').getBoundingClientRect().width;
          return fill > 0.5 * li.querySelector('.track').getBoundingClientRect().width;
        }"""
    )
    # the network's 28x28 input is drawn: a bright column in the middle
    column = page.evaluate(
        """() => {
          const data = document.querySelector('#input').getContext('2d')
            .getImageData(0, 0, 28, 28).data;
          let sum = 0;
          for (let r = 4; r < 24; r++) sum += data[4 * (28 * r + 14)];
          return sum / 20;
        }"""
    )
    assert column > 100
    assert "Looks like 1" in page.locator("#announce").text_content()
    page.screenshot(path=str(artifacts_dir / "serve.png"), full_page=True)

    page.click("#undo")
    assert page.locator("#digit").text_content() == "?"
    assert errors == []
    page.close()


def test_keyboard_undo_and_clear(browser, server_url):
    page = browser.new_page()
    errors = watch_errors(page)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    draw_stroke(page, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])  # a "7", two segments
    page.wait_for_function(PREDICTED)
    page.keyboard.press("Escape")
    assert page.locator("#digit").text_content() == "?"
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    page.wait_for_function(PREDICTED)
    page.keyboard.press("Control+z")
    assert page.locator("#digit").text_content() == "?"
    # the Clear button is reachable with Tab and works with the keyboard
    page.focus("#clear")
    page.keyboard.press("Enter")
    assert "cleared" in page.locator("#announce").text_content()
    assert errors == []
    page.close()


def test_uploading_a_picture(browser, server_url, tmp_path):
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))  # dark ink on paper
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    path = tmp_path / "one.jpg"
    photo.save(path)
    page = browser.new_page()
    errors = watch_errors(page)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    page.set_input_files("#upload", str(path))
    page.wait_for_function(PREDICTED)
    assert page.locator("#digit").get_attribute("data-digit") == "1"
    assert page.locator("#status").text_content().startswith("one.jpg: ")

    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#upload", str(tmp_path / "notes.png"))
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('not an image')"
    )
    # a 422 answer logs one console error in Chromium ("Failed to load resource")
    assert all("422" in e for e in errors)
    page.close()


def test_page_fits_a_phone(browser, server_url, artifacts_dir):
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#pad").bounding_box()
    assert box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert (
        page.locator("#pad").evaluate("c => getComputedStyle(c).touchAction") == "none"
    )
    page.screenshot(path=str(artifacts_dir / "serve-phone.png"))
    page.close()
