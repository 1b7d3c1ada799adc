"""Loading MNIST-style datasets with checks, and small array helpers (shuffle, split,
scale). Where the files are looked for is `catalog`; downloading them is `download`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError, NnscratchError, check_float, check_same_length
from ..nn.batches import prepare_inputs
from .catalog import (
    FILE_NAMES,
    TEST_FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetInfo,
    cache_dir,
    candidate_folders,
    data_file,
    dataset_info,
    find_dataset,
    missing_files_hint,
    not_in_data_dir,
)
from .download import download_dataset
from .idx import read_idx


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load ((x_train, y_train), (x_test, y_test)) of "mnist" or "fashion-mnist".

    Images are uint8 (N, H, W) (28x28 for both datasets), labels int64 (N,) in
    0..n_classes-1. Downloads into `cache_dir()` when the files are nowhere to be found
    and `download` is True; an explicit `data_dir` that lacks them is an error instead.
    """
    info = dataset_info(name)
    folder = locate_dataset(info.name, data_dir, download)
    x_train, y_train = _load_split(folder, TRAIN_IMAGES, TRAIN_LABELS, info)
    x_test, y_test = _load_split(folder, TEST_IMAGES, TEST_LABELS, info)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{folder}: train images are {x_train.shape[1:]} but test images are"
            f" {x_test.shape[1:]}"
        )
    return (x_train, y_train), (x_test, y_test)


def load_test_set(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(x_test, y_test) of "mnist" or "fashion-mnist", as `load_dataset` gives them,
    read from the first folder holding the two test files (TEST_FILES): the
    training files are neither needed nor downloaded."""
    folder = locate_dataset(dataset_info(name).name, data_dir, download, TEST_FILES)
    return read_test_set(name, folder)


def read_test_set(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x_test, y_test) of dataset `name`, read from `folder`, which holds them (as
    `locate_dataset` found it)."""
    return _load_split(folder, TEST_IMAGES, TEST_LABELS, dataset_info(name))


def locate_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    files: tuple[str, ...] = FILE_NAMES,
) -> Path:
    """The folder `load_dataset` reads `name` from (`files`: the files it must hold):
    found as `find_dataset` says, or downloaded (if `download`, only `files`); a
    DataError saying where it looked otherwise."""
    info = dataset_info(name)
    folder = find_dataset(info.name, data_dir, files)
    if folder is None:
        if data_dir is not None:
            raise DataError(not_in_data_dir(Path(data_dir), info.name, files))
        if not download:
            searched = ", ".join(str(f) for f in candidate_folders(info.name, None))
            raise DataError(
                f"{info.name} not found (looked in {searched}); run"
                f" `nnscratch download --dataset {info.name}`, or"
                f" {missing_files_hint(cache_dir() / info.name, files)}"
            )
        folder = download_dataset(info.name, files=files)
    return folder


def _load_split(folder: Path, images_file: str, labels_file: str, info: DatasetInfo):
    """Read and check one images/labels pair: uint8 (N, H, W) and int64 (N,)."""
    images_path = data_file(folder, images_file)
    labels_path = data_file(folder, labels_file)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: expected uint8 images (N, H, W), got"
            f" {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{labels_path}: expected integer labels (N,), got"
            f" {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {images_path.name} has {len(images)} images but"
            f" {labels_path.name} has {len(labels)} labels"
        )
    if len(images) == 0 or 0 in images.shape[1:]:
        raise DataError(f"{images_path}: holds no images (shape {images.shape})")
    n_classes = len(info.class_names)
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{labels_path}: label {int(labels[i])} at index {i} is outside"
            f" 0..{n_classes - 1} ({info.name} has {n_classes} classes)"
        )
    return images, labels.astype(np.int64)


def shuffle(x: np.ndarray, y: np.ndarray, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """x and y reordered by the same seeded permutation (copies).

    Shapes: x (N, ...), y (N, ...). `seed` is an int or an `np.random.Generator`.
    """
    check_same_length(x=x, y=y)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def train_validation_split(
    x: np.ndarray, y: np.ndarray, fraction: float = 0.1, seed=0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Shuffle, then hold out round(fraction * N) examples for validation.

    Returns ((x_train, y_train), (x_val, y_val)); both parts are non-empty.
    """
    check_same_length(x=x, y=y)
    try:  # a number strictly between 0 and 1 (not a text, not NaN)
        check_float("fraction", fraction, 0, 1, open_low=True, open_high=True)
    except NnscratchError:
        raise DataError(
            f"validation fraction must be in (0, 1), got {fraction!r}"
        ) from None
    n_val = round(fraction * len(x))
    if not 0 < n_val < len(x):
        raise DataError(
            f"validation fraction {fraction} of {len(x)} examples leaves an empty"
            " training or validation set"
        )
    x, y = shuffle(x, y, seed)
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (any shape) -> float32 in [0, 1]: images * float32(1/255), the
    product `Sequential` applies to each batch, so both give the same floats."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DataError(f"expected uint8 images, got {images.dtype}")
    return prepare_inputs(images)
