"""Optimisers: update parameters in place from their gradients.

`step(params, grads)` takes dicts of arrays keyed by name. A `Sequential` model passes a
single entry holding ALL its trainable parameters as one flat buffer, so each update
rule below is a handful of whole-array passes per step rather than a few per layer;
state (velocity, moments) is kept under the same names. The update rules are
PyTorch's, so the numbers can be compared with it step for step
(benchmarks/compare_torch.py does); the default learning rates are Keras' (SGD 0.01,
RMSprop and Adam 0.001), and every optimiser takes the rate as `lr` or, as Keras names
it, `learning_rate`.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from .kernels.optimizer_steps import adam_step, rmsprop_step, sgd_step
from .registry import OPTIMIZERS
from .workspace import Workspace

# Moments that decay towards zero (a unit that never fires has gradient 0) end up as
# float32 subnormals, which x86 handles ~100x slower and NumPy cannot flush to zero.
# Every FLUSH_EVERY steps state values below FLUSH_BELOW are set to exactly 0 (by the
# update itself: see `kernels.optimizer_steps`): a value above 1e-30 cannot fall below
# float32's smallest normal (1.2e-38) in 100 steps of decay by 0.84 or more (Adam's
# betas, RMSprop's rho, momentum 0.9; a smaller momentum may leave a few subnormals
# until the next flush), and 1e-30 is far below anything that moves a weight.
FLUSH_EVERY = 100
FLUSH_BELOW = 1e-30


class Optimizer(ABC):
    """Base class: per-name state, the step counter and the subnormal flush."""

    # state arrays that cannot be negative: means of squared gradients (Adam's v)
    nonnegative: tuple[str, ...] = ()

    def __init__(self, lr: float, learning_rate: float | None = None):
        if learning_rate is not None:
            lr = _keras_rate(type(self), lr, learning_rate)
        self.lr = check_float(f"{type(self).__name__} lr", lr, 0, open_low=True)
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch = Workspace()  # one array like each parameter, for `_update`
        self._owner = None  # the key of the model it trains (`claim`)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """One update of every array in `params`, in place."""
        self.iterations += 1
        flush_below = FLUSH_BELOW if self.iterations % FLUSH_EVERY == 0 else 0.0
        for name, p in params.items():
            state = self.state.get(name)
            if state is None:
                state = self.state[name] = self._init_state(p)
            tmp = self._scratch.like(name, p)
            self._update(p, grads[name], state, tmp, flush_below)

    def claim(self, owner: object) -> None:
        """Train the model whose key is `owner` from now on. NnscratchError if this
        optimiser has taken steps for another model: its moments and step count are
        that model's (Keras refuses an optimizer built for other variables; PyTorch's
        belongs to its parameters). A copy of a model copies its key with the
        optimiser, so the copy's optimiser is the copy's."""
        if self.iterations and self._owner is not None and self._owner is not owner:
            steps = f"{self.iterations} step{'s' if self.iterations > 1 else ''}"
            raise NnscratchError(
                f"optimizer: {self!r} has trained another model ({steps}; its "
                "moments and step count are that model's): give each model its own "
                "optimizer"
            )
        self._owner = owner

    def release_scratch(self) -> None:
        """Drop the scratch arrays `step` keeps (after a fit); the state stays."""
        self._scratch.clear()

    @property
    def learning_rate(self) -> float:
        """Keras' name for `lr` (read and set)."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = check_float(f"{type(self).__name__} learning_rate", value, 0)

    def _init_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def forget_state_unlike(self, p: np.ndarray, name: str = "all") -> None:
        """Drop the state kept for `name` if it was for an array of another size
        (the model's trainable parameters change when layers are frozen or thawed):
        the moments start again from zero, as with a new optimiser. With no state
        left (a model keeps one entry), the step count restarts too: Adam's bias
        correction for moments that have seen t steps needs t, not the steps before
        (it would scale the first steps up to 3x at t ~ 5000)."""
        state = self.state.get(name)
        if state and any(s.shape != p.shape for s in state.values()):
            del self.state[name]
            if not self.state:
                self.iterations = 0

    @abstractmethod
    def _update(self, p, g, state, tmp, flush_below: float) -> None:
        """Update `p` in place from gradient `g`; `tmp` is a scratch array like `p`.
        Then set the state values below `flush_below` in magnitude to 0 (0: none)."""

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
        same class and settings (the learning rate may differ: schedules change it).
        Its arrays are checked (`_check_state`): they may come from a file."""
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
        for name, entries in arrays.items():
            self._check_state(name, entries)
        # >= 0, not > 0: a schedule or callback may have set it to 0 (a CosineDecay
        # at its min_lr), as the `learning_rate` setter may
        self.lr = check_float("optimizer lr", theirs["lr"], 0)
        self.iterations = check_int("optimizer iterations", state["iterations"], 0)
        self.state = arrays

    def _check_state(self, name: str, entries: dict[str, np.ndarray]) -> None:
        """NnscratchError unless `entries` (the state of parameter `name`, read from a
        file) are what `_init_state` makes, of floats, finite, and not negative
        where they cannot be: the step would fail, or turn the weights into NaN."""
        expected = sorted(self._init_state(np.zeros(0, np.float32)))
        if sorted(entries) != expected:
            raise NnscratchError(
                f"optimizer: the state of {name!r} holds {sorted(entries)}, "
                f"{type(self).__name__} keeps {expected}"
            )
        for key, array in entries.items():
            where = f"optimizer: state {name + '/' + key!r}"
            if not np.issubdtype(array.dtype, np.floating):
                raise NnscratchError(f"{where} has dtype {array.dtype}, expected float")
            if not np.isfinite(array).all():
                raise NnscratchError(f"{where} holds NaN or infinite values")
            if key in self.nonnegative and (array < 0).any():
                raise NnscratchError(
                    f"{where} holds negative values, which a mean of squares cannot"
                )

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
        *,
        learning_rate: float | None = None,
    ):
        super().__init__(lr, learning_rate)
        self.momentum = check_float("SGD momentum", momentum, 0)
        self.weight_decay = check_float("SGD weight_decay", weight_decay, 0)
        if nesterov and self.momentum == 0:
            raise NnscratchError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _init_state(self, p):
        return {"velocity": np.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state, tmp, flush_below):
        velocity = state.get("velocity", tmp)  # not used without momentum
        _run(
            sgd_step, (p, g, velocity, tmp), self.lr, self.momentum, self.nesterov,
            self.weight_decay, flush_below,
        )  # fmt: skip

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

    nonnegative = ("square_avg",)

    def __init__(
        self,
        lr: float = 0.001,
        rho: float = 0.99,
        eps: float = 1e-8,
        *,
        learning_rate: float | None = None,
    ):
        super().__init__(lr, learning_rate)
        self.rho = check_float("RMSprop rho", rho, 0, 1, open_high=True)
        self.eps = check_float("RMSprop eps", eps, 0, open_low=True)  # see Adam

    def _init_state(self, p):
        return {"square_avg": np.zeros_like(p)}

    def _update(self, p, g, state, tmp, flush_below):
        # s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps)
        _run(
            rmsprop_step, (p, g, state["square_avg"], tmp), self.lr, self.rho,
            1 - self.rho, self.eps, flush_below,
        )  # fmt: skip

    def get_config(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}


@OPTIMIZERS.register
class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as in PyTorch.

    g += weight_decay * p  (L2 through the gradient, as PyTorch's Adam; see AdamW)
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    state["m"] and state["v"] hold m / (1 - b1) and v / (1 - b2): their updates take
    a pass fewer each (see `_update`).
    """

    nonnegative = ("v",)

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ):
        super().__init__(lr, learning_rate)
        self.beta1 = check_float(
            f"{type(self).__name__} beta1", beta1, 0, 1, open_high=True
        )
        self.beta2 = check_float(
            f"{type(self).__name__} beta2", beta2, 0, 1, open_high=True
        )
        # eps 0 would make 0 / 0 = NaN of every weight whose gradient is exactly 0
        self.eps = check_float(f"{type(self).__name__} eps", eps, 0, open_low=True)
        self.weight_decay = check_float(
            f"{type(self).__name__} weight_decay", weight_decay, 0
        )

    def _init_state(self, p):
        # m and v are kept divided by (1 - beta1) and (1 - beta2): see _update
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def _decay(self) -> tuple[float, float]:
        """(l2, decay): Adam's L2 form adds l2 * p to the gradient (AdamW overrides)."""
        return self.weight_decay, 1.0

    def _update(self, p, g, state, tmp, flush_below):
        t, b1, b2 = self.iterations, self.beta1, self.beta2
        # with m and v stored divided by (1 - b1) and (1 - b2) their updates are
        # m = b1 m + g and v = b2 v + g^2: fewer and cheaper operations than the usual
        # form, and
        # lr / (1 - b1^t) * (1 - b1) m / (sqrt((1 - b2) v / (1 - b2^t)) + eps)
        #   = step * m / (sqrt(v) + eps / c),  c = sqrt((1 - b2) / (1 - b2^t)),
        #   step = lr (1 - b1) / ((1 - b1^t) c), computed once here in Python floats
        c = math.sqrt((1 - b2) / (1 - b2**t))
        step = self.lr * (1 - b1) / ((1 - b1**t) * c)
        l2, decay = self._decay()
        _run(
            adam_step, (p, g, state["m"], state["v"], tmp), b1, b2, step,
            self.eps / c, l2, decay, flush_below,
        )  # fmt: skip

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
        *,
        learning_rate: float | None = None,
    ):
        super().__init__(
            lr, beta1, beta2, eps, weight_decay, learning_rate=learning_rate
        )

    def _decay(self):
        """(l2, decay): AdamW multiplies p by 1 - lr * weight_decay before the step."""
        return 0.0, 1 - self.lr * self.weight_decay


def _run(kernel, arrays: tuple, *scalars) -> None:
    """kernel(*arrays, *scalars) on flat views of the arrays (the compiled twins loop
    over 1-D arrays), the scalars as the arrays' dtype (bools stay bools): an update
    in float32 stays in float32, as NumPy keeps it with Python floats. Arrays that are
    not contiguous, or not all float32 or all float64, take the NumPy twin as they are.
    """
    dtype = arrays[0].dtype
    scalars = [s if isinstance(s, bool) else dtype.type(s) for s in scalars]
    if dtype in _COMPILED_DTYPES and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays
    ):
        kernel(*(a.reshape(-1) for a in arrays), *scalars)
    else:
        kernel.numpy(*arrays, *scalars)


_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _keras_rate(cls: type, lr: float, learning_rate: float) -> float:
    """`learning_rate` (Keras' name) in place of `lr`, which must be left at its
    default: a rate given twice is an error, not a silent choice."""
    parameter = inspect.signature(cls).parameters.get("lr")
    if parameter is not None and lr != parameter.default:
        raise NnscratchError(
            f"{cls.__name__}: give lr or learning_rate (Keras' name), not both"
        )
    return learning_rate


def get_optimizer(name: str, **kwargs) -> Optimizer:
    """An optimiser by name: 'sgd', 'rmsprop', 'adam' or 'adamw'."""
    return OPTIMIZERS.get_class(name)(**kwargs)
