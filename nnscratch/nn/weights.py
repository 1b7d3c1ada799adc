"""The weights alone, as Keras' save_weights and load_weights: a .npz of the arrays
of `get_weights()` (layer parameters and batch-norm statistics, by name) with a small
description naming the layers' classes; read back into a built model of the same
layers, never unpickling. A whole model file (`saving`) serves as well."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError, NnscratchError
from .npz import open_model_archive, parse_description_json
from .parameters import check_values
from .saving import FORMAT, META_KEY, OPTIMIZER_PREFIX, VERSION, write_described

WEIGHTS_FORMAT = "nnscratch-weights"


def save_weights(model, path) -> None:
    """Write the arrays of `model.get_weights()` to `path` (.npz) atomically."""
    description = {
        "format": WEIGHTS_FORMAT,
        "version": VERSION,
        "layers": [type(layer).__name__ for layer in model.layers],
    }
    write_described(Path(path), description, model.get_weights(), "save_weights")


def load_weights(model, path) -> None:
    """Read into built `model` the weights of a file from `save_weights` or `save`
    (Keras' load_weights): every array the model has, by name and shape, and no
    other (a model file's optimiser state is left out). Never unpickles; on any
    error the model keeps its weights."""
    path = Path(path)
    with open_model_archive(path, META_KEY) as archive:
        meta = parse_description_json(path, archive.description())
        formats = (FORMAT, WEIGHTS_FORMAT)
        if not isinstance(meta, dict) or meta.get("format") not in formats:
            raise ModelFileError(f"{path}: not an nnscratch weights or model file")
        names = [n for n in archive.headers if not n.startswith(OPTIMIZER_PREFIX)]
        arrays = {name: archive.read(name) for name in names}
    before = model.get_weights()
    extra = sorted(arrays.keys() - before.keys())
    missing = sorted(before.keys() - arrays.keys())
    if extra or missing:
        raise mismatch_error(path, missing, extra)
    try:
        model.set_weights(arrays)
        check_values(model.layers)
    except NnscratchError as e:
        model.set_weights(before)
        raise ModelFileError(f"{path}: {e}") from None


def mismatch_error(path: Path, missing: list, extra: list) -> ModelFileError:
    """The error for arrays the architecture wants but the file lacks, or the other
    way round (only the non-empty lists named)."""
    listed = [f"missing {missing}"] if missing else []
    listed += [f"extra {extra}"] if extra else []
    return ModelFileError(
        f"{path}: weights do not match the architecture ({', '.join(listed)})"
    )
