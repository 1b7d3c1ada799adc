"""Forward/backward time of each layer of the reference CNN, and what an epoch costs.

Net: conv(1->32, 3x3, pad 1)-maxpool2-ReLU-conv(32->64, 3x3, pad 1)-maxpool2-ReLU-
dense(3136->128)-ReLU-dense(128->10), float32 (the `lenet-like` preset). Prints the
machine's float32 GEMM GFLOP/s measured in the same run for scale, the time of one
augmentation batch, and, if PyTorch happens to be installed, a cross-check of the
layers against it.

With --epoch it instead times whole training epochs on the 60,000 Fashion-MNIST
images: `model.fit` (Adam, batch 128) against the same net, with the same initial
weights, trained the same way in PyTorch on 2 threads, alternating between the two.

    python benchmarks/bench_layers.py [--batch-size 128] [--repeats 20]
    python benchmarks/bench_layers.py --epoch [--data-dir DIR] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, gemm_gflops, torch_layer_pairs, torch_twin

from nnscratch import Adam, load_dataset
from nnscratch.data.augment import Augment
from nnscratch.nn.activations import ReLU
from nnscratch.nn.conv import Conv2D
from nnscratch.nn.dense import Dense
from nnscratch.nn.normalization import BatchNorm
from nnscratch.nn.pooling import AvgPool2D, MaxPool2D
from nnscratch.nn.reshape import Flatten
from nnscratch.runs.presets import build_model, preset_settings

TRAINING_IMAGES = 60_000  # Fashion-MNIST's training set


def reference_net(rng: np.random.Generator) -> list:
    return [
        Conv2D(1, 32, 3, padding=1, rng=rng),
        MaxPool2D(2),
        ReLU(),
        Conv2D(32, 64, 3, padding=1, rng=rng),
        MaxPool2D(2),
        ReLU(),
        Flatten(),
        Dense(3136, 128, rng=rng),
        ReLU(),
        Dense(128, 10, rng=rng),
    ]


def conv_flops(layer: Conv2D, y_shape: tuple) -> int:
    """Multiply-adds x 2 of one product (forward, dW or dx are the same size)."""
    n, o, ho, wo = y_shape
    return 2 * n * ho * wo * o * layer.params["W"][0].size


def bench_net(batch_size: int, repeats: int, gflops: float) -> None:
    rng = np.random.default_rng(0)
    layers = reference_net(rng)
    layers[0].needs_input_grad = False  # as the model sets it: no dx for the images
    x = rng.random((batch_size, 1, 28, 28), dtype=np.float32)
    inputs, outputs = [], []
    for layer in layers:
        inputs.append(x)
        x = layer.forward(x, training=True)
        outputs.append(x)
    grads = [rng.standard_normal(y.shape).astype(np.float32) for y in outputs]

    print(f"\nbatch {batch_size}, float32; best of {repeats} (ms)")
    print(f"{'layer':<34}{'forward':>9}{'backward':>10}{'GFLOP/s':>9}")
    total_fwd = total_bwd = 0.0
    for layer, x, y, dy in zip(layers, inputs, outputs, grads):
        fwd = best_time(partial(layer.forward, x, training=True), repeats)
        bwd = best_time(partial(layer.backward, dy), repeats)
        total_fwd, total_bwd = total_fwd + fwd, total_bwd + bwd
        rate = ""
        if isinstance(layer, Conv2D):
            products = 2 if layer.needs_input_grad else 1
            flops = conv_flops(layer, y.shape) * (1 + products)
            rate = f"{flops / (fwd + bwd) / 1e9:9.1f}"
        name = repr(layer)[:33]
        print(f"{name:<34}{fwd * 1e3:9.2f}{bwd * 1e3:10.2f}{rate}")
    print(f"{'sum of layers':<34}{total_fwd * 1e3:9.2f}{total_bwd * 1e3:10.2f}")

    def step():
        z = inputs[0]
        for layer in layers:
            z = layer.forward(z, training=True)
        d = grads[-1]
        for layer in reversed(layers):
            d = layer.backward(d)

    step_time = best_time(step, repeats)
    steps = -(-TRAINING_IMAGES // len(inputs[0]))  # ceil: the last batch is smaller
    print(
        f"\none step's forward and backward: {step_time * 1e3:.1f} ms -> x {steps} "
        f"steps (60k images at batch {len(inputs[0])}): {steps * step_time:.1f} s, "
        "without the loss, Adam and the batches' preparation, which an epoch adds "
        f"(GEMM peak {gflops:.0f} GFLOP/s)"
    )


def bench_extras(batch_size: int, repeats: int) -> None:
    rng = np.random.default_rng(1)
    images = rng.random((batch_size, 28, 28), dtype=np.float32)
    for spec in ("default", "shift=2,rotation=10,scale=0.1,elastic=1"):
        augment = Augment.from_spec(spec)
        seconds = best_time(partial(augment, images, rng), repeats)
        print(f"Augment({spec}): {seconds * 1e6:.0f} us per batch of {batch_size}")
    bn = BatchNorm(32)
    x = rng.standard_normal((batch_size, 32, 28, 28)).astype(np.float32)
    fwd = best_time(lambda: bn.forward(x, training=True), repeats)
    bwd = best_time(lambda: bn.backward(x), repeats)
    print(
        f"BatchNorm(32) on {x.shape}: forward {fwd * 1e3:.2f} ms, backward {bwd * 1e3:.2f} ms"
    )


def torch_cross_check(batch_size: int, repeats: int) -> None:
    """Same outputs and gradients as PyTorch, if it is installed (it is optional),
    and PyTorch's time for the same training step, for scale."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("\nPyTorch not installed: cross-check skipped")
        return
    rng = np.random.default_rng(2)

    def compare(name, layer, x, torch_fn, torch_params=()):
        pairs = torch_layer_pairs(layer, x, torch_fn, torch_params, rng)
        error = max(np.abs(ours - theirs).max() for ours, theirs in pairs.values())
        print(f"{name:<40} max |difference| {error:.1e}")

    print(f"\ncross-check against PyTorch {torch.__version__} (float64)")
    x = rng.standard_normal((4, 3, 11, 9))
    for c_out, kernel, stride, padding in [(5, (3, 2), (2, 1), (1, 2)), (40, 3, 1, 1)]:
        conv = Conv2D(3, c_out, kernel, stride, padding, rng=4, dtype=np.float64)
        conv.params["b"][:] = rng.standard_normal(c_out)
        compare(
            f"Conv2D(3, {c_out}, {kernel}, {stride}, {padding})",
            conv,
            x,
            lambda t, w, b, s=stride, p=padding: F.conv2d(t, w, b, stride=s, padding=p),
            [conv.params["W"], conv.params["b"]],
        )
    ties = rng.integers(0, 3, (4, 3, 11, 9)).astype(np.float64)  # many equal maxima
    for pool, stride in [(2, None), (3, 2), (2, 1)]:
        fn = partial(F.max_pool2d, kernel_size=pool, stride=stride)
        compare(
            f"MaxPool2D({pool}, {stride}) with ties", MaxPool2D(pool, stride), ties, fn
        )
    fn = partial(F.avg_pool2d, kernel_size=3, stride=2)
    compare("AvgPool2D(3, 2)", AvgPool2D(3, 2), x, fn)
    for shape in [(6, 3), x.shape]:
        bn = BatchNorm(3, dtype=np.float64)
        bn.params["gamma"][:] = rng.random(3) + 0.5
        bn.params["beta"][:] = rng.standard_normal(3)
        mean, var = (
            torch.zeros(3, dtype=torch.float64),
            torch.ones(3, dtype=torch.float64),
        )
        compare(
            f"BatchNorm(3) training on {shape}",
            bn,
            x if len(shape) == 4 else rng.standard_normal(shape),
            lambda t, g, b, m=mean, v=var: F.batch_norm(t, m, v, g, b, training=True),
            [bn.params["gamma"], bn.params["beta"]],
        )
        error = max(
            np.abs(bn.state["running_mean"] - mean.numpy()).max(),
            np.abs(bn.state["running_var"] - var.numpy()).max(),
        )
        print(f"{'  running statistics':<40} max |difference| {error:.1e}")

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(3136, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    images = torch.rand(batch_size, 1, 28, 28)
    dy = torch.randn(batch_size, 10)

    def step():
        net.zero_grad()
        net(images).backward(dy)

    seconds = best_time(step, repeats)
    print(
        f"PyTorch, same net, one training step: {seconds * 1e3:.1f} ms "
        f"({torch.get_num_threads()} threads)"
    )


def torch_fit_epoch(net, images, labels, batch_size: int, optimizer, seed: int):
    """One epoch as `Sequential.fit` does it: shuffle a copy, then per batch scale
    the uint8 images by 1/255, forward, loss, backward, Adam step, and keep the loss
    and accuracy. Returns (seconds, loss, accuracy)."""
    import torch

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    images, labels = images[order], labels[order]
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    total, correct = 0.0, 0
    for i in range(0, len(images), batch_size):
        xb = images[i : i + batch_size].unsqueeze(1).float().mul_(1.0 / 255.0)
        yb = labels[i : i + batch_size]
        optimizer.zero_grad(set_to_none=True)
        logits = net(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)
        correct += int((logits.argmax(dim=1) == yb).sum())
    return time.perf_counter() - start, total / len(images), correct / len(images)


def torch_accuracy(net, images, labels) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                net(images[i : i + 1000].unsqueeze(1).float().mul_(1.0 / 255.0))
                for i in range(0, len(images), 1000)
            ]
        )
    return float((logits.argmax(dim=1) == labels).float().mean())


def load_text() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def bench_epoch(data_dir: str | None, batch_size: int, rounds: int) -> None:
    """Whole lenet-like training epochs on Fashion-MNIST, nnscratch and PyTorch
    alternating, each round starting both from the same fresh initial weights."""
    import torch

    torch.set_num_threads(2)
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion-mnist", data_dir)
    names = [str(i) for i in range(10)]
    images, labels = torch.from_numpy(x_train), torch.from_numpy(y_train)
    test_images, test_labels = torch.from_numpy(x_test), torch.from_numpy(y_test)
    print(
        f"lenet-like, one epoch of {len(x_train):,} Fashion-MNIST images, batch "
        f"{batch_size}, Adam lr 1e-3, float32; NumPy {np.__version__}, PyTorch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} cores"
    )
    print(f"{'round':<7}{'library':<11}{'seconds':>9}{'loss':>8}{'train acc':>11}"
          f"{'test acc':>10}   load before (1/5/15 min)")  # fmt: skip
    times: dict[str, list[float]] = {"nnscratch": [], "pytorch": []}
    for r in range(rounds):
        model = build_model(preset_settings("lenet-like"), (28, 28), names)
        net = torch_twin(model)  # copied before nnscratch trains: same start
        load = load_text()
        history = model.fit(
            x_train, y_train, epochs=1, batch_size=batch_size, optimizer=Adam(1e-3),
            seed=r, verbose=0,
        )  # fmt: skip
        h = history.history
        test = model.evaluate(x_test, y_test)["accuracy"]
        times["nnscratch"].append(h["seconds"][0])
        print(f"{r + 1:<7}{'nnscratch':<11}{h['seconds'][0]:9.1f}{h['loss'][0]:8.4f}"
              f"{h['accuracy'][0]:11.4f}{test:10.4f}   {load}")  # fmt: skip
        load = load_text()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        seconds, loss, acc = torch_fit_epoch(
            net, images, labels, batch_size, optimizer, seed=r
        )
        test = torch_accuracy(net, test_images, test_labels)
        times["pytorch"].append(seconds)
        print(f"{r + 1:<7}{'pytorch':<11}{seconds:9.1f}{loss:8.4f}{acc:11.4f}"
              f"{test:10.4f}   {load}")  # fmt: skip
    best = {name: min(values) for name, values in times.items()}
    print(
        f"best epoch: nnscratch {best['nnscratch']:.1f} s, PyTorch {best['pytorch']:.1f} s"
        f" -> nnscratch / PyTorch = {best['nnscratch'] / best['pytorch']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--epoch", action="store_true", help="time whole epochs against PyTorch"
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("NNSCRATCH_DATA_DIR"),
        help="folder with fashion-mnist/ (default: $NNSCRATCH_DATA_DIR)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="epochs of each, --epoch")
    args = parser.parse_args()
    if args.epoch:
        bench_epoch(args.data_dir, args.batch_size, args.rounds)
        return
    gflops = gemm_gflops(1024, args.repeats)
    print(f"float32 GEMM (1024^3): {gflops:.1f} GFLOP/s")
    bench_net(args.batch_size, args.repeats, gflops)
    bench_extras(args.batch_size, args.repeats)
    torch_cross_check(args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
