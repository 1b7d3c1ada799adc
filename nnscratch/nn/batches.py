"""Training batches: uint8 images scaled into float32 one batch at a time, and the
shuffled epochs `Sequential.fit` draws them from, in memory reused across epochs.

Shapes: images (N, ...) uint8 or float, labels (N,) or targets (N, C); a batch is
(B, ...) float32 (uint8 input) or as given (float input).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import NnscratchError
from .kernels.elementwise import scale_pixels

UINT8_SCALE = 1.0 / 255.0  # uint8 images are fed as float32 in [0, 1]


def input_buffer(x: np.ndarray, batch_size: int) -> np.ndarray | None:
    """A float32 array for `prepare_inputs` to scale batches of uint8 `x` into."""
    if x.dtype != np.uint8:
        return None
    return np.empty((min(batch_size, len(x)), *x.shape[1:]), dtype=np.float32)


def prepare_inputs(x: np.ndarray, buffer: np.ndarray | None = None) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float arrays as given.

    `buffer`: an array from `input_buffer`, reused instead of a new array per batch;
    the result is its first len(x) rows.
    """
    if x.dtype == np.uint8:
        out = np.empty(x.shape, np.float32) if buffer is None else buffer[: len(x)]
        scale = np.float32(UINT8_SCALE)
        if x.flags.c_contiguous and out.flags.c_contiguous:
            scale_pixels(x, scale, out)
        else:  # the compiled loops walk contiguous arrays
            scale_pixels.numpy(x, scale, out)
        return out
    if not np.issubdtype(x.dtype, np.floating):
        raise NnscratchError(
            f"x: expected uint8 images or a float array, got {x.dtype}"
        )
    return x


class EpochBatches:
    """The training batches of each epoch, from memory reused across epochs and steps.

    Every epoch copies the training set, in a new shuffled order, into the same buffers
    (uint8 stays uint8: 47 MB for Fashion-MNIST); every batch is scaled to float32 into
    one reused array. Fresh arrays would cost page faults: a new 47 MB copy per epoch
    took up to 0.2 s, a third of an epoch at batch 128, against ~5 ms into old memory.
    """

    def __init__(
        self, x, y, batch_size: int, shuffle: bool, rng: np.random.Generator,
        weights=None,
    ):  # fmt: skip
        self.x, self.y, self.weights = x, y, weights
        self.bounds = batch_bounds(len(x), batch_size)
        self.rng = rng if shuffle else None
        arrays = (x, y) if weights is None else (x, y, weights)
        self._shuffled = [np.empty_like(a) for a in arrays] if shuffle else arrays
        self._inputs = input_buffer(x, max(end - start for start, end in self.bounds))

    @property
    def steps(self) -> int:
        return len(self.bounds)

    def digest(self) -> str:
        """A fingerprint of the training arrays (a checkpoint tells other data by it)."""
        if getattr(self, "_digest", None) is None:
            h = hashlib.blake2b(digest_size=16)
            for array in (self.x, self.y, self.weights):
                if array is not None:
                    h.update(f"{array.dtype.str}{array.shape}".encode())
                    h.update(np.ascontiguousarray(array).data)
            self._digest = h.hexdigest()
        return self._digest

    def epoch(self, first_step: int = 0):
        """Yield (step, first index, x batch, y batch, weights batch or None) from
        `first_step` on; x is float32, valid until the next batch.

        `start_state` keeps the shuffling generator's state from before this epoch's
        order was drawn: restored, the same order comes again (a checkpoint taken
        mid-epoch continues the epoch from it)."""
        if self.rng is not None:
            self.start_state = self.rng.bit_generator.state
            order = self.rng.permutation(len(self.x))
            originals = (self.x, self.y, self.weights)
            for original, shuffled in zip(originals, self._shuffled):
                # mode="clip": the default "raise" writes to a temporary copy first
                np.take(original, order, axis=0, out=shuffled, mode="clip")
        x, y, *weights = self._shuffled
        for step, (start, end) in enumerate(self.bounds[first_step:], first_step):
            wb = weights[0][start:end] if weights else None
            yield (
                step,
                start,
                prepare_inputs(x[start:end], self._inputs),
                y[start:end],
                wb,
            )


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch of `n` examples in order: `batch_size` each, the last
    one smaller; but a last batch of ONE example joins the one before, because batch
    norm cannot normalise a single value (and one example makes a very noisy step)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))
