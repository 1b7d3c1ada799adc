"""Training presets and building a model, optimiser and schedule from a settings dict.

A settings dict (what `nnscratch train` writes to config.json) names the architecture
and every training choice; presets are settings dicts with good values.
"""

from __future__ import annotations

import numpy as np

from .errors import NnscratchError
from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .model import Sequential
from .optimizers import Optimizer, get_optimizer
from .schedules import Schedule, get_schedule

BASE = {
    "architecture": "mlp",
    "hidden": [256, 128],
    "activation": "relu",
    "dropout": 0.0,
    "init": "he",
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "schedule": "constant",
    "warmup": 0.0,
    "epochs": 10,
    "batch_size": 128,
    "l2": 0.0,
    "seed": 0,
    "validation_split": 0.1,
    "augment": None,
}

PRESETS = {
    # our best MLP for the 3-minute budget (see README for the figures)
    "default": {
        "hidden": [800, 800],
        "dropout": 0.2,
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.01,
        "schedule": "cosine",
        "warmup": 1.0,
        "epochs": 30,
        "batch_size": 128,
    },
    # the first hobby project: 784-10-10, ReLU, softmax, full-batch gradient descent
    "seed-2layer": {
        "hidden": [10],
        "optimizer": "sgd",
        "lr": 0.5,
        "momentum": 0.0,
        "epochs": 500,
        "batch_size": None,
        "validation_split": 0.0,
    },
    # the third hobby project: 784-256-128-64-32-10, Adam lr 1e-3, batch 32, 5 epochs
    "seed-deep": {
        "hidden": [256, 128, 64, 32],
        "optimizer": "adam",
        "lr": 1e-3,
        "epochs": 5,
        "batch_size": 32,
    },
}

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def preset_settings(name: str) -> dict:
    """BASE overlaid with the named preset."""
    if name not in PRESETS:
        raise NnscratchError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return {**BASE, **PRESETS[name], "preset": name}


def build_mlp(settings: dict, input_shape: tuple, num_classes: int, rng) -> list:
    """Flatten, then (Dense, activation, [Dropout]) per hidden size, then Dense -> logits."""
    if settings["activation"] not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS)
        raise NnscratchError(
            f"activation: expected one of {known}, got {settings['activation']!r}"
        )
    activation = ACTIVATIONS[settings["activation"]]
    layers, n_in = [Flatten()], int(np.prod(input_shape))
    for width in settings["hidden"]:
        layers += [Dense(n_in, width, init=settings["init"], l2=settings["l2"], rng=rng)]
        layers += [activation()]
        if settings["dropout"]:
            layers.append(Dropout(settings["dropout"]))
        n_in = width
    layers.append(Dense(n_in, num_classes, init=settings["init"], l2=settings["l2"], rng=rng))
    return layers


def build_model(settings: dict, input_shape: tuple, class_names: list[str]) -> Sequential:
    """The model described by `settings`, weights drawn from `settings['seed']`."""
    rng = np.random.default_rng(settings["seed"])
    architecture = settings["architecture"]
    if architecture == "mlp":
        layers = build_mlp(settings, input_shape, len(class_names), rng)
    else:
        raise NnscratchError(f"architecture: expected 'mlp', got {architecture!r}")
    return Sequential(layers, input_shape=input_shape, class_names=class_names)


def build_optimizer(settings: dict) -> Optimizer:
    name, lr = settings["optimizer"], settings["lr"]
    if name == "sgd":
        momentum = settings["momentum"]
        return get_optimizer(name, lr=lr, momentum=momentum, weight_decay=settings["weight_decay"])
    if name in ("adam", "adamw"):
        return get_optimizer(name, lr=lr, weight_decay=settings["weight_decay"])
    return get_optimizer(name, lr=lr)


def build_schedule(settings: dict) -> Schedule | None:
    if settings["schedule"] == "constant" and not settings["warmup"]:
        return None
    return get_schedule(settings["schedule"], settings["lr"], settings["epochs"], settings["warmup"])
