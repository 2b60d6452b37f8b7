"""The one random number generator of the framework (weight init, dropout, shuffling, augmentation).

``manual_seed`` reseeds it in place, so code that holds ``default_generator`` keeps seeing the
seeded stream. Numpy only: ``tensor`` builds its random tensors (``randn``, ``multinomial``...) on
this module, never the other way round.
"""

from __future__ import annotations

import numpy as np

default_generator: np.random.Generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator; every run with the same seed draws the same numbers."""
    default_generator.bit_generator.state = np.random.PCG64(int(seed)).state
    return default_generator


def get_generator(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator`` if given, else the global one (the ``generator=`` argument of PyTorch APIs)."""
    return default_generator if generator is None else generator


def seed() -> int:
    """Reseed from fresh entropy and return the seed (``torch.seed``)."""
    value = int(np.random.SeedSequence().entropy % 2**63)
    manual_seed(value)
    return value

