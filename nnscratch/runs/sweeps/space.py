"""A sweep's search space: which settings vary, over what, and the settings of a trial.

A parameter is any numeric or choice option of `nnscratch train`, named as there
(`batch-size`) or as the RunSettings field (`batch_size`); a spec says how it varies:

    loguniform:1e-4:1e-2    a float, uniform in log scale     (float options)
    uniform:0:0.5           a float, uniform                  (float options)
    int:32:512              an integer, uniform               (integer options)
    logint:32:512           an integer, uniform in log scale  (integer options)
    choice:adam,sgd         one of the values (any option); separated by "|"
                            instead when a value holds a comma (augment texts)

`hidden` takes a width (`int:32:512`: every hidden layer of the base network that
wide, so the depth stays the preset's) or choices of whole shapes
(`choice:128,256-128`). A space file (TOML) holds one `name = "spec"` a line, or a
list for a choice (`optimizer = ["adam", "sgd"]`), optionally under `[params]`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

from ...errors import NnscratchError
from ..presets import PRESETS, preset_settings
from ..settings import (
    OPTIMIZER_OPTIONS,
    RunSettings,
    not_taken,
    not_taken_by,
    optimizer_settings,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # the sweep extra installs tomli on Python 3.10
    import tomli as tomllib

FLOATS = ("lr", "dropout", "l2", "momentum", "weight_decay", "warmup")
INTS = ("epochs", "batch_size", "hidden")
CHOICES = ("optimizer", "schedule", "activation", "init", "augment", "preset")
KINDS = {
    **dict.fromkeys(FLOATS, ("loguniform", "uniform", "choice")),
    **dict.fromkeys(INTS, ("int", "logint", "choice")),
    **dict.fromkeys(CHOICES, ("choice",)),
}
# not searchable: dataset, seed and validation_split change the data a trial is
# scored on (the scores would not compare), architecture is chosen by `preset`


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one parameter varies: `kind` (a key of KINDS' lists) and its bounds or
    choices, as parsed from `text`."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def distribution(self):
        """The Optuna distribution of this parameter (optuna imported by the caller)."""
        from optuna import distributions  # the optional sweep extra: only when sweeping

        if self.kind == "choice":
            return distributions.CategoricalDistribution(self.choices)
        log = self.kind.startswith("log")
        if self.kind.endswith("int"):
            return distributions.IntDistribution(int(self.low), int(self.high), log=log)
        return distributions.FloatDistribution(self.low, self.high, log=log)

    def values_to_check(self) -> list:
        """The values whose settings are checked before sweeping: bounds or choices."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind.endswith("int"):
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def canonical_name(name: str, where: str = "--param") -> str:
    """'batch-size' -> 'batch_size'; NnscratchError for a name that cannot vary
    (`where` it was given: "--param" or "--space FILE")."""
    key = str(name).strip().lstrip("-").replace("-", "_")
    if key not in KINDS:
        names = ", ".join(n.replace("_", "-") for n in KINDS)
        raise NnscratchError(f"{where}: unknown parameter {name!r} (expected {names})")
    return key


def parse_spec(name: str, text, where: str = "--param") -> Spec:
    """The Spec of `name` written as `text` ('loguniform:1e-4:1e-2', ...); a list is a
    choice. One-line NnscratchError naming the parameter, and `where` it was given
    ("--param" or "--space FILE"), when it is malformed."""
    key = canonical_name(name, where)
    label = f"--param {name}" if where == "--param" else f"{where}: {name}"
    if isinstance(text, (list, tuple)):
        text = "choice:" + "|".join(str(v) for v in text)
    if not isinstance(text, str) or ":" not in text:
        raise NnscratchError(
            f"{label}: expected KIND:ARGS such as loguniform:1e-4:1e-2, "
            f"uniform:0:0.5, int:32:512 or choice:a,b; got {text!r}"
        )
    kind, _, args = text.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS[key]:
        raise NnscratchError(
            f"{label}: {kind!r} does not suit it (expected {' or '.join(KINDS[key])})"
        )
    if kind == "choice":
        return Spec(key, kind, choices=_choices(label, key, args))
    low, high = _bounds(label, kind, args)
    return Spec(key, kind, low, high)


def _bounds(label: str, kind: str, args: str) -> tuple[float, float]:
    parts = args.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = (int(p) if kind.endswith("int") else float(p) for p in parts)
    except ValueError:
        number = "integers" if kind.endswith("int") else "numbers"
        raise NnscratchError(
            f"{label}: expected {kind}:LOW:HIGH with two {number}, got {kind}:{args}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise NnscratchError(
            f"{label}: expected LOW < HIGH, both finite, got {kind}:{args}"
        )
    if kind.startswith("log") and low <= 0:
        raise NnscratchError(f"{label}: a log scale needs LOW > 0, got {kind}:{args}")
    return low, high


def _choices(label: str, key: str, args: str) -> tuple:
    items = [v.strip() for v in args.split("|" if "|" in args else ",")]
    if not items or any(not v for v in items):
        raise NnscratchError(
            f"{label}: expected choice:A,B,... with no empty value, got choice:{args}"
        )
    if key == "hidden":
        for v in items:
            if not all(p.isdigit() for p in v.split("-")):
                raise NnscratchError(
                    f"{label}: expected layer sizes such as 256-128, got {v!r}"
                )
        return tuple(items)  # Optuna choices are plain values: "256-128"
    try:
        if key in INTS:
            items = [int(v) for v in items]
        elif key in FLOATS:
            items = [float(v) for v in items]
    except ValueError:
        raise NnscratchError(f"{label}: expected numbers, got choice:{args}") from None
    if len(set(items)) != len(items):
        raise NnscratchError(f"{label}: a choice is repeated in {args!r}")
    return tuple(items)


def read_space_file(path) -> dict[str, str]:
    """The parameters of a TOML space file: {name: spec text or list}."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise NnscratchError(f"--space {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NnscratchError(f"--space {path}: not a TOML file ({e})") from None
    params = data.get("params", data)
    if (
        not isinstance(params, dict)
        or not params
        or any(isinstance(v, dict) for v in params.values())
    ):
        raise NnscratchError(
            f'--space {path}: expected name = "spec" lines (optionally under '
            '[params]), such as lr = "loguniform:1e-4:1e-2"'
        )
    for name, text in params.items():  # a bad entry is named with the file
        parse_spec(name, text, where=f"--space {path}")
    return params


class SearchSpace:
    """The parameters of a sweep (name -> Spec, in the order given)."""

    def __init__(self, params: dict):
        if not params:
            raise NnscratchError(
                "--param: a sweep needs at least one, e.g. --param lr=loguniform:1e-4:1e-2"
            )
        self.specs: dict[str, Spec] = {}
        for name, text in params.items():
            spec = parse_spec(name, text)
            if spec.name in self.specs:
                raise NnscratchError(f"--param {name}: given twice")
            self.specs[spec.name] = spec

    @classmethod
    def from_options(cls, params=(), space_file=None) -> SearchSpace:
        """From {name: spec} or the command line's NAME=SPEC texts, and an optional
        space file; a --param overrides the file's parameter of the same name."""
        merged = dict(read_space_file(space_file)) if space_file else {}
        merged = {canonical_name(k): v for k, v in merged.items()}
        pairs = (
            params.items() if isinstance(params, dict) else map(_name_and_spec, params)
        )
        given = set()
        for name, text in pairs:
            key = canonical_name(name)
            if key in given:  # a dict of the texts would keep the last one silently
                raise NnscratchError(f"--param {name}: given twice")
            given.add(key)
            merged[key] = text
        return cls(merged)

    def distributions(self) -> dict:
        return {name: spec.distribution() for name, spec in self.specs.items()}

    def describe(self) -> dict:
        """JSON form, kept in the study to refuse a rerun with another space."""
        return {n: dataclasses.asdict(s) | {"choices": list(s.choices)}
                for n, s in self.specs.items()}  # fmt: skip

    def check(self, base: dict) -> None:
        """Build the settings at every bound and choice (the other parameters at
        their first value): a value no run accepts is one error line now, not a
        failed trial later. Also refuses settings that hold out no validation
        images, since trials are scored on them."""
        first = {n: s.values_to_check()[0] for n, s in self.specs.items()}
        for name, spec in self.specs.items():
            for value in spec.values_to_check():
                values = {name: value, **{k: v for k, v in first.items() if k != name}}
                values.update(self._optimizer_taking(name))
                try:
                    settings = trial_settings(base, values)
                    if name in settings.unused_settings():  # it would vary nothing
                        raise NnscratchError(not_taken(name, settings.optimizer))
                except NnscratchError as e:
                    bad, bad_value = _refused_alone(base, values) or (name, value)
                    shown = bad.replace("_", "-")
                    raise NnscratchError(f"--param {shown}={bad_value}: {e}") from None
                if not settings.validation_split:
                    raise NnscratchError(_no_validation(base, settings.preset))

    def _optimizer_taking(self, name: str) -> dict:
        """{"optimizer": the first optimiser tried that takes setting `name`}, to
        check `name`'s values with ({} if the optimiser does not vary or none does).
        """
        spec = self.specs.get("optimizer")
        if name not in OPTIMIZER_OPTIONS or spec is None:
            return {}
        takers = [c for c in spec.choices if name in optimizer_settings(c)]
        return {"optimizer": takers[0]} if takers else {}


def _no_validation(base: dict, preset: str) -> str:
    """Why a trial's settings hold out no validation images: the user's
    --validation-split 0, or the preset's."""
    if "validation_split" in base:
        return (
            "trials are scored on validation images, but --validation-split "
            f"{base['validation_split']:g} holds none out: give one above 0, e.g. 0.1"
        )
    return (
        f"trials are scored on validation images, but preset {preset} holds none "
        "out: add --validation-split 0.1"
    )


def _refused_alone(base: dict, values: dict) -> tuple[str, object] | None:
    """The first (name, value) of `values` that no trial accepts even on its own:
    the parameter an error of their combination is about (None: only together)."""
    for name, value in values.items():
        try:
            trial_settings(base, {name: value})
        except NnscratchError:
            return name, value
    return None


def _name_and_spec(item) -> tuple[str, str]:
    name, sep, text = str(item).partition("=")
    if not sep:
        raise NnscratchError(
            f"--param: expected NAME=SPEC such as lr=loguniform:1e-4:1e-2, got {item!r}"
        )
    return name, text


def trial_settings(base: dict, params: dict) -> RunSettings:
    """The settings of a trial: the preset (`base["preset"]` or the parameter),
    `base`'s options over it, the trial's parameters over those; checked. A
    parameter its optimiser does not take (momentum, in an adam trial of a sweep
    that varies the optimiser) is left out."""
    options = {k: v for k, v in base.items() if k != "preset"}
    preset = params.get("preset", base.get("preset", "default"))
    values = {k: v for k, v in used_params(base, params).items() if k != "preset"}
    if "hidden" in values:
        values["hidden"] = _hidden(values["hidden"], preset, options)
    return preset_settings(preset, **{**options, **values})


def used_params(base: dict, params: dict) -> dict:
    """A trial's parameters without those its optimiser does not take (the momentum
    Optuna draws for an adam trial of a sweep that varies the optimiser): what its
    run used, as trial.json, trials.csv and the best trial's line show them."""
    preset = params.get("preset", base.get("preset", "default"))
    options = {k: v for k, v in base.items() if k != "preset"}
    optimizer = {**PRESETS.get(preset, {}), **options, **params}.get("optimizer")
    unused = not_taken_by(optimizer or RunSettings.optimizer)
    return {k: v for k, v in params.items() if k not in unused}


def _hidden(value, preset: str, options: dict) -> tuple[int, ...]:
    """A width for every hidden layer of the base network, or a '256-128' shape."""
    if isinstance(value, str):
        return tuple(int(v) for v in value.split("-"))
    depth = len(options.get("hidden") or preset_settings(preset).hidden) or 1
    return (int(value),) * depth
