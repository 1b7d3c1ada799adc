"""Registries: one per kind of part (layers, activations, losses, optimizers, schedules,
metrics).

A registry maps names to classes so that a setting ("adam"), an option of the
`nnscratch` command or a saved model file ("Conv2D") can name a class. Every class is
found by its class name (what model files record) and by a short name (what people
type), both case-insensitive: `OPTIMIZERS.get_class("adam") is Adam`. Some classes are
also found by Keras' names for them (`aliases`: "sparse_categorical_crossentropy"),
which the command line's choices and error messages leave out.
"""

from __future__ import annotations

from ..errors import NnscratchError


class Registry(dict):
    """Class name -> class, plus short names; filled by the `register` decorator."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.short_names: dict[str, str] = {}  # short name -> class name
        self.aliases: dict[str, str] = {}  # another name (Keras') -> class name

    def register(self, cls: type | None = None, *, name: str | None = None, aliases=()):
        """Decorator: `@LAYERS.register` or `@OPTIMIZERS.register(name="adamw")`.

        `name` is the short name; it defaults to the class name in lower case.
        `aliases`: other names (lower case) that find the class too.
        """

        def add(cls: type) -> type:
            self[cls.__name__] = cls
            self.short_names[name or cls.__name__.lower()] = cls.__name__
            self.aliases.update(dict.fromkeys(aliases, cls.__name__))
            return cls

        return add if cls is None else add(cls)

    def get_class(self, name: str) -> type:
        """The class registered as `name` (class or short name, or an alias, any
        case)."""
        wanted = str(name).lower()
        for short, class_name in self.short_names.items():
            if wanted in (short, class_name.lower()):
                return self[class_name]
        if wanted in self.aliases:
            return self[self.aliases[wanted]]
        raise NnscratchError(
            f"{self.kind}: expected one of {', '.join(self.short_names)}, got {name!r}"
        )


LAYERS = Registry("layer")
ACTIVATIONS = Registry("activation")  # the element-wise ones a preset can choose
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
METRICS = Registry("metric")
