"""Helpers shared by the benchmark scripts: the matrix-product floor, peak memory, tables,
and the PyTorch twins of nnscratch layers and models used to cross-check them.

The floor of a training epoch is the time of exactly the float32 matrix products its
steps need, at their real shapes, with nothing else: no activations, loss, optimiser
or data handling. A from-scratch library cannot beat it with the same BLAS, so every
other time is printed as a multiple of it.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from nnscratch.nn.workspace import aligned_empty


def best_time(fn, repeats: int = 3) -> float:
    """Seconds of the fastest of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matrix-multiply speed on (size, size) @ (size, size)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    return 2 * size**3 / best_time(lambda: np.matmul(a, b, out=out), repeats) / 1e9


def epoch_batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(number of steps, batch size) pairs of one epoch: 60000, 128 -> [(468, 128), (1, 96)]."""
    full, rest = divmod(n, batch_size)
    return [(full, batch_size)] + ([(1, rest)] if rest else [])


@dataclass(frozen=True)
class Product:
    """One matrix product (m, k) @ (k, n); `ta`/`tb`: that operand is a transposed view
    of a C-ordered array, as in x.T @ dy (the weight gradient) or dy @ W.T (dx)."""

    m: int
    k: int
    n: int
    ta: bool = False
    tb: bool = False

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def mlp_products(batch: int, sizes: tuple, forward_only: bool = False) -> list[Product]:
    """The products of one MLP training step (or inference batch) at `batch` rows.

    Per Dense layer (n_in -> n_out): forward x @ W; weight gradient x.T @ dy; input
    gradient dy @ W.T for every layer but the first (the images need no gradient).
    """
    products = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        products.append(Product(batch, n_in, n_out))
        if forward_only:
            continue
        products.append(Product(n_in, batch, n_out, ta=True))
        if i > 0:
            products.append(Product(batch, n_out, n_in, tb=True))
    return products


def conv_products(batch: int, convs: list, denses: list) -> list[Product]:
    """The products of one step of a conv net written as im2col + one GEMM per conv.

    convs: (in_channels, out_channels, kernel_area, output_pixels) per conv layer;
    for each, forward W (O, K) @ cols (K, P), weight gradient dy (O, P) @ cols.T and,
    except for the first layer, dcols = W.T @ dy, with K = C*kh*kw and P = N*Ho*Wo.
    denses: (n_in, n_out) per Dense layer, each with forward, dW and dx.
    """
    products = []
    for i, (c, o, area, pixels) in enumerate(convs):
        k, p = c * area, batch * pixels
        products += [Product(o, k, p), Product(o, p, k, tb=True)]
        if i > 0:
            products.append(Product(k, o, p, ta=True))
    for n_in, n_out in denses:
        products += [
            Product(batch, n_in, n_out),
            Product(n_in, batch, n_out, ta=True),
            Product(batch, n_out, n_in, tb=True),
        ]
    return products


def _operands(product: Product, rng: np.random.Generator):
    """Random float32 operands laid out as the training code holds them, and an out,
    each starting on a 64-byte boundary as nnscratch's arrays do (OpenBLAS's small
    products run up to ~7% faster so; the floor is the best the BLAS can do)."""
    m, k, n = product.m, product.k, product.n

    def random(shape):
        a = aligned_empty(shape, np.float32)
        a[...] = rng.standard_normal(shape, dtype=np.float32)
        return a

    a = random((k, m) if product.ta else (m, k))
    b = random((n, k) if product.tb else (k, n))
    out = aligned_empty((m, n), np.float32)
    return (a.T if product.ta else a), (b.T if product.tb else b), out


class ProductsFloor:
    """Every product of `plan` ((steps, products) entries) on random operands laid out
    as the training code holds them, made and run once (warm-up) at construction;
    `time()` gives the seconds of one more run: one epoch's products, in step order."""

    def __init__(self, plan: list[tuple[int, list[Product]]]):
        rng = np.random.default_rng(0)
        self.runs = [(steps, [_operands(p, rng) for p in ps]) for steps, ps in plan]
        self.epoch()

    def epoch(self) -> None:
        for steps, operands in self.runs:
            for _ in range(steps):
                for a, b, out in operands:
                    np.matmul(a, b, out=out)

    def time(self) -> float:
        start = time.perf_counter()
        self.epoch()
        return time.perf_counter() - start


def products_floor(plan: list[tuple[int, list[Product]]], repeats: int = 3) -> float:
    """Best-of-`repeats` seconds of running each (steps, products) entry of `plan`:
    every product of one step, `steps` times, in the order a step runs them."""
    floor = ProductsFloor(plan)
    return min(floor.time() for _ in range(repeats))


def plan_flops(plan: list[tuple[int, list[Product]]]) -> int:
    return sum(steps * sum(p.flops for p in products) for steps, products in plan)


def peak_memory_mib() -> float:
    """This process's peak resident memory so far (VmHWM; ru_maxrss off Linux), MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def _busy_cpu_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (Linux only)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()  # this process and its finished children
    return t.user + t.system + t.children_user + t.children_system


class OthersLoad:
    """How many cores other processes kept busy while the block ran (None off Linux).

    Timings are only meaningful on an otherwise idle machine: with two BLAS threads
    on two cores, one busy neighbour can make small matrix products many times slower.
    """

    cores: float | None = None

    def start(self) -> None:
        self._start = (time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds())

    def stop(self) -> float | None:
        """Average number of cores others used since `start` (also kept in .cores)."""
        wall0, busy0, own0 = self._start
        busy1, wall = _busy_cpu_seconds(), time.perf_counter() - wall0
        self.cores = None
        if busy0 is not None and busy1 is not None and wall > 0:
            others = (busy1 - busy0) - (_own_cpu_seconds() - own0)
            self.cores = max(0.0, others / wall)
        return self.cores

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows of strings as a Markdown table, columns padded to line up."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *[line(r) for r in rows]])


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for the table, '' when missing (None or nan)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def torch_twin(model):
    """The same network in PyTorch, with the nnscratch model's current weights.

    Handles Dense, Conv2D, BatchNorm, ReLU, MaxPool2D, Flatten, Dropout; a Reshape is
    skipped (the torch input is given already shaped), so module indices match only
    when there is none.
    nn.Linear keeps its weight as (out, in): it gets Dense's W (in, out) transposed.
    Modules are built in torch's default dtype (call torch.set_default_dtype first).
    """
    import torch
    from torch import nn

    from nnscratch.errors import NnscratchError

    modules = []
    for layer in model.layers:
        name = type(layer).__name__
        if name == "Dense":
            modules.append(nn.Linear(layer.n_in, layer.n_out))
        elif name == "Conv2D":
            modules.append(
                nn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                )
            )
        elif name == "ReLU":
            modules.append(nn.ReLU())
        elif name == "MaxPool2D":
            modules.append(nn.MaxPool2d(layer.pool_size, layer.stride))
        elif name == "Flatten":
            modules.append(nn.Flatten())
        elif name == "BatchNorm":
            modules.append(torch_batch_norm(layer, modules))
        elif name == "Dropout":
            modules.append(nn.Dropout(layer.rate))
        elif name != "Reshape":  # the torch input is already (N, 1, 28, 28)
            raise NnscratchError(f"no PyTorch twin for layer {name}")
        if name == "BatchNorm":
            continue  # its parameters and statistics are copied by torch_batch_norm
        if layer.params:
            W = layer.params["W"]
            with torch.no_grad():
                modules[-1].weight.copy_(
                    torch.from_numpy(W.T if name == "Dense" else W)
                )
                modules[-1].bias.copy_(torch.from_numpy(layer.params["b"]))
    return nn.Sequential(*modules)


def torch_batch_norm(layer, modules_before: list):
    """BatchNorm2d on images (after a Conv2d or a pooling layer, with any ReLU or
    Dropout between), else BatchNorm1d, with the layer's gamma, beta and running
    statistics (both weigh the new batch by `momentum`)."""
    import torch
    from torch import nn

    on_images = False
    for module in reversed(modules_before):  # the last layer that sets the rank
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.Linear)):
            on_images = not isinstance(module, nn.Linear)
            break
    kind = nn.BatchNorm2d if on_images else nn.BatchNorm1d
    gamma = layer.params["gamma"]
    module = kind(gamma.size, eps=layer.eps, momentum=layer.momentum)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(gamma.ravel()))
        module.bias.copy_(torch.from_numpy(layer.params["beta"].ravel()))
        module.running_mean.copy_(torch.from_numpy(layer.state["running_mean"].ravel()))
        module.running_var.copy_(torch.from_numpy(layer.state["running_var"].ravel()))
    return module


def torch_layer_pairs(
    layer, x: np.ndarray, torch_fn, torch_params=(), rng=None, training: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Output and gradients of an nnscratch layer and of its PyTorch equivalent.

    Runs `layer.forward(x, training)`, then `layer.backward(dy)` with dy drawn from
    `rng` (standard normal, after the forward), and the same through
    `torch_fn(x, *params)`, where `torch_params` are NumPy arrays in the layer's
    layout, in the order of `layer.grads`, passed as leaf tensors so that their
    gradients come back in that layout. Returns {"y": (ours, torch's), "dx": ...,
    "d<param>": ...}, all copies.
    """
    import torch

    rng = np.random.default_rng(rng)
    y = layer.forward(x, training=training).copy()
    dy = rng.standard_normal(y.shape).astype(y.dtype)
    dx = layer.backward(dy).copy()
    tx = torch.tensor(x, requires_grad=True)
    tps = [torch.tensor(p, requires_grad=True) for p in torch_params]
    ty = torch_fn(tx, *tps)
    ty.backward(torch.tensor(dy))
    pairs = {"y": (y, ty.detach().numpy()), "dx": (dx, tx.grad.numpy())}
    # strict: a parameter without its gradient must fail, not drop out of the row
    for (name, grad), tp in zip(layer.grads.items(), tps, strict=True):
        pairs[f"d{name}"] = (grad.copy(), tp.grad.numpy())
    return pairs
