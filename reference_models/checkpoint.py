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


# ===================================================================== torch.save / torch.load
# ``save(obj, f)`` stores nested dicts, lists and tuples of tensors, arrays, numbers, strings and
# None (a model's or optimizer's state_dict, a training checkpoint dict) in one .npz archive: the
# arrays as numpy entries, the structure as JSON. ``load`` reads it with allow_pickle=False, so
# unlike a pickle it can never run code.
_STRUCTURE = "__structure__"


def save(obj: Any, f: str | Path | Any) -> None:
    """``torch.save`` for state: ``save({"model": m.state_dict(), "epoch": 3}, "ckpt.pt")``."""
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, arrays)
    arrays[_STRUCTURE] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    if isinstance(f, str | Path):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        with open(f, "wb") as handle:  # our own handle: np.savez would append ".npz"
            np.savez(handle, **arrays)
    else:
        np.savez(f, **arrays)


def load(f: str | Path | Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
    """``torch.load`` of what ``save`` wrote; tensors come back as tensors, on the CPU."""
    if map_location is not None and str(map_location).split(":")[0] != "cpu" and not callable(
            map_location) and not isinstance(map_location, dict):
        raise RuntimeError(f"map_location={map_location!r}: reference_models runs on the CPU only")
    try:
        archive = np.load(f, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{f} is not a file written by reference_models.save (a PyTorch pickle "
                         "cannot be read: it could run code)") from error
    with archive:
        if _STRUCTURE not in archive.files:
            raise ValueError(f"{f} is a .npz file but was not written by reference_models.save")
        structure = json.loads(archive[_STRUCTURE].tobytes().decode())
        return _decode(structure, archive)


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    from reference_models.tensor import Tensor

    if isinstance(obj, Tensor | np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(getattr(obj, "data", obj))
        return {"tensor" if isinstance(obj, Tensor) else "array": key}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple | list):
        return {type(obj).__name__: [_encode(v, arrays) for v in obj]}
    hint = " (save model.state_dict() and build the model in code)" if hasattr(
        obj, "state_dict") else ""
    raise TypeError(f"save stores tensors, arrays, numbers, strings and dicts/lists/tuples of "
                    f"them, without pickle; got {type(obj).__name__}{hint}")


def _decode(node: Any, archive: Any) -> Any:
    from reference_models.tensor import Tensor

    (kind, value), = node.items()
    if kind == "value":
        return value
    if kind == "tensor":
        return Tensor(archive[value], dtype=archive[value].dtype)
    if kind == "array":
        return archive[value]
    if kind == "dict":
        return {_decode(k, archive): _decode(v, archive) for k, v in value}
    items = [_decode(v, archive) for v in value]
    return tuple(items) if kind == "tuple" else items
