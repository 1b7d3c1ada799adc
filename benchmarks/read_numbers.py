"""Whole-number accuracy of `read_number` (issue 22): numbers of 2 to 8 MNIST test
digits (gaps from overlapping to half a digit, half of them photographed under uneven
light) and numbers typed in the fonts found on this machine.

    python benchmarks/read_numbers.py MODEL [--count 200] [--data-dir DIR]

Prints, for each set, the share of numbers read exactly, the share with the right
count of digits, and (MNIST) the share the model reads right digit by digit from
the 28x28 originals: the ceiling set by the network, not by the segmentation.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nnscratch import load_model
from nnscratch.app.number import read_number
from nnscratch.app.predict import as_classifier
from nnscratch.data.loading import load_dataset
from nnscratch.data.numbers import compose_number, photograph

FONTS = "/usr/share/fonts/truetype/*/*.ttf"


def mnist_numbers(model, x, y, count, rng):
    exact = right_count = ceiling = 0
    for k in range(count):
        n = int(rng.integers(2, 9))
        idx = rng.choice(len(x), n, replace=False)
        gray, _ = compose_number(x[idx], rng)
        if k % 2:
            gray = photograph(gray, rng)
        truth = "".join(map(str, y[idx]))
        number = read_number(model, gray)["number"]
        exact += number == truth
        right_count += len(number) == n
        ceiling += bool((model.predict(x[idx] / 255.0).argmax(1) == y[idx]).all())
    return exact / count, right_count / count, ceiling / count


def typed_numbers(model, count, rng):
    fonts = sorted(f for f in glob.glob(FONTS) if "Mono" in f or "Sans" in f)[:12]
    fonts = [ImageFont.truetype(f, 110) for f in fonts] or [
        ImageFont.load_default(size=110)
    ]
    exact = right_count = 0
    for k in range(count):
        truth = "".join(map(str, rng.integers(0, 10, int(rng.integers(2, 9)))))
        img = Image.new("L", (80 * len(truth) + 120, 200), 250)
        ImageDraw.Draw(img).text((40, 30), truth, fill=20, font=fonts[k % len(fonts)])
        number = read_number(model, np.asarray(img, np.float32) / 255)["number"]
        exact += number == truth
        right_count += len(number) == len(truth)
    return exact / count, right_count / count, len(fonts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("NNSCRATCH_DATA_DIR"))
    args = parser.parse_args()
    model = as_classifier(load_model(args.model))
    _, (x, y) = load_dataset("mnist", args.data_dir)
    start = time.perf_counter()
    exact, counted, ceiling = mnist_numbers(
        model, x, y, args.count, np.random.default_rng(0)
    )
    print(
        f"MNIST numbers ({args.count}): read exactly {exact:.1%}, right count of digits "
        f"{counted:.1%}; every digit read right from its 28x28 original {ceiling:.1%}"
    )
    exact, counted, fonts = typed_numbers(model, args.count, np.random.default_rng(1))
    print(
        f"typed numbers ({args.count}, {fonts} fonts): read exactly {exact:.1%}, "
        f"right count of digits {counted:.1%}"
    )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
