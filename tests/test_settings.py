"""A run's settings: built from each preset and from options, checked once with
one-line errors naming the option, read-only, and the same after config.json."""

import dataclasses
import json
import re

import pytest

from nnscratch import Dense, NnscratchError
from nnscratch.runs.presets import BUILDERS, PRESETS, preset_settings
from nnscratch.runs.settings import FIXED_BY_ARCHITECTURE, INITS, RunSettings
from nnscratch.runs.training import build_optimizer, run_training

# config.json as `nnscratch train --preset default --epochs 1 --limit 300` wrote it
# before the settings were an object
DEFAULT_CONFIG = {
    "architecture": "mlp",
    "hidden": [800, 800],
    "activation": "relu",
    "dropout": 0.2,
    "init": "he",
    "optimizer": "adamw",
    "lr": 0.001,
    "momentum": 0.9,
    "weight_decay": 0.01,
    "schedule": "cosine",
    "warmup": 1.0,
    "epochs": 1,
    "batch_size": 128,
    "l2": 0.0,
    "seed": 0,
    "validation_split": 0.1,
    "augment": "default",
    "preset": "default",
    "dataset": "mnist",
    "data_dir": "/work/shared/data/mnist",
    "train_examples": 270,
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_gives_its_values_over_the_defaults(name):
    settings = preset_settings(name)
    assert settings.preset == name and settings.dataset == "mnist"
    base = RunSettings()
    for field in dataclasses.fields(RunSettings):
        value = getattr(settings, field.name)
        if field.name in PRESETS[name]:
            expected = PRESETS[name][field.name]
            if field.name == "augment":  # "auto": the one suited to MNIST
                expected = "default"
            assert value == (tuple(expected) if field.name == "hidden" else expected)
        elif field.name not in ("preset", "augment"):
            assert value == getattr(base, field.name), field.name
    assert set(BUILDERS) == set(FIXED_BY_ARCHITECTURE)  # every architecture builds


def test_options_override_the_preset():
    settings = preset_settings("cnn", lr=0.01, epochs=2, dataset="fashion-mnist")
    assert (settings.lr, settings.epochs, settings.dataset) == (
        0.01,
        2,
        "fashion-mnist",
    )
    assert settings.optimizer == "adamw" and settings.dropout == 0.3  # the preset's
    assert settings.augment == "shift=2"  # "auto" for Fashion-MNIST
    assert preset_settings("default", augment="shift=1").augment == "shift=1"
    assert preset_settings("default", batch_size=None).batch_size is None  # 'full'
    # values are stored as their type, names as the registries' short names
    settings = RunSettings(hidden=[64], lr=1, optimizer="AdamW", schedule="CosineDecay")
    assert settings.hidden == (64,) and isinstance(settings.lr, float)
    assert (settings.optimizer, settings.schedule) == ("adamw", "cosine")
    assert RunSettings(augment=None).augment == "none"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr": -1}, "--lr: expected a number > 0, got -1"),
        ({"lr": "0.1"}, "--lr: expected a number > 0, got '0.1'"),
        ({"dropout": 1.0}, "--dropout: expected a number in [0, 1), got 1.0"),
        ({"momentum": float("nan")}, "--momentum: expected a number in [0, 1)"),
        ({"weight_decay": -0.1}, "--weight-decay: expected a number >= 0"),
        ({"validation_split": 1}, "--validation-split: expected a number in [0, 1)"),
        ({"epochs": 0}, "--epochs: expected an int >= 1, got 0"),
        ({"epochs": 2.5}, "--epochs: expected an int >= 1, got 2.5"),
        ({"seed": True}, "--seed: expected an int >= 0, got True"),
        ({"batch_size": 0}, "--batch-size: expected an int >= 1, got 0"),
        ({"hidden": [64, 0]}, "--hidden: expected layer sizes >= 1"),
        ({"hidden": "256,128"}, "--hidden: expected layer sizes >= 1"),
        ({"activation": "swish"}, "--activation: expected one of relu, "),
        ({"optimizer": "nadam"}, "--optimizer: expected one of sgd, "),
        ({"schedule": None}, "--schedule: expected one of constant, "),
        ({"augment": "shift=x"}, "--augment: expected 'auto', 'default', 'none'"),
        ({"augment": "scale=2"}, "augment: scale must be below 1"),
        ({"augment": 2}, "--augment: expected a text, got 2"),
        ({"dataset": "cifar10"}, "--dataset: expected one of mnist, fashion-mnist"),
        ({"architecture": "resnet"}, "architecture: expected one of mlp, lenet-like"),
        ({"init": "zeros"}, "init: expected one of he, xavier, normal"),
        ({"preset": 3}, "--preset: expected a name, got 3"),
        (
            {"schedule": "cosine", "epochs": 2, "warmup": 3},
            "--epochs (2) must be at least the warm-up (3)",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option(options, message):
    with pytest.raises(NnscratchError) as error:
        RunSettings(**options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_presets_refuse_what_their_architecture_fixes_and_unknown_names():
    with pytest.raises(NnscratchError, match="--hidden does not apply to --preset cnn"):
        preset_settings("cnn", hidden=[256, 128])  # even at the value it would have
    with pytest.raises(NnscratchError, match="--dropout does not apply to --preset le"):
        preset_settings("lenet-like", dropout=0.0)
    with pytest.raises(NnscratchError, match="--preset: expected one of default, "):
        preset_settings("huge")
    with pytest.raises(NnscratchError, match="--lr: expected a number > 0"):
        preset_settings("default", lr=0)


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_round_trip_through_config_json(name, dataset):
    settings = preset_settings(name, dataset=dataset, seed=3)
    # what config.json holds: the settings and the run's facts, as JSON text
    config = {**settings.to_dict(), "data_dir": "/data/mnist", "train_examples": 9}
    loaded = RunSettings.from_dict(json.loads(json.dumps(config)))
    assert loaded == settings
    assert loaded.to_dict() == settings.to_dict()


def test_a_config_json_of_the_dict_settings_loads():
    settings = RunSettings.from_dict(DEFAULT_CONFIG)
    assert settings == preset_settings("default", epochs=1)
    written = {**settings.to_dict(), "data_dir": "/work/shared/data/mnist"}
    # the same keys and values, in the same order, but for AdamW's unused momentum
    expected = {k: v for k, v in DEFAULT_CONFIG.items() if k != "momentum"}
    assert {**written, "train_examples": 270} == expected
    assert list(written) == list(expected)[:-1]
    # a conv net's config.json has no hidden or activation: they take the defaults
    config = preset_settings("lenet-like").to_dict()
    assert "hidden" not in config and "dropout" not in config
    assert RunSettings.from_dict(config) == preset_settings("lenet-like")


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"optimizer": "rmsprop", "weight_decay": 0.1},
            (
                "--weight-decay does not apply to --optimizer rmsprop (only sgd, "
                "adam, adamw take it)"
            ),
        ),
        # even at the value it would have had, as options the architecture fixes
        (
            {"optimizer": "adam", "momentum": 0.9},
            "--momentum does not apply to --optimizer adam (only sgd takes it)",
        ),
        ({"momentum": 0.5}, "--momentum does not apply to --optimizer adamw"),
        ({"optimizer": "RMSprop", "weight_decay": 0.0}, "--optimizer rmsprop (only"),
    ],
)
def test_an_option_the_optimizer_does_not_take_is_refused(options, message):
    # it was ignored, yet config.json recorded it as used
    with pytest.raises(NnscratchError) as error:
        preset_settings("default", **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_preset_value_the_chosen_optimizer_does_not_take_is_left_out():
    settings = preset_settings("default", optimizer="rmsprop")  # default: AdamW, wd
    assert settings.weight_decay == 0.0
    config = settings.to_dict()
    assert "weight_decay" not in config and "momentum" not in config
    assert RunSettings.from_dict(config) == settings
    assert build_optimizer(settings).get_config() == {
        "lr": 0.001, "rho": 0.99, "eps": 1e-8
    }  # fmt: skip
    sgd = preset_settings("default", optimizer="sgd", momentum=0.5)
    assert sgd.to_dict()["momentum"] == 0.5 and sgd.to_dict()["weight_decay"] == 0.01
    assert build_optimizer(sgd).get_config()["momentum"] == 0.5
    with pytest.raises(NnscratchError, match="--weight-decay does not apply"):
        RunSettings(optimizer="rmsprop", weight_decay=0.1)  # the object itself
    # a config.json written before recorded the value unused: it loads, still unused
    old = {**DEFAULT_CONFIG, "optimizer": "rmsprop"}
    assert RunSettings.from_dict(old) == dataclasses.replace(settings, epochs=1)


def test_from_dict_refuses_an_unknown_key_or_a_bad_value():
    with pytest.raises(NnscratchError, match="unknown setting 'learning_rate'"):
        RunSettings.from_dict({**DEFAULT_CONFIG, "learning_rate": 0.1})
    with pytest.raises(NnscratchError, match="--epochs: expected an int >= 1"):
        RunSettings.from_dict({**DEFAULT_CONFIG, "epochs": "3"})
    with pytest.raises(NnscratchError, match="settings: expected a dict, got list"):
        RunSettings.from_dict([])


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(RunSettings)])
@pytest.mark.parametrize("value", [{}, ["mnist"]], ids=["dict", "list"])
def test_a_list_or_dict_for_any_setting_is_refused_in_one_line(field, value):
    # a hand-edited config.json: `nnscratch report` gave "unhashable type: 'list'"
    # for an architecture or dataset given as a list
    with pytest.raises(NnscratchError, match=re.escape(f"got {value!r}")):
        RunSettings.from_dict({**DEFAULT_CONFIG, field: value})


def test_settings_cannot_be_changed_after_they_are_made():
    settings = preset_settings("default")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lr = 0.1
    with pytest.raises(AttributeError):  # a tuple: no in-place change of the sizes
        settings.hidden.append(10)
    changed = dataclasses.replace(settings, lr=0.1)  # a changed copy, checked again
    assert changed.lr == 0.1 and settings.lr == 1e-3
    with pytest.raises(NnscratchError, match="--lr"):
        dataclasses.replace(settings, lr=-0.1)
    assert {settings: "old", changed: "new"}[changed] == "new"  # frozen: a dict key


@pytest.mark.parametrize("init", INITS)
def test_every_init_the_settings_allow_draws_weights(init):
    assert Dense(3, 2, init=init).params["W"].shape == (3, 2)


def test_run_training_takes_the_settings_object():
    with pytest.raises(TypeError, match="expected a RunSettings, got <class 'dict'>"):
        run_training(preset_settings("default").to_dict())
