"""Datasets: where files are looked for, loading checks, the downloader, the helpers."""

import gzip
import hashlib
import http.server
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from nnscratch import Dense, Flatten, Sequential, cli
from nnscratch.data import catalog
from nnscratch.data.catalog import (
    CLASS_NAMES,
    DATASETS,
    FILE_NAMES,
    TEST_FILES,
    TEST_LABELS,
    find_dataset,
)
from nnscratch.data.download import download_dataset
from nnscratch.data.idx import write_idx
from nnscratch.data.loading import (
    load_dataset,
    load_test_set,
    scale_images,
    shuffle,
    train_validation_split,
)
from nnscratch.errors import DataError
from nnscratch.nn.batches import prepare_inputs


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data: own cache, no data dir env, own system root."""
    monkeypatch.setenv("NNSCRATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NNSCRATCH_DATA_DIR", raising=False)
    monkeypatch.setattr(catalog, "SYSTEM_DATA_ROOT", tmp_path / "system")


def make_files(folder: Path, n_train=5, n_test=3, seed=0, **overrides) -> Path:
    """Write a tiny dataset (28x28 uint8 images, labels 0..9); overrides replace arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    arrays.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return folder


# Metadata


def test_metadata():
    assert set(DATASETS) == {"mnist", "fashion-mnist"}
    assert CLASS_NAMES["mnist"] == [str(d) for d in range(10)]
    assert CLASS_NAMES["fashion-mnist"][0] == "T-shirt/top"
    assert CLASS_NAMES["fashion-mnist"][9] == "Ankle boot"
    assert len(CLASS_NAMES["fashion-mnist"]) == 10
    for info in DATASETS.values():
        assert set(info.md5) == set(FILE_NAMES)
        assert all(len(m) == 32 and int(m, 16) >= 0 for m in info.md5.values())
        assert info.mirrors and all(m.endswith("/") for m in info.mirrors)
    assert DATASETS["mnist"].md5["t10k-images-idx3-ubyte.gz"] == (
        "9fb629c4189551a2d022fa330f9573f3"
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError, match="known datasets: fashion-mnist, mnist"):
        load_dataset("cifar10")
    assert find_dataset("Fashion_MNIST") is None  # spelling is forgiven


# Where files are looked for


def test_data_dir_holds_files_directly_or_in_a_named_subfolder(tmp_path):
    direct = make_files(tmp_path / "direct")
    assert find_dataset("mnist", direct) == direct
    nested = make_files(tmp_path / "root" / "mnist")
    assert find_dataset("mnist", tmp_path / "root") == nested
    assert find_dataset("fashion-mnist", tmp_path / "root") is None
    # Same file names: the mnist folder itself must not pass for fashion-mnist.
    assert find_dataset("fashion-mnist", nested) is None
    assert find_dataset("mnist", nested) == nested


def test_search_order(tmp_path, monkeypatch):
    system = make_files(tmp_path / "system" / "mnist")
    assert find_dataset("mnist") == system
    cache = make_files(tmp_path / "cache")  # DIR/ itself counts too
    assert find_dataset("mnist") == cache
    cache_named = make_files(tmp_path / "cache" / "mnist")  # DIR/<name>/ before DIR/
    assert find_dataset("mnist") == cache_named
    env = make_files(tmp_path / "env" / "mnist")
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "env"))
    assert find_dataset("mnist") == env
    explicit = make_files(tmp_path / "explicit")
    assert find_dataset("mnist", explicit) == explicit
    assert find_dataset("mnist", str(explicit)) == explicit


def test_a_place_counts_only_with_all_four_files(tmp_path):
    system = make_files(tmp_path / "system" / "mnist")
    partial = make_files(tmp_path / "cache" / "mnist")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    assert find_dataset("mnist") == system


def test_explicit_data_dir_without_files_is_an_error_naming_it(tmp_path, monkeypatch):
    make_files(tmp_path / "env" / "mnist")
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "env"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_dataset("mnist", empty) is None  # no falling back to the env var
    with pytest.raises(DataError, match="does not hold the mnist files") as err:
        load_dataset("mnist", data_dir=empty)
    assert str(empty) in str(err.value)
    partial = make_files(tmp_path / "partial")
    (partial / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=partial)


def test_a_data_dir_variable_naming_no_folder_is_an_error(tmp_path, monkeypatch):
    make_files(tmp_path / "cache" / "mnist")  # found there if the variable were ignored
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataError, match=r"^NNSCRATCH_DATA_DIR=.*typo: no such folder$"):
        load_dataset("mnist")
    (tmp_path / "a-file").write_text("")  # says it is a file, not that it is missing
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "a-file"))
    with pytest.raises(DataError, match=r"^NNSCRATCH_DATA_DIR=.*a-file: not a folder$"):
        load_dataset("mnist")
    monkeypatch.delenv("NNSCRATCH_DATA_DIR")
    with pytest.raises(DataError, match=r"^data dir .*a-file: not a folder$"):
        load_dataset("mnist", tmp_path / "a-file")


def test_unpacked_idx_files_count_like_gzipped_ones(tmp_path):
    packed = make_files(tmp_path / "packed")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    for name in FILE_NAMES:
        data = gzip.decompress((packed / name).read_bytes())
        (unpacked / name.removesuffix(".gz")).write_bytes(data)
    assert find_dataset("mnist", unpacked) == unpacked
    (x_train, _), (x_test, _) = load_dataset("mnist", unpacked)
    (x_train_gz, _), _ = load_dataset("mnist", packed)
    assert np.array_equal(x_train, x_train_gz) and x_test.shape == (3, 28, 28)


def test_a_data_dir_named_after_the_other_dataset_says_so(tmp_path, monkeypatch):
    fashion = make_files(tmp_path / "fashion-mnist")
    monkeypatch.chdir(fashion)  # "." must count by its real name too
    for place in (fashion, Path(".")):
        assert find_dataset("mnist", place) is None
        with pytest.raises(DataError, match="named after fashion-mnist, not mnist"):
            load_dataset("mnist", place)


@pytest.mark.parametrize("folder", ["fashion_mnist", "FashionMNIST", "Fashion MNIST"])
def test_other_spellings_of_the_other_dataset_do_not_pass_for_it(tmp_path, folder):
    # torchvision's and TensorFlow Datasets' folder names: Fashion-MNIST images loaded
    # as mnist would train on clothes under digit names without a word
    fashion = make_files(tmp_path / folder)
    assert find_dataset("mnist", fashion) is None
    with pytest.raises(DataError, match="named after fashion-mnist, not mnist"):
        load_dataset("mnist", fashion)
    assert find_dataset("fashion-mnist", fashion) == fashion


def test_not_found_without_download_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match="fashion-mnist not found") as err:
        load_dataset("fashion-mnist", download=False)
    message = str(err.value)
    assert str(tmp_path / "cache" / "fashion-mnist") in message
    assert str(tmp_path / "system" / "fashion-mnist") in message
    assert "--data-dir" in message


# Loading and its checks


def test_load_dataset_shapes_and_types(tmp_path):
    folder = make_files(tmp_path / "d" / "fashion-mnist", n_train=6, n_test=4)
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", tmp_path / "d")
    assert x_train.shape == (6, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (6,) and y_train.dtype == np.int64
    assert x_test.shape == (4, 28, 28) and y_test.shape == (4,)
    # Local files are not checked against the published MD5 (these match nothing).
    md5 = hashlib.md5((folder / "t10k-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert md5 != DATASETS["fashion-mnist"].md5["t10k-images-idx3-ubyte.gz"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"train-labels-idx1-ubyte.gz": np.array([0, 1, 2, 3, 10], np.uint8)},
            "label 10",
        ),
        ({"t10k-labels-idx1-ubyte.gz": np.zeros(4, np.uint8)}, "3 images but .* 4"),
        (
            {"train-images-idx3-ubyte.gz": np.zeros((5, 784), np.uint8)},
            "expected uint8",
        ),
        ({"train-images-idx3-ubyte.gz": np.zeros((5, 28, 28), np.float32)}, "float32"),
        ({"t10k-labels-idx1-ubyte.gz": np.zeros(3, np.float64)}, "integer labels"),
        ({"t10k-images-idx3-ubyte.gz": np.zeros((3, 20, 20), np.uint8)}, "test images"),
        (
            {
                "train-images-idx3-ubyte.gz": np.zeros((0, 28, 28), np.uint8),
                "train-labels-idx1-ubyte.gz": np.zeros(0, np.uint8),
            },
            "no images",
        ),
        (
            {
                "train-images-idx3-ubyte.gz": np.zeros((5, 0, 0), np.uint8),
                "t10k-images-idx3-ubyte.gz": np.zeros((3, 0, 0), np.uint8),
            },
            r"no images \(shape \(5, 0, 0\)\)",
        ),
    ],
)
def test_load_dataset_rejects_inconsistent_files(tmp_path, overrides, message):
    make_files(tmp_path / "d", **overrides)
    with pytest.raises(DataError, match=message):
        load_dataset("mnist", tmp_path / "d")


def test_a_count_mismatch_names_the_files_as_they_are_named(tmp_path):
    # unpacked copies: the message names the files the user has, not the .gz names
    folder = make_files(tmp_path / "d", **{TEST_LABELS: np.zeros(4, np.uint8)})
    for name in FILE_NAMES:
        unpacked = folder / name.removesuffix(".gz")
        unpacked.write_bytes(gzip.decompress((folder / name).read_bytes()))
        (folder / name).unlink()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", folder)
    assert str(err.value) == (
        f"{folder}: t10k-images-idx3-ubyte has 3 images but t10k-labels-idx1-ubyte"
        " has 4 labels"
    )


def test_load_dataset_validates_idx_of_local_files(tmp_path):
    folder = make_files(tmp_path / "d")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt"):
        load_dataset("mnist", folder)


# The downloader, against a local HTTP server


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    """The four files of a tiny dataset as bytes, their MD5s, and a wrong version."""
    good = make_files(tmp_path_factory.mktemp("good"), seed=1)
    other = make_files(tmp_path_factory.mktemp("other"), seed=2)
    files = {name: (good / name).read_bytes() for name in FILE_NAMES}
    wrong = {name: (other / name).read_bytes() for name in FILE_NAMES}
    md5s = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    return files, wrong, md5s


@pytest.fixture(scope="module")
def server(payloads):
    """Mirrors on 127.0.0.1: /good/, /corrupt/ (wrong bytes), /missing/ (404),
    /broken/ (500), /moved/ (302 to /good/), /drop/ (connection closed halfway
    through the body), /hang/ (never answers)."""
    files, wrong, _ = payloads
    requests = []
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            kind, _, name = self.path.strip("/").partition("/")
            if kind == "hang":
                release.wait(10)
                return
            if kind == "missing" or name not in files:
                self.send_error(404)
                return
            if kind == "broken":
                self.send_error(500)
                return
            if kind == "moved":
                self.send_response(302)
                self.send_header("Location", f"/good/{name}")
                self.end_headers()
                return
            body = wrong[name] if kind == "corrupt" else files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if kind == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, requests
    release.set()
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_good_mirror(tmp_path, payloads, server):
    files, _, md5s = payloads
    base, _ = server
    folder = download_dataset(
        "mnist",
        tmp_path / "c",
        mirrors=[f"{base}/good"],
        checksums=md5s,
        progress=False,
    )
    assert folder == tmp_path / "c" / "mnist"
    assert leftovers(folder) == sorted(FILE_NAMES)  # no temporary files left behind
    umask = os.umask(0)
    os.umask(umask)
    for name in FILE_NAMES:
        assert (folder / name).read_bytes() == files[name]
        # the permissions any new file gets, not the temporary file's 0600
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~umask
    (x_train, _), (x_test, _) = load_dataset("mnist", folder)
    assert x_train.shape == (5, 28, 28) and x_test.shape == (3, 28, 28)


@pytest.mark.parametrize("bad", ["corrupt", "missing", "drop"])
def test_download_moves_on_to_the_next_mirror(tmp_path, payloads, server, bad):
    files, _, md5s = payloads
    base, requests = server
    requests.clear()
    mirrors = [f"{base}/{bad}/", f"{base}/good/"]
    folder = download_dataset(
        "mnist", tmp_path, mirrors, checksums=md5s, progress=False
    )
    assert leftovers(folder) == sorted(FILE_NAMES)
    assert all((folder / n).read_bytes() == files[n] for n in FILE_NAMES)
    assert requests == [f"/{kind}/{n}" for n in FILE_NAMES for kind in (bad, "good")]


def test_unreachable_and_hanging_mirrors_move_on(tmp_path, payloads, server):
    _, _, md5s = payloads
    base, _ = server
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    mirrors = [f"http://127.0.0.1:{closed_port}/", f"{base}/hang/", f"{base}/good/"]
    folder = download_dataset(
        "mnist", tmp_path, mirrors, timeout=0.1, checksums=md5s, progress=False
    )
    assert leftovers(folder) == sorted(FILE_NAMES)


def test_dropped_download_leaves_no_partial_file(tmp_path, payloads, server):
    _, _, md5s = payloads
    base, _ = server
    with pytest.raises(DataError, match="connection closed after"):
        download_dataset("mnist", tmp_path, [f"{base}/drop/"], checksums=md5s)
    assert leftovers(tmp_path / "mnist") == []


def test_redirects_are_followed_and_a_server_error_moves_on(tmp_path, payloads, server):
    files, _, md5s = payloads
    base, requests = server
    requests.clear()
    # a base URL without its trailing slash is the same folder
    mirrors = [f"{base}/broken", f"{base}/moved"]
    folder = download_dataset("mnist", tmp_path, mirrors, checksums=md5s)
    assert all((folder / n).read_bytes() == files[n] for n in FILE_NAMES)
    assert requests[:3] == [
        f"/{kind}/{FILE_NAMES[0]}" for kind in ("broken", "moved", "good")
    ]


def test_ctrl_c_mid_download_stops_and_leaves_no_partial_file(
    tmp_path, payloads, server, monkeypatch
):
    _, _, md5s = payloads
    base, requests = server

    class InterruptedBar(tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt  # as if Ctrl-C came while the body arrives

    monkeypatch.setattr("tqdm.tqdm", InterruptedBar)  # imported when downloading
    requests.clear()
    with pytest.raises(KeyboardInterrupt):
        download_dataset("mnist", tmp_path, [f"{base}/good/"] * 2, checksums=md5s)
    assert requests == [f"/good/{FILE_NAMES[0]}"]  # not taken for a failed mirror
    assert leftovers(tmp_path / "mnist") == []


def test_all_mirrors_failing_lists_attempts_and_the_manual_route(
    tmp_path, payloads, server
):
    _, _, md5s = payloads
    base, _ = server
    mirrors = [f"{base}/missing/", f"{base}/corrupt/"]
    with pytest.raises(DataError) as err:
        download_dataset("fashion-mnist", tmp_path, mirrors, checksums=md5s)
    message = str(err.value)
    name = "train-images-idx3-ubyte.gz"
    assert f"{base}/missing/{name} (HTTP 404" in message
    assert f"{base}/corrupt/{name} (MD5 " in message
    assert f"put the four files ({', '.join(FILE_NAMES)})" in message
    assert str(tmp_path / "fashion-mnist") in message and "--data-dir" in message
    assert "\n" not in message
    assert leftovers(tmp_path / "fashion-mnist") == []


@pytest.mark.parametrize("mirror", ["", "notaurl", "mnist/", "http://", "http://[::1"])
def test_a_mirror_that_is_not_a_url_is_refused_before_anything_is_made(
    tmp_path, mirror
):
    with pytest.raises(DataError) as err:
        download_dataset("mnist", tmp_path / "c", [mirror], progress=False)
    assert str(err.value) == (
        f"mirror {mirror!r}: expected a base URL such as https://host/mnist/"
    )
    assert not (tmp_path / "c").exists()


def test_a_download_folder_that_cannot_be_made_is_named_once(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError) as err:
        download_dataset("mnist", tmp_path / "a-file", ["http://127.0.0.1:9/"])
    target = tmp_path / "a-file" / "mnist"
    assert str(err.value) == f"cannot create download folder {target}: Not a directory"


def test_download_checks_the_published_md5_by_default(tmp_path, server):
    base, _ = server
    # The synthetic files are not the real MNIST, so the real checksums refuse them.
    with pytest.raises(DataError, match="does not match the expected f68b3c2d"):
        download_dataset("mnist", tmp_path, [f"{base}/good/"], progress=False)


def test_present_files_are_not_downloaded_again(tmp_path, payloads, server):
    files, _, md5s = payloads
    base, requests = server
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILE_NAMES[:3]:
        (folder / name).write_bytes(files[name])
    requests.clear()
    download_dataset("mnist", tmp_path, [f"{base}/good/"], checksums=md5s)
    assert requests == [f"/good/{FILE_NAMES[3]}"]


def test_a_damaged_file_in_the_download_folder_is_fetched_again(
    tmp_path, payloads, server
):
    files, _, md5s = payloads
    base, requests = server
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILE_NAMES:
        (folder / name).write_bytes(files[name])
    damaged = FILE_NAMES[0]
    (folder / damaged).write_bytes(files[damaged][:100])  # an interrupted copy
    requests.clear()
    download_dataset("mnist", tmp_path, f"{base}/good/", checksums=md5s)
    assert requests == [f"/good/{damaged}"]  # a single mirror may be given as a str
    assert (folder / damaged).read_bytes() == files[damaged]


def mnist_on_the_local_mirror(payloads, server, monkeypatch) -> None:
    """mnist downloaded from the server's /good/ mirror, checked by its MD5s."""
    base, _ = server
    info = replace(DATASETS["mnist"], md5=payloads[2], mirrors=(f"{base}/good/",))
    monkeypatch.setitem(DATASETS, "mnist", info)


def test_load_dataset_downloads_into_the_cache(tmp_path, payloads, server, monkeypatch):
    mnist_on_the_local_mirror(payloads, server, monkeypatch)
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", download=False)
    (x_train, y_train), _ = load_dataset("mnist")
    assert x_train.shape == (5, 28, 28) and y_train.dtype == np.int64
    assert leftovers(tmp_path / "cache" / "mnist") == sorted(FILE_NAMES)
    assert find_dataset("mnist") == tmp_path / "cache" / "mnist"


def test_a_download_in_a_log_says_what_it_fetches(
    tmp_path, payloads, server, monkeypatch, capsys
):
    """stderr not a terminal (CI, a log file): no progress bar, but a line per file
    fetched, as Keras' get_file says "Downloading data from URL", so a slow mirror
    does not look like a hang; the result stays alone on stdout."""
    mnist_on_the_local_mirror(payloads, server, monkeypatch)
    base, _ = server
    assert cli.main(["download"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"downloading {base}/good/{name}" for name in FILE_NAMES
    ]
    assert captured.out == f"mnist: files in {tmp_path / 'cache' / 'mnist'}\n"
    assert cli.main(["download"]) == 0  # all there: nothing fetched, nothing said
    assert capsys.readouterr().err == ""


def test_load_test_set_downloads_only_the_two_test_files(
    tmp_path, payloads, server, monkeypatch
):
    mnist_on_the_local_mirror(payloads, server, monkeypatch)
    _, requests = server
    with pytest.raises(DataError, match="put the two test files .t10k-images"):
        load_test_set("mnist", download=False)
    model = Sequential([Flatten(), Dense(10, rng=0)], (28, 28))
    model.save(tmp_path / "model.npz")
    requests.clear()
    assert cli.main(["evaluate", str(tmp_path / "model.npz")]) == 0  # as evaluate does
    assert requests == [f"/good/{name}" for name in TEST_FILES]
    x_test, y_test = load_test_set("mnist")
    assert x_test.shape == (3, 28, 28) and y_test.dtype == np.int64
    cache = tmp_path / "cache" / "mnist"
    assert leftovers(cache) == sorted(TEST_FILES)
    assert find_dataset("mnist") is None  # not all four: training fetches the rest
    requests.clear()
    (x_train, _), (x_again, _) = load_dataset("mnist")
    assert requests == [f"/good/{name}" for name in FILE_NAMES[:2]]
    assert x_train.shape == (5, 28, 28) and np.array_equal(x_again, x_test)


def test_the_test_set_is_looked_for_in_the_usual_order(tmp_path, monkeypatch):
    """The first place holding the two test files wins, training files or not;
    an explicit data dir lacking one names it."""
    make_files(tmp_path / "system" / "mnist", n_test=4)
    test_only = make_files(tmp_path / "env", n_test=2, seed=1)
    for name in FILE_NAMES[:2]:
        (test_only / name).unlink()
    assert len(load_test_set("mnist")[0]) == 4
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(test_only))
    assert len(load_test_set("mnist")[0]) == 2
    (test_only / TEST_LABELS).unlink()
    assert len(load_test_set("mnist")[0]) == 4
    with pytest.raises(DataError) as err:
        load_test_set("mnist", test_only)
    assert str(err.value).endswith(f"{test_only} lacks {TEST_LABELS}, gzipped or not)")


def test_cache_dir(tmp_path, monkeypatch):
    assert catalog.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("NNSCRATCH_CACHE_DIR")
    monkeypatch.setattr(catalog.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.cache_dir() == tmp_path / "xdg" / "nnscratch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert catalog.cache_dir() == Path.home() / ".cache" / "nnscratch"


# Helpers


def test_shuffle_is_seeded_and_keeps_pairs():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    xs, ys = shuffle(x, y, seed=3)
    np.testing.assert_array_equal(xs[:, 0] // 2, ys)  # pairs stay together
    assert not np.array_equal(ys, y)
    np.testing.assert_array_equal(shuffle(x, y, seed=3)[1], ys)
    np.testing.assert_array_equal(shuffle(x, y, np.random.default_rng(3))[1], ys)
    assert not np.array_equal(shuffle(x, y, seed=4)[1], ys)
    with pytest.raises(DataError, match="same length, got 10 and 9"):
        shuffle(x, y[:9], seed=0)


def test_train_validation_split():
    x = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    (x_tr, y_tr), (x_val, y_val) = train_validation_split(x, y, 0.25, seed=0)
    np.testing.assert_array_equal(x_tr[:, 0] // 2, y_tr)
    assert len(y_tr) == 15 and len(y_val) == 5
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(20))
    np.testing.assert_array_equal(x_val[:, 0] // 2, y_val)
    again = train_validation_split(x, y, 0.25, seed=0)
    np.testing.assert_array_equal(again[1][1], y_val)
    for fraction in (0, 1, 1.5, -0.1, float("nan"), "0.1", None):
        with pytest.raises(DataError, match="fraction must be in"):
            train_validation_split(x, y, fraction, seed=0)
    with pytest.raises(DataError, match="empty"):
        train_validation_split(x[:3], y[:3], 0.1, seed=0)
    with pytest.raises(DataError, match="same length"):
        train_validation_split(x, y[:5], 0.1, seed=0)


def test_scale_images():
    images = np.array([[0, 51, 255]], dtype=np.uint8)
    scaled = scale_images(images)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0, 0.2, 1]])
    with pytest.raises(DataError, match="expected uint8 images, got float64"):
        scale_images(np.zeros((2, 2)))
    every_value = np.arange(256, dtype=np.uint8)
    assert np.array_equal(scale_images(every_value), prepare_inputs(every_value))


# The real data


def test_real_mnist(data_dir, monkeypatch):
    (x_train, y_train), (x_test, y_test) = load_dataset(
        "mnist", data_dir, download=False
    )
    assert x_train.shape == (24345, 28, 28) and y_train.shape == (24345,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert set(np.unique(y_test)) == set(range(10))
    # The same folder is found through the environment variable CI sets.
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", os.fspath(data_dir))
    assert find_dataset("mnist") in (data_dir, data_dir / "mnist")


def test_real_fashion_mnist(data_dir):
    if find_dataset("fashion-mnist", data_dir) is None:
        reason = f"no fashion-mnist files under {data_dir}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: real-data tests must run)")
        pytest.skip(reason)
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", data_dir)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
