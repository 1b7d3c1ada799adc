"""`nnscratch predict MODEL IMAGE...` through the command line's entry point."""

import contextlib
import io
import itertools
import json
import os
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PIL import Image, ImageDraw

from nnscratch import CLASS_NAMES, Dense, Flatten, ReLU, Sequential, cli, load_model
from nnscratch.app.predict import model_input, top_classes
from nnscratch.imaging import decode, images


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = Sequential(
        [Flatten(), Dense(784, 32, rng=0), ReLU(), Dense(32, 10, rng=1)],
        input_shape=(28, 28),
        loss="cross_entropy",
    )
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    model.save(path)
    return path


@pytest.fixture()
def digit_png(tmp_path):
    img = Image.new("L", (120, 140), 255)
    ImageDraw.Draw(img).line([(25, 20), (95, 20), (50, 120)], fill=0, width=10)
    path = tmp_path / "seven.png"
    img.save(path)
    return path


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args) -> Result:
    """`nnscratch predict ARGS` as a user runs it (cli.main turns errors into lines)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["predict", *map(str, args)])
    return Result(code, out.getvalue(), err.getvalue())


def test_predicts_a_good_image(model_path, digit_png):
    result = run(model_path, digit_png)
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    # 'seven.png: 3 (41.2%), then 5 (20.0%), 8 (9.9%)', matching the model itself
    model = load_model(model_path)
    x = images.to_mnist(decode.load_image(digit_png))
    probs = model.predict(model_input(model, x))[0]
    best = top_classes(probs, [str(i) for i in range(10)])
    assert line.startswith(f"{digit_png}: {best['label']} ({best['probability']:.1%})")
    assert line.count("%") == 3


def test_json_output_lists_results_and_errors(model_path, digit_png, tmp_path):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    missing = tmp_path / "missing.png"
    result = run(model_path, digit_png, not_image, missing, blank, "--json")
    assert result.exit_code == 1
    docs = json.loads(result.stdout)  # stdout is one JSON document
    assert [d["file"] for d in docs] == [
        str(p) for p in (digit_png, not_image, missing, blank)
    ]
    good, bad_txt, bad_missing, bad_blank = docs
    assert "error" not in good
    assert sum(good["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert good["digit"] == good["top"][0]["digit"] and len(good["top"]) == 3
    assert np.asarray(good["input"]).shape == (28, 28)
    assert "not an image" in bad_txt["error"]
    assert "no such file" in bad_missing["error"]
    assert "no digit" in bad_blank["error"]
    assert all(d["digit"] is None for d in docs[1:])


def test_bad_files_get_one_line_errors_and_the_others_are_still_predicted(
    model_path, digit_png, tmp_path
):
    not_image = tmp_path / "fake.png"
    not_image.write_bytes(b"\x89PNG but not really")
    missing = tmp_path / "nope.jpg"
    result = run(model_path, missing, not_image, digit_png)
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 and str(digit_png) in result.stdout
    errors = result.stderr.strip().splitlines()
    assert errors[0] == f"{missing}: no such file"
    assert errors[1].startswith(f"{not_image}: not an image")
    assert errors[2] == "2 of 3 images failed"
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def huge_model_path(tmp_path_factory):
    """Finite weights (3e38) that overflow float32: NaN probabilities."""
    model = Sequential(
        [Flatten(), Dense(784, 32, rng=0), ReLU(), Dense(32, 10, rng=1)],
        input_shape=(28, 28),
    )
    model.layers[1].params["W"][:] = 3e38
    path = tmp_path_factory.mktemp("model") / "huge.npz"
    model.save(path)
    return path


def reject_nan(constant: str):
    raise AssertionError(f"{constant} in the JSON output")


@pytest.mark.filterwarnings("error")  # and no RuntimeWarning
def test_outputs_that_overflow_are_an_error_not_nan(huge_model_path, digit_png):
    plain = run(huge_model_path, digit_png)
    assert plain.exit_code == 1 and plain.stdout == ""
    assert plain.stderr.splitlines() == [
        (
            f"{digit_png}: the model's outputs are NaN or infinite: its weights are"
            " so large that float32 arithmetic overflows"
        ),
        "1 of 1 images failed",
    ]
    as_json = run(huge_model_path, digit_png, "--json")
    assert as_json.exit_code == 1
    (doc,) = json.loads(as_json.stdout, parse_constant=reject_nan)  # valid JSON
    assert doc["digit"] is None and "NaN or infinite" in doc["error"]


def test_show_saves_inputs_beside_what_the_network_saw(model_path, digit_png, tmp_path):
    out = tmp_path / "seen.png"
    result = run(model_path, digit_png, digit_png, "--show", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        width, height = img.size
    assert width > 300 and height > 350  # two rows of two panels
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    umask = os.umask(0)
    os.umask(umask)
    # the permissions any new file gets, not the temporary file's 0600
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_show_into_a_missing_folder_is_a_clear_error(model_path, digit_png, tmp_path):
    target = tmp_path / "no" / "dir.png"
    result = run(model_path, digit_png, "--show", target)
    assert result.exit_code == 1
    # said before any answer: the digit's line was printed, then the error
    assert result.stdout == ""
    assert (
        result.stderr
        == f"error: --show {target}: folder {target.parent} does not exist\n"
    )


def test_bad_model_file_is_one_line(digit_png, tmp_path):
    fake = tmp_path / "model.npz"
    fake.write_text("not a model")
    result = run(fake, digit_png)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {fake}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_model_with_another_input_size_is_refused(digit_png, tmp_path):
    path = tmp_path / "small.npz"
    Sequential([Dense(16, 10, rng=0)], input_shape=(16,)).save(path)
    result = run(path, digit_png)
    assert result.exit_code == 1
    assert "expects inputs of shape (16,)" in result.stderr


def test_a_model_with_one_output_is_refused_not_shown_as_class_0(digit_png, tmp_path):
    # a regression model: its output was shown as "0 (-15.7%)"
    path = tmp_path / "regression.npz"
    model = Sequential([Flatten(), Dense(784, 1, rng=0)], input_shape=(28, 28))
    model.compile(loss="mse")
    model.save(path)
    result = run(path, digit_png)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path} gives one output per image, not one per class" in result.stderr


def test_top_classes_orders_classes_by_probability():
    probs = np.array([0.1, 0.6, 0.05, 0.25])
    d = top_classes(probs, ["a", "b", "c", "d"])
    assert (d["digit"], d["label"]) == (1, "b")
    assert [t["label"] for t in d["top"]] == ["b", "d", "a"]
    assert_allclose(d["probabilities"], probs)


def test_a_fashion_model_sees_pictures_laid_out_like_fashion_mnist(digit_png, tmp_path):
    model = Sequential([Flatten(), Dense(784, 10, rng=0)], input_shape=(28, 28))
    paths = {}
    for dataset in ("mnist", "fashion-mnist"):
        model.metadata = {"training": {"dataset": dataset}}
        paths[dataset] = tmp_path / f"{dataset}.npz"
        model.save(paths[dataset])
    seen = {}
    for dataset, path in paths.items():
        result = run(path, digit_png, "--json")
        assert result.exit_code == 0, result.output
        seen[dataset] = np.array(json.loads(result.output)[0]["input"])
    # MNIST: the longer side fitted in 20 pixels; Fashion-MNIST: filling all 28
    assert np.flatnonzero(seen["mnist"].any(axis=1)).size <= 21
    assert np.flatnonzero(seen["fashion-mnist"].any(axis=1)).size == 28


@pytest.fixture()
def number_png(tmp_path):
    img = Image.new("L", (420, 160), 255)
    draw = ImageDraw.Draw(img)
    for left in (30, 150, 270):  # three "7"s
        draw.line([(left, 30), (left + 80, 30), (left + 30, 130)], fill=0, width=10)
    path = tmp_path / "777.png"
    img.save(path)
    return path


def test_number_reads_every_digit(model_path, number_png, digit_png, tmp_path):
    result = run(model_path, number_png, "--number")
    assert result.exit_code == 0, result.output
    name, rest = result.stdout.strip().split(": ", 1)
    assert name == str(number_png) and len(rest.split(" ")[0]) == 3
    assert rest.count("%") == 3 and "(digits " in rest

    result = run(model_path, number_png, digit_png, "--number", "--json")
    rows = json.loads(result.stdout)
    assert [len(r["number"]) for r in rows] == [3, 1]
    digits = rows[0]["digits"]
    assert rows[0]["number"] == "".join(d["label"] for d in digits)
    assert [len(d["top"]) for d in digits] == [3, 3, 3]
    lefts = [d["box"][0] for d in digits]
    assert lefts == sorted(lefts) and np.asarray(digits[0]["input"]).shape == (28, 28)
    # one digit reads as it does without --number
    plain = json.loads(run(model_path, digit_png, "--json").stdout)[0]
    assert rows[1]["digits"][0]["probability"] == pytest.approx(plain["probability"])

    shown = tmp_path / "numbers.png"
    result = run(model_path, number_png, "--number", "--show", shown)
    assert result.exit_code == 0 and Image.open(shown).size[0] > 100


def test_number_needs_a_model_of_the_ten_digits(number_png, tmp_path):
    # a clothes model read "777" as "SneakerSneakerSneaker": refused before any file
    model = Sequential(
        [Flatten(), Dense(784, 10, rng=0)],
        input_shape=(28, 28),
        class_names=CLASS_NAMES["fashion-mnist"],
    )
    path = tmp_path / "clothes.npz"
    model.save(path)
    result = run(path, number_png, "--number")
    assert result.exit_code == 1 and result.stdout == ""
    expected = (
        f"error: --number with {path}: a number is read by a model of the digits 0 "
        "to 9; this one tells apart T-shirt/top, Trouser, Pullover, Dress, Coat, "
        "Sandal, Shirt, Sneaker, Bag and Ankle boot"
    )
    assert result.stderr.strip().splitlines() == [expected]
    assert run(path, number_png).exit_code == 0  # one picture, one garment: fine


def test_number_in_a_blank_picture_or_on_two_lines(model_path, number_png, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 100), 255).save(blank)
    result = run(model_path, blank, "--number")
    assert result.exit_code == 1 and "no digit found" in result.stderr

    # a dash was cut in dozens of one-pixel "digits": 8888... and a warning
    dash = tmp_path / "dash.png"
    img = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(img).line([(50, 100), (550, 100)], fill=0, width=8)
    img.save(dash)
    # a bold hyphen alone (twice as wide as high) was read "888" or "1881"
    hyphen = tmp_path / "hyphen.png"
    img = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(img).line([(100, 100), (180, 100)], fill=0, width=40)
    img.save(hyphen)
    for path, number in itertools.product((dash, hyphen), (["--number"], [])):
        result = run(model_path, path, *number)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.splitlines()[0] == (
            f"{path}: no digit found (the image is blank, the ink too faint, or only"
            " a dot or a dash)"
        )

    two = Image.new("L", (420, 340), 255)
    two.paste(Image.open(number_png), (0, 0))
    two.paste(Image.open(number_png), (0, 170))
    path = tmp_path / "two.png"
    two.save(path)
    result = run(model_path, path, "--number")
    assert result.exit_code == 0
    assert "2 lines; read the first only" in result.stderr
    assert result.stdout.count("%") == 3
