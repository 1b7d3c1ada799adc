"""The speed tricks: loops NumPy cannot fuse, and reductions it runs slowly.

- `dispatch`: which twin runs (`use("numpy")` or NNSCRATCH_KERNELS=numpy; numba by
  default), the `Kernel` that pairs a NumPy function with its compiled loops;
- `reductions`: sums as products with ones, row maxima, ReLU against zeros (NumPy
  and BLAS only);
- `optimizer_steps`: SGD, RMSprop and Adam in one pass over the parameters.

Each trick states its measured figure once, in its module; the layers just call it.
"""

from .dispatch import BACKENDS, Kernel, backend, kernels, use
from .reductions import (
    channel_dot,
    channel_sum,
    column_sum,
    ones,
    relu,
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
    "kernels",
    "ones",
    "relu",
    "row_max",
    "row_sum",
    "use",
    "zeros",
]
