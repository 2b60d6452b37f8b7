"""Data: datasets, a batching loader, batch-wise augmentation and the tasks' public training data.

Everything here works on whole batches of numpy arrays, because per-image Python loops would cost
more than the model itself. A loader yields ``(inputs, targets)`` tuples of numpy arrays; models
accept them directly (or wrap them in ``Tensor``).

The tasks' data come from the evaluator's own readers (``evaluator.datasets``), so a student trains
on exactly the bytes the scorer was built from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

# Examples held out of each task's public training data for validation (characters for tinygpt).
# The hold-out is drawn with its own fixed seed, so it never depends on a run's training seed.
VALIDATION_SIZE = {"mnist": 5_000, "cifar10": 5_000, "tinygpt": 100_000}
_HOLDOUT_SEED = 20_240_601


class Dataset:
    """A sized collection of examples: subclass and implement ``__len__`` and ``__getitem__``.

    ``__getitems__(indices)`` fetches a whole batch at once (PyTorch's name for the same hook); the
    default stacks single items, subclasses backed by arrays override it with one fancy index.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        raise NotImplementedError

    def __getitems__(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        items = [self[int(i)] for i in indices]
        if not isinstance(items[0], tuple):
            return (np.stack([np.asarray(item) for item in items]),)
        return tuple(np.stack([np.asarray(field) for field in fields]) for fields in zip(*items, strict=True))


class TensorDataset(Dataset):
    """Examples held in arrays of equal length: item ``i`` is ``(a[i], b[i], ...)``."""

    def __init__(self, *arrays) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_array(array) for array in arrays)
        lengths = {len(array) for array in self.arrays}
        if len(lengths) != 1:
            shown = ", ".join(str(len(array)) for array in self.arrays)
            raise ValueError(f"TensorDataset arrays must have the same length, got {shown}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        return tuple(array[index] for array in self.arrays)

    def __getitems__(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(array[indices] for array in self.arrays)


class TextWindows(Dataset):
    """Next-token training windows over one long sequence of token ids (for ``tinygpt``).

    Item ``i`` is ``(ids[s:s+context], ids[s+1:s+context+1])`` with ``s = i * stride``: the inputs
    and, shifted by one, the token that follows each position.
    """

    def __init__(self, ids: np.ndarray, context: int, stride: int | None = None) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.context = int(context)
        self.stride = int(stride or context)
        if self.context < 1 or self.stride < 1:
            raise ValueError("context and stride must be positive")
        if len(self.ids) < self.context + 1:
            raise ValueError(
                f"a text of {len(self.ids)} tokens is too short for windows of {self.context}"
            )

    def __len__(self) -> int:
        return (len(self.ids) - self.context - 1) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.__getitems__(np.array([index]))
        return x[0], y[0]

    def __getitems__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(indices, dtype=np.int64) * self.stride
        positions = starts[:, None] + np.arange(self.context + 1)
        windows = self.ids[positions]
        return windows[:, :-1], windows[:, 1:]


class DataLoader:
    """Batches of a dataset, optionally shuffled (seeded) and augmented.

    Mirrors ``torch.utils.data.DataLoader``'s names. ``seed`` fixes the shuffling and the random
    augmentation of every epoch: two loaders with the same seed yield the same batches in the same
    order (without ``seed``, ``manual_seed`` decides). ``transform`` is applied to the inputs (the
    first field) of each whole batch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Callable | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        # Without a seed, draw one from the framework's generator, so manual_seed() fixes it too.
        self.generator = np.random.default_rng(_seed_or_draw(seed))

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        count = len(self.dataset)
        order = self.generator.permutation(count) if self.shuffle else np.arange(count)
        for batch in range(len(self)):
            indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            fields = self.dataset.__getitems__(indices)
            if self.transform is not None:
                fields = (_apply(self.transform, fields[0], self.generator), *fields[1:])
            yield fields


# --- augmentation: every transform takes and returns a whole NCHW batch -------------------------


class Compose:
    """Apply transforms one after another (``torchvision.transforms.Compose``)."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, batch: np.ndarray, generator: np.random.Generator | None = None):
        for transform in self.transforms:
            batch = _apply(transform, batch, generator)
        return batch


class RandomCrop:
    """Pad each image by ``padding`` zeros on every side, then cut a random ``size`` window.

    One gather over a strided view of the padded batch: every image gets its own offset without a
    Python loop.
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, seed: int | None = None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)
        self.generator = np.random.default_rng(_seed_or_draw(seed))

    def __call__(self, batch: np.ndarray, generator: np.random.Generator | None = None):
        generator = generator or self.generator
        batch = np.asarray(batch)
        _require_nchw(batch, "RandomCrop")
        p = self.padding
        padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p))) if p else batch
        height, width = self.size
        free_rows, free_cols = padded.shape[2] - height, padded.shape[3] - width
        if free_rows < 0 or free_cols < 0:
            raise ValueError(
                f"RandomCrop of {height}x{width} does not fit images of "
                f"{batch.shape[2]}x{batch.shape[3]} padded by {p}"
            )
        count = len(batch)
        top = generator.integers(0, free_rows + 1, size=count)
        left = generator.integers(0, free_cols + 1, size=count)
        # windows[n, c, i, j] is the height x width window whose top-left corner is (i, j)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(2, 3))
        return windows[np.arange(count), :, top, left]


class RandomHorizontalFlip:
    """Mirror each image left to right with probability ``p``."""

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        self.p = float(p)
        self.generator = np.random.default_rng(_seed_or_draw(seed))

    def __call__(self, batch: np.ndarray, generator: np.random.Generator | None = None):
        generator = generator or self.generator
        batch = np.asarray(batch)
        _require_nchw(batch, "RandomHorizontalFlip")
        flip = generator.random(len(batch)) < self.p
        out = batch.copy()
        out[flip] = batch[flip, :, :, ::-1]
        return out


class ToModelInput:
    """Turn a uint8 batch into exactly what the task's scorer feeds a model (float32, pixel/255)."""

    def __init__(self, task: str) -> None:
        self.task = task

    def __call__(self, batch: np.ndarray, generator: np.random.Generator | None = None):
        from evaluator.datasets import as_model_input

        return as_model_input(self.task, batch)


def _apply(transform: Callable, batch: np.ndarray, generator: np.random.Generator | None):
    """Call a transform, passing the loader's generator to ours (plain functions take a batch)."""
    if isinstance(transform, (Compose, RandomCrop, RandomHorizontalFlip, ToModelInput)):
        return transform(batch, generator)
    return transform(batch)


def _seed_or_draw(seed: int | None) -> int:
    from reference_models.random import default_generator

    return int(seed) if seed is not None else int(default_generator.integers(2**63))


def _require_nchw(batch: np.ndarray, name: str) -> None:
    if batch.ndim != 4:
        raise ValueError(f"{name} works on a batch of images [N, C, H, W], got shape {batch.shape}")


def _as_array(value) -> np.ndarray:
    data = getattr(value, "data", value)  # accept a framework Tensor as well as an array
    return np.asarray(data)


# --- the tasks' public training data ------------------------------------------------------------


def load_task_data(
    task: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    validation_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A task's public training data, read by the evaluator's readers.

    ``split``: ``"train"`` is the public training data minus a fixed hold-out of
    ``validation_size`` examples (default ``VALIDATION_SIZE[task]``; pass 0 to train on all of it),
    ``"validation"`` is that hold-out. Images come back as ``(uint8 [N,C,H,W], int64 [N])``;
    ``tinygpt`` as ``(int64 token ids, None)`` (the hold-out is the end of the text).
    """
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    from evaluator.datasets import load_train
    from evaluator.tasks import get_task

    spec = get_task(task)
    size = VALIDATION_SIZE[spec.name] if validation_size is None else int(validation_size)
    if split == "validation" and size <= 0:
        raise ValueError("there is no validation split when validation_size is 0")
    inputs, labels = load_train(spec.name, data_dir)
    if size == 0:
        return inputs, labels
    if size >= len(inputs):
        raise ValueError(
            f"validation_size {size} leaves no training data ({len(inputs)} examples in {task})"
        )
    if spec.is_language_model:
        cut = len(inputs) - size
        return (inputs[:cut] if split == "train" else inputs[cut:]), None
    order = np.random.default_rng(_HOLDOUT_SEED).permutation(len(inputs))
    chosen = np.sort(order[size:] if split == "train" else order[:size])
    return inputs[chosen], labels[chosen]
