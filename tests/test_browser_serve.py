"""End to end: a small MLP trained on real MNIST, served by uvicorn, used in Chromium.

Draws a "1" with the mouse on the page and checks the live prediction.
"""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nnscratch import Dense, Flatten, ReLU, Sequential, load_dataset
from nnscratch.serve import create_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path("/tmp/serve.png")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI=true: the browser test must run)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


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

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(trained_model), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # uvicorn has no "started" event: poll its flag, bounded to 10 s
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_drawing_a_one_predicts_one(browser, server_url):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    box = page.locator("#pad").bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x, box["y"] + box["height"] * (0.15 + 0.07 * i))
    page.mouse.up()
    page.wait_for_function(
        "document.querySelector('#digit').dataset.digit !== undefined"
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
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#undo")
    assert page.locator("#digit").text_content() == "?"
    assert errors == []
    page.close()


def test_page_fits_a_phone(browser, server_url):
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#pad").bounding_box()
    assert box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert (
        page.locator("#pad").evaluate("c => getComputedStyle(c).touchAction") == "none"
    )
    page.screenshot(path="/tmp/serve-phone.png")
    page.close()
