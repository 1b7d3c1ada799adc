"""The speed tricks: loops NumPy cannot fuse, and reductions it runs slowly.

- `dispatch`: which twin runs (`use("numpy")` or NNSCRATCH_KERNELS=numpy; numba by
  default) and the `Kernel`, which pairs a NumPy function with its compiled loops;
- `optimizer_steps`: SGD, RMSprop and Adam in one pass over the parameters;
- `elementwise`: ReLU forward and backward (with Dense's bias), softmax
  cross-entropy on labels, uint8 pixels scaled to floats;
- `pooling`: max and average pooling, forward and backward;
- `columns`: im2col and col2im of a stride-1 "same" convolution;
- `normalization`: batch norm's statistics, scale and shift, and gradient;
- `norm_pool`: batch norm then 2x2 max pooling (and ReLU), one pass each way;
- `sampling`: images warped through an affine map by bilinear sampling (the
  augmentation of `nnscratch.data.augment`);
- `reductions`: sums as products with ones, row maxima, ReLU against zeros (NumPy
  and BLAS only, no compiled twin).

Each trick states its measured figure once, in its module; the layers just call it.
"""

from .dispatch import (
    BACKENDS,
    Kernel,
    backend,
    compile_seconds,
    kernels,
    use,
    using,
)
from .reductions import (
    channel_dot,
    channel_sum,
    column_sum,
    ones,
    row_max,
    row_sum,
    zeros,
)

__all__ = [
    "BACKENDS",
    "Kernel",
    "backend",
    "channel_dot",
    "channel_sum",
    "column_sum",
    "compile_seconds",
    "kernels",
    "ones",
    "row_max",
    "row_sum",
    "use",
    "using",
    "zeros",
]
