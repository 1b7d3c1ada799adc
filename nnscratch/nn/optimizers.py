"""Optimisers: update parameters in place from their gradients.

`step(params, grads)` takes dicts of arrays keyed by name. A `Sequential` model passes a
single entry holding ALL its parameters as one flat buffer, so each update rule below is
a handful of whole-array passes per step rather than a few per layer; state (velocity,
moments) is kept under the same names. The update rules are PyTorch's, so the numbers
can be compared with it step for step (benchmarks/compare_torch.py does); the default
learning rates are Keras' (SGD 0.01, RMSprop and Adam 0.001).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from .registry import OPTIMIZERS
from .workspace import Workspace

# Moments that decay towards zero (a unit that never fires has gradient 0) end up as
# float32 subnormals, which x86 handles ~100x slower and NumPy cannot flush to zero.
# Every FLUSH_EVERY steps state values below FLUSH_BELOW are set to exactly 0: a value
# above 1e-30 cannot fall below float32's smallest normal (1.2e-38) in 100 steps of
# decay by 0.9, and 1e-30 is far below anything that moves a weight.
FLUSH_EVERY = 100
FLUSH_BELOW = 1e-30


class Optimizer(ABC):
    """Base class: per-name state, the step counter and the subnormal flush."""

    def __init__(self, lr: float):
        self.lr = check_float(f"{type(self).__name__} lr", lr, 0, open_low=True)
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch = Workspace()  # one array like each parameter, for `_update`

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """One update of every array in `params`, in place."""
        self.iterations += 1
        for name, p in params.items():
            state = self.state.get(name)
            if state is None:
                state = self.state[name] = self._init_state(p)
            self._update(p, grads[name], state, self._scratch.like(name, p))
            if self.iterations % FLUSH_EVERY == 0:
                for s in state.values():
                    np.copyto(s, 0, where=np.abs(s) < FLUSH_BELOW)

    def _init_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def forget_state_unlike(self, p: np.ndarray, name: str = "all") -> None:
        """Drop the state kept for `name` if it was for an array of another size
        (the model's trainable parameters change when layers are frozen or thawed):
        the moments start again from zero, as with a new optimiser."""
        state = self.state.get(name)
        if state and any(s.shape != p.shape for s in state.values()):
            del self.state[name]

    @abstractmethod
    def _update(self, p, g, state, tmp) -> None:
        """Update `p` in place from gradient `g`; `tmp` is a scratch array like `p`."""

    def get_config(self) -> dict:
        """Constructor arguments as JSON values (recorded with a training run)."""
        return {"lr": self.lr}

    def get_state(self) -> dict:
        """What `set_state` needs to continue exactly: class, settings, step count and
        the state arrays by name ({"all": {"m": ..., "v": ...}}), the optimiser's own
        (not copies: write or copy them before the next step)."""
        return {
            "class": type(self).__name__,
            "config": self.get_config(),
            "iterations": self.iterations,
            "state": {name: dict(arrays) for name, arrays in self.state.items()},
        }

    def set_state(self, state: dict) -> None:
        """Continue from `get_state`'s dict, which must come from an optimiser of the
        same class and settings (the learning rate may differ: schedules change it)."""
        if state["class"] != type(self).__name__:
            raise NnscratchError(
                f"optimizer: the state is an {state['class']}'s, this is {self!r}"
            )
        mine, theirs = self.get_config(), state["config"]
        for key in mine.keys() - {"lr"}:
            if theirs.get(key) != mine[key]:
                raise NnscratchError(
                    f"optimizer: the state was saved with {key}={theirs.get(key)!r}, "
                    f"this {type(self).__name__} has {mine[key]!r}"
                )
        arrays = {
            str(name): {str(k): np.array(v) for k, v in entries.items()}
            for name, entries in state["state"].items()
        }
        self.lr = check_float("optimizer lr", theirs["lr"], 0, open_low=True)
        self.iterations = check_int("optimizer iterations", state["iterations"], 0)
        self.state = arrays

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@OPTIMIZERS.register
class SGD(Optimizer):
    """Gradient descent with optional momentum and Nesterov momentum (PyTorch's form).

    g += weight_decay * p;  v = momentum * v + g;
    p -= lr * v                      (classical momentum)
    p -= lr * (g + momentum * v)     (Nesterov)
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr)
        self.momentum = check_float("SGD momentum", momentum, 0)
        self.weight_decay = check_float("SGD weight_decay", weight_decay, 0)
        if nesterov and self.momentum == 0:
            raise NnscratchError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _init_state(self, p):
        return {"velocity": np.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state, tmp):
        if self.weight_decay:
            g = g + self.weight_decay * p  # a new array, so tmp stays free below
        if self.momentum:
            v = state["velocity"]
            v *= self.momentum
            v += g
            if self.nesterov:
                np.multiply(v, self.momentum, out=tmp)
                tmp += g
            else:
                tmp[...] = v
        else:
            tmp[...] = g
        tmp *= self.lr
        p -= tmp

    def get_config(self):
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


@OPTIMIZERS.register
class RMSprop(Optimizer):
    """Divide the step by a running RMS of the gradient (PyTorch's rule; rho is its alpha).

    s = rho * s + (1 - rho) * g^2;  p -= lr * g / (sqrt(s) + eps)
    """

    def __init__(self, lr: float = 0.001, rho: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        self.rho = check_float("RMSprop rho", rho, 0, 1, open_high=True)
        self.eps = check_float("RMSprop eps", eps, 0)

    def _init_state(self, p):
        return {"square_avg": np.zeros_like(p)}

    def _update(self, p, g, state, tmp):
        s = state["square_avg"]
        s *= self.rho
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp

    def get_config(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}


@OPTIMIZERS.register
class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as in PyTorch.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    state["m"] and state["v"] hold m / (1 - b1) and v / (1 - b2): their updates take
    a pass fewer each (see `_update`).
    """

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr)
        self.beta1 = check_float(
            f"{type(self).__name__} beta1", beta1, 0, 1, open_high=True
        )
        self.beta2 = check_float(
            f"{type(self).__name__} beta2", beta2, 0, 1, open_high=True
        )
        self.eps = check_float(f"{type(self).__name__} eps", eps, 0)
        self.weight_decay = check_float(
            f"{type(self).__name__} weight_decay", weight_decay, 0
        )

    def _init_state(self, p):
        # m and v are kept divided by (1 - beta1) and (1 - beta2): see _update
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def _decay(self, p, g):
        """Adam's L2 form: the decay is added to the gradient (AdamW overrides).

        A new array: `tmp` cannot hold it, the update below needs g after using tmp.
        """
        if self.weight_decay:
            return g + self.weight_decay * p
        return g

    def _update(self, p, g, state, tmp):
        g = self._decay(p, g)
        m, v, t = state["m"], state["v"], self.iterations
        b1, b2 = self.beta1, self.beta2
        # with m and v stored divided by (1 - b1) and (1 - b2) their updates are
        # m = b1 m + g and v = b2 v + g^2: fewer and cheaper passes than the usual form
        m *= b1
        m += g
        v *= b2
        np.square(g, out=tmp)
        v += tmp
        # lr / (1 - b1^t) * (1 - b1) m / (sqrt((1 - b2) v / (1 - b2^t)) + eps)
        #   = step * m / (sqrt(v) + eps / c),  c = sqrt((1 - b2) / (1 - b2^t)),
        #   step = lr (1 - b1) / ((1 - b1^t) c). Both are Python floats: an np.float64
        #   scalar would make NumPy do the float32 array pass in float64 (~8x slower)
        c = math.sqrt((1 - b2) / (1 - b2**t))
        np.sqrt(v, out=tmp)
        tmp += self.eps / c
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * (1 - b1) / ((1 - b1**t) * c)
        p -= tmp

    def get_config(self):
        return {
            "lr": self.lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }


@OPTIMIZERS.register
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd first."""

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay)

    def _decay(self, p, g):
        if self.weight_decay:
            p *= 1 - self.lr * self.weight_decay
        return g


def get_optimizer(name: str, **kwargs) -> Optimizer:
    """An optimiser by name: 'sgd', 'rmsprop', 'adam' or 'adamw'."""
    return OPTIMIZERS.get_class(name)(**kwargs)
