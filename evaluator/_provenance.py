"""Where and with what a scorecard was produced: versions, CPU model and host (provenance)."""

from __future__ import annotations

import socket
import sys
from functools import cache
from importlib import metadata
from pathlib import Path


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    """The CPU's model name as Linux reports it (``None`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


@cache
def machine_provenance() -> dict:
    """Library versions, CPU model, host name and Python version of this machine."""
    return {
        "onnxruntime_version": _version("onnxruntime"),
        "onnx_version": _version("onnx"),
        "numpy_version": _version("numpy"),
        "cpu_model": cpu_model(),
        "hostname": socket.gethostname(),
        "python_version": sys.version.split()[0],
    }
