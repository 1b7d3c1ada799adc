"""Model files written by earlier versions of nnscratch still load and predict the same.

tests/data/model_format_v1.npz was written by nnscratch before the package layout
changed (commit d6695da): a conv net with every kind of saved layer, trained one epoch.
Its predictions on eight images were saved beside it.
"""

from pathlib import Path

import numpy as np
from numpy.testing import assert_allclose

import nnscratch as nn

DATA = Path(__file__).parent / "data"


def test_a_model_file_from_before_the_new_layout_loads_and_predicts_the_same():
    model = nn.load_model(DATA / "model_format_v1.npz")
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "Reshape", "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Conv2D", "LeakyReLU",
        "AvgPool2D", "Flatten", "Dense", "Tanh", "Dropout", "Dense",
    ]  # fmt: skip
    assert model.class_names == [str(i) for i in range(10)]
    assert model.metadata["note"].startswith("written by nnscratch before")
    images = np.load(DATA / "model_format_v1_images.npy")
    expected = np.load(DATA / "model_format_v1_probs.npy")
    assert_allclose(model.predict(images), expected, rtol=1e-5, atol=1e-7)


def test_a_loaded_old_model_saves_to_a_file_that_loads_the_same(tmp_path):
    model = nn.load_model(DATA / "model_format_v1.npz")
    model.save(tmp_path / "again.npz")
    again = nn.load_model(tmp_path / "again.npz")
    images = np.load(DATA / "model_format_v1_images.npy")
    np.testing.assert_array_equal(again.predict(images), model.predict(images))
    for name, array in model.get_weights().items():
        np.testing.assert_array_equal(again.get_weights()[name], array)
