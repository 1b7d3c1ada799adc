"""Which twin of each kernel runs: the NumPy formula or its numba-compiled loops.

The one place the choice is made. `NNSCRATCH_KERNELS=numpy` in the environment, or
`use("numpy")`, runs every kernel on its NumPy twin; the default, "numba", runs the
compiled loops. numba is imported (~0.2 s) and a kernel compiled only when a kernel
first runs, never by `import nnscratch`; compiled code is cached on disk
(`cache=True`: next to the module, in `__pycache__`), so later processes load it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ...errors import NnscratchError

BACKENDS = ("numba", "numpy")
ENVIRONMENT_VARIABLE = "NNSCRATCH_KERNELS"

_backend: str | None = None  # None: not chosen yet (read from the environment)
_kernels: list[Kernel] = []
_compile_seconds = 0.0  # spent compiling kernels (not loading them from the cache)


def use(name: str) -> None:
    """Run every kernel on its "numba" twin (the default) or its "numpy" twin."""
    global _backend
    _backend = _check(name, "kernels")


@contextmanager
def using(name: str) -> Iterator[None]:
    """`use(name)` inside the block, then the twin chosen before it again."""
    before = backend()
    use(name)
    try:
        yield
    finally:
        use(before)


def backend() -> str:
    """The twin kernels run on now: "numba" or "numpy"."""
    if _backend is None:
        use_from_environment()
    return _backend


def use_from_environment() -> None:
    """Choose by NNSCRATCH_KERNELS (unset or empty: "numba")."""
    global _backend
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() or "numba"
    _backend = _check(value, ENVIRONMENT_VARIABLE)


def _check(name, what: str) -> str:
    if name not in BACKENDS:
        raise NnscratchError(
            f"{what}: expected one of {', '.join(BACKENDS)}, got {name!r}"
        )
    return name


class Kernel:
    """One computation, twice: `numpy` (the formula, in NumPy) and `loops` (the same
    arithmetic in plain loops, compiled by numba on the first call). Calling the kernel
    runs the twin `backend()` names; both take the same arguments and write the same
    results (the compiled one may skip scratch arrays only NumPy needs).

    Usage: `name = Kernel(numpy_function)`, then `@name.compiled` on the loops.
    `sums=True` lets the compiler reorder the additions of the loops' sums, which it
    then runs 8 or 16 at a time in vector registers (2.5x faster for batch norm's
    statistics): the order is fixed by the compiled code, so a run repeats exactly on
    the same machine, as with BLAS. No kernel runs on several threads: Adam's step
    with numba's prange on 2 cores made an MLP training step at batch 32 ten times
    slower beside OpenBLAS's two threads (they fight for the cores), and with OpenBLAS
    on one thread the whole step was still slower than serial Adam with OpenBLAS on
    two; a sum split over threads could also change order from run to run.
    """

    def __init__(self, numpy_twin: Callable, sums: bool = False):
        self.numpy = numpy_twin
        self.loops: Callable | None = None
        self.sums = sums
        self._compiled: Callable | None = None
        self.__name__, self.__doc__ = numpy_twin.__name__, numpy_twin.__doc__
        _kernels.append(self)

    def compiled(self, loops: Callable) -> Kernel:
        """Decorator: `loops` is this kernel's numba twin."""
        self.loops = loops
        return self

    def __call__(self, *args):
        if (_backend or backend()) == "numpy":
            return self.numpy(*args)
        if self._compiled is None:
            return self._first_call(args)
        return self._compiled(*args)

    def _first_call(self, args):
        """Compile (or load from numba's cache) and run; count the seconds if it
        compiled (see `compile_seconds`)."""
        global _compile_seconds
        started = time.perf_counter()
        result = self.numba(*args)
        if self._compiled.stats.cache_misses:
            _compile_seconds += time.perf_counter() - started
        return result

    @property
    def numba(self) -> Callable:
        """The compiled twin (compiled now if it is not yet)."""
        return self._compiled or self._compile()

    def _compile(self) -> Callable:
        import numba  # here only: importing nnscratch must not import it

        # error_model="numpy": x / 0 is inf or nan as in NumPy, not an exception;
        # no other fastmath: the loops round as the NumPy passes they mirror
        self._compiled = numba.njit(
            cache=True,
            nogil=True,
            error_model="numpy",
            fastmath={"reassoc"} if self.sums else False,
        )(self.loops)
        return self._compiled

    def __repr__(self) -> str:
        return f"Kernel({self.__name__})"


def compile_seconds() -> float:
    """Seconds this process spent compiling kernels on their first calls, rather
    than loading them from numba's cache (a one-off per machine and version)."""
    return _compile_seconds


def kernels() -> list[Kernel]:
    """Every kernel defined so far (the tests compile and compare them all)."""
    return list(_kernels)
