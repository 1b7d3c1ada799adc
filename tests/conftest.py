"""Shared fixtures. Tests that need the real data or Debian's Chromium skip on a user's
machine without them, but fail in CI (CI=true), where .ci/run provides both."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnscratch.nn import workspace

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright drives it, no download
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding mnist/ and fashion-mnist/, from NNSCRATCH_DATA_DIR."""
    value = os.environ.get("NNSCRATCH_DATA_DIR")
    if not value:
        _require("NNSCRATCH_DATA_DIR is not set")
    path = Path(value)
    if (
        not (path / "mnist").is_dir()
        and not (path / "train-images-idx3-ubyte.gz").exists()
    ):
        _require(f"no MNIST files under NNSCRATCH_DATA_DIR={value}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where browser tests keep their screenshots for people to look at:
    $NNSCRATCH_TEST_ARTIFACTS, else test-artifacts/ at the top of the repository."""
    default = Path(__file__).resolve().parent.parent / "test-artifacts"
    path = Path(os.environ.get("NNSCRATCH_TEST_ARTIFACTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium under Playwright, one per test module."""
    if shutil.which(CHROMIUM) is None:
        _require(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def garbage_scratch(monkeypatch):
    """Workspace arrays that start as NaN, not as whatever memory the allocator
    hands back (often zeros: fresh pages), so that code reading scratch it never
    wrote fails every time."""
    allocate = workspace._allocate

    def nan_filled(shape, dtype, fill):
        a = allocate(shape, dtype, fill)
        if fill is None and a.dtype.kind == "f":
            a.fill(np.nan)
        return a

    monkeypatch.setattr(workspace, "_allocate", nan_filled)


@pytest.fixture
def forward_rows(monkeypatch) -> list[int]:
    """The batch size of every evaluation-mode `Sequential.forward` call from here on
    (to count how often a set of images goes through the network)."""
    from nnscratch import Sequential

    rows, forward = [], Sequential.forward

    def counted(self, x, training=False):
        if not training:
            rows.append(len(x))
        return forward(self, x, training)

    monkeypatch.setattr(Sequential, "forward", counted)
    return rows
