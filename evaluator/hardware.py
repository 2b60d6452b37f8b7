"""The CPU features that change a model's results or speed, and the hardware class they name.

Why these features: onnxruntime picks its INT8 kernels by them. On x86 without VNNI the u8s8 kernel
sums pairs of uint8 x int8 products in saturating int16 (``vpmaddubsw``), so the same QDQ model's
logits differ from its exact semantics; with AVX-512 VNNI or AVX-VNNI the sums are exact int32; AMX
and AVX-512 change speed. On ARM the dot-product (``asimddp``) and ``i8mm`` extensions play VNNI's
part. A worker's hardware class is derived from them (unless ``ARENA_HARDWARE_CLASS`` names it), so
two workers of one class rank a track alike; the class names a Celery queue, hence [a-z0-9_-] only.

Standard library only: the scoring child imports this before anything else.
"""

from __future__ import annotations

import os
import platform
import re
from functools import cache
from pathlib import Path

__all__ = ["cpu_features", "cpu_count", "hardware_class", "cpu_model", "hardware_provenance",
           "X86_FEATURES", "ARM_FEATURES"]

X86_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
ARM_FEATURES = ("asimd", "asimddp", "i8mm")
_CLASS_CHARACTERS = re.compile(r"[^a-z0-9_-]+")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux
        return ""


def _flags(cpuinfo: str) -> set[str]:
    """The first processor's flag list (``flags`` on x86, ``Features`` on ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def features_from_cpuinfo(cpuinfo: str, machine: str | None = None) -> list[str]:
    """The sorted subset of ``X86_FEATURES`` / ``ARM_FEATURES`` that ``cpuinfo`` lists."""
    flags = _flags(cpuinfo)
    machine = (machine or platform.machine()).lower()
    known = ARM_FEATURES if machine in ("aarch64", "arm64") else X86_FEATURES
    return sorted(name for name in known if name in flags)


@cache
def cpu_features() -> list[str]:
    """This machine's result- or speed-relevant instruction-set features, sorted."""
    return features_from_cpuinfo(_cpuinfo())


def cpu_count() -> int:
    """Cores this process may run on (its affinity set), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@cache
def cpu_model() -> str | None:
    """The CPU's model name as Linux reports it (``None`` elsewhere)."""
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip() or None
    return None


def class_from_features(features: list[str], machine: str | None = None) -> str:
    """The hardware class the features name (see the module docstring for the list)."""
    machine = (machine or platform.machine()).lower()
    have = set(features)
    if machine in ("aarch64", "arm64"):
        return "aarch64-dotprod" if "asimddp" in have else "aarch64"
    if machine not in ("x86_64", "amd64"):
        return sanitize_class(machine) or "unknown"
    vnni = bool(have & {"avx512_vnni", "avx_vnni"})
    if "avx512f" in have:
        return "x86_64-avx512-vnni" if vnni else "x86_64-avx512"
    if "avx2" in have:
        return "x86_64-avx2-vnni" if vnni else "x86_64-avx2"
    return "x86_64"


def sanitize_class(name: str) -> str:
    """A configured class name reduced to the characters a Celery queue name may use here."""
    return _CLASS_CHARACTERS.sub("-", name.strip().lower()).strip("-")


def hardware_class() -> str:
    """``ARENA_HARDWARE_CLASS`` if set (sanitized), else the class derived from ``cpu_features``."""
    configured = sanitize_class(os.environ.get("ARENA_HARDWARE_CLASS", ""))
    return configured or class_from_features(cpu_features())


def hardware_provenance() -> dict:
    """The scorecard provenance entries about this machine's hardware."""
    return {
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_count": cpu_count(),
        "hardware_class": hardware_class(),
    }
