"""The run report: write_figures/write_report on synthetic data, a real (short) training
run through the CLI, rebuilding it, damaged run directories, and a browser check."""

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnscratch import Dense, Flatten, ReLU, Sequential, load_model
from nnscratch.cli import main
from nnscratch.data import catalog
from nnscratch.errors import NnscratchError
from nnscratch.reporting.metrics import per_class_rows
from nnscratch.reporting.page import CAPTIONS, SCROLL_ON_PHONE, write_report
from nnscratch.reporting.recordings import Recordings
from nnscratch.reporting.report import FIGURE_FILES, write_figures
from nnscratch.runs.lock import RunLock
from nnscratch.runs.rebuild import rebuild_report
from nnscratch.runs.rundir import read_json

MNIST = catalog.DATASETS["mnist"]

# (width, height) in pixels of each PNG for 10 classes: figsize in inches x 192 DPI
EXPECTED_SIZES = {
    "learning_curves.png": (2496, 844),
    "learning_curves_narrow.png": (806, 1958),
    "confusion_matrix.png": (1248, 1113),
    "confusion_matrix_normalized.png": (1248, 1113),
    "per_class.png": (960, 1459),
    "sample_predictions.png": (1920, 2323),
    "top_mistakes.png": (1968, 2467),
    "first_layer_features.png": (1881, 1862),
}


def _check_picture(path: Path, size=None) -> None:
    with Image.open(path) as image:
        if size is not None:
            assert image.size == size, path.name
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 15, f"{path.name} looks blank"


# ----- synthetic: no data needed ------------------------------------------------------
def _tiny_run():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28)).astype(np.uint8)
    labels = np.arange(40) % 10
    layers = [Flatten(), Dense(784, 64, rng=rng), ReLU(), Dense(64, 10, rng=rng)]
    model = Sequential(layers, input_shape=(28, 28))
    history = [{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.2}]
    history.append({"epoch": 2, "loss": 1.9, "accuracy": 0.3, "val_loss": 2.0})
    config = {"dataset": "mnist", "preset": "<tiny & quick>", "hidden": [], "lr": 0.1}
    metrics = {"test_accuracy": 0.25, "test_loss": 2.1}
    metrics["confusion_matrix"] = np.eye(10, dtype=int).tolist()
    return model, history, images, labels, config, metrics


def test_write_figures_and_report_without_recordings(tmp_path):
    model, history, images, labels, config, metrics = _tiny_run()
    figures_dir = tmp_path / "run" / "figures"
    written = write_figures(
        figures_dir,
        model,
        history,
        np.linspace(2.5, 1.8, 20),
        images,
        labels,
        [str(i) for i in range(10)],
    )
    names = {p.name for p in written}
    assert names == set(EXPECTED_SIZES)  # no training.gif without recordings
    # every picture has its caption and place on the page (and --overwrite knows it)
    assert names | {"training.gif"} == set(FIGURE_FILES)
    for path in written:  # 25 samples and >= 25 mistakes: the full-size grids
        _check_picture(path, EXPECTED_SIZES[path.name])
    page_path = write_report(
        tmp_path / "run" / "page.html",
        figures_dir,
        config,
        metrics,
        model_summary="0 Flatten <none>",
    )
    assert page_path == tmp_path / "run" / "page.html"
    page = page_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(EXPECTED_SIZES)
    assert "data:image/gif" not in page
    # Every text is escaped; the per-class table comes from the confusion matrix.
    assert "&lt;tiny &amp; quick&gt;" in page and "<tiny" not in page
    assert "0 Flatten &lt;none&gt;" in page
    assert page.count("100.00%") >= 30  # precision, recall and F1 of 10 classes
    assert "25.00%" in page  # the test-accuracy card
    assert f"<code>{(tmp_path / 'run').resolve()}</code>" in page  # the run directory
    assert not list((tmp_path / "run").rglob(".*.tmp"))  # atomic writes: no temp files


def test_each_picture_links_to_its_file_and_keeps_the_size_it_was_drawn_for(tmp_path):
    """A figure was shrunk to the window with nothing to open it bigger: on a phone,
    its text was 3 px high. Now each links to its file (a tap opens it full size) and
    is shown as wide as it was drawn for (its PNG has 2 pixels a CSS pixel); the
    learning curves have a one-column version for phones."""
    model, history, images, labels, config, _ = _tiny_run()
    figures_dir = tmp_path / "run" / "figures"
    losses = np.linspace(2.5, 1.8, 20)
    write_figures(
        figures_dir, model, history, losses, images, labels, list("0123456789")
    )
    page_path = write_report(tmp_path / "run" / "report.html", figures_dir, config, {})
    page = page_path.read_text(encoding="utf-8")
    links = re.findall(
        r'<a class="picture" href="([^"]+)">(.*?)</a><figcaption>[^<]*'
        r'<a href="([^"]+)">full size</a>',
        page,
    )
    assert len(links) == len(CAPTIONS) - 1  # no training.gif without recordings
    for href, tag, caption_href in links:
        assert caption_href == href and href.startswith("figures/")
        with Image.open(page_path.parent / href) as image:
            width, height = image.size
        img = re.search(r'<img src="data:[^"]+" width="(\d+)" height="(\d+)"', tag)
        assert abs(int(img[1]) - width / 2) <= 1 and abs(int(img[2]) - height / 2) <= 1
    curves = next(
        tag for href, tag, _ in links if href.endswith("/learning_curves.png")
    )
    source = re.search(
        r'<source media="([^"]+)" srcset="data:[^"]+" width="(\d+)"', curves
    )
    assert source[1] == "(max-width: 900px)" and int(source[2]) <= 410
    assert "@media (max-width: 600px)" in page  # the phone's narrower margins


def test_the_test_metrics_read_as_evaluate_prints_them(tmp_path):
    metrics = {"test_loss": 1.8167447, "test_accuracy": 0.4085, "test_examples": 10000}
    metrics["train_seconds"] = 5.736123
    page = write_report(tmp_path / "page.html", tmp_path, {}, metrics)
    page = page.read_text(encoding="utf-8")
    assert '<th>test_loss</th><td class="num">1.8167</td>' in page  # not 1.817
    assert '<th>test_accuracy</th><td class="num">40.85%</td>' in page  # as its card
    assert '<th>test_examples</th><td class="num">10,000</td>' in page
    assert '<th>train_seconds</th><td class="num">5.74</td>' in page


def test_each_picture_has_a_text_alternative_with_its_numbers(tmp_path):
    # the alt text was the caption printed under the picture: a screen reader read
    # the same sentence twice and none of what the picture shows
    for name in FIGURE_FILES:
        (tmp_path / name).write_bytes(b"not read")
    history = {"loss": [1.6538, 0.9591, 0.7613], "accuracy": [0.417, 0.6633, 0.7133]}
    history["val_accuracy"] = [0.6167, 0.7033, 0.7333]
    cm = [[80, 5, 15], [2, 90, 8], [30, 1, 69]]
    names = ["T-shirt/top", "Trouser", "Pullover"]
    metrics = {"confusion_matrix": cm, "per_class": per_class_rows(cm, names)}
    write_report(tmp_path / "page.html", tmp_path, {}, metrics, history)
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    figures = re.findall(r'alt="([^"]*)">(?:</picture>)?</a><figcaption>([^<(]*)', page)
    assert len(figures) == len(CAPTIONS)  # the narrow curves are the curves' <source>
    assert all(alt and alt != caption.strip() for alt, caption in figures)
    alts = dict(zip(CAPTIONS, (alt for alt, _ in figures)))
    curves = alts["learning_curves.png"]
    assert "training loss 1.6538 at epoch 1, 0.7613 at epoch 3" in curves
    assert "validation accuracy 61.67% at epoch 1, 73.33% at epoch 3" in curves
    assert "validation loss" not in curves  # not recorded
    # the largest confusions first, each with its count
    assert (
        "Pullover taken for T-shirt/top 30 times, T-shirt/top for Pullover 15"
        in (alts["confusion_matrix.png"])
    )
    assert (
        "from 69.0% (Pullover) to 90.0% (Trouser)"
        in (alts["confusion_matrix_normalized.png"])
    )
    assert (
        "precision from 71.4% (T-shirt/top) to 93.8% (Trouser)"
        in (alts["per_class.png"])
    )


@pytest.mark.parametrize(
    "cm", [[["a", "b"], ["c", "d"]], [[1, None], [0, 1]], [[1, 2], [3]], 5, {"a": 1}]
)
def test_a_damaged_confusion_matrix_leaves_the_per_class_table_empty(tmp_path, cm):
    metrics = {"test_accuracy": 0.5, "confusion_matrix": cm}
    page = write_report(tmp_path / "page.html", tmp_path, {"dataset": "mnist"}, metrics)
    assert "Per class" in page.read_text(encoding="utf-8")


def test_a_run_json_file_must_be_there_and_readable(tmp_path):
    with pytest.raises(NnscratchError, match=r"config\.json: file not found"):
        read_json(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(NnscratchError, match=r"config\.json: not a readable JSON"):
        read_json(tmp_path / "config.json")


# ----- a real run on MNIST --------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    argv = ["train", "--data-dir", str(data_dir), "--hidden", "64", "--epochs", "2"]
    argv += ["--limit", "3000", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def _check_run(run_dir: Path) -> None:
    for name, size in EXPECTED_SIZES.items():
        _check_picture(run_dir / "figures" / name, size)
    with Image.open(run_dir / "figures" / "training.gif") as gif:
        assert gif.n_frames == 2  # one per epoch
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(EXPECTED_SIZES)
    assert page.count("data:image/gif;base64,") == 1
    # no external requests: every src is a data URI, no scripts, no links to fetch
    assert re.findall(r'src="(?!data:)', page) == [] and "<script" not in page
    assert "http://" not in page and "https://" not in page
    for text in ("Per class", "Per epoch", "Configuration", "test_accuracy", "Dense"):
        assert text in page


def test_train_writes_report(run_dir):
    _check_run(run_dir)
    assert (run_dir / "recordings.npz").is_file()
    assert Recordings.load(run_dir / "recordings.npz").epochs == 2


def test_report_command_rebuilds(run_dir, data_dir, capsys):
    shutil.rmtree(run_dir / "figures")
    (run_dir / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(run_dir), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    _check_run(run_dir)


def test_rebuild_without_recordings_has_no_animation(run_dir, data_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "recordings.npz").unlink()
    assert (copy / "figures" / "training.gif").is_file()  # the earlier report's
    page = rebuild_report(copy, data_dir).read_text(encoding="utf-8")
    assert "data:image/gif" not in page
    assert not (copy / "figures" / "training.gif").exists()


def test_rebuild_after_the_data_moved_looks_in_the_usual_places(
    run_dir, data_dir, tmp_path, monkeypatch
):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data_dir"] = str(tmp_path / "moved-away")
    (copy / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(data_dir))
    assert rebuild_report(copy).is_file()


def test_rebuild_needs_only_the_two_test_files(
    run_dir, data_dir, tmp_path, capsys, monkeypatch
):
    """The test set is all a report reads: a folder without the training files
    serves (given, or the run's own whose training files went), and one lacking a
    test file is one error line naming that file."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    folder = tmp_path / "test-only"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, folder / name)
    assert main(["report", str(copy), "--data-dir", str(folder)]) == 0
    _check_run(copy)
    config = json.loads((copy / "config.json").read_text())
    config["data_dir"] = str(folder)
    (copy / "config.json").write_text(json.dumps(config))
    monkeypatch.delenv("NNSCRATCH_DATA_DIR")  # nowhere else to look
    monkeypatch.setenv("NNSCRATCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(catalog, "SYSTEM_DATA_ROOT", tmp_path / "no-datasets")
    monkeypatch.setitem(catalog.DATASETS, "mnist", replace(MNIST, mirrors=()))
    assert main(["report", str(copy)]) == 0
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    capsys.readouterr()
    assert main(["report", str(copy), "--data-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-" not in err
    assert f"{folder} lacks t10k-images-idx3-ubyte.gz, gzipped or not" in err


def test_rebuild_refuses_a_test_set_other_than_the_scored_one(
    run_dir, data_dir, tmp_path, capsys
):
    # fashion-mnist's files have MNIST's names: a folder named neither passes for it
    other = tmp_path / "idx-files"
    shutil.copytree(data_dir / "fashion-mnist", other)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    capsys.readouterr()
    assert main(["report", str(copy), "--data-dir", str(other)]) == 1
    assert capsys.readouterr().err == (
        f"error: the test set of mnist in --data-dir {other} is not the one"
        f" {copy / 'metrics.json'} was scored on (other class counts): pass"
        " --data-dir with the run's files\n"
    )


def overflowing_weights(run_dir: Path) -> None:
    """Finite weights (3e38) so large that float32 overflows: NaN probabilities."""
    model = load_model(run_dir / "model.npz")
    next(layer for layer in model.layers if "W" in layer.params).params["W"][:] = 3e38
    model.save(run_dir / "model.npz")


@pytest.mark.parametrize(
    "damage, message",
    [
        (overflowing_weights, "the model's outputs are NaN or infinite"),
        (lambda d: (d / "metrics.json").unlink(), "metrics.json: file not found"),
        (lambda d: (d / "config.json").write_text("[1, 2"), "config.json: not a"),
        (lambda d: (d / "history.csv").write_text("a,b\n1,2\n"), "history.csv"),
        (lambda d: (d / "batch_losses.csv").unlink(), "batch_losses.csv"),
        (lambda d: (d / "model.npz").unlink(), "model.npz: file not found"),
        (lambda d: (d / "model.npz").write_bytes(b"garbage"), "model.npz"),
        (lambda d: (d / "recordings.npz").write_bytes(b"garbage"), "recordings.npz"),
        (lambda d: (d / "config.json").write_text("[" * 100_000), "nested too deeply"),
        (lambda d: (d / "metrics.json").write_text("9" * 5000), "metrics.json: not a"),
    ],
)
def test_report_of_damaged_run_dir(run_dir, tmp_path, capsys, damage, message):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    damage(damaged)
    capsys.readouterr()
    assert main(["report", str(damaged)]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_report_of_an_interrupted_or_training_run(tmp_path, capsys):
    # what train leaves when stopped before its end: the lock file and checkpoints
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-000003.npz").write_bytes(b"")
    (tmp_path / ".lock").touch()
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {tmp_path} holds an interrupted run, not a finished one: continue"
        f" it with nnscratch train --resume {tmp_path}"
    )
    with RunLock(tmp_path, "nnscratch train"):  # training there now
        assert main(["report", str(tmp_path)]) == 1
    assert f"{tmp_path} is in use by another run (pid" in capsys.readouterr().err


def test_report_of_missing_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) != 0
    assert "nowhere" in capsys.readouterr().err


def test_report_in_browser(run_dir, artifacts_dir, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: not r.url.startswith("data:") and requests.append(r.url),
    )
    page.goto((run_dir / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == len(CAPTIONS)  # the PNGs and the GIF
    assert all(w > 0 for w in widths)
    # the predictions as wide as they were drawn (10 inches), not their 1920 pixels
    shown = page.eval_on_selector(
        'img[alt^="Grid of the first"]', "i => [i.clientWidth, i.naturalWidth]"
    )
    assert shown == [960, 1920]
    # wide enough for the wide learning curves: 1208 px, their text 10.6 px high
    assert page.eval_on_selector("img", "i => i.naturalWidth") == 2496
    assert errors == []
    # the page itself is the only thing loaded that is not a data URI
    assert requests == [(run_dir / "report.html").resolve().as_uri()]
    # nothing wider than the window: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 1300
    page.screenshot(path=artifacts_dir / "report.png", full_page=True)
    assert (artifacts_dir / "report.png").stat().st_size > 10_000
    page.close()


def test_report_on_a_phone(run_dir, artifacts_dir, browser):
    """At 360 px the figures fill the screen in one column (they were 268 px wide in
    wide margins), the learning curves are the one-column version, and a tap on a
    figure opens its file."""
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto((run_dir / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    boxes = page.eval_on_selector_all(
        "figure img",
        "imgs => imgs.map(i => [i.getBoundingClientRect().left, i.clientWidth])",
    )
    assert len(boxes) == len(CAPTIONS)
    assert all(width >= 320 for _, width in boxes), boxes
    assert len({round(left) for left, _ in boxes}) == 1  # one column
    # the grids, the GIF and the confusion matrices keep the size they were drawn
    # for (their labels were 4-8 px high, shrunk to the screen) and scroll sideways
    # in their panel; the others fit the screen
    shown = page.eval_on_selector_all(
        "figure",
        """figures => figures.map(f => [f.querySelector('a').href.split('/').pop(),
            f.querySelector('img').clientWidth, +f.querySelector('img').getAttribute('width'),
            f.scrollWidth > f.clientWidth])""",
    )
    for name, width, drawn, scrolls in shown:
        if name in SCROLL_ON_PHONE:
            assert width == drawn > 600 and scrolls, name
        else:
            assert width <= 360 and not scrolls, name
    assert {name for name, *_ in shown} >= SCROLL_ON_PHONE
    natural = page.eval_on_selector("img", "i => i.naturalWidth")
    assert natural == EXPECTED_SIZES["learning_curves_narrow.png"][0]
    page.screenshot(path=artifacts_dir / "report-phone.png", full_page=True)
    page.set_viewport_size({"width": 900, "height": 800})  # the wide ones: 7.7 px text
    page.wait_for_function("document.querySelector('img').currentSrc.length > 0")
    assert page.eval_on_selector("img", "i => i.naturalWidth") == natural
    page.click("figure a.picture")
    page.wait_for_load_state("load")
    assert page.url == (run_dir / "figures" / "learning_curves.png").as_uri()
    page.close()


def test_a_class_name_stays_on_one_line_on_a_phone(tmp_path, browser):
    # the per-class table broke Fashion-MNIST's names at a phone's width: "T-" over
    # "shirt/top", "Ankle" over "boot"
    names = catalog.CLASS_NAMES["fashion-mnist"]
    cm = (np.full((10, 10), 7) + np.diag(np.full(10, 900))).tolist()
    metrics = {"confusion_matrix": cm, "per_class": per_class_rows(cm, names)}
    write_report(tmp_path / "page.html", tmp_path, {}, metrics)
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto((tmp_path / "page.html").resolve().as_uri())
    heights = page.eval_on_selector_all(
        "tbody th", "cells => cells.map(c => [c.textContent, c.clientHeight])"
    )
    rows = dict(heights)
    assert rows["T-shirt/top"] == rows["Ankle boot"] == rows["Bag"], heights
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.close()
