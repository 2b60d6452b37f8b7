"""Where and with what a scorecard was produced: versions, CPU model, features and class, host (provenance)."""

from __future__ import annotations

import socket
import sys
from functools import cache
from importlib import metadata

from evaluator.hardware import hardware_provenance


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@cache
def _software_provenance() -> dict:
    return {
        "onnxruntime_version": _version("onnxruntime"),
        "onnx_version": _version("onnx"),
        "numpy_version": _version("numpy"),
        "hostname": socket.gethostname(),
        "python_version": sys.version.split()[0],
    }


def machine_provenance() -> dict:
    """Library versions, CPU model, features, core count and hardware class, host and Python.

    The hardware part is read on each call: ``ARENA_HARDWARE_CLASS`` may be set after import."""
    return {**_software_provenance(), **hardware_provenance()}
