"""Argument checks: bad values get one NnscratchError naming the argument."""

import math
from pathlib import Path

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import (
    SGD,
    Adam,
    AdamW,
    BatchNorm,
    Conv2D,
    Dense,
    EarlyStopping,
    LeakyReLU,
    NnscratchError,
    RMSprop,
)
from nnscratch.errors import DataError, check_float, check_int, check_same_length
from nnscratch.nn.schedules import CosineDecay, ExponentialDecay, StepDecay


def test_check_int_takes_whole_numbers_only():
    assert check_int("n", 3) == 3 and check_int("n", np.int64(0), 0) == 0
    for bad in (0, -1, 2.0, "2", True, None):
        with pytest.raises(NnscratchError, match=r"^n: expected an int >= 1, got "):
            check_int("n", bad)


def test_check_float_takes_finite_numbers_in_the_interval():
    assert check_float("lr", 1, 0, open_low=True) == 1.0
    assert check_float("beta", np.float32(0.5), 0, 1, open_high=True) == 0.5
    cases = [
        (math.nan, {}, "a finite number"),
        (math.inf, {"low": 0}, "a number >= 0"),
        (0.0, {"low": 0, "open_low": True}, "a number > 0"),
        (1.0, {"low": 0, "high": 1, "open_high": True}, r"a number in \[0, 1\)"),
        ("0.1", {}, "a finite number"),
        (False, {}, "a finite number"),
    ]
    for value, interval, words in cases:
        with pytest.raises(NnscratchError, match=rf"^x: expected {words}, got "):
            check_float("x", value, **interval)


def test_check_same_length_names_every_array():
    check_same_length(x=np.zeros((3, 2)), y=[0, 1, 2])
    with pytest.raises(
        DataError, match=r"^images, labels and probs must have the same"
    ):
        check_same_length(images=np.zeros((3, 4, 4)), labels=[0, 1], probs=[[1]] * 3)
    with pytest.raises(DataError, match=r"batch axis, got shapes \(3,\) and \(\)$"):
        check_same_length(x=[1, 2, 3], y=np.float64(1))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Dense(0, 3), "Dense n_in: expected an int >= 1, got 0"),
        (lambda: Dense(16, -2), "Dense n_out: expected an int >= 1"),
        (lambda: Dense(16.5, 3), "Dense n_in: expected an int"),
        (lambda: Dense(16, 3, l2=-1), "Dense l2: expected a number >= 0"),
        (lambda: Conv2D(1, 4, 3, l1=math.nan), "Conv2D l1: expected a number >= 0"),
        (lambda: LeakyReLU("a"), "LeakyReLU alpha: expected a finite number"),
        (lambda: BatchNorm(4, momentum=2), r"BatchNorm momentum: expected a number in"),
        (lambda: SGD("0.1"), "SGD lr: expected a number > 0"),
        (lambda: SGD(0.1, momentum=-1), "SGD momentum: expected a number >= 0"),
        (lambda: RMSprop(rho=1.0), r"RMSprop rho: expected a number in \[0, 1\)"),
        (lambda: Adam(lr=math.inf), "Adam lr: expected a number > 0"),
        (lambda: Adam(beta1=1.0), r"Adam beta1: expected a number in \[0, 1\)"),
        (lambda: AdamW(beta2=-0.1), r"AdamW beta2: expected a number in \[0, 1\)"),
        (lambda: Adam(weight_decay=-1), "Adam weight_decay: expected a number >= 0"),
        # eps 0 divides 0 by 0 wherever a gradient is exactly 0 (a dead ReLU's weights)
        (lambda: Adam(eps=0), "Adam eps: expected a number > 0, got 0"),
        (lambda: AdamW(eps=0.0), "AdamW eps: expected a number > 0, got 0.0"),
        (lambda: RMSprop(eps=0), "RMSprop eps: expected a number > 0, got 0"),
        (lambda: StepDecay(0.1, step_epochs=0), "StepDecay step_epochs: expected"),
        (lambda: ExponentialDecay(0.1, gamma=0), "ExponentialDecay gamma: expected"),
        (lambda: CosineDecay(0.1, epochs=5, min_lr=-1), "CosineDecay min_lr: expected"),
        (lambda: EarlyStopping(patience=-1), "EarlyStopping patience: expected an int"),
    ],
)
def test_constructors_name_the_bad_argument(make, message):
    with pytest.raises(NnscratchError, match=message):
        make()


@pytest.mark.parametrize("folder", [".", "models"])
def test_a_file_written_over_a_folder_is_refused_by_name(folder, tmp_path, monkeypatch):
    # "nnscratch export model.npz ." said "cannot write .: Device or resource busy"
    monkeypatch.chdir(tmp_path)
    Path(folder).mkdir(exist_ok=True)
    model = nn.Sequential([nn.Dense(2)], input_shape=(3,))
    with pytest.raises(
        NnscratchError, match=rf"^cannot write {folder}: it is a folder$"
    ):
        model.save(folder)
    assert [p.name for p in tmp_path.iterdir()] == (
        ["models"] if folder == "models" else []
    )
