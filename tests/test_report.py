"""The run report: a real (short) training run, rebuilding it, damage, and a browser check."""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from nnscratch.cli import main
from nnscratch.report import FIGURES

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    argv = ["train", "--data-dir", str(data_dir), "--hidden", "32", "--epochs", "2"]
    argv += ["--limit", "3000", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def _check_figures(run_dir: Path) -> None:
    for name, _ in FIGURES:
        with Image.open(run_dir / "figures" / name) as image:
            assert image.format == "PNG" and image.width > 300
    with Image.open(run_dir / "figures" / "training.gif") as gif:
        assert gif.n_frames == 2  # one per epoch
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(FIGURES)
    assert page.count("data:image/gif;base64,") == 1
    assert "http://" not in page and "https://" not in page  # no external requests
    assert "Per class" in page and "hidden" in page and "test_accuracy" in page


def test_train_writes_report(run_dir):
    _check_figures(run_dir)
    assert (run_dir / "recordings.npz").is_file()


def test_report_command_rebuilds(run_dir, data_dir, capsys):
    shutil.rmtree(run_dir / "figures")
    (run_dir / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(run_dir), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    _check_figures(run_dir)


def test_report_of_damaged_run_dir(run_dir, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "metrics.json").unlink()
    capsys.readouterr()
    assert main(["report", str(damaged)]) != 0
    err = capsys.readouterr().err.strip()
    assert "metrics.json" in err and len(err.splitlines()) == 1
    (damaged / "metrics.json").write_text("{}")
    (damaged / "recordings.npz").write_bytes(b"garbage")
    assert main(["report", str(damaged)]) != 0
    err = capsys.readouterr().err.strip()
    assert "recordings.npz" in err and len(err.splitlines()) == 1
    assert main(["report", str(tmp_path / "nowhere")]) != 0
    assert "nowhere" in capsys.readouterr().err


def test_report_in_browser(run_dir):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI=true: the browser test must run)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = None
    try:
        browser = playwright.chromium.launch(
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
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request", lambda r: r.url.startswith("http") and requests.append(r.url)
        )
        page.goto((run_dir / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) == len(FIGURES) + 1
        assert all(w > 0 for w in widths)
        assert errors == [] and requests == []
        page.screenshot(path="/tmp/report.png", full_page=True)
    finally:
        if browser is not None:
            browser.close()
        playwright.stop()
