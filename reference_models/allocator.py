"""Keep freed memory in the process so big arrays are reused instead of re-faulted from the kernel.

A training step allocates and frees the same few hundred megabytes every time (im2col columns,
activations, gradients). glibc hands allocations above 32 MB straight back to the kernel when they
are freed, so the next step pays for fresh zeroed pages again: about 20% of a CNN step went to
page faults. Raising glibc's mmap and trim thresholds makes freed blocks stay in the heap for
reuse, which is what PyTorch's caching allocator achieves for its own tensors. The cost is that
the process keeps its peak memory until it exits.

Applied once when ``reference_models`` is imported, on Linux with glibc only; set the environment
variable ``REFERENCE_MODELS_KEEP_MEMORY=0`` to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Tune glibc malloc to recycle large blocks; True if it was applied."""
    if not sys.platform.startswith("linux") or os.environ.get(
            "REFERENCE_MODELS_KEEP_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
                and mallopt(_M_TOP_PAD, 64 << 20))
