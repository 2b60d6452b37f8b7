"""Run independent chunks of a convolution on several cores, each with single-threaded BLAS.

OpenBLAS parallelizes one matrix product by splitting it across its threads, which synchronize
at every call. For the many medium-sized products of a chunked convolution that costs more than
it gains, and when the machine is busy (other processes on the same cores) the waiting threads
make one product up to ten times slower. Instead, each of our worker threads runs whole chunks
(im2col copy + product) with OpenBLAS restricted to its own thread through
``openblas_set_num_threads_local``; numpy releases the GIL in both, so the chunks really run in
parallel. As many workers as OpenBLAS has threads (``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``
before numpy is imported; all cores by default).

Where numpy's BLAS is not OpenBLAS, or is too old to set a thread-local count, chunks run one
after another in the calling thread, which is always correct.

``single_threaded_blas()`` is the same restriction for a whole block of code: the training loops of
models whose products are small (an MLP, a small GPT) and generation run inside it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_workers: int | None = None


def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library numpy loaded, found among this process's mapped files."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:  # not Linux
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_thread_count(lib: ctypes.CDLL) -> int:
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                 "openblas_get_num_threads"):
        if hasattr(lib, name):
            return int(getattr(lib, name)())
    return 1


def workers() -> int:
    """How many chunks run at once (1: no pool)."""
    global _pool, _workers
    if _workers is None:
        import numpy  # noqa: F401 - make sure numpy's BLAS is loaded before looking for it

        lib = _openblas()
        count = _blas_thread_count(lib) if lib is not None else 1
        if lib is None or not hasattr(lib, "openblas_set_num_threads_local") or count < 2:
            _workers = 1
        else:
            set_local = lib.openblas_set_num_threads_local
            _pool = ThreadPoolExecutor(count, thread_name_prefix="reference-models",
                                       initializer=lambda: set_local(1))
            _workers = count
    return _workers


def _forget_pool_after_fork() -> None:
    """Threads do not survive fork(): a child (e.g. a data-loading worker) starts its own pool."""
    global _pool, _workers
    _pool, _workers = None, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def map_chunks(fn: Callable[[T], R], chunks: Iterable[T]) -> list[R]:
    """``[fn(c) for c in chunks]``, in parallel when there are cores for it."""
    chunks = list(chunks)
    if len(chunks) < 2 or workers() < 2:
        return [fn(chunk) for chunk in chunks]
    return list(_pool.map(fn, chunks))


PARALLEL_MIN_BYTES = 4 << 20  # below this, dispatching to threads costs more than it saves


def split_rows(n_rows: int, nbytes: int) -> list[slice]:
    """Blocks of rows (axis 0), one per worker for arrays big enough to be worth splitting.

    Memory-bound passes (batch norm, ReLU) over such blocks run on all cores at once: numpy
    releases the GIL inside each ufunc.
    """
    parts = workers() if nbytes >= PARALLEL_MIN_BYTES and n_rows > 1 else 1
    step = -(-n_rows // parts)
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run this thread's matrix products on one OpenBLAS thread, then restore the count.

    A small GPT's products (768 x 128 x 384 for the baseline, 1 x 128 x 384 when decoding) are too
    small to share between threads: the threads synchronize at every product, and when other
    processes share the cores the waiting makes each product several times slower (one training
    step of the baseline: 0.27 s on one thread, 1.6 s on two, on a busy 2-core machine). Does
    nothing where numpy's BLAS is not an OpenBLAS with thread-local counts.
    """
    lib = _openblas()
    set_local = getattr(lib, "openblas_set_num_threads_local", None) if lib is not None else None
    previous = set_local(1) if set_local is not None else None
    try:
        yield
    finally:
        if set_local is not None:
            set_local(previous)
