"""Check that nnscratch computes the same numbers as PyTorch on the same weights.

In float64, on small seeded random inputs: the forward and backward of every layer
type (dropout in training on its own mask; the spread of He and Xavier weights), the
losses (value and gradient; extreme logits, label smoothing and sample weights
included), every optimiser on the same gradient sequence (defaults, a new lr every
step, 120 Adam steps), the learning-rate schedules against torch's lr_scheduler, a
784-64-32-10 MLP trained for 3 Adam steps by `Sequential.fit`, and a CNN with batch
norm trained by `fit` with SGD, a schedule, class weights and L2 penalties. Prints
one row per check with the largest absolute and relative difference and PASS/FAIL
against its tolerance; exits 1 if any check fails, 2 if PyTorch is not installed (it
is not a dependency of nnscratch). Takes seconds.

    python benchmarks/compare_torch.py
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial, wraps
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, torch_layer_pairs, torch_twin

import nnscratch
from nnscratch import (
    SGD,
    Adam,
    AdamW,
    AvgPool2D,
    BatchNorm,
    BinaryCrossEntropy,
    Callback,
    Conv2D,
    CosineDecay,
    Dense,
    Dropout,
    ExponentialDecay,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    LearningRateScheduler,
    MaxPool2D,
    MeanAbsoluteError,
    MeanSquaredError,
    ReLU,
    RMSprop,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    StepDecay,
    Tanh,
)

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

# float64 agrees to ~1e-15 relative; 1e-10 leaves room for sums of a few hundred terms
# done in another order, and is still far below any real mistake
TOL = 1e-10
# predict returns float32 probabilities by design (half an ulp of 1.0 is 6e-8)
TOL_FLOAT32 = 1e-7
F64 = np.float64
Pairs = dict[str, tuple]  # what was compared -> (nnscratch's, PyTorch's)


@dataclass
class Row:
    """One check: the largest differences over everything it compared."""

    name: str
    compared: str
    abs_diff: float
    rel_diff: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(self.abs_diff <= self.tol)  # NaN fails

    def cells(self) -> list[str]:
        result = "PASS" if self.passed else "FAIL"
        return [
            self.name,
            self.compared,
            f"{self.abs_diff:.1e}",
            f"{self.rel_diff:.1e}",
            f"{self.tol:.0e}",
            result,
        ]


def row(name: str, pairs: Pairs, tol: float = TOL) -> Row:
    """Compare each (ours, theirs) pair; relative = |difference| / max |theirs|."""
    abs_diffs, rel_diffs = [0.0], [0.0]
    for ours, theirs in pairs.values():
        ours, theirs = np.asarray(ours, dtype=F64), np.asarray(theirs, dtype=F64)
        if ours.shape != theirs.shape:
            shapes = f"shapes {ours.shape} vs {theirs.shape}"
            return Row(name, shapes, np.inf, np.inf, tol)
        diff = np.abs(ours - theirs).max(initial=0.0)  # NaN if either has one
        scale = np.abs(theirs).max(initial=0.0)
        abs_diffs.append(diff)
        rel_diffs.append(diff / scale if scale else diff)
    return Row(
        name, ", ".join(pairs), float(np.max(abs_diffs)), float(np.max(rel_diffs)), tol
    )


def guarded(check):
    """A check that raises gives a failed row saying what it raised; the rest go on."""

    @wraps(check)
    def run(name: str, *args, **kwargs) -> Row:
        try:
            return check(name, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - reported in the table
            message = f"raised {type(error).__name__}: {error}"[:100]
            return Row(name, message, np.nan, np.nan, TOL)

    return run


@guarded
def layer_row(name: str, layer, x, torch_fn, torch_params=(), rng=None, **kw) -> Row:
    """Forward and backward of `layer` against `torch_fn` (see torch_layer_pairs)."""
    return row(name, torch_layer_pairs(layer, x, torch_fn, torch_params, rng, **kw))


# ----- layers ---------------------------------------------------------------------
def with_specials(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Random normal values with exact zeros (where the derivative conventions of
    ReLU-like layers matter) and large magnitudes (where overflow would show)."""
    x = 3 * rng.standard_normal(shape)
    flat = x.reshape(-1)
    flat[:4] = 0.0
    flat[4:8] = [40.0, -40.0, 800.0, -800.0]
    return x


def dense_row(rng: np.random.Generator) -> Row:
    """Dense against torch's linear, which nn.Linear calls with weight = W.T."""
    dense = Dense(7, 5, rng=rng, dtype=F64)
    dense.params["b"][:] = rng.standard_normal(5)
    x = rng.standard_normal((4, 7))
    W, b = dense.params["W"], dense.params["b"]

    def linear(t, w, bias):
        # w is a leaf in nnscratch's (in, out) layout, so its gradient comes back as
        # dW; F.linear is what nn.Linear.forward calls, with weight (out, in) = W.T
        return F.linear(t, w.T, bias)

    return layer_row("Dense(7, 5)", dense, x, linear, [W, b], rng)


def activation_rows(rng: np.random.Generator) -> list[Row]:
    """ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Dropout (eval) and Flatten."""
    x = with_specials(rng, (5, 6))
    logits = 3 * rng.standard_normal((5, 6))
    logits[0], logits[1] = [1000, -1000, 0, 999, 1000, 5], -1000.0
    return [
        *[dropout_training_row(rate, rng) for rate in (0.3, 0.5)],
        layer_row("ReLU (x = 0 included)", ReLU(), x, F.relu, rng=rng),
        layer_row(
            "LeakyReLU(alpha=0.1) (x = 0 included)",
            LeakyReLU(0.1),
            x,
            partial(F.leaky_relu, negative_slope=0.1),
            rng=rng,
        ),
        layer_row("Sigmoid (x up to +-800)", Sigmoid(), x, torch.sigmoid, rng=rng),
        layer_row("Tanh (x up to +-800)", Tanh(), x, torch.tanh, rng=rng),
        layer_row(
            "Softmax (logits up to +-1000)",
            Softmax(),
            logits,
            partial(F.softmax, dim=1),
            rng=rng,
        ),
        layer_row(
            "LeakyReLU() default slope (torch's 0.01)",
            LeakyReLU(),
            x,
            F.leaky_relu,
            rng=rng,
        ),
        layer_row(
            "Dropout(0.5), evaluation mode",
            Dropout(0.5, rng=0),
            x,
            partial(F.dropout, p=0.5, training=False),
            rng=rng,
            training=False,
        ),
        layer_row(
            "Flatten (4, 3, 5, 2)",
            Flatten(),
            rng.standard_normal((4, 3, 5, 2)),
            partial(torch.flatten, start_dim=1),
            rng=rng,
        ),
    ]


@guarded
def dropout_training_row(rate: float, rng: np.random.Generator) -> Row:
    """Dropout in training: the masks are random on both sides, so PyTorch's rule
    is applied to nnscratch's mask (kept where y != 0): y = x * mask / (1 - p), and
    dx the same of dy; the scale of a kept value is also F.dropout's own."""
    x = rng.standard_normal((40, 30)) + 10  # no zeros: y == 0 only where dropped
    dropout = Dropout(rate, rng=rng)
    y = dropout.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = dropout.backward(dy)
    mask = torch.from_numpy(y != 0)
    theirs_y = torch.from_numpy(x) * mask / (1 - rate)
    kept = F.dropout(torch.ones(1000), rate, training=True).max()
    return row(
        f"Dropout({rate}), training mode, on its own mask",
        {
            "y": (y, theirs_y.numpy()),
            "dx": (dx, (torch.from_numpy(dy) * mask / (1 - rate)).numpy()),
            "kept scale": ((y / x).max(), kept.item()),
        },
    )


def conv_rows(rng: np.random.Generator) -> list[Row]:
    """Conv2D on odd sizes through each of its code paths: strided pieces or one flat
    shift per offset ("same" width), one big product or one per example (C*kh*kw < O)."""
    rows = []
    cases = [  # (in, out, kernel, stride, padding, input shape)
        (3, 5, (3, 2), (2, 1), (1, 2), (4, 3, 11, 9)),
        (3, 4, 5, 3, 2, (3, 3, 13, 10)),
        (3, 8, 3, 1, 1, (4, 3, 11, 9)),
        (3, 40, 3, 1, 1, (2, 3, 7, 9)),
        (2, 30, (2, 3), (1, 2), 0, (2, 2, 6, 7)),
    ]
    for c_in, c_out, kernel, stride, padding, shape in cases:
        conv = Conv2D(c_in, c_out, kernel, stride, padding, rng=rng, dtype=F64)
        conv.params["b"][:] = rng.standard_normal(c_out)
        fn = partial(F.conv2d, stride=stride, padding=padding)
        name = f"Conv2D({c_in}, {c_out}, {kernel}, {stride}, {padding}) on {shape[2:]}"
        params = [conv.params["W"], conv.params["b"]]  # W (O, C, kh, kw) in both
        rows.append(layer_row(name, conv, rng.standard_normal(shape), fn, params, rng))
    for kernel, padding in [(3, "same"), ((5, 3), "same"), ((2, 3), "valid")]:
        conv = Conv2D(3, 4, kernel, padding=padding, rng=rng, dtype=F64)
        conv.params["b"][:] = rng.standard_normal(4)
        fn = partial(F.conv2d, padding=padding)
        name = f"Conv2D(3, 4, {kernel}, padding={padding!r}) on (9, 8)"
        x = rng.standard_normal((2, 3, 9, 8))
        params = [conv.params["W"], conv.params["b"]]
        rows.append(layer_row(name, conv, x, fn, params, rng))
    return rows


def pool_rows(rng: np.random.Generator) -> list[Row]:
    """MaxPool2D (ties too: PyTorch sends the gradient to the first maximum),
    AvgPool2D and GlobalAvgPool2D, with overlapping, tiled and ragged windows."""
    x = rng.standard_normal((4, 3, 11, 9))
    ties = rng.integers(0, 3, (4, 3, 11, 9)).astype(F64)  # many equal maxima
    rows = []
    for pool, stride in [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2))]:
        fn = partial(F.max_pool2d, kernel_size=pool, stride=stride)
        for data, what in [(x, ""), (ties, " with ties")]:
            name = f"MaxPool2D({pool}, {stride}){what}"
            rows.append(layer_row(name, MaxPool2D(pool, stride), data, fn, rng=rng))
    for pool, stride in [(2, None), (3, 2), ((2, 3), (1, 2))]:
        fn = partial(F.avg_pool2d, kernel_size=pool, stride=stride)
        rows.append(
            layer_row(
                f"AvgPool2D({pool}, {stride})", AvgPool2D(pool, stride), x, fn, rng=rng
            )
        )

    def global_avg_pool(t):  # nn.AdaptiveAvgPool2d(1), then nn.Flatten()
        return F.adaptive_avg_pool2d(t, 1).flatten(1)

    rows.append(
        layer_row("GlobalAvgPool2D", GlobalAvgPool2D(), x, global_avg_pool, rng=rng)
    )
    return rows


def batchnorm_rows(rng, shape: tuple, momentum: float, eps: float) -> list[Row]:
    """BatchNorm: one training step (output, gradients, running statistics after it),
    then evaluation mode on new data with those statistics."""
    f = shape[1]
    bn = BatchNorm(f, momentum, eps, dtype=F64)
    gamma, beta = rng.random(f) + 0.5, rng.standard_normal(f)
    bn.params["gamma"][:], bn.params["beta"][:] = gamma, beta
    mean, var = torch.zeros(f), torch.ones(f)  # updated in place by training=True

    def fn(t, g, b, training=True):
        return F.batch_norm(t, mean, var, g, b, training, momentum, eps)

    x = 2 * rng.standard_normal(shape) + 1
    name = f"BatchNorm {shape}, momentum {momentum}, eps {eps:g}"
    gamma_beta = [gamma, beta]
    rows = [layer_row(f"{name}: training", bn, x, fn, gamma_beta, rng)]
    stats = {
        "running_mean": (bn.state["running_mean"], mean.numpy()),
        "running_var": (bn.state["running_var"], var.numpy()),
    }
    rows.append(row(f"{name}: running stats after 1 step", stats))
    x = 2 * rng.standard_normal(shape) + 1
    rows.append(
        layer_row(
            f"{name}: evaluation",
            bn,
            x,
            partial(fn, training=False),
            gamma_beta,
            rng,
            training=False,
        )
    )
    return rows


# the ratio of two standard deviations, each estimated from 25,600 or more draws, has
# a standard error under 0.7%; fixed seeds make the check repeatable, and a wrong fan
# (fan_out for fan_in, a conv's without kh kw) or scale is off by 40% or more below
INIT_TOL = 0.03


@guarded
def init_row(name: str, ours: np.ndarray, torch_init, shape: tuple) -> Row:
    """The spread of weights drawn by nnscratch against torch.nn.init's on a tensor
    of the same shape in torch's layout: standard deviation and largest |w| (both
    as a fraction of torch's, to INIT_TOL; a uniform's bound is its largest draw)."""
    theirs = torch.empty(shape)
    torch_init(theirs)
    std, top = theirs.std().item(), theirs.abs().max().item()
    pairs = {"std / torch's": (ours.std() / std, 1.0)}
    if torch_init is torch.nn.init.xavier_uniform_:
        pairs["max abs w / torch's"] = (np.abs(ours).max() / top, 1.0)
    return row(name, pairs, INIT_TOL)


def init_rows(rng: np.random.Generator) -> list[Row]:
    """init="he" against kaiming_normal_(nonlinearity="relu") (fan_in) and "xavier"
    against xavier_uniform_, on a Dense (torch's weight is W.T) and a Conv2D whose
    fan_in (C kh kw = 1600) and fan_out (O kh kw = 400) differ 4-fold."""
    torch.manual_seed(0)
    he = partial(torch.nn.init.kaiming_normal_, nonlinearity="relu")
    rows = []
    for init, torch_init in [("he", he), ("xavier", torch.nn.init.xavier_uniform_)]:
        dense = Dense(400, 100, init=init, rng=rng, dtype=F64)
        conv = Conv2D(64, 16, 5, init=init, rng=rng, dtype=F64)
        rows += [
            init_row(f"Dense(400, 100, init={init!r})", dense.params["W"],
                     torch_init, (100, 400)),
            init_row(f"Conv2D(64, 16, 5, init={init!r})", conv.params["W"],
                     torch_init, (16, 64, 5, 5)),
        ]  # fmt: skip
    return rows


def layer_rows(rng: np.random.Generator) -> list[Row]:
    """Every layer type against its PyTorch equivalent."""
    rows = [dense_row(rng), *activation_rows(rng), *conv_rows(rng), *pool_rows(rng)]
    rows += batchnorm_rows(rng, (6, 3), 0.1, 1e-5)
    rows += batchnorm_rows(rng, (4, 3, 5, 7), 0.3, 1e-3)
    return rows + init_rows(rng)


# ----- losses -----------------------------------------------------------------------
@guarded
def loss_row(name: str, loss, outputs, targets, torch_loss, sample_weight=None) -> Row:
    """`loss`'s value and gradient against `torch_loss(outputs as a tensor)`."""
    value = loss.forward(outputs.copy(), targets, sample_weight)
    doutputs = loss.backward().copy()
    t = torch.tensor(outputs, requires_grad=True)
    t_loss = torch_loss(t)
    t_loss.backward()
    grad_name = "dlogits" if loss.classifies else "doutputs"
    return row(
        name, {"loss": (value, t_loss.item()), grad_name: (doutputs, t.grad.numpy())}
    )


@guarded
def cross_entropy_row(name, logits, targets, smoothing=0.0, sample_weight=None) -> Row:
    """SoftmaxCrossEntropy (logits, mean over the batch) against F.cross_entropy, on
    labels or class probabilities; torch's `weight` weighs classes, not examples, so
    sample weights multiply its per-example losses (reduction="none")."""

    def theirs(t):
        ce = partial(F.cross_entropy, t, torch.from_numpy(targets))
        if sample_weight is None:
            return ce(label_smoothing=smoothing)
        losses = ce(label_smoothing=smoothing, reduction="none")
        return (torch.from_numpy(sample_weight) * losses).mean()

    loss = SoftmaxCrossEntropy(label_smoothing=smoothing)
    return loss_row(name, loss, logits, targets, theirs, sample_weight)


@guarded
def mse_row(name: str, outputs: np.ndarray, targets: np.ndarray) -> Row:
    """MeanSquaredError against F.mse_loss: both the mean over every element (N*C);
    integer labels are one-hot targets in nnscratch, given as such to PyTorch."""
    one_hot = targets if targets.ndim == 2 else np.eye(outputs.shape[1])[targets]
    theirs = partial(F.mse_loss, target=torch.tensor(one_hot))
    return loss_row(name, MeanSquaredError(), outputs, targets, theirs)


@guarded
def binary_row(name, logits, targets, smoothing=0.0, sample_weight=None) -> Row:
    """BinaryCrossEntropy against F.binary_cross_entropy_with_logits, both the mean
    over all N*K outputs. Torch has no label smoothing: its targets get Keras'
    t (1 - e) + e / 2 by hand. Sample weights are its `weight`, one per row."""
    smoothed = torch.tensor(targets * (1 - smoothing) + smoothing / 2)
    weight = None if sample_weight is None else torch.tensor(sample_weight)[:, None]

    def theirs(t):
        target = smoothed.reshape(t.shape)  # labels (N,) for one output (N, 1)
        return F.binary_cross_entropy_with_logits(t, target, weight=weight)

    loss = BinaryCrossEntropy(label_smoothing=smoothing)
    return loss_row(name, loss, logits, targets, theirs, sample_weight)


def extreme_logits() -> np.ndarray:
    """(6, 4) logits of +-1000, 0 and 999: where exp overflows unless done right."""
    return np.array(
        [[1000, -1000, 0, 999], [-1000] * 4, [1000, 1000, -1000, 0],
         [-1000, 1000, 500, 1000], [0, 0, 0, 1000], [999, -999, 1000, -1000]],
        dtype=F64,
    )  # fmt: skip


def loss_rows(rng: np.random.Generator) -> list[Row]:
    """Every loss on ordinary values, and cross-entropy on +-1000 logits: a wrong
    (log-)softmax gives inf or nan there, a right one the exact loss of ~2000."""
    logits = 3 * rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    extreme = extreme_logits()[:5]
    rows = [
        cross_entropy_row("SoftmaxCrossEntropy", logits, labels),
        cross_entropy_row(
            "SoftmaxCrossEntropy, logits +-1000", extreme, np.array([1, 2, 0, 0, 3])
        ),
        mse_row(
            "MeanSquaredError, targets (N, C)", logits, rng.standard_normal((5, 4))
        ),
        mse_row("MeanSquaredError, labels (N,) as one-hot", logits, labels),
    ]
    return rows + smoothed_cross_entropy_rows(rng) + binary_rows(rng) + [mae_row(rng)]


def smoothed_cross_entropy_rows(rng: np.random.Generator) -> list[Row]:
    """Label smoothing on labels and on class probabilities (soft targets), and
    per-example weights."""
    logits = 3 * rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    soft = rng.dirichlet(np.ones(4), 6)  # rows of class probabilities
    weights = 2 * rng.random(6)
    name = "SoftmaxCrossEntropy"
    return [
        cross_entropy_row(f"{name}, label smoothing 0.1", logits, labels, 0.1),
        cross_entropy_row(f"{name}, probability targets", logits, soft),
        cross_entropy_row(
            f"{name}, probability targets, label smoothing 0.1", logits, soft, 0.1
        ),
        cross_entropy_row(
            f"{name}, label smoothing 0.1, sample weights", logits, labels, 0.1, weights
        ),
        cross_entropy_row(
            f"{name}, logits +-1000, label smoothing 0.1", extreme_logits(), labels, 0.1
        ),
    ]


def binary_rows(rng: np.random.Generator) -> list[Row]:
    """BinaryCrossEntropy with K = 4 outputs on 0/1 and probability targets, label
    smoothing, sample weights, +-1000 logits, and one output with labels (N,)."""
    logits = 3 * rng.standard_normal((6, 4))
    hard = rng.integers(0, 2, (6, 4)).astype(F64)
    soft = rng.random((6, 4))
    weights = 2 * rng.random(6)
    one_output, labels = 3 * rng.standard_normal((6, 1)), rng.integers(0, 2, 6)
    name = "BinaryCrossEntropy"
    return [
        binary_row(f"{name}, 0/1 targets (N, 4)", logits, hard),
        binary_row(f"{name}, probability targets", logits, soft),
        binary_row(f"{name}, label smoothing 0.1", logits, hard, 0.1),
        binary_row(f"{name}, sample weights", logits, hard, 0.0, weights),
        binary_row(
            f"{name}, label smoothing 0.2, sample weights", logits, soft, 0.2, weights
        ),
        binary_row(
            f"{name}, logits +-1000, label smoothing 0.1", extreme_logits(), hard, 0.1
        ),
        binary_row(f"{name}, one output, labels (N,)", one_output, labels),
    ]


def mae_row(rng: np.random.Generator) -> Row:
    """MeanAbsoluteError against F.l1_loss (both the mean over N*C; both take sign(0)
    = 0 as the gradient where an output equals its target)."""
    outputs, targets = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    targets[0] = outputs[0]  # the kink: |d| at d = 0
    theirs = partial(F.l1_loss, target=torch.tensor(targets))
    return loss_row(
        "MeanAbsoluteError (outputs = targets included)",
        MeanAbsoluteError(),
        outputs,
        targets,
        theirs,
    )


# ----- optimisers -------------------------------------------------------------------
def optimizer_cases() -> list[tuple]:
    """(name, nnscratch optimiser, torch class, torch kwargs), same hyperparameters.

    Names map as: nnscratch beta1, beta2 = torch betas; RMSprop's rho = torch's alpha
    (eps is added to sqrt(mean square), outside the root, in both). Every update rule
    follows PyTorch's: SGD's velocity starts at the first gradient (dampening 0), its
    weight decay and Adam's are added to the gradient (L2), AdamW's is decoupled
    (p *= 1 - lr * wd). The defaults are not all the same, so none is relied on:
    SGD's lr is 0.01 in nnscratch and 0.001 in torch, RMSprop's 0.001 and 0.01.
    """
    o = torch.optim
    return [
        ("SGD", SGD(0.1), o.SGD, {"lr": 0.1}),
        ("SGD momentum 0.9", SGD(0.1, 0.9), o.SGD, {"lr": 0.1, "momentum": 0.9}),
        ("SGD Nesterov", SGD(0.1, 0.9, nesterov=True), o.SGD,
         {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ("SGD weight decay 0.1", SGD(0.1, weight_decay=0.1), o.SGD,
         {"lr": 0.1, "weight_decay": 0.1}),
        ("SGD momentum 0.9, weight decay 0.1", SGD(0.1, 0.9, weight_decay=0.1),
         o.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
        ("SGD Nesterov, weight decay 0.1", SGD(0.1, 0.9, True, 0.1), o.SGD,
         {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("RMSprop rho 0.9 (torch alpha)", RMSprop(0.01, 0.9, 1e-8), o.RMSprop,
         {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}),
        ("Adam", Adam(0.01), o.Adam, {"lr": 0.01}),
        ("Adam betas (0.8, 0.99), eps 1e-6", Adam(0.01, 0.8, 0.99, 1e-6), o.Adam,
         {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
        ("Adam weight decay 0.1 (L2)", Adam(0.01, weight_decay=0.1), o.Adam,
         {"lr": 0.01, "weight_decay": 0.1}),
        ("AdamW weight decay 0.1", AdamW(0.01, weight_decay=0.1), o.AdamW,
         {"lr": 0.01, "weight_decay": 0.1}),
    ]  # fmt: skip


def default_cases() -> list[tuple]:
    """Each optimiser given only its learning rate, on both sides: the defaults of
    everything else (momentum 0, RMSprop's rho 0.99 and eps 1e-8, Adam's betas and
    eps, AdamW's weight decay 0.01) are PyTorch's."""
    o = torch.optim
    return [
        (f"{ours.__name__} defaults but lr", ours(0.01), theirs, {"lr": 0.01})
        for ours, theirs in [
            (SGD, o.SGD),
            (RMSprop, o.RMSprop),
            (Adam, o.Adam),
            (AdamW, o.AdamW),
        ]
    ]


def gradient_sequence(rng: np.random.Generator, steps: int) -> list[dict]:
    """Random gradients for params W (4, 3) and b (3,), with a row ~1e-8 (where eps
    decides the step, so its placement shows) and an element that stays 0."""
    grads = []
    for _ in range(steps):
        g = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
        g["W"][0] *= 1e-8
        g["b"][0] = 0.0
        grads.append(g)
    return grads


@guarded
def optimizer_row(name, ours, torch_cls, kwargs, params, grads, lrs=None) -> Row:
    """The parameters after each step of `ours` and of torch's, on the same gradients;
    with `lrs`, both are given lrs[i] before step i (as a schedule does)."""
    params = {k: p.copy() for k, p in params.items()}
    tensors = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    theirs = torch_cls(list(tensors.values()), **kwargs)
    after_ours, after_theirs = [], []
    for i, g in enumerate(grads):
        if lrs is not None:
            ours.lr = theirs.param_groups[0]["lr"] = lrs[i]
        ours.step(params, {k: v.copy() for k, v in g.items()})
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        theirs.step()
        after_ours += [params[k].ravel().copy() for k in params]
        after_theirs += [tensors[k].detach().numpy().ravel().copy() for k in params]
    pair = (np.concatenate(after_ours), np.concatenate(after_theirs))
    return row(f"{name}: {len(grads)} steps", {"W, b after each step": pair})


def optimizer_rows(rng: np.random.Generator) -> list[Row]:
    """Every optimiser for 5 steps from the same parameters and gradients; then with
    only lr given; with a new lr every step (momentum and AdamW's decay use the
    step's own); and Adam for 120 steps, past its bias correction's early steps and
    its every-100-steps flush of tiny moments."""
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    grads = gradient_sequence(rng, 5)
    rows = [
        optimizer_row(name, ours, cls, kwargs, params, grads)
        for name, ours, cls, kwargs in optimizer_cases() + default_cases()
    ]
    lrs = [0.1, 0.05, 0.2, 0.01, 0.1]
    o = torch.optim
    for name, ours, cls, kwargs in [
        ("SGD Nesterov", SGD(1.0, 0.9, True), o.SGD,
         {"lr": 1.0, "momentum": 0.9, "nesterov": True}),
        ("AdamW", AdamW(1.0, weight_decay=0.1), o.AdamW,
         {"lr": 1.0, "weight_decay": 0.1}),
    ]:  # fmt: skip
        name = f"{name}, lr changed every step"
        rows.append(optimizer_row(name, ours, cls, kwargs, params, grads, lrs))
    long_run = gradient_sequence(rng, 120)
    rows.append(
        optimizer_row("Adam", Adam(0.01), o.Adam, {"lr": 0.01}, params, long_run)
    )
    return rows


# ----- learning-rate schedules -------------------------------------------------------
class Rates(Callback):
    """The optimiser's learning rate at every step of `fit` (set before the step)."""

    def __init__(self):
        self.lrs = []

    def on_batch_end(self, batch: int, logs: dict) -> None:
        self.lrs.append(self.trainer.optimizer.lr)


def fit_rates(epochs: int, batches: int, **fit_kwargs) -> list[float]:
    """The rate of each step of a `fit` of `epochs` epochs of `batches` batches."""
    model = Sequential([Dense(3, 2, rng=0, dtype=F64)])
    x, labels = np.ones((2 * batches, 3)), np.arange(2 * batches) % 2
    rates = Rates()
    model.fit(
        x, labels, epochs=epochs, batch_size=2, optimizer=SGD(0.1), shuffle=False,
        verbose=0, callbacks=[rates, *fit_kwargs.pop("callbacks", [])], **fit_kwargs,
    )  # fmt: skip
    return rates.lrs


def torch_rates(make_scheduler, steps: int, lr: float, per: int = 1) -> list[float]:
    """The rate of each of `steps` steps of an SGD(lr) under torch's scheduler, which
    is stepped after every `per` optimiser steps (1: per batch; batches: per epoch)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for step in range(1, steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step % per == 0:
            scheduler.step()
    return rates


def schedule_rows(rng: np.random.Generator) -> list[Row]:
    """fit's `lr_schedule` (set before every step, from epoch + batch / batches)
    against torch.optim.lr_scheduler stepped per batch, over 4 epochs of 3 batches;
    the LearningRateScheduler callback against a scheduler stepped per epoch. The
    warm-up (lr * max(t / warm-up, 0.01), see `Schedule`) has no built-in twin in
    torch: it is its LambdaLR, joined to the cosine by SequentialLR."""
    s = torch.optim.lr_scheduler
    epochs, b = 4, 3
    steps = epochs * b

    def warmup_cosine(optimizer):
        ramp = s.LambdaLR(optimizer, lambda k: max(k / (1 * b), 0.01))
        cosine = s.CosineAnnealingLR(optimizer, T_max=(epochs - 1) * b)
        return s.SequentialLR(optimizer, [ramp, cosine], milestones=[1 * b])

    cases = [
        ("CosineDecay(0.1, 4)", CosineDecay(0.1, epochs),
         lambda o: s.CosineAnnealingLR(o, T_max=steps)),
        ("CosineDecay(0.1, 4, min_lr=0.01)", CosineDecay(0.1, epochs, 0.01),
         lambda o: s.CosineAnnealingLR(o, T_max=steps, eta_min=0.01)),
        ("StepDecay(0.1, 2, 0.5)", StepDecay(0.1, 2, 0.5),
         lambda o: s.StepLR(o, step_size=2 * b, gamma=0.5)),
        ("ExponentialDecay(0.1, 0.5)", ExponentialDecay(0.1, 0.5),
         lambda o: s.ExponentialLR(o, gamma=0.5 ** (1 / b))),
        ("CosineDecay(0.1, 4, warmup_epochs=1)", CosineDecay(0.1, epochs, 0, 1),
         warmup_cosine),
    ]  # fmt: skip
    rows = [
        row(f"lr_schedule={name}, per step", {
            "lr of each step": (fit_rates(epochs, b, lr_schedule=ours),
                                torch_rates(theirs, steps, 0.1))})
        for name, ours, theirs in cases
    ]  # fmt: skip
    per_epoch = LearningRateScheduler(CosineDecay(0.1, epochs))
    ours = fit_rates(epochs, b, callbacks=[per_epoch])
    theirs = torch_rates(lambda o: s.CosineAnnealingLR(o, T_max=epochs), steps, 0.1, b)
    rows.append(
        row("LearningRateScheduler(CosineDecay(0.1, 4)), per epoch",
            {"lr of each step": (ours, theirs)})
    )  # fmt: skip
    return rows


# ----- a whole model ----------------------------------------------------------------
class Snapshots(Callback):
    """After every optimiser step of `fit`: copies of the gradients it used and of
    the parameters it produced, by nnscratch name ('0.W', '0.b', ...)."""

    def __init__(self):
        self.grads, self.params = [], []

    def on_batch_end(self, batch: int, logs: dict) -> None:
        grads = {}
        for i, layer in enumerate(self.model.layers):
            grads.update({f"{i}.{k}": g.copy() for k, g in layer.grads.items()})
        self.grads.append(grads)
        self.params.append(self.model.get_weights())


def nnscratch_layout(named) -> dict[str, np.ndarray]:
    """torch (name, tensor) pairs -> nnscratch names and layout: '0.weight' (out, in)
    -> '0.W' (in, out), '0.bias' -> '0.b'. Indices match when the twin has no Reshape."""
    out = {}
    for name, t in named:
        i, kind = name.split(".")
        a = t.detach().numpy().copy()
        out[f"{i}.W" if kind == "weight" else f"{i}.b"] = a.T if kind == "weight" else a
    return out


def torch_fit(net, x, labels, batch_size: int, lr: float):
    """What `fit(shuffle=False)` does, in PyTorch: per batch in order, forward,
    mean cross-entropy, backward, one Adam step. Returns (losses, grads, params)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses, grads, params = [], [], []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size])
        yb = torch.from_numpy(labels[start : start + batch_size])
        optimizer.zero_grad()
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        grads.append(nnscratch_layout((k, p.grad) for k, p in net.named_parameters()))
        params.append(nnscratch_layout(net.named_parameters()))
    return losses, grads, params


def per_step(ours: list[dict], theirs: list[dict], label: str) -> Pairs:
    """Per-step dicts of arrays by name as one pair {label: (ours, theirs)} of flat
    arrays (one row in the table), holding every name of every step."""
    pairs = [(a[k], b[k]) for a, b in zip(ours, theirs, strict=True) for k in b]
    flat = [np.concatenate([np.ravel(pair[i]) for pair in pairs]) for i in (0, 1)]
    return {label: tuple(flat)}


def mlp(rng: np.random.Generator) -> Sequential:
    """A float64 784-64-32-10 ReLU MLP with non-zero biases."""
    model = Sequential(
        [
            Dense(784, 64, rng=rng, dtype=F64),
            ReLU(),
            Dense(64, 32, rng=rng, dtype=F64),
            ReLU(),
            Dense(32, 10, rng=rng, dtype=F64),
        ]
    )
    for layer in model.layers[::2]:
        layer.params["b"][:] = 0.1 * rng.standard_normal(layer.n_out)  # not all 0
    return model


def model_rows(rng: np.random.Generator) -> list[Row]:
    """The MLP's `fit` for 3 Adam steps (batches of 16, in order) against the same
    net, weights and batches in PyTorch; then evaluate and predict."""
    model = mlp(rng)
    net = torch_twin(model)  # copied before training: the same start
    x, labels = rng.random((48, 784)), rng.integers(0, 10, 48)
    snapshots = Snapshots()
    history = model.fit(
        x, labels, epochs=1, batch_size=16, optimizer=Adam(1e-3), shuffle=False,
        seed=0, verbose=0, callbacks=[snapshots],
    )  # fmt: skip
    losses, grads, params = torch_fit(net, x, labels, 16, 1e-3)
    x_test, y_test = rng.random((20, 784)), rng.integers(0, 10, 20)
    with torch.no_grad():
        logits = net(torch.from_numpy(x_test))
        test_loss = F.cross_entropy(logits, torch.from_numpy(y_test)).item()
    evaluated = model.evaluate(x_test, y_test)["loss"]
    probs = (model.predict(x_test), logits.softmax(1).numpy())
    return [
        row("MLP fit: loss of steps 1-3", {"loss": (history.batch_losses, losses)}),
        row(
            "MLP fit: gradients of steps 1-3",
            per_step(snapshots.grads, grads, "dW, db"),
        ),
        row(
            "MLP fit: params after Adam steps 1-3",
            per_step(snapshots.params, params, "W, b"),
        ),
        row("MLP evaluate: loss", {"loss": (evaluated, test_loss)}),
        row("MLP predict: probs (float32 output)", {"probs": probs}, TOL_FLOAT32),
        uint8_row(rng),
    ]


def small_cnn(rng: np.random.Generator) -> Sequential:
    """A float64 CNN on (1, 8, 8) images whose steps run fused in nnscratch (conv,
    batch norm, 2x2 max pool and ReLU; conv, pool and ReLU; Dense and ReLU), with
    an L2 penalty on every weight and a batch norm on dense features too."""
    kw = {"rng": rng, "dtype": F64, "l2": 1e-3}
    model = Sequential([
        Conv2D(1, 4, 3, padding=1, **kw), BatchNorm(4, dtype=F64), MaxPool2D(2),
        ReLU(), Conv2D(4, 6, 3, padding="same", **kw), MaxPool2D(2), ReLU(),
        Flatten(), Dense(24, 8, **kw), ReLU(), Dense(8, 8, **kw),
        BatchNorm(8, dtype=F64), ReLU(), Dense(8, 5, **kw),
    ])  # fmt: skip
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][:] = 0.1 * rng.standard_normal(layer.params["b"].shape)
    return model


def torch_state(net) -> dict[str, np.ndarray]:
    """A torch nn.Sequential's parameters and batch-norm statistics under nnscratch's
    names and layouts ('3.W' (in, out) for a Linear, '1.gamma', '1.running_mean')."""
    out = {}
    for i, module in enumerate(net):
        norm = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        names = (
            {"weight": "gamma", "bias": "beta"}
            if norm
            else {"weight": "W", "bias": "b"}
        )
        for kind, t in module.state_dict().items():
            if kind != "num_batches_tracked":
                linear_W = isinstance(module, torch.nn.Linear) and kind == "weight"
                out[f"{i}.{names.get(kind, kind)}"] = (
                    t.numpy().T.copy() if linear_W else t.numpy().copy()
                )
    return out


def weighted_penalized_loss(net, x, labels, weights):
    """Mean over the batch of weights * cross-entropy (Keras' class weights: the sum
    over N, where torch's `weight` divides by the sum of the weights), plus
    1e-3 * sum W^2 of every Conv2d and Linear (nnscratch's l2=1e-3)."""
    losses = F.cross_entropy(net(x), labels, reduction="none")
    layers = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    return (weights * losses).mean() + 1e-3 * sum((m.weight**2).sum() for m in layers)


def torch_cnn_fit(net, x, labels, weights, epochs: int, batch_size: int):
    """What the CNN's `fit(shuffle=False)` does, in PyTorch, with SGD and a cosine
    stepped per batch: (each step's loss, each step's `torch_state`)."""
    optimizer = torch.optim.SGD(
        net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    )
    steps = epochs * (len(x) // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    losses, states = [], []
    net.train()
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            optimizer.zero_grad()
            loss = weighted_penalized_loss(
                net, torch.from_numpy(x[part]), torch.from_numpy(labels[part]),
                weights[part],
            )  # fmt: skip
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            states.append(torch_state(net))
    return losses, states


def cnn_rows(rng: np.random.Generator) -> list[Row]:
    """The CNN's `fit` for 2 epochs of 3 batches with SGD (Nesterov momentum, weight
    decay), a cosine lr_schedule, class weights and L2 penalties, against the same
    in PyTorch: each step's loss (penalties included, as in Keras), parameters and
    running statistics; then `evaluate` (evaluation mode: the running statistics)."""
    model = small_cnn(rng)
    net = torch_twin(model)
    x, labels = rng.random((24, 1, 8, 8)), rng.integers(0, 5, 24)
    class_weight = {0: 0.1, 1: 0.7, 2: 1.3, 3: 2.0, 4: 0.45}
    snapshots = Snapshots()
    history = model.fit(
        x, labels, epochs=2, batch_size=8, shuffle=False, verbose=0, seed=0,
        optimizer=SGD(0.05, 0.9, nesterov=True, weight_decay=1e-3),
        lr_schedule=CosineDecay(0.05, 2), class_weight=class_weight,
        callbacks=[snapshots],
    )  # fmt: skip
    weights = torch.tensor([class_weight[int(c)] for c in labels])
    losses, states = torch_cnn_fit(net, x, labels, weights, 2, 8)
    x_test, y_test = rng.random((10, 1, 8, 8)), rng.integers(0, 5, 10)
    net.eval()
    with torch.no_grad():
        tensors = torch.from_numpy(x_test), torch.from_numpy(y_test)
        test_loss = weighted_penalized_loss(net, *tensors, 1.0).item()
    evaluated = model.evaluate(x_test, y_test)["loss"]
    after_steps = per_step(snapshots.params, states, "W, b, gamma, beta, running")
    return [
        row("CNN fit: loss of steps 1-6", {"loss": (history.batch_losses, losses)}),
        row("CNN fit: params and BN statistics after steps 1-6", after_steps),
        row(
            "CNN evaluate (BN running statistics): loss",
            {"loss": (evaluated, test_loss)},
        ),
    ]


def uint8_row(rng: np.random.Generator) -> Row:
    """`fit` on uint8 images, which it scales to [0, 1] in float32 batch by batch,
    against PyTorch on the images / 255 in float64 (hence float32's tolerance)."""
    model = mlp(rng)
    net = torch_twin(model)
    images, labels = (
        rng.integers(0, 256, (48, 784), dtype=np.uint8),
        rng.integers(0, 10, 48),
    )
    history = model.fit(
        images, labels, epochs=1, batch_size=16, optimizer=Adam(1e-3), shuffle=False,
        seed=0, verbose=0,
    )  # fmt: skip
    losses, _, _ = torch_fit(net, images / 255.0, labels, 16, 1e-3)
    return row(
        "MLP fit on uint8 images: loss of steps 1-3",
        {"loss": (history.batch_losses, losses)},
        TOL_FLOAT32,
    )


# ----- running ----------------------------------------------------------------------
def run_group(name: str, fn, seed: int) -> list[Row]:
    """The rows of one group of checks; an exception is one failed row, not a crash."""
    try:
        return fn(np.random.default_rng(seed))
    except Exception as error:  # noqa: BLE001 - report it in the table and go on
        message = f"{type(error).__name__}: {error}"
        return [Row(f"{name} (raised)", message[:120], np.nan, np.nan, TOL)]


def main(argv: list[str] | None = None) -> int:
    # no options: --help says what the script does, and a mistyped option (such as
    # --data-dir, which other scripts take: this one needs no data) is an error
    # rather than ignored
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Exit status: 0 all checks passed, 1 a check failed, 2 no PyTorch.",
    )
    parser.parse_args(argv)
    if torch is None:
        print(
            "PyTorch is needed for this comparison (not by nnscratch): "
            "pip install torch==2.13.0",
            file=sys.stderr,
        )
        return 2
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    print(
        f"nnscratch {nnscratch.__version__} against PyTorch {torch.__version__}, "
        f"NumPy {np.__version__}; float64, same weights and inputs on both sides\n"
    )
    groups = [
        ("layers", layer_rows),
        ("losses", loss_rows),
        ("optimisers", optimizer_rows),
        ("schedules", schedule_rows),
        ("model", model_rows),
        ("CNN", cnn_rows),
    ]
    rows = [
        r for seed, (name, fn) in enumerate(groups) for r in run_group(name, fn, seed)
    ]
    header = ["check", "compared", "max abs diff", "max rel diff", "tol", "result"]
    print(markdown_table(header, [r.cells() for r in rows]))
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
