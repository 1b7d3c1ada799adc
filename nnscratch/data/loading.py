"""MNIST and Fashion-MNIST: where the files are looked for, loading with checks, and
small array helpers (shuffle, split, scale); downloading them is in `download`.

Files are looked for, in order, in: the `data_dir` argument (then only there), env
NNSCRATCH_DATA_DIR, the user cache (`cache_dir()`), and /usr/share/datasets/<name>
(Debian's dataset packages). In each place both DIR/<name>/ and DIR/ count (DIR/ not
if it is named after the other dataset), and only if all four files are there, each
gzipped (the published .gz names) or not (the same names without .gz). Local
files are not MD5-checked (Debian recompressed Fashion-MNIST, so its .gz checksums
differ) but are always IDX-validated; downloads are MD5-checked.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import prepare_inputs
from .errors import DataError
from .idx import read_idx

# The four files every dataset has, in the order they are loaded.
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# Debian's dataset packages install under SYSTEM_DATA_ROOT/<name>/ (tests patch this).
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")
DATA_DIR_ENV = "NNSCRATCH_DATA_DIR"
CACHE_DIR_ENV = "NNSCRATCH_CACHE_DIR"


@dataclass(frozen=True)
class DatasetInfo:
    """What is needed to find, download and check one dataset.

    `md5` maps each of FILE_NAMES to the published MD5 of the .gz file; `mirrors` are
    base URLs tried in order (file name appended).
    """

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    homepage: str


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        md5={
            TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
            TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
            TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        class_names=tuple(str(d) for d in range(10)),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        # Zalando's published checksums (README of zalandoresearch/fashion-mnist).
        md5={
            TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
            TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
            TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
}
CLASS_NAMES: dict[str, list[str]] = {
    name: list(info.class_names) for name, info in DATASETS.items()
}


def dataset_info(name: str) -> DatasetInfo:
    """The metadata of a known dataset; `DataError` listing the known names otherwise."""
    info = DATASETS.get(str(name).strip().lower().replace("_", "-"))
    if info is None:
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}")
    return info


def cache_dir() -> Path:
    """Where downloads go: env NNSCRATCH_CACHE_DIR, else the user's cache folder.

    Linux: $XDG_CACHE_HOME/nnscratch or ~/.cache/nnscratch; macOS:
    ~/Library/Caches/nnscratch; Windows: %LOCALAPPDATA%/nnscratch/Cache.
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "nnscratch" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nnscratch"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "nnscratch"


def _env_data_dir() -> Path | None:
    """$NNSCRATCH_DATA_DIR as a folder, None if unset; a DataError if it is no folder
    (a typo there would otherwise go unnoticed, the data found or fetched elsewhere)."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    folder = Path(value).expanduser().absolute()
    if not folder.is_dir():
        raise DataError(f"{DATA_DIR_ENV}={value}: no such folder")
    return folder


def _candidates(name: str, data_dir) -> list[Path]:
    """Folders that may hold the four files, in search order."""
    if data_dir is not None:
        # absolute: the name check below needs a real name, not "." or ".."
        places = [Path(data_dir).expanduser().absolute()]
    else:
        places = [p for p in [_env_data_dir()] if p is not None]
        places.append(cache_dir())
    folders = []
    for place in places:
        folders.append(place / name)
        # Both datasets use the same file names: a folder named after the other one
        # (e.g. .../mnist when fashion-mnist is asked for) must not pass for this one.
        if place.name.lower() not in DATASETS or place.name.lower() == name:
            folders.append(place)
    if data_dir is None:
        folders.append(SYSTEM_DATA_ROOT / name)
    return folders


def data_file(folder: Path, file_name: str) -> Path | None:
    """folder/file_name, or the same name without .gz (an unpacked copy), or None."""
    for path in (folder / file_name, folder / file_name.removesuffix(".gz")):
        if path.is_file():
            return path
    return None


def _count_files(folder: Path) -> int:
    return sum(data_file(folder, f) is not None for f in FILE_NAMES)


def find_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four files of `name`, or None.

    With `data_dir`, only data_dir/<name>/ and data_dir/ are looked at; without, the
    search order in this module's docstring applies.
    """
    info = dataset_info(name)
    for folder in _candidates(info.name, data_dir):
        if _count_files(folder) == len(FILE_NAMES):
            return folder
    return None


def missing_files_hint(folder: Path) -> str:
    return (
        f"put the four files ({', '.join(FILE_NAMES)}) in {folder}, or in a folder"
        f" given by --data-dir or ${DATA_DIR_ENV}"
    )


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


def locate_dataset(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The folder `load_dataset` reads `name` from: found as `find_dataset` says, or
    downloaded (if `download`); a DataError saying where it looked otherwise."""
    info = dataset_info(name)
    folder = find_dataset(info.name, data_dir)
    if folder is None:
        if data_dir is not None:
            raise DataError(_not_in_data_dir(Path(data_dir), info.name))
        if not download:
            searched = ", ".join(str(f) for f in _candidates(info.name, None))
            raise DataError(
                f"{info.name} not found (looked in {searched}); run"
                f" `nnscratch download --dataset {info.name}`, or"
                f" {missing_files_hint(cache_dir() / info.name)}"
            )
        from .download import download_dataset  # (download imports this module)

        folder = download_dataset(info.name)
    return folder


def _not_in_data_dir(place: Path, name: str) -> str:
    """Why an explicit data dir does not count for dataset `name`."""
    if not place.expanduser().is_dir():
        return f"data dir {place}: no such folder"
    other = place.expanduser().absolute().name.lower()
    if other in DATASETS and other != name:
        return (
            f"data dir {place} is named after {other}, not {name}: pass --dataset"
            f" {other}, or a folder holding the {name} files"
        )
    best = max([place / name, place], key=_count_files)
    missing = [f for f in FILE_NAMES if data_file(best, f) is None]
    return (
        f"data dir {place} does not hold the {name} files (looked in {place / name}"
        f" and {place}; {best} lacks {', '.join(missing)}, gzipped or not)"
    )


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
            f"{folder}: {images_file} has {len(images)} images but {labels_file} has"
            f" {len(labels)} labels"
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
    _check_pair(x, y)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def train_validation_split(
    x: np.ndarray, y: np.ndarray, fraction: float = 0.1, seed=0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Shuffle, then hold out round(fraction * N) examples for validation.

    Returns ((x_train, y_train), (x_val, y_val)); both parts are non-empty.
    """
    _check_pair(x, y)
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be in (0, 1), got {fraction}")
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


def _check_pair(x, y) -> None:
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        raise DataError(
            f"expected arrays with a batch axis, got {np.shape(x)} and {np.shape(y)}"
        )
    if len(x) != len(y):
        raise DataError(f"x and y must have the same length, got {len(x)} and {len(y)}")
