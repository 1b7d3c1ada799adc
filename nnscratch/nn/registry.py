"""Registries: one per kind of part (layers, activations, losses, optimizers, schedules,
metrics).

A registry maps names to classes so that a setting ("adam"), an option of the
`nnscratch` command or a saved model file ("Conv2D") can name a class. Every class is
found by its class name (what model files record) and by a short name (what people
type), both case-insensitive: `OPTIMIZERS.get_class("adam") is Adam`.
"""

from __future__ import annotations

from ..errors import NnscratchError


class Registry(dict):
    """Class name -> class, plus short names; filled by the `register` decorator."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.short_names: dict[str, str] = {}  # short name -> class name

    def register(self, cls: type | None = None, *, name: str | None = None):
        """Decorator: `@LAYERS.register` or `@OPTIMIZERS.register(name="adamw")`.

        `name` is the short name; it defaults to the class name in lower case.
        """

        def add(cls: type) -> type:
            self[cls.__name__] = cls
            self.short_names[name or cls.__name__.lower()] = cls.__name__
            return cls

        return add if cls is None else add(cls)

    def get_class(self, name: str) -> type:
        """The class registered as `name` (class or short name, any case)."""
        wanted = str(name).lower()
        for short, class_name in self.short_names.items():
            if wanted in (short, class_name.lower()):
                return self[class_name]
        raise NnscratchError(
            f"{self.kind}: expected one of {', '.join(self.short_names)}, got {name!r}"
        )


LAYERS = Registry("layer")
ACTIVATIONS = Registry("activation")  # the element-wise ones a preset can choose
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
METRICS = Registry("metric")
