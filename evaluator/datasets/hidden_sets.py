"""Imported hidden sets: an instructor's own test set for a task, under a name, scored in place of
the task's standard (public) test set.

``python -m evaluator datasets import --name NAME --task TASK --from PATH`` reads it in a format
the evaluator already reads and prepares it like a standard set: ``<data_dir>/<NAME>/`` holds the
hidden set only (``test_*``, the public and private halves chosen with ``SPLIT_SEED``), and the
manifest's ``sets`` section records its task, its SHA-256, its counts, its source files' SHA-256
and whether it is public. An imported set is *not* public unless ``public=True``: its labels are
the instructor's alone, so it is what a graded competition is scored on (docs/instructors.md).

Formats (``fmt``; ``auto`` picks by what ``source`` is):

- ``folder``: images as ``<class>/<file>.png|jpg`` (or ``test/<class>/<file>``), in a folder or a
  tarball; the class folders are the task's classes (``0`` .. ``9`` for MNIST, CIFAR-10's names);
- ``idx``: an IDX image file (``[N,28,28]`` for MNIST, ``[N,3,32,32]`` for CIFAR-10) and an IDX
  labels file (``labels``);
- ``cifar``: CIFAR-10 binary records (one ``.bin`` file, or a folder of them);
- ``text``: a UTF-8 text (``tinygpt``): the whole text is the hidden set, in the task's vocabulary.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from evaluator.datasets.errors import DatasetFormatError, DatasetSourceMissing
from evaluator.datasets.readers import (
    cifar_records,
    encode_text,
    read_idx,
    read_image_folder,
    read_text,
)
from evaluator.datasets.splits import (
    image_split_indices,
    indices_sha256,
    text_segment_bounds,
    text_split_segments,
)
from evaluator.datasets.store import (
    check_hidden_set_name,
    check_images,
    commit,
    file_sha256,
    hidden_set_entry,
    resolve_data_dir,
)
from evaluator.tasks import CIFAR10_CLASSES, get_task

FORMATS = ("auto", "folder", "idx", "cifar", "text")
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Fewest items a hidden set may hold: each half needs enough to rank anyone by.
MIN_IMAGES = 20
MIN_CHARACTERS = 16 * 64


def task_classes(task: str) -> tuple[str, ...]:
    """The class folder names of an image task, in label order."""
    return CIFAR10_CLASSES if task == "cifar10" else tuple(str(i) for i in range(10))


def detect_format(task: str, source: Path) -> str:
    """The format of ``source`` for ``task`` (see the module docstring)."""
    if get_task(task).is_language_model:
        return "text"
    if source.is_dir():
        return "cifar" if any(source.rglob("*.bin")) else "folder"
    name = source.name.lower()
    if name.endswith(TARBALL_SUFFIXES):
        return "folder"
    if name.endswith(".bin"):
        return "cifar"
    return "idx"


def _read_cifar_records(source: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(source.rglob("*.bin")) if source.is_dir() else [source]
    if not files:
        raise DatasetSourceMissing(f"{source} holds no CIFAR-10 .bin record files")
    parts = []
    for path in files:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DatasetSourceMissing(f"{path} does not exist") from None
        parts.append(cifar_records(str(path), raw))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _read_idx_pair(task: str, images_path: Path, labels_path: Path | None):
    if labels_path is None:
        raise DatasetSourceMissing(
            f"{images_path} is read as an IDX image file; give its labels file with --labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim == 3:
        images = images[:, None, :, :]
    if images.dtype != np.uint8:
        raise DatasetFormatError(f"{images_path} holds {images.dtype} values, not uint8 pixels")
    if labels.ndim != 1:
        raise DatasetFormatError(f"{labels_path} holds an array of shape {labels.shape}, not labels")
    return images, labels.astype(np.int64)


def _read_folder(task: str, source: Path) -> tuple[np.ndarray, np.ndarray]:
    mode = "L" if task == "mnist" else "RGB"
    splits = read_image_folder(source, classes=task_classes(task), mode=mode, flat=True)
    if len(splits) != 1:
        raise DatasetFormatError(
            f"{source} holds images under several folders ({', '.join(sorted(splits))}); a hidden "
            "set is one folder of <class>/<file> images (or test/<class>/<file>)")
    return next(iter(splits.values()))


def read_hidden_images(task: str, source: Path, fmt: str, labels: Path | None = None):
    """(uint8 [N,C,H,W] images, int64 labels) of an image hidden set in format ``fmt``."""
    if fmt == "folder":
        return _read_folder(task, source)
    if fmt == "cifar":
        return _read_cifar_records(source)
    if fmt == "idx":
        return _read_idx_pair(task, source, labels)
    raise ValueError(f"{task} is an image task; the format {fmt!r} does not hold images")


def save_hidden_images(name: str, task: str, data_dir, inputs: np.ndarray, labels: np.ndarray,
                       *, public: bool = False, source: dict | None = None) -> None:
    """Prepare an imported image hidden set: split into halves with ``SPLIT_SEED``."""
    labels = np.asarray(labels).astype(np.int64)
    check_images(task, "hidden-set", inputs, labels)
    if len(labels) < MIN_IMAGES:
        raise DatasetFormatError(f"the hidden set has {len(labels)} images; it needs at least "
                                 f"{MIN_IMAGES}")
    halves = image_split_indices(len(inputs))
    arrays = {"test_inputs": inputs, "test_labels": labels}
    for split, indices in halves.items():
        arrays[f"{split}_indices"] = indices
        arrays[f"{split}_inputs"] = inputs[indices]
        arrays[f"{split}_labels"] = labels[indices]
    entry = {
        "name": name, "task": task, "kind": "images", "public": bool(public),
        "counts": {"test": len(inputs)} | {s: len(i) for s, i in halves.items()},
        "splits": {s: {"count": len(i), "indices_sha256": indices_sha256(i)}
                   for s, i in halves.items()},
        "source": source or {},
    }
    commit(name, resolve_data_dir(data_dir), arrays, entry, section="sets")


def save_hidden_text(name: str, data_dir, text: str, *, public: bool = False,
                     source: dict | None = None) -> None:
    """Prepare an imported ``tinygpt`` hidden set: the whole text, cut into 16 segments of which
    a seeded half is public and the rest private."""
    spec = get_task("tinygpt")
    ids = encode_text(text, spec.vocabulary)
    if len(ids) < MIN_CHARACTERS:
        raise DatasetFormatError(f"the hidden text has {len(ids)} characters; it needs at least "
                                 f"{MIN_CHARACTERS}")
    bounds = text_segment_bounds(len(ids))
    halves = text_split_segments(len(bounds))
    arrays = {"test_ids": ids, "segments": bounds}
    arrays |= {f"{split}_segments": segments for split, segments in halves.items()}
    entry = {
        "name": name, "task": "tinygpt", "kind": "text", "public": bool(public),
        "counts": {"test": len(ids)} | {
            s: int(sum(bounds[i, 1] - bounds[i, 0] for i in segs)) for s, segs in halves.items()},
        "splits": {s: {"segments": segs.tolist(), "indices_sha256": indices_sha256(segs)}
                   for s, segs in halves.items()},
        "vocabulary": spec.vocabulary,
        "source": source or {},
    }
    commit(name, resolve_data_dir(data_dir), arrays, entry, section="sets")


def _source_files(source: Path, labels: Path | None) -> dict:
    paths = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if labels is not None:
        paths.append(labels)
    return {"from": str(source), "files": {str(p): file_sha256(p) for p in paths}}


def import_hidden_set(
    name: str,
    task: str,
    source: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    labels: str | os.PathLike | None = None,
    fmt: str = "auto",
    public: bool = False,
) -> dict:
    """Import ``source`` as the hidden set ``name`` of ``task``; its manifest entry's summary
    ``{"name", "task", "format", "public", "counts", "sha256", "seconds"}``."""
    check_hidden_set_name(name)
    spec = get_task(task)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; the formats are: {', '.join(FORMATS)}")
    source = Path(source).expanduser()
    labels_path = Path(labels).expanduser() if labels is not None else None
    if not source.exists():
        raise DatasetSourceMissing(f"cannot import the hidden set {name!r}: {source} does not exist")
    chosen = detect_format(task, source) if fmt == "auto" else fmt
    started = time.perf_counter()
    record = _source_files(source, labels_path) | {"format": chosen}
    if spec.is_language_model:
        if chosen != "text":
            raise ValueError(f"{task} hidden sets are UTF-8 text, not {chosen!r}")
        save_hidden_text(name, data_dir, read_text(source), public=public, source=record)
    else:
        images, image_labels = read_hidden_images(task, source, chosen, labels_path)
        save_hidden_images(name, task, data_dir, images, image_labels, public=public,
                           source=record)
    entry = hidden_set_entry(name, data_dir, task)
    return {"name": name, "task": task, "format": chosen, "public": entry["public"],
            "counts": entry["counts"], "sha256": entry["sha256"],
            "seconds": round(time.perf_counter() - started, 2)}


__all__ = ["FORMATS", "import_hidden_set", "save_hidden_images",
           "save_hidden_text", "task_classes"]
