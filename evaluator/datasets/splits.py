"""The public/private halves of each hidden set, chosen once with a fixed seed (SPEC §2).

The permutation orders indices by the SHA-256 of ``"<seed>:<index>"``, so it is the same on every
machine and with every numpy version (numpy does not promise a stable random stream).
"""

from __future__ import annotations

import hashlib

import numpy as np

# Changing this seed reshuffles every leaderboard's public/private halves: never change it.
SPLIT_SEED = 20260522

# Tiny Shakespeare's hidden text is cut into this many contiguous segments; half go to each split.
TEXT_SEGMENTS = 16


def seeded_permutation(n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """A permutation of ``range(n)`` fixed by ``seed`` alone."""
    keys = [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n)]
    return np.array(sorted(range(n), key=keys.__getitem__), dtype=np.int64)


def image_split_indices(n: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Test-set indices of each half: the first half of the seeded permutation is public, the
    second private (each half keeps the permutation's order)."""
    order = seeded_permutation(n, seed)
    return {"public": order[: n // 2], "private": order[n // 2 :]}


def text_segment_bounds(length: int, count: int = TEXT_SEGMENTS) -> np.ndarray:
    """``[count, 2]`` (start, end) of equal contiguous segments; the last takes the remainder."""
    if length < count:
        raise ValueError(f"the hidden text has {length} characters, fewer than {count} segments")
    size = length // count
    starts = np.arange(count, dtype=np.int64) * size
    ends = np.append(starts[1:], length)
    return np.stack([starts, ends], axis=1)


def text_split_segments(count: int = TEXT_SEGMENTS, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Which segments form each half, in text order: the seeded permutation's first half is public."""
    order = seeded_permutation(count, seed)
    return {"public": np.sort(order[: count // 2]), "private": np.sort(order[count // 2 :])}


def indices_sha256(indices: np.ndarray) -> str:
    """SHA-256 of indices as little-endian int64: what the manifest records for each split."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()
