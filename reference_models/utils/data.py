"""``torch.utils.data`` for the framework: datasets whose items are tensors and a ``DataLoader``
that yields batches of tensors, with PyTorch's arguments (``sampler``, ``batch_sampler``,
``collate_fn``, ``drop_last``; ``num_workers`` and ``pin_memory`` are accepted and load in the
main process).

Datasets from ``reference_models.data`` (``TextWindows``, its ``TensorDataset``) fetch a whole
batch with one fancy index (``__getitems__``); the loader uses that instead of one Python call per
item, so the PyTorch spelling costs no speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from reference_models.random import get_generator
from reference_models.tensor import Tensor


class Dataset:
    """Subclass and implement ``__getitem__`` and ``__len__`` (``torch.utils.data.Dataset``)."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class TensorDataset(Dataset):
    """Item ``i`` is ``(t[i] for t in tensors)``; arrays are accepted and become tensors."""

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        if not self.tensors or any(len(t) != len(self.tensors[0]) for t in self.tensors):
            raise ValueError("Size mismatch between tensors")

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def _batch(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        return tuple(Tensor._wrap(t.data[indices]) for t in self.tensors)


class Subset(Dataset):
    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset]:
    """Non-overlapping random subsets of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):  # the remainder, round-robin, as PyTorch
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(x) for x in lengths]
    if sum(sizes) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = get_generator(generator).permutation(n)
    bounds = np.cumsum([0, *sizes])
    return [Subset(dataset, order[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:],
                                                                    strict=True)]


# ===================================================================== samplers
class Sampler:
    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh permutation every epoch, from ``generator`` (or the framework's generator)."""

    def __init__(self, data_source: Any, replacement: bool = False,
                 num_samples: int | None = None,
                 generator: np.random.Generator | None = None) -> None:
        self.data_source, self.replacement = data_source, replacement
        self.num_samples = len(data_source) if num_samples is None else int(num_samples)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng, n = get_generator(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        return iter(rng.permutation(n)[:self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices: Sequence[int], generator: np.random.Generator | None = None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self) -> Iterator[int]:
        order = get_generator(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups of ``batch_size`` indices from ``sampler``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer value, got {batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count = len(self.sampler)  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)


# ===================================================================== collation
def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, field by field: tensors, arrays and numbers become
    one tensor; tuples, lists and dicts keep their structure; strings become a list."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor._wrap(np.stack([t.data for t in batch]))
    if isinstance(first, np.ndarray | np.generic | int | float | bool):
        stacked = np.stack([np.asarray(x) for x in batch])  # Python floats: float64, as PyTorch
        return Tensor(stacked, dtype=stacked.dtype)
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, tuple | list):
        fields = [default_collate(list(field)) for field in zip(*batch, strict=True)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts "
                    f"or lists; found {type(first).__name__}")


def _as_tensors(fields: Any) -> Any:
    if isinstance(fields, np.ndarray):
        return Tensor(fields)
    if isinstance(fields, tuple | list):
        return type(fields)(_as_tensors(f) for f in fields)
    return fields


class DataLoader:
    """Batches of a dataset as tensors (``torch.utils.data.DataLoader``).

    ``shuffle=True`` draws a new order every epoch from ``generator`` (default: the framework's
    generator, so ``manual_seed`` fixes it). Loading happens in the main process:
    ``num_workers``, ``pin_memory``, ``persistent_workers`` and ``prefetch_factor`` are accepted
    so PyTorch programs run unchanged, and change nothing.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable[int] | None = None,
                 batch_sampler: Iterable[Sequence[int]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None,
                 generator: np.random.Generator | None = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False) -> None:
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.num_workers, self.pin_memory = num_workers, pin_memory
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        self.sampler = sampler
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self) -> Iterator[Any]:
        if self.batch_sampler is None:  # batch_size=None: single samples, as PyTorch
            for index in self.sampler:
                sample = self.dataset[index]
                yield self.collate_fn(sample) if self.collate_fn else _as_tensors(sample)
            return
        for indices in self.batch_sampler:
            yield self._fetch(np.asarray(indices, dtype=np.int64))

    def _fetch(self, indices: np.ndarray) -> Any:
        from reference_models import data as batch_data

        if self.collate_fn is None and isinstance(self.dataset, TensorDataset):
            return self.dataset._batch(indices)  # one fancy index per field
        if self.collate_fn is None and isinstance(self.dataset, batch_data.Dataset):
            return _as_tensors(self.dataset.__getitems__(indices))  # already stacked fields
        if hasattr(self.dataset, "__getitems__"):  # PyTorch's hook: a list of samples
            samples = self.dataset.__getitems__(indices.tolist())
        else:
            samples = [self.dataset[int(i)] for i in indices]
        return (self.collate_fn or default_collate)(samples)


__all__ = ["BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "default_collate", "random_split"]
