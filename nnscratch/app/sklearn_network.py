"""The network a scikit-learn estimator's settings describe (`NetworkSettings`, a
base of `sklearn._NeuralNet`): the settings checked as scikit-learn wants (a
ValueError naming the one that is wrong), the layers and the optimiser they make."""

from __future__ import annotations

import copy

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from ..nn.conv import Conv2D
from ..nn.dense import Dense
from ..nn.dropout import Dropout
from ..nn.optimizers import Optimizer
from ..nn.pooling import MaxPool2D
from ..nn.registry import ACTIVATIONS, OPTIMIZERS
from ..nn.reshape import Flatten, Reshape


class NetworkSettings:
    """The checks and the network of an estimator's settings (`hidden`, `conv`,
    `image_shape`, `activation`, `dropout`, `optimizer`, `lr`, `l2`, ...: see
    `sklearn._NeuralNet`); `_check_settings` first, then `_layers`."""

    def _check_settings(self, n_features: int) -> None:
        """ValueError naming the setting that is wrong (scikit-learn's convention)."""
        try:
            hidden = _sizes("hidden", self.hidden)
            self._hidden = [check_int("hidden size", h) for h in hidden]
            conv = _sizes("conv", self.conv)
            self._conv = [check_int("conv channels", c) for c in conv]
            self._activation = ACTIVATIONS.get_class(self.activation)
            check_float("dropout", self.dropout, 0, 1, open_high=True)
            check_float("lr", self.lr, 0, open_low=True)
            check_int("batch_size", self.batch_size)
            check_int("epochs", self.epochs)
            check_float("l2", self.l2, 0)
            check_float(
                "validation_fraction", self.validation_fraction, 0, 1,
                open_low=True, open_high=True,
            )  # fmt: skip
            check_int("patience", self.patience, 0)
            if self.verbose not in (0, 1, 2):  # True and False are 1 and 0
                raise NnscratchError(
                    f"verbose: expected 0, 1 or 2, got {self.verbose!r}"
                )
            self._image = self._image_shape(n_features)
            self._optimizer()
        except NnscratchError as e:
            raise ValueError(str(e)) from None

    def _image_shape(self, n_features: int) -> tuple | None:
        if self.image_shape is None:
            if self._conv:
                raise NnscratchError("conv layers need an image_shape (C, H, W)")
            return None
        sizes = _sizes("image_shape", self.image_shape)
        shape = tuple(check_int("image_shape", s) for s in sizes)
        shape = (1, *shape) if len(shape) == 2 else shape
        if len(shape) != 3 or int(np.prod(shape)) != n_features:
            raise NnscratchError(
                f"image_shape: expected (C, H, W) or (H, W) holding the {n_features} "
                f"features of a row, got {self.image_shape!r}"
            )
        return shape

    def _optimizer(self) -> Optimizer:
        if isinstance(self.optimizer, Optimizer):
            return copy.deepcopy(self.optimizer)  # its moments belong to one fit
        return OPTIMIZERS.get_class(self.optimizer)(lr=self.lr)

    def _layers(self, n_outputs: int) -> list:
        """[Reshape, conv blocks, Flatten], then (Dense, activation, [Dropout]) per
        hidden size, then Dense to the outputs (logits for a classifier)."""
        relu_like = self._activation.__name__ in ("ReLU", "LeakyReLU")
        weights = {
            "init": "he" if relu_like else "xavier",
            "l2": float(self.l2),
            "dtype": self._dtype,
        }
        layers = []
        if self._image is not None:
            layers.append(Reshape(self._image))
            _, h, w = self._image
            for channels in self._conv:
                layers += [
                    Conv2D(channels, 3, padding=1, **weights),
                    self._activation(),
                ]
                if h >= 2 and w >= 2:
                    layers.append(MaxPool2D(2))
                    h, w = h // 2, w // 2
            layers.append(Flatten())
        for width in self._hidden:
            layers += [Dense(width, **weights), self._activation()]
            if self.dropout:
                layers.append(Dropout(self.dropout))
        return layers + [Dense(n_outputs, **weights)]


def _sizes(name: str, value) -> list:
    """An int or a sequence of them -> a list (its items checked by the caller)."""
    if np.isscalar(value):
        return [value]
    try:
        return list(value)
    except TypeError:  # None, an object: the setting's name, not list()'s message
        raise NnscratchError(
            f"{name}: expected an int or a sequence of ints, got {value!r}"
        ) from None
