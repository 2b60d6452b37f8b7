"""``import_from``: prepare tasks from a local copy laid out like ``../shared/datasets/``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from evaluator.datasets.errors import DatasetFormatError, DatasetSourceMissing
from evaluator.datasets.readers import (
    read_cifar10_binary,
    read_image_folder,
    read_mnist,
    read_text,
)
from evaluator.datasets.sources import (
    CIFAR10_CANDIDATES,
    MNIST_DIR,
    MNIST_FILES,
    TINYSHAKESPEARE_TEXT,
)
from evaluator.datasets.store import (
    file_sha256,
    prepared_entry,
    resolve_data_dir,
    save_prepared,
    save_prepared_text,
)
from evaluator.tasks import CIFAR10_CLASSES, TASKS, get_task


def _source_record(root: Path, paths: Iterable[Path]) -> dict:
    """Provenance of an import: each source file's path relative to the source folder and SHA-256."""
    files = {str(p.relative_to(root)): file_sha256(p) for p in paths if p.is_file()}
    return {"from": str(root), "files": files}


def _require(path: Path, task: str) -> Path:
    if not path.exists():
        raise DatasetSourceMissing(f"cannot import {task}: {path} does not exist")
    return path


def _import_mnist(root: Path, data_dir: Path) -> None:
    folder = root / MNIST_DIR
    paths = [_require(folder / name, "mnist") for name in MNIST_FILES]
    train_inputs, train_labels = read_mnist(folder, "train")
    test_inputs, test_labels = read_mnist(folder, "t10k")
    save_prepared(
        "mnist", data_dir,
        train_inputs=train_inputs, train_labels=train_labels,
        test_inputs=test_inputs, test_labels=test_labels,
        source=_source_record(root, paths),
    )


def _read_cifar10(source: Path) -> dict:
    if source.name.startswith("cifar-10-b"):
        return read_cifar10_binary(source)
    splits = read_image_folder(source, classes=CIFAR10_CLASSES, mode="RGB")
    missing = {"train", "test"} - set(splits)
    if missing:
        raise DatasetFormatError(f"{source} has no {' or '.join(sorted(missing))} folder")
    return splits


def _import_cifar10(root: Path, data_dir: Path) -> None:
    candidates = [root / name for name in CIFAR10_CANDIDATES]
    source = next((path for path in candidates if path.exists()), None)
    if source is None:
        names = ", ".join(CIFAR10_CANDIDATES)
        raise DatasetSourceMissing(f"cannot import cifar10: {root} holds none of {names}")
    splits = _read_cifar10(source)
    save_prepared(
        "cifar10", data_dir,
        train_inputs=splits["train"][0], train_labels=splits["train"][1],
        test_inputs=splits["test"][0], test_labels=splits["test"][1],
        source=_source_record(root, [source] if source.is_file() else sorted(source.rglob("*"))),
    )


def _import_tinygpt(root: Path, data_dir: Path) -> None:
    path = _require(root / TINYSHAKESPEARE_TEXT, "tinygpt")
    save_prepared_text(data_dir, read_text(path), source=_source_record(root, [path]))


def tasks_in(source_dir: str | os.PathLike) -> list[str]:
    """The tasks whose source files (or, for CIFAR-10, one of its accepted forms) are in a folder."""
    root = Path(source_dir).expanduser()
    present = {
        "mnist": all((root / MNIST_DIR / name).exists() for name in MNIST_FILES),
        "cifar10": any((root / name).exists() for name in CIFAR10_CANDIDATES),
        "tinygpt": (root / TINYSHAKESPEARE_TEXT).exists(),
    }
    return [task for task in TASKS if present[task]]


IMPORTERS = {"mnist": _import_mnist, "cifar10": _import_cifar10, "tinygpt": _import_tinygpt}


def import_from(
    source_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    tasks: Iterable[str] | None = None,
) -> dict:
    """Prepare ``tasks`` from a folder laid out like ``../shared/datasets/``; by default every task
    whose files are there (a ``DatasetSourceMissing`` when there are none).

    Returns ``{task: {"train": n, "test": n, "public": n, "private": n, "sha256": ..., "seconds": t}}``.
    """
    root = Path(source_dir).expanduser()
    if not root.is_dir():
        raise DatasetSourceMissing(f"{root} is not a folder")
    target = resolve_data_dir(data_dir)
    chosen = list(tasks) if tasks is not None else tasks_in(root)
    if not chosen:
        raise DatasetSourceMissing(
            f"{root} holds none of the datasets: expected {MNIST_DIR}/*-idx?-ubyte.gz, one of "
            f"{', '.join(CIFAR10_CANDIDATES)}, or {TINYSHAKESPEARE_TEXT}"
        )
    results = {}
    for task in chosen:
        get_task(task)
        started = time.perf_counter()
        IMPORTERS[task](root, target)
        entry = prepared_entry(task, target)
        results[task] = entry["counts"] | {
            "sha256": entry["sha256"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    return results
