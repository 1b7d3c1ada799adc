"""The dataset catalog: MNIST and Fashion-MNIST, their files, and where they are looked for.

Files are looked for, in order, in: the `data_dir` argument (then only there), env
NNSCRATCH_DATA_DIR, the user cache (`cache_dir()`), and /usr/share/datasets/<name>
(Debian's dataset packages). In each place both DIR/<name>/ and DIR/ count (DIR/ not
if it is named after the other dataset, however spelt: `named_after`), and only if
all four files are there (the two test files, TEST_FILES, for what reads only the
test set: `nnscratch evaluate`, `nnscratch report`), each gzipped (the published .gz
names) or not (the same names without .gz). Local files are not MD5-checked (Debian recompressed
Fashion-MNIST, so its .gz checksums differ) but are always IDX-validated; downloads
are MD5-checked (`download`).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

# The four files every dataset has, in the order they are loaded.
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
TEST_FILES = (TEST_IMAGES, TEST_LABELS)  # all that scoring a trained model reads

# Debian's dataset packages install under SYSTEM_DATA_ROOT/<name>/ (tests patch this).
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")
DATA_DIR_ENV = "NNSCRATCH_DATA_DIR"
CACHE_DIR_ENV = "NNSCRATCH_CACHE_DIR"


@dataclass(frozen=True)
class DatasetInfo:
    """What is needed to find, download and check one dataset.

    `md5` maps each of FILE_NAMES to the published MD5 of the .gz file; `mirrors` are
    base URLs tried in order (file name appended); `test_counts`, the number of test
    images of each class (which tells the two datasets' test sets apart).
    """

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    homepage: str
    test_counts: tuple[int, ...] = ()


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
        test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
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
        test_counts=(1000,) * 10,
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


def other_test_set(folder, name: str, labels) -> str | None:
    """A warning if the test labels (N,) read from `folder` for dataset `name` are
    another dataset's (its class counts: the two have the same file names), or None."""
    counts = tuple(int(n) for n in np.bincount(labels))
    other = [
        n for n, info in DATASETS.items() if n != name and info.test_counts == counts
    ]
    return (
        f"warning: {folder} holds {other[0]}'s test set, not {name}'s"
        if other
        else None
    )


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
        raise DataError(f"{DATA_DIR_ENV}={value}: {_no_folder(folder)}")
    return folder


def _no_folder(path: Path) -> str:
    """Why `path`, which is no folder, cannot hold the data."""
    return "not a folder" if path.exists() else "no such folder"


def candidate_folders(name: str, data_dir) -> list[Path]:
    """Folders that may hold the dataset's files, in search order."""
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
        if named_after(place) in (None, name):
            folders.append(place)
    if data_dir is None:
        folders.append(SYSTEM_DATA_ROOT / name)
    return folders


def named_after(folder: Path) -> str | None:
    """The dataset a folder's name spells, however it is written ("Fashion-MNIST",
    "fashion_mnist", torchvision's "FashionMNIST"), or None."""
    key = re.sub(r"[-_. ]", "", folder.name.lower())
    return next((name for name in DATASETS if name.replace("-", "") == key), None)


def data_file(folder: Path, file_name: str) -> Path | None:
    """folder/file_name, or the same name without .gz (an unpacked copy), or None."""
    for path in (folder / file_name, folder / file_name.removesuffix(".gz")):
        if path.is_file():
            return path
    return None


def _missing(folder: Path, files: tuple[str, ...]) -> list[str]:
    """Which of `files` `folder` lacks (gzipped or not)."""
    return [f for f in files if data_file(folder, f) is None]


def find_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    files: tuple[str, ...] = FILE_NAMES,
) -> Path | None:
    """The first folder holding all `files` of `name` (default: the four), or None.

    With `data_dir`, only data_dir/<name>/ and data_dir/ are looked at; without, the
    search order in this module's docstring applies.
    """
    info = dataset_info(name)
    for folder in candidate_folders(info.name, data_dir):
        if not _missing(folder, files):
            return folder
    return None


def still_holding(name: str, folder, files: tuple[str, ...] = FILE_NAMES) -> str | None:
    """`folder` (a recorded data folder) if it still holds `files` of `name`, else
    None: moved or deleted since, or a text that is no usable path (a NUL, "~nobody")."""
    try:
        found = isinstance(folder, str) and bool(find_dataset(name, folder, files))
    except (OSError, ValueError, RuntimeError):
        found = False
    return folder if found else None


def missing_files_hint(folder: Path, files: tuple[str, ...] = FILE_NAMES) -> str:
    what = {FILE_NAMES: "the four files", TEST_FILES: "the two test files"}
    what = what.get(tuple(files), "the files")
    return (
        f"put {what} ({', '.join(files)}) in {folder}, or in a folder"
        f" given by --data-dir or ${DATA_DIR_ENV}"
    )


def not_in_data_dir(place: Path, name: str, files: tuple[str, ...] = FILE_NAMES) -> str:
    """Why an explicit data dir does not count for dataset `name`."""
    if not place.expanduser().is_dir():
        return f"data dir {place}: {_no_folder(place.expanduser())}"
    other = named_after(place.expanduser().absolute())
    if other not in (None, name):
        return (
            f"data dir {place} is named after {other}, not {name}: give a folder"
            f" holding the {name} files (or, to use {other}, choose that dataset)"
        )
    best = min([place / name, place], key=lambda folder: len(_missing(folder, files)))
    missing = _missing(best, files)
    return (
        f"data dir {place} does not hold the {name} files (looked in {place / name}"
        f" and {place}; {best} lacks {', '.join(missing)}, gzipped or not)"
    )
