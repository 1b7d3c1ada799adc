"""A run's settings: one read-only object, built from a preset and options, checked once.

`RunSettings()` holds the base values every preset starts from; `presets.preset_settings`
lays a preset and the command line's options over them. Every value is checked when
the object is made (a one-line NnscratchError naming the option), so nothing later in
the run meets a bad one; after that the settings are only read. `to_dict` and
`from_dict` convert to and from the settings in config.json.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from ..data.augment import Augment
from ..data.catalog import CLASS_NAMES
from ..errors import NnscratchError, check_float, check_int, is_whole_number
from ..nn.registry import ACTIVATIONS, OPTIMIZERS, SCHEDULES, Registry

# the architectures, and the settings each fixes itself: those are left out of its
# config.json, and giving one as an option is an error (presets.preset_settings)
FIXED_BY_ARCHITECTURE = {
    "mlp": (),
    "lenet-like": ("hidden", "activation", "dropout"),
    "cnn": ("hidden", "activation"),
    "fast": ("hidden", "activation"),
}
INITS = ("he", "xavier", "normal")  # the weight inits nn.layer.init_weights draws
# the settings an optimiser may take beside lr: one its optimiser does not take is
# left out of config.json, and giving it is an error (presets.preset_settings)
OPTIMIZER_OPTIONS = ("momentum", "weight_decay")
# what config.json holds beside the settings: facts of the run, not choices
RUN_FACTS = ("data_dir", "train_examples")


@dataclass(frozen=True)
class RunSettings:
    """Every choice of a training run (fields in config.json's order).

    Read-only: `dataclasses.replace(settings, lr=0.01)` makes a changed copy, checked
    again. Values are stored as their type (hidden a tuple, numbers int or float) and
    names as the registries' short names. `augment` is an --augment text; "auto" is
    replaced by the one suited to `dataset` when the object is made.
    """

    architecture: str = "mlp"  # a key of FIXED_BY_ARCHITECTURE
    hidden: tuple[int, ...] = (256, 128)  # the MLP's hidden layer sizes
    activation: str = "relu"  # the MLP's
    dropout: float = 0.0
    init: str = "he"  # one of INITS
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # sgd, adam and adamw
    schedule: str = "constant"
    warmup: float = 0.0  # epochs of linear warm-up
    epochs: int = 10
    batch_size: int | None = 128  # None: the whole training set in one batch
    l2: float = 0.0
    seed: int = 0
    validation_split: float = 0.1
    augment: str = "none"
    preset: str | None = None  # the preset these settings started from
    dataset: str = "mnist"

    def __post_init__(self) -> None:
        # a text first: a list (from a hand-edited config.json) cannot be looked up
        if not _is_one_of(self.architecture, FIXED_BY_ARCHITECTURE):
            raise NnscratchError(
                f"architecture: expected one of {', '.join(FIXED_BY_ARCHITECTURE)}, "
                f"got {self.architecture!r}"
            )
        self._set("hidden", _sizes(self.hidden))
        self._set(
            "activation", _short_name("--activation", self.activation, ACTIVATIONS)
        )
        self._number("dropout", 0, 1, open_high=True)
        if self.init not in INITS:
            raise NnscratchError(
                f"init: expected one of {', '.join(INITS)}, got {self.init!r}"
            )
        self._set("optimizer", _short_name("--optimizer", self.optimizer, OPTIMIZERS))
        self._number("lr", 0, open_low=True)
        self._number("momentum", 0, 1, open_high=True)
        self._number("weight_decay", 0)
        for name in self.unused_settings():  # a value set for nothing
            if getattr(self, name) != getattr(RunSettings, name):
                raise NnscratchError(not_taken(name, self.optimizer))
        self._set("schedule", _short_name("--schedule", self.schedule, SCHEDULES))
        self._number("warmup", 0)
        self._set("epochs", check_int("--epochs", self.epochs, 1))
        if self.batch_size is not None:
            self._set("batch_size", check_int("--batch-size", self.batch_size, 1))
        self._number("l2", 0)
        self._set("seed", check_int("--seed", self.seed, 0))
        self._number("validation_split", 0, 1, open_high=True)
        if self.preset is not None and not isinstance(self.preset, str):
            raise NnscratchError(f"--preset: expected a name, got {self.preset!r}")
        if not _is_one_of(self.dataset, CLASS_NAMES):
            raise NnscratchError(
                f"--dataset: expected one of {', '.join(CLASS_NAMES)}, "
                f"got {self.dataset!r}"
            )
        self._set("augment", _augment_spec(self.augment, self.dataset))
        if self.schedule == "cosine" and self.warmup > self.epochs:
            raise NnscratchError(
                f"--warmup: with the cosine schedule, --epochs ({self.epochs}) must be "
                f"at least the warm-up ({self.warmup:g})"
            )

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # only while checking, in __post_init__

    def _number(self, name: str, low: float, high: float = float("inf"), **opens):
        option = "--" + name.replace("_", "-")
        self._set(name, check_float(option, getattr(self, name), low, high, **opens))

    def unused_settings(self) -> tuple[str, ...]:
        """The OPTIMIZER_OPTIONS that the optimiser does not take (adam: momentum)."""
        return not_taken_by(self.optimizer)

    def to_dict(self) -> dict:
        """The settings as config.json holds them: JSON values, in field order,
        without the ones the architecture fixes or the optimiser does not take."""
        fixed = FIXED_BY_ARCHITECTURE[self.architecture] + self.unused_settings()
        values = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in fixed
        }
        if "hidden" in values:
            values["hidden"] = list(values["hidden"])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> RunSettings:
        """From `to_dict`'s dict or a whole config.json (whose RUN_FACTS are skipped);
        a setting left out takes its default. NnscratchError for an unknown key.
        Settings the optimiser does not take are skipped: config.json files written
        before they were left out hold them (unused, as now)."""
        if not isinstance(values, dict):
            raise NnscratchError(
                f"settings: expected a dict, got {type(values).__name__}"
            )
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = [key for key in values if key not in names and key not in RUN_FACTS]
        if unknown:
            raise NnscratchError(
                f"unknown setting {unknown[0]!r} (expected {', '.join(names)})"
            )
        unused = not_taken_by(values.get("optimizer"))
        unused = {key: values[key] for key in unused if key in values}
        cls(optimizer="sgd", **unused)  # checked all the same (sgd takes them all)
        kept = {k: v for k, v in values.items() if k in names and k not in unused}
        return cls(**kept)


def optimizer_settings(name) -> tuple[str, ...]:
    """The OPTIMIZER_OPTIONS that the optimiser called `name` takes ("sgd": momentum
    and weight_decay); all of them for a name that is no optimiser's (refused when
    the settings are checked)."""
    try:
        parameters = inspect.signature(OPTIMIZERS.get_class(name)).parameters
    except NnscratchError:
        return OPTIMIZER_OPTIONS
    return tuple(option for option in OPTIMIZER_OPTIONS if option in parameters)


def not_taken_by(optimizer) -> tuple[str, ...]:
    """The OPTIMIZER_OPTIONS that the optimiser called `optimizer` does not take."""
    taken = optimizer_settings(optimizer)
    return tuple(option for option in OPTIMIZER_OPTIONS if option not in taken)


def not_taken(name: str, optimizer) -> str:
    """The error for a setting `name` given to an optimiser that does not take it."""
    takers = [o for o in OPTIMIZERS.short_names if name in optimizer_settings(o)]
    optimizer = _short_name("--optimizer", optimizer, OPTIMIZERS)
    return (
        f"--{name.replace('_', '-')} does not apply to --optimizer {optimizer} (only "
        f"{', '.join(takers)} {'take' if len(takers) > 1 else 'takes'} it)"
    )


def _is_one_of(name, names) -> bool:
    """`name` is a text among `names` (a dict's keys or a tuple)."""
    return isinstance(name, str) and name in names


def _sizes(value) -> tuple[int, ...]:
    """The hidden layer sizes as a tuple of ints >= 1 (no hidden layer is allowed)."""
    if not isinstance(value, (list, tuple)) or not all(
        is_whole_number(size) and size >= 1 for size in value
    ):
        raise NnscratchError(
            f"--hidden: expected layer sizes >= 1 like [256, 128], got {value!r}"
        )
    return tuple(int(size) for size in value)


def _short_name(option: str, name, registry: Registry) -> str:
    """The short name of the class registered as `name` (a class or short name, any
    case), so "Adam" and "adam" are the same setting."""
    try:
        class_name = registry.get_class(name).__name__
    except NnscratchError:
        raise NnscratchError(
            f"{option}: expected one of {', '.join(registry.short_names)}, got {name!r}"
        ) from None
    return next(short for short, c in registry.short_names.items() if c == class_name)


def _augment_spec(spec, dataset: str) -> str:
    """The --augment text to record: None is "none", "auto" the one suited to
    `dataset`; checked by parsing it (the run parses it again to build its Augment)."""
    if spec is None:
        return "none"
    if not isinstance(spec, str):
        raise NnscratchError(f"--augment: expected a text, got {spec!r}")
    spec = Augment.resolve_spec(spec, dataset)
    Augment.from_spec(spec)  # a malformed text or a bad value is an error there
    return spec
