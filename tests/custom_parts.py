"""A user's own layers and losses, written the documented way (docs/how-it-works.md
shows `Residual` and `Huber` from here). test_extending.py imports this module, and so
do the fresh Python processes it starts to load the models it saved."""

import numpy as np

import nnscratch


@nnscratch.register
class Scale(nnscratch.Layer):
    """y = s * x, with one learned number s; any shape."""

    def __init__(self, initial: float = 1.0, dtype=np.float32):
        super().__init__()
        self.initial = initial
        self.params = {"s": np.array(initial, dtype=dtype)}
        self.grads = {"s": np.zeros((), dtype=dtype)}

    def forward(self, x, training=False):
        self._x = x
        return self.params["s"] * x

    def backward(self, dy):
        self.grads["s"][...] = np.vdot(self._x, dy)  # in place: dL/ds = sum(x * dy)
        return self.params["s"] * dy

    def get_config(self):
        return {"initial": self.initial}


@nnscratch.register
class Residual(nnscratch.Layer):
    """y = x + relu(dense(x)) for x (N, D), the Dense from D features to D."""

    def __init__(self, dtype=np.float32):
        super().__init__()
        self.dtype = dtype
        self.relu = nnscratch.ReLU()
        self.dense = None  # made in build, once D is known

    def build(self, input_shape):
        if self.dense is None:
            self.dense = nnscratch.Dense(input_shape[0], dtype=self.dtype)
        self.dense.build(input_shape)  # checks the size on a later build
        self.built = True

    def forward(self, x, training=False):
        return x + self.relu.forward(self.dense.forward(x, training), training)

    def backward(self, dy):
        return dy + self.dense.backward(self.relu.backward(dy))


@nnscratch.register
class Huber(nnscratch.Loss):
    """Huber loss: per output 0.5 d^2 where |d| <= delta, else delta (|d| - delta/2),
    d = y - t; l_n is the mean over example n's outputs (N, K)."""

    def __init__(self, delta: float = 1.0):
        self.delta = delta

    def forward(self, outputs, targets, sample_weight=None):
        self._diff = d = outputs - self.check_targets(targets, outputs.shape)
        n = len(d)
        self._w = np.ones((n, 1)) if sample_weight is None else sample_weight[:, None]
        small = np.abs(d) <= self.delta
        per_output = np.where(
            small, 0.5 * d**2, self.delta * (np.abs(d) - 0.5 * self.delta)
        )
        return float((self._w * per_output).mean(axis=1).sum() / n)

    def backward(self):
        # d/dd of the above: d inside [-delta, delta], delta sign(d) outside
        return self._w * np.clip(self._diff, -self.delta, self.delta) / self._diff.size

    def predictions(self, outputs):
        return outputs  # a regression: the outputs are the answers

    def get_config(self):
        return {"delta": self.delta}


@nnscratch.register(name="smoothed_cross_entropy")
class SmoothedCrossEntropy(nnscratch.SoftmaxCrossEntropy):
    """Softmax cross-entropy with label smoothing 0.1 unless told otherwise."""

    def __init__(self, label_smoothing: float = 0.1):
        super().__init__(label_smoothing)


# Registration is not inherited: these two are saved under their own names and load
# only through load_model(..., custom_objects={...}).
class UnregisteredScale(Scale):
    pass


class UnregisteredHuber(Huber):
    pass
