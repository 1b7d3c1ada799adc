"""Training batches: uint8 images scaled into float32 one batch at a time, and the
shuffled epochs `Sequential.fit` draws them from, gathered into reused memory.

Shapes: images (N, ...) uint8 or float, labels (N,) or targets (N, C); a batch is
(B, ...) float32 (uint8 input) or as given (float input).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import NnscratchError
from .kernels.elementwise import scale_pixels, take_scaled
from .workspace import aligned_empty

UINT8_SCALE = 1.0 / 255.0  # uint8 images are fed as float32 in [0, 1]


def input_buffer(x: np.ndarray, batch_size: int) -> np.ndarray | None:
    """A float32 array for `prepare_inputs` to scale batches of uint8 `x` into."""
    if x.dtype != np.uint8:
        return None
    return aligned_empty((min(batch_size, len(x)), *x.shape[1:]), np.float32)


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


def take_inputs(x: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = the uint8 images x[rows] as float32 in [0, 1], in one pass (no uint8
    copy of the rows first). Shapes: x (N, ...), rows (B,), out (B, ...) float32."""
    scale = np.float32(UINT8_SCALE)
    if x.flags.c_contiguous and out.flags.c_contiguous:
        take_scaled(x.reshape(len(x), -1), rows, scale, out.reshape(len(out), -1))
    else:  # the compiled loops walk contiguous rows
        take_scaled.numpy(x, rows, scale, out)
    return out


class EpochBatches:
    """The training batches of each epoch, gathered into memory reused across steps.

    Every epoch draws a new order; each batch's rows are then taken in that order
    straight from the training arrays into reused batch arrays, uint8 images scaled
    to float32 on the way (`kernels.elementwise.take_scaled`). No shuffled copy of
    the training set is made: that copy was 47 MB for Fashion-MNIST's uint8 images
    (188 MB as float32) and a pass over it every epoch (~8 ms).
    """

    def __init__(
        self, x, y, batch_size: int, shuffle: bool, rng: np.random.Generator,
        weights=None,
    ):  # fmt: skip
        self.x, self.y, self.weights = x, y, weights
        self.batch_size = batch_size
        self.bounds = batch_bounds(len(x), batch_size)
        self.rng = rng if shuffle else None
        self.order: np.ndarray | None = None  # this epoch's order; None: as given
        size = max(end - start for start, end in self.bounds)
        self._inputs = input_buffer(x, size)
        # a shuffled batch's rows are taken into these (uint8 images: into _inputs)
        self._rows = None
        if shuffle:
            float_x = x if self._inputs is None else None
            self._rows = [
                None if a is None else aligned_empty((size, *a.shape[1:]), a.dtype)
                for a in (float_x, y, weights)
            ]

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
        `first_step` on; x is float32 (from uint8) or as given. The batches are
        reused memory, valid until the next one.

        `start_state` keeps the shuffling generator's state from before this epoch's
        order was drawn: restored, the same order comes again (a checkpoint taken
        mid-epoch continues the epoch from it)."""
        if self.rng is not None:
            self.start_state = self.rng.bit_generator.state
            self.order = self.rng.permutation(len(self.x))
        for step, (start, end) in enumerate(self.bounds[first_step:], first_step):
            if self.order is None:
                batch = self._slices(start, end)
            else:
                batch = self._gathered(self.order[start:end])
            yield (step, start, *batch)

    def _slices(self, start: int, end: int) -> tuple:
        """The batch of rows start..end-1, in the arrays' own order."""
        wb = None if self.weights is None else self.weights[start:end]
        return prepare_inputs(self.x[start:end], self._inputs), self.y[start:end], wb

    def _gathered(self, rows: np.ndarray) -> tuple:
        """The batch of the given rows (B,), each array's taken into its buffer."""
        n = len(rows)
        x_rows, y_rows, w_rows = self._rows
        if x_rows is None:  # uint8 images: taken and scaled to float32 in one pass
            xb = take_inputs(self.x, rows, self._inputs[:n])
        else:
            xb = np.take(self.x, rows, axis=0, out=x_rows[:n], mode="clip")
        yb = np.take(self.y, rows, axis=0, out=y_rows[:n], mode="clip")
        wb = None
        if w_rows is not None:
            wb = np.take(self.weights, rows, axis=0, out=w_rows[:n], mode="clip")
        return xb, yb, wb


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch of `n` examples in order: `batch_size` each, the last
    one smaller; but a last batch of ONE example joins the one before, because batch
    norm cannot normalise a single value (and one example makes a very noisy step).
    batch_size=1 asks for single examples: n batches of one, as PyTorch gives."""
    starts = list(range(0, n, batch_size))
    if batch_size > 1 and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))
