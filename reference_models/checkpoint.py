"""Checkpoints: a model's ``state_dict`` as ``.npz`` plus a readable ``.json`` sidecar. No pickle.

``save_checkpoint(model, "runs/cifar10_cnn", meta)`` writes ``runs/cifar10_cnn.npz`` (one array per
state entry) and ``runs/cifar10_cnn.json`` (your ``meta``, each entry's shape and dtype, and the
``.npz`` file's SHA-256 so a mismatched pair is caught). Loading uses ``np.load(allow_pickle=False)``:
a checkpoint can never run code.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "reference_models.checkpoint/1"


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """The ``.npz`` and ``.json`` files of the checkpoint at ``path`` (with or without a suffix)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    return stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")


def save_checkpoint(model, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model.state_dict()`` and ``meta`` (anything JSON can hold); return the ``.npz`` path."""
    arrays_path, sidecar_path = checkpoint_paths(path)
    arrays_path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: np.asarray(getattr(v, "data", v)) for name, v in model.state_dict().items()}
    with open(arrays_path, "wb") as handle:
        np.savez(handle, **state)
    sidecar = {
        "format": FORMAT,
        "model": type(model).__name__,
        "meta": meta or {},
        "entries": {
            name: {"shape": list(array.shape), "dtype": str(array.dtype)}
            for name, array in state.items()
        },
        "sha256": _sha256(arrays_path),
        "versions": versions(),
    }
    sidecar_path.write_text(json.dumps(sidecar, indent=2, default=_json_default) + "\n")
    return arrays_path


def load_checkpoint(model, path: str | Path) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model``; return the ``meta`` it was saved with."""
    arrays_path, sidecar_path = checkpoint_paths(path)
    if not arrays_path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {arrays_path}")
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else None
    if sidecar is not None and sidecar.get("sha256") != _sha256(arrays_path):
        raise ValueError(
            f"{arrays_path.name} does not match {sidecar_path.name} (different SHA-256): "
            "the two files come from different saves"
        )
    with np.load(arrays_path, allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {arrays_path.name} does not fit this {type(model).__name__}: "
            f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
        )
    model.load_state_dict(state)
    return sidecar["meta"] if sidecar else {}


def versions() -> dict[str, str]:
    """Versions that decide whether a run can be reproduced."""
    import onnx

    import reference_models

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "reference_models": getattr(reference_models, "__version__", "unknown"),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a checkpoint's JSON")
