"""Augment: reproducible, shape/dtype/range preserving, and geometrically right."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch.data.augment import Augment, elastic_field, warp
from nnscratch.errors import NnscratchError


def digits_like(n=6, size=28, seed=0):
    """Blobs of ink in [0, 1] on a 0 background, roughly like MNIST."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.float32)
    images[:, 8:20, 10:18] = rng.random((n, 12, 8), dtype=np.float32)
    images[:, 12:16, 6:22] = 1.0
    return images


def impulse(row, col, size=27):
    image = np.zeros((1, size, size), dtype=np.float32)
    image[0, row, col] = 1.0
    return image


def test_same_seed_same_output_and_different_seeds_differ():
    images = digits_like()
    augment = Augment(shift=2, rotation=10, scale=0.1, elastic=1.0)
    a = augment(images, np.random.default_rng(7))
    b = augment(images, np.random.default_rng(7))
    c = augment(images, np.random.default_rng(8))
    assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # each image gets its own transform: identical inputs come out different
    same = np.repeat(images[:1], 4, axis=0)
    out = augment(same, np.random.default_rng(0))
    assert not np.allclose(out[0], out[1])


def test_identity_returns_an_unchanged_copy():
    images = digits_like()
    for augment in (Augment(0, 0, 0, 0), Augment.from_spec("none")):
        out = augment(images, np.random.default_rng(0))
        assert out is not images
        assert_array_equal(out, images)
    # the general path with an identity transform is exact too
    n = len(images)
    out = warp(images, np.zeros((n, 2)), np.zeros(n), np.ones(n))
    assert_array_equal(out, images)


def test_input_is_not_modified_and_shape_dtype_range_kept():
    images = digits_like(n=16)
    before = images.copy()
    augment = Augment(shift=3, rotation=20, scale=0.2, elastic=2.0)
    for batch in (images, images[:, None], images.astype(np.float64)):
        out = augment(batch, np.random.default_rng(1))
        assert out.shape == batch.shape and out.dtype == batch.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert out.max() > 0.5  # the digit did not vanish
    assert_array_equal(images, before)


def test_standardised_or_inverted_images_get_their_own_background_outside():
    # outside the image was always 0: standardised digits ((x - 0.1307) / 0.3081,
    # background -0.42) got bright bands shifted in, that no test image has.
    # Augmenting then normalising (torchvision's order) must equal the reverse.
    images = digits_like(n=16)
    augment = Augment(shift=4, rotation=30, scale=0.2, elastic=1.0)
    plain = augment(images, np.random.default_rng(5))
    for normalise in (lambda x: (x - 0.1307) / 0.3081, lambda x: 1 - x):
        for batch in (normalise(images), normalise(images)[:, None]):
            out = augment(batch, np.random.default_rng(5))
            assert_allclose(out.reshape(plain.shape), normalise(plain), atol=1e-5)


def test_shifted_impulse_moves_where_expected():
    image = impulse(10, 10)
    out = warp(image, np.array([[3.0, -2.0]]), np.zeros(1), np.ones(1))
    assert_array_equal(out, impulse(13, 8))
    # half a pixel right splits the impulse between two pixels
    out = warp(image, np.array([[0.0, 0.5]]), np.zeros(1), np.ones(1))
    assert_allclose(out[0, 10, 10:12], [0.5, 0.5])
    assert out.sum() == pytest.approx(1.0)


def test_rotation_and_scale_about_the_centre():
    # 27 x 27: the centre is pixel (13, 13); (13, 20) is 7 pixels right of it
    out = warp(impulse(13, 20), np.zeros((1, 2)), np.array([90.0]), np.ones(1))
    assert_allclose(out, impulse(6, 13), atol=1e-5)  # counter-clockwise: now above
    out = warp(impulse(13, 15), np.zeros((1, 2)), np.zeros(1), np.array([2.0]))
    assert np.unravel_index(out[0].argmax(), out[0].shape) == (13, 17)
    assert out[0, 13, 17] == pytest.approx(1.0)


def test_random_shift_moves_the_centre_of_mass_by_at_most_shift():
    images = digits_like(n=32)
    out = Augment(shift=2, rotation=0, scale=0, elastic=0)(images, 3)
    grid = np.arange(28)

    def centre(batch):
        mass = batch.sum(axis=(1, 2))
        rows = (batch.sum(axis=2) * grid).sum(axis=1) / mass
        cols = (batch.sum(axis=1) * grid).sum(axis=1) / mass
        return np.stack([rows, cols], axis=1)

    moved = centre(out) - centre(images)
    assert np.abs(moved).max() <= 2.0 + 1e-4
    assert np.abs(moved).max() > 0.5


def test_elastic_field_has_the_requested_size():
    field = elastic_field(64, 28, 28, 1.5, np.random.default_rng(0))
    assert field.shape == (64, 2, 28, 28) and field.dtype == np.float32
    assert np.sqrt(np.mean(field**2)) == pytest.approx(1.5, rel=0.1)
    # smooth: neighbouring pixels move almost together
    step = np.abs(np.diff(field, axis=3)).mean()
    assert step < 0.3 * np.abs(field).mean()


def test_from_spec_and_config():
    assert Augment.from_spec("default").get_config() == Augment().get_config()
    augment = Augment.from_spec(" shift=1.5, rotation=5 ")
    assert augment.get_config() == {
        "shift": 1.5,
        "rotation": 5.0,
        "scale": 0.0,
        "elastic": 0.0,
    }
    assert Augment.from_spec(augment.to_spec()).get_config() == augment.get_config()
    precise = Augment(shift=1.2345678, rotation=1 / 3, scale=0.1, elastic=0)
    assert precise.to_spec() == (
        "shift=1.2345678,rotation=0.3333333333333333,scale=0.1,elastic=0"
    )
    assert Augment.from_spec(precise.to_spec()).get_config() == precise.get_config()
    assert (
        repr(Augment(1, 2, 0.1, 0))
        == "Augment(shift=1, rotation=2, scale=0.1, elastic=0)"
    )
    for bad in ("shift", "shift=x", "tilt=3", "shift=1,shift=2", ""):
        with pytest.raises(NnscratchError, match="--augment: expected"):
            Augment.from_spec(bad)
    with pytest.raises(NnscratchError, match="scale must be below 1"):
        Augment.from_spec("scale=1")
    with pytest.raises(
        NnscratchError, match="augment: rotation: expected a number >= 0, got -1"
    ):
        Augment(rotation=-1)
    # what a config file or a form may hand over: named, not a TypeError from NumPy
    for bad in ("2", None, [2.0], True):
        with pytest.raises(NnscratchError, match="augment: shift: expected a number"):
            Augment(shift=bad)


def test_uint8_images_come_out_uint8_as_their_scaled_floats_would():
    # raw MNIST arrays, as fit takes them, were refused
    images = (digits_like(n=8) * 255).round().astype(np.uint8)
    augment = Augment(shift=2, rotation=10, scale=0.1, elastic=1.0)
    for batch in (images, images[:, None]):
        out = augment(batch, np.random.default_rng(3))
        assert out.dtype == np.uint8 and out.shape == batch.shape
        scaled = augment(batch.astype(np.float32) / 255, np.random.default_rng(3))
        assert np.abs(out / 255 - scaled).max() <= 0.5 / 255 + 1e-6  # rounded
    assert_array_equal(Augment(0, 0, 0, 0)(images, 0), images)


def test_rejects_bad_images():
    augment = Augment()
    with pytest.raises(
        NnscratchError, match=r"expected uint8 or float images .* int64"
    ):
        augment(np.zeros((2, 28, 28), dtype=np.int64), 0)
    with pytest.raises(NnscratchError, match=r"got float32 \(2, 3, 28, 28\)"):
        augment(np.zeros((2, 3, 28, 28), dtype=np.float32), 0)


def test_auto_spec_is_resolved_per_dataset():
    assert Augment.resolve_spec("auto", "mnist") == "default"
    assert Augment.resolve_spec(" AUTO ", "fashion-mnist") == "shift=2"
    assert Augment.resolve_spec("auto", "some-other-digits") == "default"
    assert Augment.resolve_spec("shift=1", "mnist") == "shift=1"
    assert Augment.resolve_spec(None, "mnist") is None


def test_fit_refuses_flattened_images_or_a_non_callable_augment_up_front(tmp_path):
    # (N, 784) images failed only at the first batch, after the callbacks had begun
    # (a CSV log written, a bar shown); a spec text failed as "'str' object is not
    # callable" from inside the training step
    import nnscratch as nn

    x = digits_like(n=8).reshape(8, -1)
    y = np.arange(8) % 2
    model = nn.Sequential([nn.Dense(2)], seed=0)
    log = tmp_path / "log.csv"
    with pytest.raises(
        NnscratchError,
        match=r"^augment: expected uint8 or float images \(N, H, W\) or \(N, 1, H, W\)"
        r", got float32 \(8, 784\); flattened images\? reshape them to \(N, 28, 28\)",
    ):
        model.fit(x, y, augment=Augment(), callbacks=[nn.CSVLogger(log)], verbose=0)
    assert not log.exists()
    for bad in ("shift=2", 3):
        with pytest.raises(NnscratchError, match=r"^augment: expected a function"):
            model.fit(x, y, augment=bad, verbose=0)
    images = x.reshape(8, 1, 28, 28)  # what Augment takes: fits
    model = nn.Sequential([nn.Flatten(), nn.Dense(2)], seed=0)
    model.fit(images, y, augment=Augment(), verbose=0)
