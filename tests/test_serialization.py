import errno
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from nnscratch import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    ModelCheckpoint,
    ModelFileError,
    NnscratchError,
    ReLU,
    Sequential,
    load_model,
)


def small_model():
    rng = np.random.default_rng(0)
    model = Sequential(
        [
            Flatten(),
            Dense(16, 8, rng=rng),
            ReLU(),
            Dropout(0.2),
            Dense(8, 3, rng=rng, l2=1e-4),
        ],
        input_shape=(4, 4),
        class_names=["a", "b", "c"],
    )
    model.metadata = {"training": {"epochs": 3}}
    return model


def test_round_trip_gives_identical_predictions(tmp_path):
    model = small_model()
    x = np.random.default_rng(1).integers(0, 256, (6, 4, 4)).astype(np.uint8)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.class_names == ["a", "b", "c"]
    assert loaded.input_shape == (4, 4)
    assert loaded.metadata == {"training": {"epochs": 3}}
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Flatten", "Dense", "ReLU", "Dropout", "Dense",
    ]  # fmt: skip
    assert loaded.layers[4].l2 == 1e-4 and loaded.layers[3].rate == 0.2
    assert loaded.summary() == model.summary()


def test_loaded_model_keeps_training(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    x = np.random.default_rng(2).random((8, 4, 4)).astype(np.float32)
    y = np.arange(8) % 3
    before = loaded.flat_params.copy()
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not np.allclose(before, loaded.flat_params)


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "m", "m.weights.h5"])
def test_a_name_not_ending_in_npz_is_refused_and_nothing_written(tmp_path, name):
    # model.save("m.h5") wrote an .npz named m.h5, which Keras then failed to read
    model, stem = small_model(), name.removesuffix(".h5").removesuffix(".keras")
    for save in (model.save, model.save_weights):
        with pytest.raises(
            NnscratchError, match=rf"\.npz format.*name the file {stem}\.npz$"
        ):
            save(tmp_path / name)
    with pytest.raises(NnscratchError, match=r"^ModelCheckpoint: .*\.npz format"):
        ModelCheckpoint(tmp_path / name)  # said at once, not after an epoch
    assert list(tmp_path.iterdir()) == []
    model.save(tmp_path / "m.NPZ")  # any case of .npz
    assert (
        load_model(tmp_path / "m.NPZ").get_weights().keys()
        == model.get_weights().keys()
    )


@pytest.mark.parametrize(
    "error, raised",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "cannot write {path}: No space left"),
        (KeyboardInterrupt(), None),  # Ctrl-C half-way through the write
    ],
    ids=["disk-full", "ctrl-c"],
)  # fmt: skip
def test_save_is_atomic_and_leaves_no_temporary_files(
    tmp_path, monkeypatch, error, raised
):
    model = small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    original = path.read_bytes()

    def broken_write(f, arrays):
        f.write(b"partial")
        raise error  # an OSError that names no file

    monkeypatch.setattr("nnscratch.nn.saving.write_npz", broken_write)
    if raised is None:
        with pytest.raises(type(error)):
            model.save(path)
    else:
        with pytest.raises(NnscratchError, match=raised.format(path=path)):
            model.save(path)
    assert path.read_bytes() == original  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def meta(**changes):
    description = {
        "format": "nnscratch-model",
        "version": 1,
        "layers": [{"class": "Dense", "config": {"n_in": 2, "n_out": 2}}],
        "input_shape": [2],
        "class_names": None,
        "loss": "SoftmaxCrossEntropy",
        "metadata": {},
    }
    description.update(changes)
    return np.frombuffer(json.dumps(description).encode(), dtype=np.uint8)


GOOD = {"0.W": np.ones((2, 2), np.float32), "0.b": np.zeros(2, np.float32)}
BATCH_NORM = {  # BatchNorm(2)'s arrays but running_var
    name: np.full(2, value, np.float32)
    for name, value in [("0.gamma", 1), ("0.beta", 0), ("0.running_mean", 0)]
}


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def huge_npy_header() -> bytes:
    """A .npy header promising 4 TB of float32, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    return buffer.getvalue()


def unbalanced_npy_header() -> bytes:
    """A .npy header cut inside its shape's parenthesis: NumPy's parser of Python 2
    headers then fails with tokenize's TokenError, not a ValueError."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2,".ljust(117)
    return b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little") + header.encode() + b"\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a zip at all", "not a valid .npz"),
        (npz_bytes(**GOOD), "no __model__"),
        (npz_bytes(__model__=np.frombuffer(b"{oops", np.uint8), **GOOD), "not valid JSON"),
        (npz_bytes(__model__=meta(format="keras"), **GOOD), "format"),
        (npz_bytes(__model__=meta(version=99), **GOOD), "version 99"),
        (npz_bytes(__model__=meta(layers=[{"class": "os.system"}]), **GOOD), "unknown class"),
        (
            npz_bytes(__model__=meta(layers=[{"class": "Dense", "config": {"n_in": "x"}}]), **GOOD),
            "bad config",
        ),
        (npz_bytes(__model__=meta(), **{"0.W": GOOD["0.W"]}), "missing"),
        (npz_bytes(__model__=meta(), **GOOD, extra=np.ones(1)), "extra"),
        (npz_bytes(__model__=meta(), **{**GOOD, "0.W": np.ones((3, 2))}), "shape"),
        (npz_bytes(__model__=meta(), **{**GOOD, "0.W": np.full((2, 2), np.nan)}), "NaN"),
        (
            npz_bytes(__model__=meta(), **{**GOOD, "0.W": np.array([[None, 1]] * 2, dtype=object)}),
            "holds Python objects",
        ),
        (npz_bytes(__model__=meta(), **GOOD)[:100], "not a valid .npz"),
        (zip_bytes({"__model__": meta().tobytes()}), "holds '__model__', not a .npy array"),
        (
            zip_bytes({"__model__.npy": npy_bytes(meta()), "0.W.npy": huge_npy_header(), "0.b.npy": npy_bytes(GOOD["0.b"])}),
            r"declares shape \(1000000000000,\) of float32 but holds 0 bytes",
        ),
        (
            zip_bytes({"__model__.npy": npy_bytes(meta()), "0.W.npy": unbalanced_npy_header(), "0.b.npy": npy_bytes(GOOD["0.b"])}),
            r"'0.W.npy' has an unreadable .npy header \(EOF in multi-line statement\)$",
        ),
        (
            npz_bytes(__model__=meta(layers=[{"class": "Dense", "config": {"n_in": 10**7, "n_out": 10**7}}]), **GOOD),
            r"layer 0 \(Dense\) does not take input \(N, 2\): Dense: expected input \(N, 10000000\)",
        ),
        (npz_bytes(__model__=meta(input_shape=[-1]), **GOOD), r"bad input_shape \[-1\]"),
        (npz_bytes(__model__=meta(input_shape=[3]), **GOOD), "does not take input"),
        (npz_bytes(__model__=meta(class_names=["a"]), **GOOD), "1 class names for outputs"),
        (npz_bytes(__model__=meta(), **GOOD, junk=np.zeros(10)), r"extra \['junk'\]"),
        (npz_bytes(__model__=meta(layers=[{"class": ["Dense"]}]), **GOOD), "unknown class"),
        (npz_bytes(__model__=meta(loss=["x"]), **GOOD), "'loss' must be a str"),
        (npz_bytes(__model__=meta(metadata=[1]), **GOOD), "'metadata' must be a dict"),
        (npz_bytes(__model__=meta(class_names=[1, 2]), **GOOD), "class names must be strings"),
        (
            npz_bytes(__model__=meta(layers=[{"class": "Dense", "config": {"n_in": 2, "n_out": 2, "dtype": "object"}}]), **GOOD),
            r"unknown settings \['dtype'\]",
        ),
        (npz_bytes(__model__=np.frombuffer(b"[" * 100_000, np.uint8), **GOOD), "nested too deeply"),
        (npz_bytes(__model__=np.frombuffer(b"1" * 5000, np.uint8), **GOOD), "not valid JSON"),
        (zip_bytes({"__model__.npy": npy_bytes(meta()), "__model__": b""}), "not a .npy array"),
        (
            npz_bytes(__model__=meta(layers=[{"class": "BatchNorm", "config": {"num_features": 2}}]), **BATCH_NORM, **{"0.running_var": np.array([1.0, -0.5], np.float32)}),
            r"array '0.running_var' holds negative values, which BatchNorm's running_var cannot",
        ),
    ],
    ids=[
        "not-zip", "no-meta", "bad-json", "format", "version", "unknown-layer", "bad-config",
        "missing-array", "extra-array", "wrong-shape", "nan", "object-array", "truncated",
        "raw-member", "huge-header", "unbalanced-header", "huge-config", "bad-input-shape", "wrong-input-shape",
        "class-names", "extra-member", "class-as-list", "loss-as-list", "metadata-as-list",
        "class-names-not-str", "dtype-setting", "deep-json", "huge-int", "non-npy-twin",
        "negative-variance",
    ],
)  # fmt: skip
def test_files_that_are_not_models_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path)) and message.count(str(path)) == 1


@pytest.mark.parametrize(
    "arrays, problem",
    [
        ({"0.W": GOOD["0.W"]}, "weights do not match the architecture (missing ['0.b'])"),
        ({**GOOD, "0.x": np.ones(1)}, "weights do not match the architecture (extra ['0.x'])"),
        ({**GOOD, "0.W": np.ones((3, 2))}, "'0.W' has shape (3, 2), expected (2, 2)"),
    ],
    ids=["missing", "extra", "shape"],
)  # fmt: skip
def test_a_tampered_array_is_named_once_without_blaming_the_input(
    tmp_path, arrays, problem
):
    path = tmp_path / "bad.npz"
    path.write_bytes(npz_bytes(__model__=meta(), **arrays))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: {problem}"


def test_loading_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as z:
        buffer = io.BytesIO()
        np.save(buffer, np.array([Boom()], dtype=object), allow_pickle=True)
        z.writestr("__model__.npy", buffer.getvalue())
    with pytest.raises(ModelFileError, match="holds Python objects"):
        load_model(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="directory"):
        load_model(tmp_path)


def not_a_regular_file(kind: str, tmp_path) -> str:
    """A model path naming a FIFO, or a link to /dev/zero (read forever, nothing
    written to a FIFO blocks its reader)."""
    path = tmp_path / f"{kind}.npz"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return str(path)


@pytest.mark.parametrize(
    "kind, command",
    [("device", "info"), ("fifo", "info"), ("fifo", "evaluate"), ("fifo", "predict"),
     ("fifo", "serve"), ("device", "predict")],
)  # fmt: skip
def test_a_device_or_fifo_is_refused_before_it_is_opened(tmp_path, kind, command):
    import resource

    path = not_a_regular_file(kind, tmp_path)
    args = [path, "x.png"] if command == "predict" else [path]

    def limit_memory():  # were /dev/zero read, fail fast instead of filling memory
        resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))

    # in a child bounded in time and memory: were the file opened, a FIFO would hang
    # the test forever
    done = subprocess.run(
        [sys.executable, "-m", "nnscratch", command, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"error: {path}: not a regular file (a device, FIFO or socket), expected a"
        " .npz model file\n"
    )


def test_a_file_too_large_to_be_a_model_is_refused_before_it_is_read(
    tmp_path, monkeypatch
):
    from nnscratch.nn import npz

    path = tmp_path / "model.npz"
    small_model().save(path)
    monkeypatch.setattr(npz, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelFileError, match="bytes, more than the 100 a model file"):
        load_model(path)


def header_bomb(size: int = 25_000_000) -> bytes:
    """A model file of 25 KB whose 0.W.npy (deflated) is a .npy version 2 header
    of `size` spaces: NumPy reads all of it before it refuses a header that long."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__model__.npy", npy_bytes(meta()))
        z.writestr(
            "0.W.npy", b"\x93NUMPY\x02\x00" + size.to_bytes(4, "little") + b" " * size
        )
        z.writestr("0.b.npy", npy_bytes(GOOD["0.b"]))
    return buffer.getvalue()


def test_a_small_file_cannot_make_loading_allocate_much(tmp_path):
    # configs asking for gigabytes of weights, with tiny arrays (or a zip bomb of
    # zeros under an unexpected name): refused before anything large is allocated
    big_dense = {"class": "Dense", "config": {"n_in": 1, "n_out": 300_000_000}}
    big_norm = {"class": "BatchNorm", "config": {"num_features": 300_000_000}}
    cases = [
        npz_bytes(__model__=meta(layers=[big_dense]), **GOOD),
        npz_bytes(__model__=meta(layers=[big_norm], input_shape=[2]), **GOOD),
        zip_bytes({"__model__.npy": npy_bytes(meta()), **{f"{k}.npy": npy_bytes(a) for k, a in GOOD.items()}, "junk.npy": npy_bytes(np.zeros(50_000_000, np.uint8))}),
        header_bomb(),
    ]  # fmt: skip
    for i, content in enumerate(cases):
        path = tmp_path / f"bomb{i}.npz"
        path.write_bytes(content)
        tracemalloc.start()
        with pytest.raises(ModelFileError):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 20 * 2**20, f"case {i}: {peak:,} bytes"


def test_a_description_listing_too_many_layers_is_refused_before_building(tmp_path):
    # each layer costs about a millisecond to check and build: a deflated file of
    # 50 KB listing a million would keep `predict` busy for a quarter of an hour
    from nnscratch.nn.loading import MAX_LAYERS

    path = tmp_path / "deep.npz"
    layers = [{"class": "ReLU"}] * (MAX_LAYERS + 1)
    path.write_bytes(npz_bytes(__model__=meta(layers=layers)))
    start = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (
        f"{path}: the model description lists {MAX_LAYERS + 1:,} layers, more than"
        f" the {MAX_LAYERS:,} a model file may hold"
    )
    assert time.perf_counter() - start < 1


def test_duplicate_members_are_refused(tmp_path):
    path = tmp_path / "twice.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__model__.npy", npy_bytes(meta()))
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("__model__.npy", npy_bytes(meta()))
    with pytest.raises(ModelFileError, match="holds '__model__.npy' twice"):
        load_model(path)


def test_layers_built_for_loading_hold_stand_ins_of_the_right_shapes():
    # loading builds layers without weights, then checks the file against them
    from nnscratch.nn.conv import Conv2D
    from nnscratch.nn.layer import deferred_weights
    from nnscratch.nn.normalization import BatchNorm

    def make():
        return [Dense(3, 4), Conv2D(2, 5, (3, 2)), BatchNorm(6), Dense(7)]

    real = make()
    real[-1].build((4,))
    tracemalloc.start()
    with deferred_weights():
        stand_ins = make()
        stand_ins[-1].build((4,))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100_000  # no weights were allocated
    for layer, stand_in in zip(real, stand_ins):
        for kind in ("params", "state"):
            shapes = {k: a.shape for k, a in getattr(layer, kind).items()}
            assert {k: a.shape for k, a in getattr(stand_in, kind).items()} == shapes
            assert all(
                a.strides == (0,) * a.ndim for a in getattr(stand_in, kind).values()
            )


def zip_with_first_member(flag_bits: int = 0, method: int | None = None) -> bytes:
    """A good model file whose first member (__model__) claims encryption (flag bit 0)
    or another compression method: the bytes of its two headers patched."""
    data = bytearray(zip_bytes({"__model__.npy": npy_bytes(meta()), **{f"{k}.npy": npy_bytes(a) for k, a in GOOD.items()}}))  # fmt: skip
    # (signature, offset of the flags, offset of the method) of the local header
    # and of the central directory entry
    for signature, flags_at, method_at in (
        (b"PK\x03\x04", 6, 8),
        (b"PK\x01\x02", 8, 10),
    ):
        start = data.find(signature)
        data[start + flags_at] |= flag_bits
        if method is not None:
            data[start + method_at : start + method_at + 2] = method.to_bytes(
                2, "little"
            )
    return bytes(data)


def zip_needing_version(version: int) -> bytes:
    """A good model file whose central directory says its first member needs a zip
    reader of `version` (95: 9.5) to extract, past the 6.3 zipfile reads: a damaged
    byte does it, and ZipFile() itself raises NotImplementedError."""
    data = bytearray(zip_with_first_member())
    start = data.find(b"PK\x01\x02")  # "version needed to extract" at +6
    data[start + 6 : start + 8] = version.to_bytes(2, "little")
    return bytes(data)


def deflated_with_bad_data(member: str) -> bytes:
    """A good model file, deflated (as np.savez_compressed writes), whose `member`'s
    compressed data starts with a block of the reserved type: zlib cannot inflate it."""
    arrays = {"__model__.npy": npy_bytes(meta()), **{f"{k}.npy": npy_bytes(a) for k, a in GOOD.items()}}  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in arrays.items():
            z.writestr(name, data)
        start = z.getinfo(member).header_offset
    data = bytearray(buffer.getvalue())
    name_and_extra = int.from_bytes(data[start + 26 : start + 28], "little")
    name_and_extra += int.from_bytes(data[start + 28 : start + 30], "little")
    data[start + 30 + name_and_extra] = 0xFF  # final block, type 3: invalid
    return bytes(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (deflated_with_bad_data("__model__.npy"), "invalid block type"),
        (deflated_with_bad_data("0.W.npy"), "invalid block type"),
        (zip_with_first_member(flag_bits=1), "is encrypted, password required"),
        (zip_with_first_member(method=99), "compression method is not supported"),
        (zip_needing_version(95), "zip file version 9.5"),
    ],
    ids=["corrupt-deflate-description", "corrupt-deflate-weights", "encrypted",
         "unknown-compression", "zip-version"],
)  # fmt: skip
def test_unreadable_zip_members_are_one_line(tmp_path, content, message):
    # zipfile raises RuntimeError and its subclass NotImplementedError for these,
    # zlib.error for data that cannot be inflated: none is a BadZipFile
    path = tmp_path / "odd.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=f"unreadable model file .*{message}"):
        load_model(path)


SAVE_BIG_MODEL = """
import sys, zipfile
import nnscratch as nn

path, storage = sys.argv[1], sys.argv[2]
model = nn.Sequential([nn.Dense(2500, 10000, rng=0)], input_shape=(2500,))
if storage == "deflate":  # all zeros, deflated: 100 MB of weights in a file of ~100 KB
    model.layers[0].params["W"][...] = 0
model.save(path)
if storage == "deflate":
    with zipfile.ZipFile(path) as z:
        members = {info.filename: z.read(info) for info in z.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
"""

LOAD_BIG_MODEL = """
import resource, sys
import numpy as np
import nnscratch as nn

baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = nn.load_model(sys.argv[1])
model.predict(np.zeros((4, 2500), np.float32))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline)
"""


@pytest.mark.parametrize("storage", ["stored", "deflate"])
def test_loading_takes_about_the_memory_of_the_weights(tmp_path, storage):
    # 100 MB of weights: loading reads them straight into the model's buffer, draws
    # no initial weights and touches no gradient memory (issue 19: at most ~1.5x)
    import subprocess
    import sys

    path = str(tmp_path / "big.npz")
    for script in (SAVE_BIG_MODEL, LOAD_BIG_MODEL):
        result = subprocess.run(
            [sys.executable, "-c", script, path, storage],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    if storage == "deflate":
        assert (tmp_path / "big.npz").stat().st_size < 2_000_000
    grown_kb = int(result.stdout)
    weights_kb = 2500 * 10000 * 4 / 1024
    assert grown_kb <= 1.5 * weights_kb, (grown_kb, weights_kb)


def test_a_float64_model_loads_as_float64_and_keeps_training_the_same(tmp_path):
    # get_config leaves dtype out; the file's float64 arrays must not be rounded to
    # float32 on loading (the scikit-learn estimators train float64 models)
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 1, 4, 4)), np.arange(12) % 3
    model = Sequential(
        [
            Conv2D(2, 3, dtype=np.float64),
            BatchNorm(dtype=np.float64),
            Flatten(),
            Dense(3, dtype=np.float64),
        ],
        input_shape=(1, 4, 4),
        seed=0,
    )
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=1)
    model.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = load_model(tmp_path / "m.npz")
    for name, array in loaded.get_weights().items():
        assert array.dtype == np.float64, name
        assert_array_equal(array, model.get_weights()[name])
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=2)
    for name, array in loaded.get_weights().items():
        assert_array_equal(array, model.get_weights()[name])


def saved_arrays(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()}


def without_optimizer_entry(description: np.ndarray) -> np.ndarray:
    meta = json.loads(description.tobytes())
    del meta["optimizer"]
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda a: a.update({"optimizer/all/v": -a["optimizer/all/v"] - 1}),
         "state 'all/v' holds negative values, which a mean of squares cannot"),
        (lambda a: a.update({"optimizer/all/m": a["optimizer/all/m"] * np.nan}),
         "state 'all/m' holds NaN or infinite values"),
        (lambda a: a.update({"optimizer/other/m": a.pop("optimizer/all/m")}),
         "the state of 'all' holds ['v'], Adam keeps ['m', 'v']"),
        (lambda a: a.update({"__model__": without_optimizer_entry(a["__model__"])}),
         "holds optimizer arrays but the description names no optimizer"),
    ],
    ids=["negative-v", "nan-m", "missing-m", "no-description"],
)  # fmt: skip
def test_a_tampered_optimizer_state_is_refused_at_load(tmp_path, change, problem):
    """It loaded and the next fit failed with a KeyError or turned the weights into
    NaN."""
    model = small_model()
    x, y = np.random.default_rng(2).random((8, 4, 4)), np.arange(8) % 3
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)
    model.save(tmp_path / "m.npz", include_optimizer=True)
    arrays = saved_arrays(tmp_path / "m.npz")
    change(arrays)
    path = tmp_path / "bad.npz"
    path.write_bytes(npz_bytes(**arrays))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def batch_norm_mlp(seed=1, inputs=5):
    return Sequential(
        [Dense(8), BatchNorm(), ReLU(), Dense(3)], input_shape=(inputs,), seed=seed
    )


@pytest.mark.parametrize("save", ["save_weights", "save"])
def test_load_weights_takes_the_weights_of_save_weights_or_a_model_file(tmp_path, save):
    """Keras' save_weights / load_weights: the arrays (batch-norm statistics
    included) into a model of the same layers; a model file serves as well."""
    x = np.random.default_rng(0).random((30, 5)).astype(np.float32)
    trained = batch_norm_mlp()
    trained.fit(x, np.arange(30) % 3, epochs=2, verbose=0)
    getattr(trained, save)(tmp_path / "w.npz")
    fresh = batch_norm_mlp(seed=2)
    fresh.load_weights(tmp_path / "w.npz")
    for name, array in trained.get_weights().items():
        assert_array_equal(fresh.get_weights()[name], array, err_msg=name)
    assert_array_equal(fresh(x), trained(x))


def test_load_weights_refuses_other_layers_and_leaves_the_model_as_it_was(tmp_path):
    batch_norm_mlp().save_weights(tmp_path / "w.npz")
    with pytest.raises(ModelFileError, match="holds weights only .* load_weights"):
        load_model(tmp_path / "w.npz")
    other = Sequential([Dense(4), Dense(3)], input_shape=(5,), seed=0)
    with pytest.raises(ModelFileError, match=r"w.npz: weights do not match the arch"):
        other.load_weights(tmp_path / "w.npz")
    wider = batch_norm_mlp(inputs=6)
    with pytest.raises(ModelFileError, match=r"'0.W' has shape \(5, 8\), expected"):
        wider.load_weights(tmp_path / "w.npz")
    # a file whose values no model can use: refused, the model untouched
    tampered = dict(np.load(tmp_path / "w.npz"))
    tampered["0.W"][0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **tampered)
    model = batch_norm_mlp()
    before = model.get_weights()
    with pytest.raises(ModelFileError, match=r"nan.npz: array '0.W' holds NaN"):
        model.load_weights(tmp_path / "nan.npz")
    for name, array in before.items():
        assert_array_equal(model.get_weights()[name], array, err_msg=name)
    with pytest.raises(NnscratchError, match="load_weights: the model is not built"):
        Sequential([Dense(3)]).load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize(
    "name, content",
    [
        ("m.h5", b"\x89HDF\r\n\x1a\n" + bytes(100)),  # HDF5's signature
        ("m.keras", zip_bytes({"config.json": b"{}", "model.weights.h5": b""})),
    ],
)
def test_a_keras_file_is_named_as_one_when_loaded(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    suffix = path.suffix
    for load in (load_model, small_model().load_weights):
        with pytest.raises(ModelFileError, match=rf"^{path}: .*; nnscratch reads the "
                           rf"\.npz files it saves, not Keras' \{suffix} files$"):  # fmt: skip
            load(path)
    with pytest.raises(ModelFileError, match=r"no such model file$"):
        load_model(tmp_path / "missing.h5")


def saved_model_bytes(deflated: bool) -> bytes:
    """A model file (with a batch norm and Adam's state), stored as `save` writes
    it or deflated as np.savez_compressed would."""
    model = Sequential(
        [Flatten(), Dense(16, 8), BatchNorm(8), ReLU(), Dense(8, 3)], input_shape=(4, 4)
    )
    model.fit(np.ones((6, 4, 4), np.float32), np.arange(6) % 3, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(f"{tmp}/m.npz", include_optimizer=True)
        with zipfile.ZipFile(f"{tmp}/m.npz") as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


SAVED = {deflated: saved_model_bytes(deflated) for deflated in (False, True)}


@st.composite
def damaged_model_files(draw) -> bytes:
    """A model file cut short, or with a few bytes changed (its zip and .npy headers
    are in the first few hundred bytes of each member, so changes aim there too)."""
    data = bytearray(SAVED[draw(st.booleans())])
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=60, deadline=None)
@given(content=damaged_model_files())
def test_property_a_damaged_model_file_loads_or_is_one_line(content):
    """Whatever the damage: a model, or one ModelFileError line naming the file;
    never a traceback out of zipfile, zlib or NumPy's header parser."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.npz"
        path.write_bytes(content)
        try:
            load_model(path)
        except ModelFileError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
