"""The one random number generator of the framework (weight init, dropout, shuffling, augmentation).

``manual_seed`` reseeds it in place, so code that holds ``default_generator`` keeps seeing the
seeded stream.
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


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator: np.random.Generator | None = None):
    """Indices drawn with probability proportional to the rows of ``input`` (weights need not
    sum to one), as ``torch.multinomial``; one row or a batch of rows."""
    from reference_models.tensor import Tensor

    weights = np.asarray(getattr(input, "data", input), dtype=np.float64)
    if weights.ndim not in (1, 2) or (weights < 0).any() or not np.isfinite(weights).all():
        raise RuntimeError("multinomial needs a 1-D or 2-D tensor of finite, non-negative weights")
    rows = weights.reshape(-1, weights.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    rng = get_generator(generator)
    out = np.empty((len(rows), num_samples), dtype=np.int64)
    for r, row in enumerate(rows):
        total = row.sum()
        if total <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        out[r] = rng.choice(len(row), num_samples, replace=replacement, p=row / total)
    return Tensor(out.reshape(*weights.shape[:-1], num_samples))
