"""`register`: make your own layer, activation, loss, optimiser, schedule or metric
known by name, so that models using it save and load like the built-in ones (Keras'
`register_keras_serializable`).

    @nnscratch.register
    class Residual(nnscratch.Layer):
        ...

A model file records each layer and its loss by class name and `get_config()`;
`load_model` finds the class among the registered ones (or in its `custom_objects`)
and calls it with that config.
"""

from __future__ import annotations

from ..errors import NnscratchError
from .activations import Activation
from .layer import Layer
from .losses import Loss
from .metrics import Metric
from .optimizers import Optimizer
from .registry import ACTIVATIONS, LAYERS, LOSSES, METRICS, OPTIMIZERS, SCHEDULES
from .schedules import Schedule

KINDS = [  # base class -> the registries a subclass goes into
    (Activation, [LAYERS, ACTIVATIONS]),
    (Layer, [LAYERS]),
    (Loss, [LOSSES]),
    (Optimizer, [OPTIMIZERS]),
    (Schedule, [SCHEDULES]),
    (Metric, [METRICS]),
]


def register(cls: type | None = None, *, name: str | None = None):
    """Class decorator: `@register` or `@register(name="short_name")`.

    The class is found by its class name (what model files record) and by `name`
    (default: the class name in lower case), e.g. `fit(loss="my_loss")`.
    """

    def add(cls: type) -> type:
        for base, registries in KINDS:
            if isinstance(cls, type) and issubclass(cls, base):
                for registry in registries:
                    registry.register(cls, name=name)
                return cls
        raise NnscratchError(
            f"register: {cls!r} is not a subclass of Layer, Loss, Optimizer, "
            "Schedule or Metric"
        )

    return add if cls is None else add(cls)
