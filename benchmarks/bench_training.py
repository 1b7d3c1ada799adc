"""Training speed of nnscratch on Fashion-MNIST, as multiples of the matrix-product floor.

In one run, on the 60,000 training images: the machine's float32 GEMM speed; per batch
size, the floor (the matrix products one epoch of the MLP needs, nothing else) and the
MLP 784-256-128-64-32-10 (ReLU, Adam lr 1e-3) epoch times; inference throughput on the
10,000 test images; peak memory of training, each framework in its own subprocess;
the lenet-like conv net's epoch (--no-conv skips it); with --compare-torch the same models,
weights and batches in PyTorch. Then the compiled kernels on and off (the MLP and the
lenet-like net on the kernels' NumPy twins and on numba's), and on MNIST the `fast`
preset's time to 99% test accuracy (with --compare-torch, also the same recipe's in
PyTorch) and the `cnn` preset's epoch (--no-presets skips them). Ends with Markdown tables and PASS/MISS per target.

The figures that are compared are timed interleaved: before every nnscratch epoch the
floor runs once and PyTorch trains its epoch, and the ratios are of medians. A small
VM's speed drifts by 20% or more within minutes; timed one after the other, the ratios
would say more about that drift than about the code.

    python benchmarks/bench_training.py [--data-dir DIR] [--epochs 5]
        [--batch-sizes 32,128,512] [--compare-torch] [--no-conv] [--conv-epochs 1]
        [--no-presets] [--cnn-epochs 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OthersLoad,
    ProductsFloor,
    best_time,
    conv_products,
    epoch_batches,
    fmt,
    gemm_gflops,
    markdown_table,
    mlp_products,
    peak_memory_mib,
    plan_flops,
    products_floor,
    torch_twin,
)
from kernel_runs import (
    OnOff,
    PresetRun,
    kernels_on_off,
    preset_lines,
    preset_run,
    torch_preset_run,
)

from nnscratch import (
    Adam,
    Callback,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    load_dataset,
)
from nnscratch.errors import NnscratchError

MLP_SIZES = (784, 256, 128, 64, 32, 10)
# lenet-like: (in, out, kernel area, output pixels) per conv, then the Dense layers
CONV_LAYERS = [(1, 32, 9, 28 * 28), (32, 64, 9, 14 * 14)]
CONV_DENSES = [(64 * 7 * 7, 128), (128, 10)]
CONV_BATCH = 128
INFERENCE_BATCH = 1024
MEMORY_BATCH, MEMORY_EPOCHS = 128, 2
LR, SEED = 1e-3, 0
MEMORY_LIMIT_MIB = 300

TARGETS_TEXT = """\
Targets (issue 5, ratios within this run):
  MLP epoch (median) at batch 128 <= 1.5x the floor; at batch 32 <= 2.5x the floor
  epoch time does not grow: last of the epochs <= 1.10x the first, every batch size
  against PyTorch in the same run: <= 0.6x its epoch at batch 128, <= 0.4x at batch 32
  peak memory training the MLP on 60,000 images <= 300 MiB (PyTorch: about 495 MB)
Targets (issue 17, with the compiled kernels):
  MLP epoch against PyTorch's Adam(fused=True): <= 0.5x at batch 32, <= 0.8x at 128,
  <= 1.0x at 512; against the floor: <= 2.0x / 1.5x / 1.3x
  lenet-like epoch <= 1.0x PyTorch's, either order of ReLU and pooling;
  predict at least as fast as PyTorch's
  fast preset: >= 99.0% test accuracy with fit <= 60 s"""


BUSY_CORES = 0.1  # others' load above which a figure is flagged as unreliable
# the floor is timed before every epoch; a larger spread (slowest / fastest - 1) means
# the machine's speed changed meanwhile (a neighbour on the host, clock changes)
FLOOR_DRIFT = 0.15


@dataclass
class Timings:
    """Seconds of repeated runs (epochs, floor runs) and how many cores other processes
    used during each."""

    seconds: list[float] = field(default_factory=list)
    loads: list[float | None] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def load(self) -> float | None:
        known = [x for x in self.loads if x is not None]
        return max(known) if known else None

    @property
    def spread(self) -> float:
        """Slowest run / fastest run: how much the machine's speed moved."""
        return max(self.seconds) / min(self.seconds)


@dataclass
class EpochTimes(Timings):
    """Epochs of one training run, and its last epoch's mean loss."""

    loss: float = float("nan")


class EpochLoad(Callback):
    """Others' load during each epoch of `fit`, measured between its hooks."""

    def on_train_begin(self, logs=None):
        self.loads, self._monitor = [], OthersLoad()

    def on_epoch_begin(self, epoch, logs=None):
        self._monitor.start()

    def on_epoch_end(self, epoch, logs):
        self.loads.append(self._monitor.stop())


class Interleaved(Callback):
    """Before each nnscratch epoch: one run of the floor's products and, if a PyTorch
    trainer is given, PyTorch's epoch. fit starts its epoch clock after this hook."""

    def __init__(self, plan: list, torch_trainers: tuple = ()):
        self.products, self.torch_trainers = ProductsFloor(plan), torch_trainers
        self.floor = Timings()

    def on_epoch_begin(self, epoch, logs=None):
        with OthersLoad() as load:
            self.floor.seconds.append(self.products.time())
        self.floor.loads.append(load.cores)
        for trainer in self.torch_trainers:
            trainer.epoch()


@dataclass
class Results:
    images: int = 0  # training images
    gflops: float = 0.0
    floor: dict[int, Timings] = field(default_factory=dict)
    nnscratch: dict[int, EpochTimes] = field(default_factory=dict)
    torch: dict[int, EpochTimes] = field(default_factory=dict)
    torch_fused: dict[int, EpochTimes] = field(default_factory=dict)  # Adam(fused=True)
    inference_floor: float | None = None
    inference: dict[str, float] = field(default_factory=dict)
    conv_floor: Timings | None = None
    conv: dict[str, EpochTimes] = field(default_factory=dict)
    memory: dict[str, dict] = field(default_factory=dict)
    kernels: list[OnOff] = field(default_factory=list)  # NumPy twins vs compiled
    fast: PresetRun | None = None
    fast_torch: PresetRun | None = None  # the same recipe in PyTorch
    cnn: PresetRun | None = None
    # others' load (cores) while the floors, inference and memory were measured
    loads: dict = field(default_factory=dict)


# ----- models ------------------------------------------------------------------------
def nnscratch_mlp() -> Sequential:
    rng = np.random.default_rng(SEED)
    layers: list = [Flatten()]
    for n_in, n_out in itertools.pairwise(MLP_SIZES):
        layers += [Dense(n_in, n_out, rng=rng), ReLU()]
    return Sequential(layers[:-1], input_shape=(28, 28))  # logits: no final ReLU


def nnscratch_conv(relu_first: bool = False) -> Sequential:
    """The lenet-like preset's net: conv-pool-ReLU blocks, or with `relu_first` as
    PyTorch users write them, conv-ReLU-pool (the same function: max pooling and
    ReLU commute; nnscratch runs both orders as pool-ReLU, PyTorch as written)."""
    from nnscratch.runs.presets import build_lenet_like, preset_settings

    rng = np.random.default_rng(SEED)
    settings = preset_settings("lenet-like")  # its init and l2
    layers = build_lenet_like(settings, (28, 28), 10, rng)  # Reshape((1, 28, 28)) 1st
    if relu_first:
        for i in [i for i, layer in enumerate(layers) if isinstance(layer, MaxPool2D)]:
            layers[i : i + 2] = layers[i + 1], layers[i]  # pool, ReLU -> ReLU, pool
    return Sequential(layers, input_shape=(28, 28))


def fit_times(
    model: Sequential, images, labels, batch_size: int, epochs: int, between=None
) -> EpochTimes:
    """Train with Adam; `between` is a callback run before each epoch (Interleaved)."""
    load = EpochLoad()
    history = model.fit(
        images, labels, epochs=epochs, batch_size=batch_size, optimizer=Adam(LR),
        verbose=0, seed=SEED, callbacks=[between, load] if between else [load],
    )  # fmt: skip
    h = history.history
    return EpochTimes(h["seconds"], load.loads, loss=h["loss"][-1])


def interleaved_times(model, images, labels, batch_size, epochs, plan, torch_trainers):
    """nnscratch's epochs, each after one floor run and PyTorch's epochs (if given)."""
    between = Interleaved(plan, torch_trainers)
    ours = fit_times(model, images, labels, batch_size, epochs, between)
    return ours, between.floor


def torch_inputs(images: np.ndarray, shape: tuple):
    """uint8 images -> one pre-made float32 tensor in [0, 1] of shape (N, *shape)."""
    import torch

    return torch.from_numpy(images.reshape(len(images), *shape)).float().div_(255.0)


class TorchTrainer:
    """Adam (PyTorch defaults, lr 1e-3) on the batches nnscratch's fit takes: the same
    shuffled order from the same seed, each batch gathered from the pre-made tensor x.
    `fused=True`: PyTorch's fused Adam (one kernel over all parameters, like
    nnscratch's flat buffer), an option a user must ask for: on the CPU the default is
    a loop over the tensors. `epoch()` trains one epoch; `times` has the seconds."""

    def __init__(self, tmodel, x, labels: np.ndarray, batch_size: int, fused=False):
        import torch

        self.model, self.x, self.batch_size = tmodel, x, batch_size
        self.y = torch.from_numpy(labels.astype(np.int64))
        self.optimizer = torch.optim.Adam(tmodel.parameters(), lr=LR, fused=fused)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.shuffle_rng = np.random.default_rng(SEED).spawn(3)[0]  # as fit does
        self.times = EpochTimes()

    def epoch(self) -> None:
        import torch

        n = len(self.y)
        self.model.train()
        with OthersLoad() as load:
            start = time.perf_counter()
            order = torch.from_numpy(self.shuffle_rng.permutation(n))
            total_loss, correct = 0.0, 0
            for first in range(0, n, self.batch_size):
                index = order[first : first + self.batch_size]
                xb, yb = self.x[index], self.y[index]
                logits = self.model(xb)
                loss = self.loss_fn(logits, yb)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                # the same bookkeeping as nnscratch: epoch loss and accuracy
                total_loss += loss.item() * len(index)
                correct += int((logits.argmax(1) == yb).sum())
            self.times.seconds.append(time.perf_counter() - start)
        self.times.loads.append(load.cores)
        self.times.loss = total_loss / n


def torch_predict_seconds(tmodel, x) -> float:
    import torch

    tmodel.eval()
    out = torch.empty(len(x), 10)

    def predict():
        with torch.no_grad():
            for first in range(0, len(x), INFERENCE_BATCH):
                batch = x[first : first + INFERENCE_BATCH]
                out[first : first + len(batch)] = tmodel(batch).softmax(1)

    return best_time(predict, 3)


# ----- peak memory, one subprocess per framework -------------------------------------
def fashion_mnist(args):
    """Fashion-MNIST as load_dataset gives it, the training set cut to --limit if given."""
    (images, labels), test = load_dataset("fashion-mnist", args.data_dir)
    return (images[: args.limit], labels[: args.limit]), test


def memory_child(framework: str, args) -> dict:
    """Load Fashion-MNIST and train the MLP; report this process's peak memory."""
    (images, labels), _ = fashion_mnist(args)
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
        x = torch_inputs(images, (784,))
    before = peak_memory_mib()
    model = nnscratch_mlp()
    if framework == "torch":
        trainer = TorchTrainer(torch_twin(model), x, labels, MEMORY_BATCH)
        for _ in range(MEMORY_EPOCHS):
            trainer.epoch()
    else:
        fit_times(model, images, labels, MEMORY_BATCH, MEMORY_EPOCHS)
    return {"peak_mib": peak_memory_mib(), "before_training_mib": before}


def measure_memory(framework: str, args) -> dict:
    command = [sys.executable, __file__, "--memory-child", framework]
    if args.data_dir is not None:
        command += ["--data-dir", str(args.data_dir)]
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise NnscratchError(
            f"memory subprocess ({framework}) failed: {done.stderr.strip()[-500:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----- the run -----------------------------------------------------------------------
def log(message: str) -> None:
    print(message, flush=True)


def environment(use_torch: bool) -> str:
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    threads = {
        k: os.environ[k]
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    text = (
        f"NumPy {np.__version__} ({blas['name']} {blas.get('version', '')}), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if threads:
        text += f", {threads}"
    if use_torch:
        import torch

        text += f"\nPyTorch {torch.__version__}, {torch.get_num_threads()} threads"
    return text


def run(args) -> Results:
    (x_train, y_train), (x_test, _) = fashion_mnist(args)
    n = len(x_train)
    if args.compare_torch and importlib.util.find_spec("torch") is None:
        log("PyTorch is not installed: the PyTorch figures are skipped")
        args.compare_torch = False
    if args.compare_torch:
        import torch

        torch.set_num_threads(2)
    log(environment(args.compare_torch))
    log(
        f"Fashion-MNIST: {n} training images {x_train.dtype}, {len(x_test)} test images"
    )
    res = Results(images=n)
    res.gflops = gemm_gflops()
    log(f"float32 GEMM 2048x2048x2048: {res.gflops:.1f} GFLOP/s")
    x_float = torch_inputs(x_train, (784,)) if args.compare_torch else None

    for b in args.batch_sizes:
        plan = [(s, mlp_products(size, MLP_SIZES)) for s, size in epoch_batches(n, b)]
        trainers = ()
        if args.compare_torch:
            trainers = tuple(
                TorchTrainer(torch_twin(nnscratch_mlp()), x_float, y_train, b, fused)
                for fused in (False, True)
            )
        res.nnscratch[b], res.floor[b] = interleaved_times(
            nnscratch_mlp(), x_train, y_train, b, args.epochs, plan, trainers
        )
        rate = plan_flops(plan) / 1e9 / res.floor[b].median
        log(f"batch {b}: floor runs (s): {seconds_text(res.floor[b].seconds)} "
            f"({rate:.0f} GFLOP/s)")  # fmt: skip
        log_epochs("nnscratch", res.nnscratch[b])
        if trainers:
            res.torch[b], res.torch_fused[b] = (t.times for t in trainers)
            log_epochs("PyTorch", res.torch[b])
            log_epochs("PyTorch, fused Adam", res.torch_fused[b])

    plan = [
        (s, mlp_products(size, MLP_SIZES, forward_only=True))
        for s, size in epoch_batches(len(x_test), INFERENCE_BATCH)
    ]
    model = nnscratch_mlp()
    model.compile(loss="cross_entropy")  # predict's probabilities, as PyTorch's softmax
    with OthersLoad() as load:
        res.inference_floor = products_floor(plan)
        res.inference["nnscratch"] = best_time(
            lambda: model.predict(x_test, batch_size=INFERENCE_BATCH), 3
        )
        # PyTorch is given its images as one pre-made float32 tensor; from uint8
        # nnscratch also scales each batch (~0.15 ms of ~2 ms): timed both ways
        x_float = (x_test / np.float32(255)).astype(np.float32)
        res.inference["nnscratch_float"] = best_time(
            lambda: model.predict(x_float, batch_size=INFERENCE_BATCH), 3
        )
        if args.compare_torch:
            x_test_float = torch_inputs(x_test, (784,))
            res.inference["torch"] = torch_predict_seconds(
                torch_twin(model), x_test_float
            )
    res.loads["inference"] = load.cores
    log(
        f"inference of 10k (s): floor {res.inference_floor:.3f}, "
        + ", ".join(f"{k} {v:.3f}" for k, v in res.inference.items())
    )

    if args.conv:
        run_conv(args, res, x_train, y_train)

    run_kernels(args, res, x_train, y_train)
    if args.presets:
        log("the fast preset on MNIST (test accuracy after every epoch)")
        res.fast = preset_run("fast", args.data_dir, args.limit)
        if args.compare_torch:
            log("the fast recipe in PyTorch")
            res.fast_torch = torch_preset_run("fast", args.data_dir, args.limit)
        log("the cnn preset on MNIST")
        res.cnn = preset_run(
            "cnn", args.data_dir, args.limit, args.cnn_epochs, test_each_epoch=False
        )
        for line in preset_lines(res.fast, res.cnn, res.fast_torch):
            log("  " + line)

    for framework in ["nnscratch"] + (["torch"] if args.compare_torch else []):
        with OthersLoad() as load:
            res.memory[framework] = measure_memory(framework, args)
        res.loads[("memory", framework)] = load.cores
        log(f"peak memory {framework}: {res.memory[framework]['peak_mib']:.0f} MiB")
    return res


def seconds_text(seconds: list[float]) -> str:
    return " ".join(f"{s:.2f}" for s in seconds)


def log_epochs(name: str, times: EpochTimes) -> None:
    log(f"  {name + ' epochs (s):':<25} {seconds_text(times.seconds)}")


def run_conv(args, res: Results, x_train, y_train) -> None:
    """The lenet-like net in the preset's order (against PyTorch's default and fused
    Adam), then written conv-ReLU-pool (against PyTorch's default Adam, in that
    order too): the issue's target holds for either order."""
    plan = [
        (s, conv_products(size, CONV_LAYERS, CONV_DENSES))
        for s, size in epoch_batches(len(x_train), CONV_BATCH)
    ]
    for relu_first, names in [(False, ("torch", "torch_fused")), (True, ("torch",))]:
        suffix = "_relu_first" if relu_first else ""
        trainers = {}
        if args.compare_torch:
            x = torch_inputs(x_train, (1, 28, 28))
            trainers = {
                name + suffix: TorchTrainer(torch_twin(nnscratch_conv(relu_first)), x,
                                            y_train, CONV_BATCH,
                                            fused=name == "torch_fused")
                for name in names
            }  # fmt: skip
        res.conv["nnscratch" + suffix], floor = interleaved_times(
            nnscratch_conv(relu_first), x_train, y_train, CONV_BATCH,
            args.conv_epochs, plan, tuple(trainers.values()),
        )  # fmt: skip
        if (
            res.conv_floor is None
        ):  # the first run's; the second's are the same products
            res.conv_floor = floor
        log(f"conv floor runs (s): {seconds_text(floor.seconds)}")
        for name in ["nnscratch" + suffix, *trainers]:
            if name in trainers:
                res.conv[name] = trainers[name].times
            log_epochs(CONV_ROWS[name].removesuffix(" epoch"), res.conv[name])


def run_kernels(args, res: Results, x_train, y_train) -> None:
    """The MLP (batch 128, or the first batch size) and, unless --no-conv, the
    lenet-like net on the kernels' NumPy twins and on the compiled ones, in turn."""
    batch = 128 if 128 in args.batch_sizes else args.batch_sizes[0]
    log("kernels on and off: the same models on the NumPy twins and on numba's")
    res.kernels.append(
        kernels_on_off("MLP", nnscratch_mlp, lambda: Adam(LR), x_train, y_train,
                       batch, args.epochs, log)
    )  # fmt: skip
    if args.conv:
        res.kernels.append(
            kernels_on_off("lenet-like", nnscratch_conv, lambda: Adam(LR), x_train,
                           y_train, CONV_BATCH, args.conv_epochs, log)
        )  # fmt: skip


# ----- the report --------------------------------------------------------------------
HEADER = [
    "figure", "batch", "seconds (median)", "x floor", "first", "last", "last/first",
    "last loss", "nnscratch/torch", "others' load",
]  # fmt: skip


def floor_row(label, batch, floor: Timings) -> list[str]:
    """A floor's row: the median of its runs, the first and last run."""
    s = floor.seconds
    return [
        label, str(batch), fmt(floor.median), "1.00", fmt(s[0]), fmt(s[-1]),
        fmt(s[-1] / s[0]), "", "", fmt(floor.load),
    ]  # fmt: skip


def epoch_row(label: str, batch, times: EpochTimes, floor, other) -> list[str]:
    s = times.seconds
    return [
        label, str(batch), fmt(times.median), fmt(times.median / floor),
        fmt(s[0]), fmt(s[-1]), fmt(s[-1] / s[0]), fmt(times.loss, 4),
        fmt(times.median / other.median) if other else "", fmt(times.load),
    ]  # fmt: skip


def name_of(framework: str) -> str:
    names = {"torch": "PyTorch", "nnscratch_float": "nnscratch from float32"}
    return names.get(framework, framework)


INFERENCE_ROWS = {
    "nnscratch": "nnscratch predict 10k",
    "nnscratch_float": "nnscratch, float32 input",
    "torch": "PyTorch predict 10k",
}
CONV_ROWS = {
    "nnscratch": "nnscratch lenet-like epoch",
    "torch": "PyTorch lenet-like epoch",
    "torch_fused": "PyTorch lenet-like, fused Adam",
    "nnscratch_relu_first": "nnscratch, conv-ReLU-pool",
    "torch_relu_first": "PyTorch, conv-ReLU-pool",
}
# the PyTorch run each nnscratch conv run's ratio column is against
CONV_AGAINST = {"nnscratch": "torch", "nnscratch_relu_first": "torch_relu_first"}


def report(res: Results, args) -> str:
    rows = []
    for b in args.batch_sizes:
        floor, theirs = res.floor[b].median, res.torch.get(b)
        rows.append(floor_row("floor: matrix products", b, res.floor[b]))
        rows.append(
            epoch_row("nnscratch MLP epoch", b, res.nnscratch[b], floor, theirs)
        )
        if theirs:
            rows.append(epoch_row("PyTorch MLP epoch", b, theirs, floor, None))
            fused = res.torch_fused[b]
            rows.append(epoch_row("PyTorch, fused Adam", b, fused, floor, None))
            # nnscratch against the fused one, in its ratio column
            rows[-1][8] = "(" + fmt(res.nnscratch[b].median / fused.median) + ")"
    inference_load = fmt(res.loads["inference"])
    rows.append(
        ["floor: forward products, 10k", str(INFERENCE_BATCH),
         fmt(res.inference_floor, 3), "1.00", *[""] * 5, inference_load]
    )  # fmt: skip
    for framework, seconds in res.inference.items():
        ratio = ""
        if framework.startswith("nnscratch") and "torch" in res.inference:
            ratio = fmt(seconds / res.inference["torch"])
        rows.append(
            [INFERENCE_ROWS[framework], str(INFERENCE_BATCH), fmt(seconds, 3),
             fmt(seconds / res.inference_floor), *[""] * 4, ratio, inference_load]
        )  # fmt: skip
    if res.conv_floor is not None:
        rows.append(
            floor_row("floor: conv as im2col GEMMs", CONV_BATCH, res.conv_floor)
        )
        for framework, times in res.conv.items():
            other = res.conv.get(CONV_AGAINST.get(framework, ""))
            rows.append(
                epoch_row(CONV_ROWS[framework], CONV_BATCH, times,
                          res.conv_floor.median, other)
            )  # fmt: skip
            if framework == "torch_fused":  # as for the MLP: ours over it, bracketed
                ours = res.conv["nnscratch"].median
                rows[-1][8] = "(" + fmt(ours / times.median) + ")"
    table = markdown_table(HEADER, rows)
    if res.kernels:
        table += "\n\n" + kernels_table(res.kernels)

    images_per_s = ", ".join(
        f"{name_of(k)} {10_000 / v:,.0f} images/s" for k, v in res.inference.items()
    )
    memory = "; ".join(
        f"{name_of(k)} {v['peak_mib']:.0f} MiB ({v['before_training_mib']:.0f} MiB "
        "with the data loaded, before training)"
        for k, v in res.memory.items()
    )
    notes = [
        (
            f"Machine: float32 GEMM 2048^3 at {res.gflops:.0f} GFLOP/s. MLP "
            f"{'-'.join(map(str, MLP_SIZES))} ReLU, Adam lr {LR:g}, on {res.images:,} images; "
            f"{args.epochs} epochs per batch size, fit(..., verbose=0)."
        ),
        (
            "floor = the float32 matrix products of one epoch at the real shapes and "
            "nothing else (per step and Dense layer: x@W, x.T@dy, and dy@W.T for all "
            "but the first). Interleaved: before every nnscratch epoch the floor runs "
            "once, then PyTorch trains its epoch; x floor = median epoch / median "
            "floor run, nnscratch/torch = ratio of the median epochs."
        ),
        (
            f"Inference: predict (probabilities) on the 10,000 test images at batch "
            f"{INFERENCE_BATCH}, best of 3: {images_per_s}; its floor is the forward "
            "products only."
        ),
        (
            "PyTorch: nn.Linear/ReLU, CrossEntropyLoss, torch.optim.Adam defaults, 2 "
            "threads, no DataLoader: each batch is gathered from one pre-made float32 "
            "tensor, in nnscratch's shuffled order, from nnscratch's initial weights "
            "(so the losses should agree). 'fused Adam' is torch.optim.Adam(..., "
            "fused=True), which a user must ask for (the CPU default loops over the "
            "tensors); its row's ratio column, in brackets, is nnscratch's epoch over "
            "it. The targets are against the default, as issue 5 sets them."
        ),
        (
            "others' load = cores other processes kept busy during that measurement "
            f"(the worst epoch); above {BUSY_CORES} the figure is not reliable."
        ),
    ]
    if res.conv_floor is not None:
        notes.append(
            "Conv floor: each conv as im2col GEMMs (forward W@cols, dW, and dcols for "
            "the second conv) plus the Dense products, run before each conv epoch, "
            "then PyTorch's epochs (with its default Adam, which the target is "
            "against, then its fused Adam: nnscratch's ratio to it in brackets). "
            "The 'conv-ReLU-pool' rows train the same net written as PyTorch users "
            "write it, ReLU before each max pooling, in both frameworks (nnscratch "
            "runs it as pool-ReLU, the same numbers; PyTorch as written), after "
            "floor runs of their own; their x floor is against the first floor."
        )
    if res.kernels:
        notes.append(
            "Kernels on and off: the same model, weights and batches trained on the "
            "NumPy twins of nnscratch.nn.kernels (as NNSCRATCH_KERNELS=numpy does) and "
            "on their numba-compiled twins (the default), one epoch of each in turn; "
            "compiled/NumPy = ratio of the median epochs. The matrix products are "
            "BLAS's in both."
        )
    notes += preset_lines(res.fast, res.cnn, res.fast_torch)
    notes.append(
        f"Peak memory (VmHWM of a separate process that loads Fashion-MNIST and trains "
        f"the MLP for {MEMORY_EPOCHS} epochs at batch {MEMORY_BATCH}): {memory}."
    )
    return "\n\n".join([table, "\n".join(notes), targets(res)])


KERNELS_HEADER = [
    "model", "batch", "NumPy twins (s, median)", "compiled (s, median)",
    "compiled/NumPy", "last loss NumPy / compiled", "others' load",
]  # fmt: skip


def kernels_table(runs: list[OnOff]) -> str:
    rows = [
        [
            f"{run.name} epoch", str(run.batch), fmt(run.median("numpy")),
            fmt(run.median("numba")), fmt(run.ratio),
            f"{run.losses['numpy']:.4f} / {run.losses['numba']:.4f}",
            fmt(max(x for x in run.loads if x is not None) if any(
                x is not None for x in run.loads) else None),
        ]
        for run in runs
    ]  # fmt: skip
    return markdown_table(KERNELS_HEADER, rows)


def growth_remark(floor: Timings) -> str:
    """How the floor run before the last epoch compares with the one before the first,
    when it moved by more than 10%: then the machine's speed moved between the two
    epochs too. (Dividing each epoch by its floor run was tried: one floor run is as
    noisy as an epoch, and the quotient noisier than either.)"""
    moved = floor.seconds[-1] / floor.seconds[0]
    return (
        f"  [the floor moved {moved:.2f}x between them]" if abs(moved - 1) > 0.1 else ""
    )


def targets(res: Results) -> str:
    lines = [TARGETS_TEXT, ""]

    def check(text, value, limit, load, unit="x", digits=2, drift=None, remark=""):
        if value is None:
            lines.append(f"  n/a   {text}: not measured in this run")
            return
        verdict = "PASS" if value <= limit else "MISS"
        busy = remark
        if load is not None and load > BUSY_CORES:
            busy = f"  [machine busy: others used {load:.2f} cores; rerun]"
        elif drift is not None and drift - 1 > FLOOR_DRIFT:
            busy = f"  [machine speed moved: floor runs slowest/fastest {drift:.2f}]"
        lines.append(
            f"  {verdict}  {text}: {value:.{digits}f}{unit} (target <= {limit:g}{unit})"
            f"{busy}"
        )

    def worst(*loads):
        known = [x for x in loads if x is not None]
        return max(known) if known else None

    def drift(b):
        return res.floor[b].spread if b in res.floor else None

    for b, limit in [(128, 1.5), (32, 2.5)]:
        ours, floor = res.nnscratch.get(b), res.floor.get(b)
        value = ours.median / floor.median if ours else None
        load = worst(ours.load, floor.load) if ours else None
        check(f"MLP epoch / floor, batch {b}", value, limit, load, drift=drift(b))
    for b, times in res.nnscratch.items():
        count = len(times.seconds)
        note = "" if count >= 5 else f" (only {count} epochs)"
        check(
            f"last/first epoch, batch {b}{note}", times.seconds[-1] / times.seconds[0],
            1.10, worst(times.loads[0], times.loads[-1]),
            remark=growth_remark(res.floor[b]),
        )  # fmt: skip
    for b, limit in [(128, 0.6), (32, 0.4)]:
        ours, theirs = res.nnscratch.get(b), res.torch.get(b)
        value = ours.median / theirs.median if ours and theirs else None
        check(f"MLP epoch / PyTorch's, batch {b}", value, limit,
              worst(ours.load, theirs.load) if value else None,
              drift=drift(b))  # fmt: skip
    peak = res.memory.get("nnscratch", {}).get("peak_mib")
    check("peak memory training the MLP", peak, MEMORY_LIMIT_MIB, None, " MiB", 0)
    for b, limit in [(32, 0.5), (128, 0.8), (512, 1.0)]:
        ours, fused = res.nnscratch.get(b), res.torch_fused.get(b)
        value = ours.median / fused.median if ours and fused else None
        check(f"MLP epoch / PyTorch's fused Adam's, batch {b}", value, limit,
              worst(ours.load, fused.load) if value else None,
              drift=drift(b))  # fmt: skip
    for b, limit in [(32, 2.0), (512, 1.3)]:  # batch 128's is issue 5's, above
        ours, floor = res.nnscratch.get(b), res.floor.get(b)
        value = ours.median / floor.median if ours else None
        load = worst(ours.load, floor.load) if ours else None
        check(f"MLP epoch / floor, batch {b}", value, limit, load, drift=drift(b))
    for framework, order in [
        ("nnscratch", ""),
        ("nnscratch_relu_first", ", conv-ReLU-pool"),
    ]:
        ours, theirs = res.conv.get(framework), res.conv.get(CONV_AGAINST[framework])
        value = ours.median / theirs.median if ours and theirs else None
        check(f"lenet-like epoch / PyTorch's{order}", value, 1.0,
              worst(ours.load, theirs.load) if value else None)  # fmt: skip
    theirs = res.inference.get("torch")
    for framework, given in [("nnscratch_float", "both"), ("nnscratch", "uint8 vs")]:
        ours = res.inference.get(framework)
        check(f"predict time / PyTorch's ({given} float32 images)",
              ours / theirs if ours and theirs else None, 1.0,
              res.loads.get("inference") if ours and theirs else None)  # fmt: skip
    if res.fast is not None:
        final = res.fast.accuracy[-1] * 100 if res.fast.accuracy else None
        check("fast preset: test error (100% - accuracy)",
              None if final is None else 100 - final,
              1.0, res.fast.load, "%")  # fmt: skip
        check("fast preset: fit", res.fast.total, 60, res.fast.load, " s", 1)
    # not a target but the comparison's premise: both did the same work
    for b, theirs in res.torch.items():
        gap = abs(res.nnscratch[b].loss / theirs.loss - 1) * 100
        check(f"same work: last losses of nnscratch and PyTorch apart, batch {b}",
              gap, 1.0, None, "%")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with fashion-mnist/ (default: $NNSCRATCH_DATA_DIR)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=5,
        help="epochs per batch size (at least 3 for a median)",
    )
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument(
        "--compare-torch",
        action="store_true",
        help="also run the models in PyTorch, if it is installed",
    )
    parser.add_argument(
        "--conv",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the lenet-like conv net too (batch 128); --no-conv skips it",
    )
    parser.add_argument("--conv-epochs", type=int, default=1)
    parser.add_argument(
        "--presets",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the fast preset to the end and the cnn preset for --cnn-epochs "
        "on MNIST (from the same --data-dir); --no-presets skips them",
    )
    parser.add_argument("--cnn-epochs", type=int, default=1)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on the first N images only: a quick check that the script runs",
    )
    parser.add_argument(
        "--memory-child", choices=["nnscratch", "torch"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(
            f"--batch-sizes: expected integers like 32,128,512, got {args.batch_sizes!r}"
        )
    if (
        min(args.batch_sizes) < 1
        or min(args.epochs, args.conv_epochs, args.cnn_epochs) < 1
    ):
        parser.error(
            "--batch-sizes, --epochs, --conv-epochs and --cnn-epochs must be >= 1"
        )
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit: expected a positive number of images, got {args.limit}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.memory_child:
            print(json.dumps(memory_child(args.memory_child, args)))
            return 0
        start = time.perf_counter()
        res = run(args)
        print()
        print(report(res, args))
        print(
            f"\n(run took {time.perf_counter() - start:.0f} s; "
            f"load average at the end {os.getloadavg()[0]:.2f})"
        )
    except NnscratchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
