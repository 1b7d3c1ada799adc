"""Registries: every kind of part is found by class name and by short name, any case."""

import pytest

import nnscratch as nn
from nnscratch.errors import NnscratchError
from nnscratch.nn.registry import (
    ACTIVATIONS,
    LAYERS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    Registry,
)


@pytest.mark.parametrize(
    "registry, name, cls",
    [
        (LAYERS, "Conv2D", nn.Conv2D),
        (LAYERS, "dense", nn.Dense),
        (ACTIVATIONS, "leaky_relu", nn.LeakyReLU),
        (ACTIVATIONS, "LeakyReLU", nn.LeakyReLU),
        (LOSSES, "cross_entropy", nn.SoftmaxCrossEntropy),
        (LOSSES, "MeanSquaredError", nn.MeanSquaredError),
        (OPTIMIZERS, "ADAMW", nn.AdamW),
        (SCHEDULES, "cosine", nn.CosineDecay),
        (SCHEDULES, "StepDecay", nn.StepDecay),
    ],
)
def test_a_class_is_found_by_class_name_or_short_name(registry, name, cls):
    assert registry.get_class(name) is cls


def test_every_layer_class_is_registered_under_its_class_name():
    for name in ["Dense", "ReLU", "Dropout", "Flatten", "BatchNorm", "MaxPool2D"]:
        assert LAYERS[name].__name__ == name


def test_an_unknown_name_lists_the_known_short_names():
    with pytest.raises(NnscratchError, match="optimizer: expected one of sgd, .*adam"):
        OPTIMIZERS.get_class("adagrad")


def test_register_as_a_plain_and_as_a_named_decorator():
    things = Registry("thing")

    @things.register
    class First:
        pass

    @things.register(name="second_one")
    class Second:
        pass

    assert things == {"First": First, "Second": Second}
    assert things.get_class("first") is First
    assert things.get_class("second_one") is Second
