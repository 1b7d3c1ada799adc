"""The training animation: recording predictions during fit, the .npz round trip, and
a GIF with one frame per epoch, on small synthetic data."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nnscratch.errors import DataError, NnscratchError
from nnscratch.reporting import animation, recordings

NAMES = ["zero", "one", "two"]


def _images(n, seed=0):
    """n random 28x28 uint8 images and labels cycling through the 3 classes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    return images, np.arange(n) % 3


def _recordings(epochs=3):
    images, labels = _images(9)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(epochs, 9))
    logs = {
        "loss": np.linspace(1, 0.5, epochs),
        "val_accuracy": np.linspace(0.5, 0.9, epochs),
    }
    return recordings.Recordings(images, labels, probs, logs, NAMES)


def test_training_animation_has_one_frame_per_epoch(tmp_path):
    path = animation.training_animation(tmp_path / "training.gif", _recordings(3))
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 3
        assert gif.size == (1000, 540)
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("L"), dtype=np.float64))
    assert all(frame.std() > 10 for frame in frames)
    assert np.abs(frames[0] - frames[-1]).max() > 0  # the frames differ


def test_a_long_run_is_shown_by_evenly_spaced_epochs(tmp_path):
    assert animation.frame_epochs(5, max_frames=10).tolist() == [0, 1, 2, 3, 4]
    assert animation.frame_epochs(500, max_frames=5).tolist() == [0, 125, 250, 374, 499]
    path = animation.training_animation(
        tmp_path / "long.gif", _recordings(40), max_frames=8
    )
    with Image.open(path) as gif:
        assert gif.n_frames == 8
        gif.seek(1)
        assert gif.info["duration"] == 700  # 8 frames fit in the film at full length


def test_recordings_round_trip_and_damage(tmp_path):
    rec = _recordings(2)
    path = rec.save(tmp_path / "rec.npz")
    back = recordings.Recordings.load(path)
    np.testing.assert_array_equal(back.images, rec.images)
    np.testing.assert_array_equal(back.probs, rec.probs)
    np.testing.assert_array_equal(back.logs["loss"], rec.logs["loss"])
    assert back.class_names == NAMES
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(NnscratchError, match="bad.npz"):
        recordings.Recordings.load(tmp_path / "bad.npz")
    with pytest.raises(NnscratchError, match="missing.npz"):
        recordings.Recordings.load(tmp_path / "missing.npz")


def _saved_with(path, **changes):
    """The arrays of `_recordings(2)`'s file with `changes`, written as np.savez does."""
    path = _recordings(2).save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(path, **{**arrays, **changes})
    return path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable recordings file"),
        (lambda p: _saved_with(p, labels=np.array(["a"] * 9)), "invalid literal"),
        (lambda p: _saved_with(p, class_names=np.array("x")), "0-d"),
        (lambda p: _saved_with(p, probs=np.array([None], object)), "Python objects"),
        (lambda p: _saved_with(p, images=np.zeros((9, 28), np.uint8)), "images"),
    ],
    ids=["truncated", "text-labels", "0d-class-names", "objects", "2d-images"],
)  # fmt: skip
def test_a_damaged_recordings_file_is_one_line_naming_it(tmp_path, damage, message):
    """`nnscratch report` reads recordings.npz: a damaged one must not be a
    traceback (BadZipFile, ValueError, TypeError) out of NumPy or zipfile."""
    path = tmp_path / "rec.npz"
    _recordings(2).save(path)
    damage(path)
    with pytest.raises(NnscratchError, match=message) as info:
        recordings.Recordings.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text


def test_a_recordings_file_declaring_too_much_data_is_refused_unread(
    tmp_path, monkeypatch
):
    # as a model file: the headers are added up before any array is read, so a
    # small deflated file cannot make `report` inflate gigabytes
    path = _recordings(2).save(tmp_path / "rec.npz")
    monkeypatch.setattr(recordings, "MAX_RECORDINGS_BYTES", 1000)
    with pytest.raises(NnscratchError, match="bytes, more than the 1,000 allowed"):
        recordings.Recordings.load(path)


class _FakeModel:
    class_names = NAMES

    def predict(self, images, batch_size=256):
        # class = mean brightness bucket, so the result depends on the images
        means = (
            np.asarray(images, dtype=np.float64).reshape(len(images), -1).mean(axis=1)
        )
        return np.eye(3, dtype=np.float32)[(means > 127).astype(int)]


def test_prediction_recorder_samples_and_takes_labels_later():
    images, labels = _images(30)
    recorder = recordings.PredictionRecorder(images, n=5, seed=0)
    recorder.model = _FakeModel()
    recorder.on_train_begin()
    for epoch in range(2):
        recorder.on_epoch_end(epoch, {"loss": 1.0 - epoch / 4, "note": "text"})
    with pytest.raises(DataError, match="labels"):
        recorder.recordings()
    rec = recorder.recordings(labels)
    assert rec.probs.shape == (2, 5, 3)
    np.testing.assert_array_equal(rec.images, images[recorder.indices])
    np.testing.assert_array_equal(rec.labels, labels[recorder.indices])
    np.testing.assert_allclose(rec.logs["loss"], [1.0, 0.75])
    assert "note" not in rec.logs and rec.class_names == NAMES
    with pytest.raises(DataError, match="expected 30 labels"):
        recorder.recordings(labels[:5])


@pytest.mark.parametrize("epochs", [1, 2, 30])
def test_the_loss_axes_mark_whole_epochs_only(epochs):
    ax = animation._build_figure(_recordings(epochs)).fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_every_tile_names_its_true_class_and_a_wrong_one_says_so():
    # the tiles showed only the prediction: right and wrong could not be told apart
    rec = _recordings(2)
    artists = animation._build_figure(rec)
    for epoch in range(rec.epochs):
        animation._set_epoch(artists, rec, epoch)
        predicted = rec.probs[epoch].argmax(axis=1)
        for k, tile in enumerate(artists.tiles):
            label = tile.xaxis.label
            assert label.get_text() == f"true: {NAMES[rec.labels[k]]}"
            wrong = predicted[k] != rec.labels[k]
            assert (label.get_color() == animation.WRONG) == wrong
            assert tile.title.get_color() == (
                animation.WRONG if wrong else animation.CORRECT
            )


def test_each_frame_is_the_whole_figure_drawn_at_its_epoch(monkeypatch):
    # frames after the first draw only what changes on a saved background (blitting):
    # each must be the very picture a whole draw of the figure gives at that epoch
    rec = _recordings(4)
    artists = animation._build_figure(rec)
    fig = artists.fig
    drawn = []  # the RGB canvas of each frame, before its palette is made
    canvas_rgb = animation._canvas_rgb

    def recording(f):
        drawn.append(np.asarray(f.canvas.buffer_rgba()).copy())
        return canvas_rgb(f)

    monkeypatch.setattr(animation, "_canvas_rgb", recording)
    frames = animation._draw_frames(artists, rec, np.arange(rec.epochs))
    assert len(frames) == len(drawn) == 4 and frames[0].mode == "P"
    for artist in artists.changing():
        artist.set_animated(False)
    for epoch in range(rec.epochs):
        animation._set_epoch(artists, rec, epoch)
        fig.canvas.draw()  # whole, in the layout the frames keep
        np.testing.assert_array_equal(
            drawn[epoch], np.asarray(fig.canvas.buffer_rgba())
        )


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, 5000), changes=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), max_size=4))  # fmt: skip
def test_property_a_damaged_recordings_file_loads_or_is_one_line(cut, changes):
    """recordings.npz cut short or with bytes changed (it is deflated: most
    changes break its compressed data): recordings, or one NnscratchError naming it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _recordings(2).save(Path(tmp) / "rec.npz")
        data = bytearray(path.read_bytes())
        for i, value in changes:
            data[i % len(data)] = value
        path.write_bytes(bytes(data[: max(cut, 1)] if cut < len(data) else data))
        try:
            recordings.Recordings.load(path)
        except NnscratchError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
