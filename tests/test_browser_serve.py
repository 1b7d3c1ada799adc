"""End to end: a small MLP trained on real MNIST, served as `nnscratch serve` serves it,
used in Chromium.

Draws a "1" with the mouse on the page and checks the live prediction; a model with
Fashion-MNIST's class names checks that long labels fit the page.
"""

import io

import numpy as np
import pytest
from live_server import running

from nnscratch import Dense, Flatten, ReLU, Sequential, load_dataset
from nnscratch.app.serve import create_app
from nnscratch.data.catalog import CLASS_NAMES

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
        loss="cross_entropy",
    )
    model.fit(x[:5000], y[:5000], epochs=2, batch_size=64, seed=0, verbose=0)
    return model


@pytest.fixture(scope="module")
def server_url(trained_model):
    with running(create_app(trained_model, security_headers=False)) as url:
        yield url


@pytest.fixture(scope="module")
def fashion_model():
    """A model with Fashion-MNIST's class names that always answers "T-shirt/top"."""
    rng = np.random.default_rng(0)
    model = Sequential(
        [Flatten(), Dense(784, 16, rng=rng), ReLU(), Dense(16, 10, rng=rng)],
        input_shape=(28, 28),
        class_names=CLASS_NAMES["fashion-mnist"],
    )
    model.layers[-1].params["W"][:] = 0
    model.layers[-1].params["b"][0] = 5.0  # class 0, the longest name
    return model


@pytest.fixture(scope="module")
def fashion_url(fashion_model):
    with running(create_app(fashion_model, security_headers=False)) as url:
        yield url


def watch_errors(page) -> list[str]:
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def open_page(browser, url, **page_options):
    """A new page of the drawing app at `url`, loaded; returns it and its errors list."""
    page = browser.new_page(**page_options)
    errors = watch_errors(page)
    page.goto(url + "/")
    page.wait_for_selector("#bars li")
    return page, errors


def settle(page) -> None:
    """Wait until the page has sent its last request and had its answer.

    (`wait_for_load_state("networkidle")` does not wait: the page reached that state
    once, when it loaded.)"""
    # the PNG of the last drawing (the paper's) is made first, and sent when it is made
    page.evaluate("() => new Promise(r => paper.toBlob(r))")
    page.wait_for_function("() => !inFlight && queued === null")


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
    page, errors = open_page(
        browser, server_url, viewport={"width": 1100, "height": 900}
    )
    draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(
        "() => document.querySelector('#digit').dataset.digit !== undefined"
        " && document.querySelector('#status').textContent.includes('sure')"
    )
    # the last request (on pointerup) is the one shown once all are answered
    settle(page)
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


def wait_for_status(page, text: str) -> str:
    page.wait_for_function(
        f"() => document.querySelector('#status').textContent.includes({text!r})"
    )
    return page.locator("#status").text_content()


def test_a_lost_server_and_a_proxys_error_page_are_told_apart(browser, server_url):
    """'Cannot reach the server' only when the request fails; an answer that is not
    the app's JSON (a proxy's 502 page) says what came back."""
    page, errors = open_page(browser, server_url)
    page.route("**/api/predict*", lambda route: route.abort())
    draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
    wait_for_status(page, "Cannot reach the server.")
    page.unroute("**/api/predict*")
    page.route(
        "**/api/predict*",
        lambda route: route.fulfill(
            status=502, content_type="text/html", body="<h1>Bad Gateway</h1>"
        ),
    )
    page.click("#clear")
    draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
    status = wait_for_status(page, "The server answered 502")
    assert "Cannot reach" not in status
    assert all("Failed to load resource" in e for e in errors)  # the browser's own
    page.close()


def test_keyboard_undo_and_clear(browser, server_url):
    page, errors = open_page(browser, server_url)
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
    page, errors = open_page(browser, server_url)
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


@pytest.mark.parametrize("width", [390, 320])
def test_page_fits_a_phone(browser, server_url, artifacts_dir, width):
    page = browser.new_page(viewport={"width": width, "height": 844}, has_touch=True)
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator("#pad").bounding_box()
    assert box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= width
    # the cards keep the same margin on both sides (at 320 px, their 300 px minimum
    # pushed them to the right edge)
    card = page.locator(".card.draw").bounding_box()
    assert card["x"] == pytest.approx(width - card["x"] - card["width"], abs=1)
    assert (
        page.locator("#pad").evaluate("c => getComputedStyle(c).touchAction") == "none"
    )
    page.screenshot(path=str(artifacts_dir / f"serve-phone-{width}.png"))
    page.close()


def in_view(page, box: dict) -> bool:
    """Whether `box` lies wholly in the window, as it is scrolled now."""
    size = page.viewport_size
    return inside(box, {"x": 0, "y": 0, **size})


@pytest.mark.parametrize(
    "width, height", [(844, 390), (740, 360), (640, 360), (1024, 600), (568, 320)]
)
def test_a_phone_on_its_side_shows_pad_and_answer_together(
    browser, server_url, artifacts_dir, width, height
):
    """A phone turned sideways (844x390): the pad was 340 px, taller than the window,
    and the answer under it or beside its top (a netbook's 1024x600: the upload
    button half out of sight). The pad, its buttons and the answer now sit side by
    side within the window's height. On a small phone (568x320) the pad was 144 px
    and the last bars of the answer under the window's edge."""
    page, errors = open_page(
        browser,
        server_url,
        viewport={"width": width, "height": height},
        device_scale_factor=3,
        has_touch=True,
    )
    pad = page.locator("#pad").bounding_box()
    assert in_view(page, pad) and pad["height"] >= 0.55 * height
    for control in ("#undo", "#clear", "#upload", "#number-mode"):
        assert in_view(page, page.locator(control).bounding_box()), control
    result = page.locator(".card.result").bounding_box()
    assert result["x"] >= pad["x"] + pad["width"]  # beside the pad, not under it
    draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(PREDICTED)
    settle(page)
    assert page.locator("#digit").text_content() == "1"
    assert page.evaluate("() => [scrollX, scrollY]") == [0, 0]
    for answer in ("#digit", "#status", "#bars li:last-child"):
        assert in_view(page, text_box(page, answer)), answer
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(artifacts_dir / f"serve-landscape-{width}.png"))
    # number mode: the wide pad and its buttons fit the window's height too
    page.locator("#number-mode").check()
    wide = page.locator("#pad").bounding_box()
    assert in_view(page, wide) and wide["width"] > 2 * wide["height"]
    assert wide["height"] >= 0.5 * pad["height"]
    for control in ("#undo", "#clear", "#upload"):
        assert in_view(page, page.locator(control).bounding_box()), control
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert errors == []
    page.close()


@pytest.mark.parametrize(
    "width, height, name",
    [
        (640, 360, "IMG_20261205_185959.jpg"),
        (740, 360, "PXL_20261205_185959123.PORTRAIT.ORIGINAL.jpg"),
        (568, 320, "IMG_20261205_185959.jpg"),
    ],
)
def test_a_clothes_models_ten_bars_fit_a_phone_on_its_side(
    browser, fashion_url, tmp_path, artifacts_dir, width, height, name
):
    """A clothes model's answer to a photo, on a phone turned sideways: the status
    (the photo's name, then the runners-up) took four lines and pushed the tenth
    bar ("Ankle boot") under the window's edge. The bars stay in view whatever the
    status's length; a status too long for the room left scrolls in its place."""
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    photo.save(tmp_path / name)
    page, errors = open_page(
        browser,
        fashion_url,
        viewport={"width": width, "height": height},
        device_scale_factor=3,
        has_touch=True,
    )
    page.set_input_files("#upload", str(tmp_path / name))
    page.wait_for_function(PREDICTED)
    settle(page)
    assert page.locator("#status").text_content().startswith(f"{name}: ")
    for i in range(1, 11):
        bar = f"#bars li:nth-child({i})"
        assert in_view(page, page.locator(bar).bounding_box()), bar
    assert in_view(page, text_box(page, "#digit"))
    assert in_view(page, page.locator(".card.result").bounding_box())
    # how sure, under the name (cut to a line): not scrolled out of sight
    sure = page.locator("#status").evaluate(
        """status => {
          const text = [...status.childNodes].find(n => n.nodeType === Node.TEXT_NODE);
          const range = document.createRange();
          range.selectNodeContents(text);
          const r = range.getBoundingClientRect();
          return {x: r.left, y: r.top, width: r.width, height: r.height};
        }"""
    )
    assert inside(sure, page.locator(".answer").bounding_box())
    assert page.locator(".answer").evaluate("a => a.scrollWidth <= a.clientWidth")
    assert page.evaluate("() => [scrollX, scrollY]") == [0, 0]
    page.screenshot(path=str(artifacts_dir / f"serve-fashion-{width}x{height}.png"))
    assert errors == []
    page.close()


def text_box(page, selector: str) -> dict:
    """Where the text of `selector` is drawn (which can overflow its element's box)."""
    return page.locator(selector).evaluate(
        """el => {
          const range = document.createRange();
          range.selectNodeContents(el);
          const r = range.getBoundingClientRect();
          return {x: r.left, y: r.top, width: r.width, height: r.height};
        }"""
    )


def inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def pad_brightness(page) -> float:
    """Mean of the pad's red channel, 0 (all black) to 255."""
    return page.evaluate(
        """() => {
          const pad = document.querySelector('#pad');
          const data = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height)
            .data;
          let sum = 0;
          for (let i = 0; i < data.length; i += 4) sum += data[i];
          return sum / (data.length / 4);
        }"""
    )


def result_is_empty(page) -> bool:
    """True if the page shows no prediction: "?", empty bars, input and layers."""
    return page.evaluate(
        """() => {
          const input = document.querySelector('#input');
          const pixels = input.getContext('2d')
            .getImageData(0, 0, input.width, input.height).data;
          return document.querySelector('#digit').textContent === '?'
            && document.querySelector('#digit').dataset.digit === undefined
            && [...document.querySelectorAll('#bars li')]
              .every(li => li.dataset.probability === '0'
                           && !li.classList.contains('best'))
            && pixels.every(v => v === 0)
            && document.querySelectorAll('#activations canvas').length === 0;
        }"""
    )


@pytest.mark.parametrize("width", [1100, 390])
def test_long_class_names_stay_in_their_card(
    browser, fashion_url, artifacts_dir, width
):
    page, errors = open_page(
        browser, fashion_url, viewport={"width": width, "height": 900}
    )
    draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
    page.wait_for_function(PREDICTED)
    settle(page)
    assert page.locator("#digit").text_content() == "T-shirt/top"
    # a model of clothes is not asked for digits
    assert page.locator("h1").text_content() == "Draw a picture"
    assert "digit" not in page.locator(".upload").text_content()
    # nor offered to read a number ("SandalSandalSandal")
    assert page.locator("#number-mode").is_hidden()
    card = page.locator(".card.result").bounding_box()
    label, status = text_box(page, "#digit"), text_box(page, "#status")
    assert inside(label, card) and inside(status, card)
    assert not overlap(label, status)
    # the label is scaled down, but still the largest text of the card
    digit_px, status_px = page.evaluate(
        "() => ['#digit', '#status'].map("
        "s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize))"
    )
    assert digit_px >= 2 * status_px
    # every class name is shown whole (not "T-s…", "S…") and inside the card
    labels = page.locator("#bars .label")
    assert (
        labels.evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)"
        )
        == []
    )
    for i in range(labels.count()):
        assert inside(text_box(page, f"#bars li:nth-child({i + 1}) .label"), card)
    # the bars still line up, one column of tracks
    lefts = page.locator("#bars .track").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().left)"
    )
    assert max(lefts) - min(lefts) < 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(
        path=str(artifacts_dir / f"serve-fashion-{width}.png"), full_page=True
    )
    assert errors == []
    page.close()


def words_about_digits(page) -> list[str]:
    """The page's words (text shown, the tab's title, tooltips, labels read by screen
    readers of visible elements) that speak of digits."""
    return page.evaluate(
        """() => {
          const visible = [...document.querySelectorAll('[title], [aria-label]')]
            .filter(e => e.checkVisibility());
          return [document.title, document.body.innerText,
                  ...visible.flatMap(e => [e.title, e.getAttribute('aria-label')])]
            .filter(w => w && /digit/i.test(w));
        }"""
    )


def test_a_model_of_clothes_is_not_described_as_digits(browser, fashion_url):
    """With a Fashion-MNIST model the tab said "nnscratch: draw a digit", the answer's
    tooltip "Predicted digit" and the pad's label "draw one digit"."""
    page, errors = open_page(
        browser, fashion_url, viewport={"width": 1100, "height": 900}
    )
    assert words_about_digits(page) == []
    assert page.title() == "nnscratch: draw a picture"
    assert page.locator("#digit").get_attribute("title") == "Predicted class"
    draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
    page.wait_for_function(PREDICTED)
    settle(page)
    assert words_about_digits(page) == []
    assert errors == []
    page.close()


def test_a_failed_upload_clears_the_last_prediction(browser, server_url, tmp_path):
    page, errors = open_page(browser, server_url)
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    page.wait_for_function(PREDICTED)
    settle(page)
    assert not result_is_empty(page)

    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#upload", str(tmp_path / "notes.png"))
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('not an image')"
    )
    # the "1" drawn before is gone: nothing suggests the text file was read as a 1
    assert result_is_empty(page)
    assert pad_brightness(page) == 0
    assert "notes.png" in page.locator("#status").text_content()
    assert all("422" in e for e in errors)
    page.close()


def test_an_uploaded_picture_is_shown_on_the_pad(
    browser, server_url, tmp_path, artifacts_dir
):
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))  # dark ink on paper
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    photo.save(tmp_path / "one.jpg")
    page, errors = open_page(
        browser, server_url, viewport={"width": 1100, "height": 900}
    )
    page.set_input_files("#upload", str(tmp_path / "one.jpg"))
    page.wait_for_function(PREDICTED)
    # the photo is drawn on the pad, fitted whole: paper left and right of the ink,
    # black bars where the portrait photo does not reach
    page.wait_for_function(
        """() => {
          const g = document.querySelector('#pad').getContext('2d');
          const w = g.canvas.width, h = g.canvas.height;
          const at = (x, y) => g.getImageData(x, y, 1, 1).data[0];
          return at(w / 2 - 40, h / 2) > 200 && at(w / 2, h / 2) < 60
            && at(2, h / 2) === 0;
        }"""
    )
    page.screenshot(path=str(artifacts_dir / "serve-upload.png"), full_page=True)
    # drawing starts a new picture: the photo goes, the stroke is read alone
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    settle(page)
    assert pad_brightness(page) < 60
    assert not page.locator("#status").text_content().startswith("one.jpg")
    # Escape clears the pad back to black
    page.set_input_files("#upload", str(tmp_path / "one.jpg"))
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('one.jpg')"
    )
    page.wait_for_function(
        "() => document.querySelector('#pad').getContext('2d')"
        ".getImageData(100, 140, 1, 1).data[0] > 200"
    )
    page.keyboard.press("Escape")
    assert pad_brightness(page) == 0 and result_is_empty(page)
    assert errors == []
    page.close()


@pytest.mark.parametrize("touch", [False, True])
def test_a_tap_draws_a_dot_and_sends_it(browser, server_url, touch):
    page, errors = open_page(
        browser, server_url, viewport={"width": 1100, "height": 900}, has_touch=touch
    )
    box = page.locator("#pad").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    with page.expect_response("**/api/predict") as answer:
        if touch:
            page.touchscreen.tap(x, y)
        else:
            # a press and release in place, with a move that goes nowhere
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x, y)
            page.mouse.up()
    assert answer.value.ok
    # a round dot as wide as a stroke (a 14th of the pad)
    row = page.evaluate(
        """() => {
          const g = document.querySelector('#pad').getContext('2d');
          const w = g.canvas.width;
          const data = g.getImageData(0, g.canvas.height / 2, w, 1).data;
          let lit = 0;
          for (let i = 0; i < w; i++) lit += data[4 * i] > 128;
          return lit / w;
        }"""
    )
    assert 0.05 < row < 0.1
    # the server's answer is shown (a lone dot may be "no digit", which is its call)
    page.wait_for_function(
        "() => !document.querySelector('#status').textContent.startsWith('Draw')"
    )
    # and the dot counts as ink of the drawing: a stroke below it makes an "i"-like
    # figure whose 28x28 input holds both parts
    draw_stroke(page, [(0.5, 0.68), (0.5, 0.95)])
    page.wait_for_function(PREDICTED)
    settle(page)
    rows = page.evaluate(
        """() => {
          const data = document.querySelector('#input').getContext('2d')
            .getImageData(0, 0, 28, 28).data;
          const lit = [];
          for (let r = 0; r < 28; r++) {
            let top = 0;  // blue: the brightest cell of the row
            for (let c = 0; c < 28; c++) top = Math.max(top, data[4 * (28 * r + c) + 2]);
            lit.push(top > 128);
          }
          return lit;
        }"""
    )
    # two bands of bright rows (the dot, the stroke) with a dark gap between them
    bands = sum(1 for r in range(1, 28) if rows[r] and not rows[r - 1]) + rows[0]
    assert bands == 2
    assert errors == []
    page.close()


def test_number_mode_reads_every_digit_under_its_box(
    browser, server_url, artifacts_dir
):
    page, errors = open_page(
        browser, server_url, viewport={"width": 1100, "height": 900}
    )
    page.focus("#number-mode")
    page.keyboard.press("Space")  # the mode is a labelled checkbox
    assert "Number mode" in page.locator("#announce").text_content()
    box = page.locator("#pad").bounding_box()
    assert box["width"] > 2 * box["height"]  # the wide pad
    for x in (0.15, 0.4, 0.7):  # three "1"s
        draw_stroke(page, [(x, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(
        "() => document.querySelectorAll('#boxes .box').length === 3"
    )
    # the answer to the last stroke's end is announced
    page.wait_for_function(
        "() => document.querySelector('#announce').textContent.startsWith('Reads 111')"
    )
    assert page.locator("#digit").text_content() == "111"
    assert page.locator("#boxes .reading").count() == 3
    assert page.locator("#status").text_content().startswith("3 digits: 1 ")
    # each reading sits under its own stroke, left to right
    centres = page.locator("#boxes .box").evaluate_all(
        "boxes => boxes.map(b => { const r = b.getBoundingClientRect();"
        " return (r.left + r.right) / 2; })"
    )
    for centre, x in zip(centres, (0.15, 0.4, 0.7)):
        assert abs(centre - (box["x"] + x * box["width"])) < 0.05 * box["width"]
    assert page.locator("#activations .digits canvas").count() == 3
    assert page.locator("#bars").is_hidden() and page.locator("#input").is_hidden()
    page.screenshot(path=str(artifacts_dir / "serve-number.png"), full_page=True)
    page.keyboard.press("Escape")
    assert page.locator("#boxes .box").count() == 0
    page.locator("#number-mode").uncheck()
    assert page.locator("#pad").bounding_box()["width"] < 400
    assert errors == []
    page.close()


def test_number_readings_never_overlap_on_a_phone(browser, server_url):
    # eight narrow digits on a phone's pad: their "1 97%" readings ran into each other
    page, errors = open_page(
        browser, server_url, viewport={"width": 390, "height": 844}
    )
    page.locator("#number-mode").check()
    for k in range(8):
        x = 0.08 + 0.12 * k
        draw_stroke(page, [(x, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(
        "() => document.querySelector('#announce').textContent.startsWith('Reads ')"
        " && document.querySelectorAll('#boxes .box').length === 8"
    )
    settle(page)
    readings = "#boxes .reading"

    def rects():
        return page.locator(readings).evaluate_all(
            "items => items.map(r => r.getBoundingClientRect().toJSON())"
        )

    def overlapping(boxes):
        return any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])

    assert not overlapping(rects())
    digits = page.locator(f"{readings} b").all_text_contents()
    assert len(digits) == 8 and all(d.strip() for d in digits)
    # with room again (a wider window), the percentages come back
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_function(
        "() => !document.querySelector('#boxes').classList.contains('compact')"
    )
    assert page.locator(f"{readings} .pct").first.is_visible()
    assert not overlapping(rects())
    assert errors == []
    page.close()


def test_a_second_finger_on_the_pad_does_not_draw(browser, server_url):
    """A finger or palm resting on a tablet's pad while another draws: only the
    first finger's stroke is drawn (its points were mixed with the second's, which
    filled the pad with zigzags)."""
    page, errors = open_page(
        browser, server_url, viewport={"width": 390, "height": 844}, has_touch=True
    )
    box = page.locator("#pad").bounding_box()
    cdp = page.context.new_cdp_session(page)

    def touch(kind, *fingers):
        """fingers: (id, fx, fy) with fx, fy fractions of the pad."""
        points = [
            {
                "id": i,
                "x": box["x"] + fx * box["width"],
                "y": box["y"] + fy * box["height"],
            }
            for i, fx, fy in fingers
        ]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", (0, 0.5, 0.15))
    for k in range(1, 4):
        touch("touchMove", (0, 0.5, 0.15 + 0.07 * k))
    touch("touchStart", (0, 0.5, 0.36), (1, 0.1, 0.9))  # the second finger lands
    for k in range(4, 11):
        touch("touchMove", (0, 0.5, 0.15 + 0.07 * k), (1, 0.1 + 0.01 * k, 0.9))
    touch("touchEnd", (1, 0.2, 0.9))  # the second finger lifts first
    touch("touchEnd")
    page.wait_for_function(PREDICTED)
    settle(page)
    # one straight stroke: the left third of the pad, where the second finger was,
    # stays black, and it reads as a 1
    left = page.evaluate(
        """() => {
          const g = document.querySelector('#pad').getContext('2d');
          const w = g.canvas.width, h = g.canvas.height;
          return g.getImageData(0, 0, Math.floor(w / 3), h).data
            .filter((v, i) => i % 4 === 0).reduce((a, b) => a + b, 0);
        }"""
    )
    assert left == 0
    assert page.locator("#digit").get_attribute("data-digit") == "1"
    assert errors == []
    page.close()


def test_a_server_that_stops_answering_is_reported(browser, server_url):
    """A server that takes connections but never answers (stopped with Ctrl+Z): the
    page says so, rather than showing "Draw a digit" under a drawing forever."""
    page = browser.new_page()
    page.clock.install()  # the page's timers, moved on below without waiting
    page.goto(server_url + "/")
    page.wait_for_selector("#bars li")
    stuck = [True]
    held = []  # requests the stuck "server" never answers

    def answer(route):
        if stuck[0]:
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/predict*", answer)
    with page.expect_request("**/api/predict*"):
        draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    # half a second on, the page says it is reading the drawing
    assert wait_for_status(page, "Reading") == "Reading…"
    draw_stroke(page, [(0.3, 0.5), (0.7, 0.5)])  # its request waits for the first's
    page.evaluate("() => new Promise(r => paper.toBlob(r))")
    page.clock.fast_forward("00:11")
    status = wait_for_status(page, "did not answer")
    assert status == "The server did not answer within 10 s."
    assert "did not answer" in page.locator("#announce").text_content()
    assert result_is_empty(page)
    # the second stroke's request, sent now, leaves the error on show, not "Reading…"
    page.clock.fast_forward("00:01")
    assert page.locator("#status").text_content() == status
    # the page is not stuck with it: once the server answers again, so does the page
    stuck[0] = False
    page.clock.fast_forward("00:11")  # the second stroke's request times out too
    page.keyboard.press("Escape")
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    page.wait_for_function(PREDICTED)
    assert len(held) == 2  # never answered
    page.close()


def test_undoing_the_only_stroke_at_once_leaves_no_answer(browser, server_url):
    """Ctrl+Z as the stroke ends, before the page has made its PNG: the drawing is
    empty, and the answer for the stroke undone is not shown under it."""
    page, errors = open_page(browser, server_url)
    page.evaluate(
        """() => document.querySelector('#pad').addEventListener('pointerup', () =>
          document.dispatchEvent(
            new KeyboardEvent('keydown', {key: 'z', ctrlKey: true})),
          {once: true})"""
    )
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)])
    # the page's PNGs are made (in order), then its requests answered
    settle(page)
    assert pad_brightness(page) == 0
    assert result_is_empty(page)
    assert errors == []
    page.close()


def test_a_press_after_a_missed_release_starts_a_new_stroke(browser, server_url):
    """The pointer drawing is pressed again without its release having arrived (a
    window switch mid-stroke): a new stroke starts there, not a line joined to the
    last one, and not nothing (a press by another pointer meanwhile is ignored)."""
    page, errors = open_page(browser, server_url)
    centre = page.evaluate(
        """() => {
          const pad = document.querySelector('#pad');
          const r = pad.getBoundingClientRect();
          const send = (type, fx, fy) => pad.dispatchEvent(new PointerEvent(type, {
            pointerId: 1, pointerType: 'mouse', isPrimary: true, buttons: 1,
            button: type === 'pointermove' ? -1 : 0, bubbles: true, cancelable: true,
            clientX: r.left + fx * r.width, clientY: r.top + fy * r.height}));
          send('pointerdown', 0.2, 0.2);
          send('pointermove', 0.2, 0.8);  // its pointerup never comes
          send('pointerdown', 0.8, 0.2);
          send('pointermove', 0.8, 0.8);
          send('pointerup', 0.8, 0.8);
          const g = pad.getContext('2d');
          const at = (fx, fy) => g.getImageData(fx * pad.width, fy * pad.height, 1, 1)
            .data[0];
          return [at(0.2, 0.5), at(0.5, 0.5), at(0.8, 0.5)];
        }"""
    )
    assert centre == [255, 0, 255]  # two strokes, nothing between them
    page.wait_for_function(PREDICTED)
    assert errors == []
    page.close()


class Restartable:
    """An app whose `app` can be swapped while a page has it open: the server
    restarted at the same address with another model."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def bar_labels(page) -> list[str]:
    return page.locator("#bars .label").all_text_contents()


def test_an_answer_is_labelled_by_the_model_that_gave_it(
    browser, trained_model, fashion_model
):
    """The server restarted with a model of clothes under a page opened on a model of
    digits: the page labelled the clothes model's answers with the digits' names
    (read once, on loading) until it was reloaded."""
    digits = create_app(trained_model, security_headers=False)
    server = Restartable(digits)
    with running(server) as url:
        page, errors = open_page(browser, url, viewport={"width": 1100, "height": 900})
        assert bar_labels(page) == [str(i) for i in range(10)]
        server.app = create_app(fashion_model, security_headers=False)
        draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
        page.wait_for_function(PREDICTED)
        settle(page)
        assert page.locator("#digit").text_content() == "T-shirt/top"
        assert bar_labels(page) == list(CLASS_NAMES["fashion-mnist"])
        best = page.locator("#bars li.best .label").text_content()
        assert best == "T-shirt/top"
        assert page.locator("h1").text_content() == "Draw a picture"
        assert words_about_digits(page) == []
        # a number is read by a model of digits only
        assert page.locator("#number-mode").is_hidden()
        # and back to digits: the prompts ask for a digit again
        server.app = digits
        page.keyboard.press("Escape")
        draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
        page.wait_for_function(PREDICTED)
        settle(page)
        assert bar_labels(page) == [str(i) for i in range(10)]
        assert page.locator("h1").text_content() == "Draw a digit"
        assert page.title() == "nnscratch: draw a digit"
        assert page.locator("#digit").get_attribute("title") == "Predicted digit"
        assert page.locator("#number-mode").is_visible()
        assert page.locator("#upload-text").text_content() == (
            "Or read a picture of a digit"
        )
        assert errors == []
        page.close()


def drawn_input(page) -> np.ndarray:
    """Draw a "1" on the pad: the picture the page sent for it (the PNG of the last
    request, as a gray (H, W) array)."""
    from PIL import Image

    sent = []

    def record(route):
        sent.append(route.request.post_data_buffer)  # (a request event's is empty)
        route.continue_()

    page.route("**/api/predict*", record)
    draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
    # the answer to the whole stroke (the last one), not to a part of it
    page.wait_for_function(
        "() => document.querySelector('#announce').textContent.startsWith('Looks')"
    )
    settle(page)
    page.unroute("**/api/predict*", record)
    return np.asarray(Image.open(io.BytesIO(sent[-1])).convert("L"), float)


@pytest.mark.parametrize("width, height", [(1920, 1080), (2560, 1440)])
def test_the_pad_grows_on_a_big_screen(
    browser, server_url, artifacts_dir, width, height
):
    """On a projector or a big monitor the pad was 313 px whatever the screen: it
    takes the room there is (the drawing card still fits the window's height), and
    the server still gets the same 280x280 drawing."""
    page, errors = open_page(
        browser, server_url, viewport={"width": width, "height": height}
    )
    pad = page.locator("#pad").bounding_box()
    card = page.locator(".card.draw").bounding_box()
    assert pad["width"] >= 0.45 * height
    assert pad["width"] == pytest.approx(pad["height"], abs=1)
    assert card["y"] + card["height"] <= height
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(artifacts_dir / f"serve-{width}.png"))
    big = drawn_input(page)
    small_page, _ = open_page(
        browser, server_url, viewport={"width": 1100, "height": 900}
    )
    small = drawn_input(small_page)
    assert big.shape == small.shape == (280, 280)
    # the same picture, but for where the mouse's positions round to
    assert np.abs(big - small).mean() < 2
    # number mode: the wide pad grows too, and fits the window as well
    page.locator("#number-mode").check()
    wide = page.locator("#pad").bounding_box()
    card = page.locator(".card.draw").bounding_box()
    assert wide["width"] > 1.5 * pad["width"] and card["y"] + card["height"] <= height
    assert errors == []
    small_page.close()
    page.close()


def pad_pixels(page) -> dict:
    """The pad's size on screen (CSS px, inside its border) and in canvas pixels."""
    return page.locator("#pad").evaluate(
        """pad => ({css: [pad.clientWidth, pad.clientHeight],
                   canvas: [pad.width, pad.height], dpr: devicePixelRatio})"""
    )


@pytest.mark.parametrize(
    "width, height, scale",
    [(1100, 900, 2), (2560, 1440, 1), (390, 844, 3)],
)
def test_the_pad_is_sharp_at_any_size_and_pixel_ratio(
    browser, server_url, artifacts_dir, width, height, scale
):
    """The pad drew on 280x280 canvas pixels whatever its size, scaled up by CSS:
    soft strokes on a phone's or a Retina screen (3 and 2 device pixels a CSS pixel)
    and on a big monitor. It has a canvas pixel per device pixel now, and the server
    still gets the 280x280 picture it got for the same stroke at 1x."""
    page, errors = open_page(
        browser,
        server_url,
        viewport={"width": width, "height": height},
        device_scale_factor=scale,
        has_touch=width < 500,
    )
    size = pad_pixels(page)
    assert size["dpr"] == scale
    for css, canvas in zip(size["css"], size["canvas"]):
        assert abs(canvas - css * scale) <= 1
    sharp = drawn_input(page)
    # the stroke on screen: a 14th of the pad wide, with a crisp edge (a pixel or
    # two of gray at most, where CSS scaling blurred it over `scale` and more)
    row = page.evaluate(
        """() => {
          const g = document.querySelector('#pad').getContext('2d');
          const w = g.canvas.width;
          return [...g.getImageData(0, g.canvas.height / 2, w, 1).data]
            .filter((v, i) => i % 4 === 0);
        }"""
    )
    gray = sum(1 for v in row if 20 < v < 235)
    lit = sum(1 for v in row if v >= 235)
    assert gray <= 4 and lit == pytest.approx(len(row) / 14, rel=0.1)
    page.screenshot(path=str(artifacts_dir / f"serve-dpr{scale}-{width}.png"))
    plain, _ = open_page(browser, server_url, viewport={"width": 1100, "height": 900})
    reference = drawn_input(plain)
    assert sharp.shape == reference.shape == (280, 280)
    assert np.abs(sharp - reference).mean() < 2
    # after a resize (a phone turned, a window dragged to another screen) too
    page.set_viewport_size({"width": height, "height": width})
    page.wait_for_function(
        "() => Math.abs(pad.width - pad.clientWidth * devicePixelRatio) <= 1"
    )
    page.keyboard.press("Escape")
    assert np.abs(drawn_input(page) - reference).mean() < 2
    assert errors == []
    plain.close()
    page.close()


def test_a_late_answer_for_the_drawing_replaced_by_a_photo_is_not_shown(
    browser, server_url, tmp_path
):
    """A photo picked while the drawing's answer is on its way: that answer, coming
    after, was shown under the photo (until the photo's own answer replaced it)."""
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    photo.save(tmp_path / "one.jpg")
    page, errors = open_page(browser, server_url)
    held = []  # the requests the "server" has not answered yet
    page.route("**/api/predict*", lambda route: held.append(route))
    # a "7": what its answer would show is not what the photo reads
    draw_stroke(page, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])
    page.wait_for_function("() => inFlight")
    page.set_input_files("#upload", str(tmp_path / "one.jpg"))
    while not held:
        page.wait_for_timeout(20)
    held.pop().continue_()  # the drawing's answer arrives
    while not held:  # the photo is sent once that answer is dealt with
        page.wait_for_timeout(20)
    assert page.locator("#digit").get_attribute("data-digit") is None
    assert page.locator("#status").text_content().startswith("one.jpg: ")
    held.pop().continue_()
    # then the photo's own answer is shown
    page.wait_for_function(PREDICTED)
    settle(page)
    assert page.locator("#status").text_content().startswith("one.jpg: ")
    assert page.locator("#digit").get_attribute("data-digit") == "1"
    assert errors == []
    page.close()


def test_escape_clears_a_photo_picked_with_the_keyboard(browser, server_url, tmp_path):
    """Tab to the file button, pick a photo: the focus stays on that button, where
    Escape and Ctrl+Z (the page's hint: "Escape clears") did nothing."""
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    photo.save(tmp_path / "one.jpg")
    page, errors = open_page(browser, server_url)
    while page.evaluate("() => document.activeElement.id") != "upload":
        page.keyboard.press("Tab")
    for key in ("Escape", "Control+z"):
        page.set_input_files("#upload", str(tmp_path / "one.jpg"))
        page.wait_for_function(PREDICTED)
        settle(page)
        assert page.evaluate("() => document.activeElement.id") == "upload"
        page.keyboard.press(key)
        assert result_is_empty(page) and pad_brightness(page) == 0, key
        assert "cleared" in page.locator("#announce").text_content()
    assert errors == []
    page.close()


@pytest.mark.parametrize("width", [320, 390])
def test_a_long_file_name_stays_in_its_card_on_a_phone(
    browser, server_url, tmp_path, width
):
    """A Pixel phone's photo name, with no space to wrap at, pushed the status line
    out of its card and made the page scroll sideways."""
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (300, 400), (235, 230, 220))
    ImageDraw.Draw(photo).line([(150, 60), (150, 340)], fill=(20, 20, 30), width=24)
    name = "PXL_20261205_185959123.PORTRAIT.ORIGINAL.jpg"
    photo.save(tmp_path / name)
    page, errors = open_page(
        browser, server_url, viewport={"width": width, "height": 844}, has_touch=True
    )
    page.set_input_files("#upload", str(tmp_path / name))
    page.wait_for_function(PREDICTED)
    settle(page)
    assert page.locator("#status").text_content().startswith(name)
    assert inside(
        text_box(page, "#status"), page.locator(".card.result").bounding_box()
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert errors == []
    page.close()


def test_ctrl_shift_z_does_not_undo(browser, server_url):
    """Ctrl+Shift+Z is redo in drawing programs: it undid a stroke (there is no redo
    here, so it does nothing)."""
    page, errors = open_page(browser, server_url)
    draw_stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    settle(page)
    page.keyboard.press("Control+Shift+Z")
    assert page.evaluate("() => strokes.length") == 1
    assert not result_is_empty(page) and pad_brightness(page) > 0
    page.keyboard.press("Control+z")
    assert page.evaluate("() => strokes.length") == 0
    assert errors == []
    page.close()


def test_a_screen_reader_hears_the_bars_as_they_are_shown(browser, server_url):
    """Each bar is read as "<class>: <probability>": cleared, the bars showed 0% but
    a screen reader still read the last prediction's figures ("1: 96.6%")."""
    page, errors = open_page(browser, server_url)
    draw_stroke(page, [(0.5, 0.15 + 0.07 * i) for i in range(11)])
    page.wait_for_function(PREDICTED)
    settle(page)
    shown = page.locator("#bars li .pct").all_text_contents()
    for i, pct in enumerate(shown):
        assert page.get_by_role("listitem", name=f"{i}: {pct}", exact=True).count()
    page.keyboard.press("Escape")
    for i in range(10):
        bar = page.get_by_role("listitem", name=f"{i}: 0%", exact=True)
        assert bar.count() == 1, i
    # the activations' label names a group (on a plain div it was read by nothing)
    assert page.get_by_role("group", name="Hidden layer activations").count() == 1
    assert errors == []
    page.close()


def contrast(a: tuple, b: tuple) -> float:
    """WCAG contrast ratio of two sRGB colours given as (r, g, b) in 0..255."""

    def luminance(rgb):
        c = np.asarray(rgb, float) / 255
        c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return c @ [0.2126, 0.7152, 0.0722]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_button_labels_have_aa_contrast(browser, server_url):
    """White "Undo" and "Clear" on the light end of the blue-violet gradient: 2.3:1,
    under WCAG AA's 4.5:1 for text of their size."""
    import re

    page, errors = open_page(browser, server_url)
    for button in ("#undo", "#clear"):
        text, background = page.locator(button).evaluate(
            "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundImage]"
        )
        colours = [
            tuple(map(int, m.groups()[:3]))
            for m in re.finditer(r"rgba?\((\d+), (\d+), (\d+)", text + background)
        ]
        label, stops = colours[0], colours[1:]
        assert len(stops) == 2, background
        assert min(contrast(label, stop) for stop in stops) >= 4.5, button
    assert errors == []
    page.close()


def test_bars_do_not_animate_with_reduced_motion(browser, server_url):
    """The bars slid to their new widths even for a user who asked the system for
    reduced motion."""
    page, errors = open_page(browser, server_url, reduced_motion="reduce")
    durations = page.locator("#bars .fill").evaluate_all(
        "fills => fills.map(f => getComputedStyle(f).transitionDuration)"
    )
    assert durations == ["0s"] * 10
    assert errors == []
    page.close()


def test_a_clothes_model_at_200_percent_zoom_needs_no_sideways_scroll(
    browser, fashion_url, artifacts_dir
):
    """A 1024x768 window zoomed to 200% (512x384 CSS pixels): the pad, buttons and a
    clothes model's answer side by side were 540 px wide, scrolling sideways; the
    cards now stack, the pad as large as on a phone."""
    page, errors = open_page(
        browser,
        fashion_url,
        viewport={"width": 512, "height": 384},
        device_scale_factor=2,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 512
    pad = page.locator("#pad").bounding_box()
    assert pad["width"] >= 250
    for part in ("#pad", "#undo", "#clear", "#upload", ".card.result"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 512, part
    page.screenshot(path=str(artifacts_dir / "serve-zoom-200.png"), full_page=True)
    assert errors == []
    page.close()
