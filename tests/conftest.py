"""Shared fixtures. Real-data tests skip on a user's machine without the data, but fail in
CI (CI=true), where the data is always present."""

import os
from pathlib import Path

import pytest


def _require_data(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: real-data tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding mnist/ and fashion-mnist/, from NNSCRATCH_DATA_DIR."""
    value = os.environ.get("NNSCRATCH_DATA_DIR")
    if not value:
        _require_data("NNSCRATCH_DATA_DIR is not set")
    path = Path(value)
    if (
        not (path / "mnist").is_dir()
        and not (path / "train-images-idx3-ubyte.gz").exists()
    ):
        _require_data(f"no MNIST files under NNSCRATCH_DATA_DIR={value}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where browser tests keep their screenshots for people to look at:
    $NNSCRATCH_TEST_ARTIFACTS, else test-artifacts/ at the top of the repository."""
    default = Path(__file__).resolve().parent.parent / "test-artifacts"
    path = Path(os.environ.get("NNSCRATCH_TEST_ARTIFACTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
