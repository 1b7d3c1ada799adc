"""One seed for everything random: `set_seed(s)` makes weight initialisation,
shuffling, dropout and augmentation repeat exactly.

Every random draw in nnscratch comes from an `np.random.Generator` (never NumPy's
global state). A layer or `fit` given no seed of its own asks `new_rng()`: after
`set_seed(s)` that is the next child of one seeded stream, so the same program draws
the same numbers in the same order; without `set_seed`, fresh entropy from the OS.
"""

from __future__ import annotations

import numpy as np

from ..errors import check_int

_stream: np.random.SeedSequence | None = None


def set_seed(seed: int) -> None:
    """Make every later draw that is given no seed of its own reproducible."""
    global _stream
    _stream = np.random.SeedSequence(check_int("seed", seed, 0))


def new_rng(seed=None) -> np.random.Generator:
    """A generator: from `seed` (an int, a SeedSequence or a Generator, used as
    given), else the next one of `set_seed`'s stream, else seeded by the OS."""
    if seed is None and _stream is not None:
        (seed,) = _stream.spawn(1)
    return np.random.default_rng(seed)


def new_seed() -> int | None:
    """An int seed drawn from `set_seed`'s stream, or None if no seed was set
    (for `fit(seed=None)`, so that its History can record what it used)."""
    if _stream is None:
        return None
    return int(new_rng().integers(2**63))
