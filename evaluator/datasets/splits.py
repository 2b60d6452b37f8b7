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


# The fixed sample of the public training data every scored model is measured on: the first
# TRAIN_SAMPLE_IMAGES of a seeded permutation of the training images, or, for the language model,
# TRAIN_SAMPLE_SEGMENTS contiguous pieces of TRAIN_SAMPLE_CHARS characters spread evenly over the
# first TRAIN_TEXT_FRACTION of the training text (the recipes hold the end of the text out for
# validation, so it is not training data for them).
TRAIN_SAMPLE_SEED = 20261202
TRAIN_SAMPLE_IMAGES = 10000
TRAIN_SAMPLE_SEGMENTS = 16
TRAIN_SAMPLE_CHARS = 2048
TRAIN_TEXT_FRACTION = 0.85


def image_sample_indices(train_count: int, size: int = TRAIN_SAMPLE_IMAGES) -> np.ndarray:
    """Training-image indices of the fixed sample (sorted, so a memory map reads them in order)."""
    size = min(size, train_count)
    return np.sort(seeded_permutation(train_count, TRAIN_SAMPLE_SEED)[:size])


def text_sample_bounds(train_length: int, segments: int = TRAIN_SAMPLE_SEGMENTS,
                       chars: int = TRAIN_SAMPLE_CHARS) -> np.ndarray:
    """``[segments, 2]`` (start, end) of the training-text sample: equal pieces, evenly spaced."""
    usable = int(train_length * TRAIN_TEXT_FRACTION)
    chars = min(chars, max(1, usable // segments))
    starts = (np.arange(segments, dtype=np.int64) * (usable - chars)) // max(1, segments - 1)
    return np.stack([starts, starts + chars], axis=1)
