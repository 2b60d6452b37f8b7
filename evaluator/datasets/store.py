"""The prepared-data cache: one folder of ``.npy`` arrays per task under a data directory, and a
``manifest.json`` recording each file's SHA-256, the dataset's SHA-256 and the hidden splits.

Layout of ``<data_dir>/<task>/``:

- image tasks: ``train_inputs.npy`` (uint8 NCHW), ``train_labels.npy`` (int64), ``test_inputs.npy``,
  ``test_labels.npy`` (the hidden set in its original order), ``public_*`` and ``private_*`` (the two
  halves, already gathered so the scorer can memory-map them) and ``*_indices.npy`` (which test
  images each half holds);
- ``tinygpt``: ``train_ids.npy`` and ``test_ids.npy`` (int64 character ids), ``segments.npy``
  (``[16, 2]`` start/end of the hidden text's segments), ``public_segments.npy`` and
  ``private_segments.npy`` (which segments each half holds).

A task's dataset SHA-256 is the SHA-256 of the lines ``"<file> <file sha256>\\n"`` of all its files,
sorted by name: it changes if any pixel, label, id or split changes.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluator.datasets.errors import DatasetError, DatasetNotPrepared
from evaluator.datasets.readers import encode_text
from evaluator.datasets.splits import (
    SPLIT_SEED,
    image_sample_indices,
    image_split_indices,
    indices_sha256,
    text_sample_bounds,
    text_segment_bounds,
    text_split_segments,
)
from evaluator.tasks import TASKS, TINYGPT_TRAIN_FRACTION, TINYGPT_VOCABULARY, get_task

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SPLITS = ("public", "private", "all")

try:  # POSIX: serialize manifest updates between processes preparing different tasks at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def default_data_dir() -> Path:
    """``$ARENA_DATA_DIR`` when set, else ``~/.cache/model-arena/data``."""
    configured = os.environ.get("ARENA_DATA_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "model-arena" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def combined_sha256(file_hashes: dict[str, str]) -> str:
    """The dataset SHA-256: over ``"<name> <sha256>\\n"`` lines of every file, sorted by name."""
    lines = "".join(f"{name} {file_hashes[name]}\n" for name in sorted(file_hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_manifest(data_dir: str | os.PathLike | None = None) -> dict:
    """The manifest of a data directory (an empty one when nothing is prepared there)."""
    path = resolve_data_dir(data_dir) / MANIFEST
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "tasks": {}}
    return json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _manifest_lock(data_dir: Path):
    with open(data_dir / ".manifest.lock", "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(data_dir: Path, name: str, entry: dict, section: str = "tasks") -> None:
    """Set the manifest entry of a task's standard set (``tasks``) or of an imported hidden set
    (``sets``); call with the manifest lock held."""
    manifest = read_manifest(data_dir)
    manifest["format"] = MANIFEST_FORMAT
    manifest.setdefault(section, {})[name] = entry
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, data_dir / MANIFEST)


def commit(task: str, data_dir: Path, arrays: dict[str, np.ndarray], entry: dict,
            section: str = "tasks") -> None:
    """Write the arrays to a staging folder, then (under the manifest lock, so two processes
    preparing at once cannot interleave) swap it in for the folder ``task`` (a task, or the name
    of an imported hidden set, ``section="sets"``) and record it in the manifest: a reader never
    sees a half-written set."""
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{task}.staging-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a sandboxed scorer may run as another user
    try:
        files = {}
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            files[f"{name}.npy"] = file_sha256(staging / f"{name}.npy")
        entry.update(
            task=entry.get("task", task),
            files=files,
            sha256=combined_sha256(files),
            split_seed=SPLIT_SEED,
            prepared_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        with _manifest_lock(data_dir):
            final = data_dir / task
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
            _write_manifest(data_dir, task, entry, section)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_images(task: str, what: str, inputs: np.ndarray, labels: np.ndarray) -> None:
    spec = get_task(task)
    if spec.is_language_model:
        raise ValueError(f"{task} is a language-model task; use save_prepared_text")
    expected = tuple(spec.input_shape[1:])
    if inputs.dtype != np.uint8 or inputs.ndim != 4 or tuple(inputs.shape[1:]) != expected:
        raise ValueError(
            f"{task} {what} images must be uint8 [N,{','.join(map(str, expected))}], "
            f"got {inputs.dtype} {list(inputs.shape)}"
        )
    if labels.ndim != 1 or len(labels) != len(inputs):
        raise ValueError(f"{task} {what}: {len(inputs)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{task} {what} labels must lie in 0..{spec.num_classes - 1}")


def save_prepared(
    task: str,
    data_dir: str | os.PathLike | None,
    *,
    train_inputs: np.ndarray,
    train_labels: np.ndarray,
    test_inputs: np.ndarray,
    test_labels: np.ndarray,
    source: dict | None = None,
) -> None:
    """Prepare an image task: uint8 ``[N,C,H,W]`` inputs and integer labels; the test set becomes
    the hidden set, split into public and private halves with ``SPLIT_SEED``."""
    train_labels = np.asarray(train_labels).astype(np.int64)
    test_labels = np.asarray(test_labels).astype(np.int64)
    check_images(task, "training", train_inputs, train_labels)
    check_images(task, "test", test_inputs, test_labels)
    halves = image_split_indices(len(test_inputs))
    arrays = {
        "train_inputs": train_inputs,
        "train_labels": train_labels,
        "test_inputs": test_inputs,
        "test_labels": test_labels,
    }
    for split, indices in halves.items():
        arrays[f"{split}_indices"] = indices
        arrays[f"{split}_inputs"] = test_inputs[indices]
        arrays[f"{split}_labels"] = test_labels[indices]
    entry = {
        "kind": "images",
        "counts": {"train": len(train_inputs), "test": len(test_inputs)}
        | {split: len(indices) for split, indices in halves.items()},
        "splits": {
            split: {"count": len(indices), "indices_sha256": indices_sha256(indices)}
            for split, indices in halves.items()
        },
        "source": source or {},
    }
    commit(task, resolve_data_dir(data_dir), arrays, entry)


def save_prepared_text(
    data_dir: str | os.PathLike | None, text: str, *, source: dict | None = None
) -> None:
    """Prepare ``tinygpt``: the first 90% of the text's characters train, the last 10% is the hidden
    set, cut into 16 segments of which a seeded half is public and the rest private."""
    ids = encode_text(text, TINYGPT_VOCABULARY)
    train_count = int(len(ids) * TINYGPT_TRAIN_FRACTION)
    hidden = ids[train_count:]
    bounds = text_segment_bounds(len(hidden))
    halves = text_split_segments(len(bounds))
    arrays = {"train_ids": ids[:train_count], "test_ids": hidden, "segments": bounds}
    arrays |= {f"{split}_segments": segments for split, segments in halves.items()}
    entry = {
        "kind": "text",
        "counts": {"train": train_count, "test": len(hidden)}
        | {split: int(sum(bounds[s, 1] - bounds[s, 0] for s in segs)) for split, segs in halves.items()},
        "splits": {
            split: {"segments": segs.tolist(), "indices_sha256": indices_sha256(segs)}
            for split, segs in halves.items()
        },
        "vocabulary": TINYGPT_VOCABULARY,
        "source": source or {},
    }
    commit("tinygpt", resolve_data_dir(data_dir), arrays, entry)


def prepared_entry(task: str, data_dir: str | os.PathLike | None = None) -> dict:
    """The manifest entry of a prepared task; ``DatasetNotPrepared`` (saying what to run) if the
    task is not prepared in ``data_dir`` or its files are gone."""
    get_task(task)
    root = resolve_data_dir(data_dir)
    entry = read_manifest(root).get("tasks", {}).get(task)
    if entry is None or not all((root / task / name).exists() for name in entry["files"]):
        where = "" if data_dir is None else f" --data-dir {root}"
        raise DatasetNotPrepared(
            f"the {task} dataset is not prepared in {root}: run "
            f"`python -m evaluator datasets fetch --task {task}{where}` (downloads it) or "
            f"`python -m evaluator datasets import --from DIR --task {task}{where}` (a local copy)"
        )
    return entry


def verify_prepared(task: str, data_dir: str | os.PathLike | None = None) -> str:
    """Recompute the SHA-256 of every prepared file of ``task``; the dataset SHA-256 when all match,
    a ``DatasetError`` naming the first file that changed otherwise. ``task`` may also name an
    imported hidden set."""
    entry = hidden_set_entry(task, data_dir)
    root = resolve_data_dir(data_dir)
    for name, expected in sorted(entry["files"].items()):
        if file_sha256(root / task / name) != expected:
            raise DatasetError(
                f"{root / task / name} does not match its SHA-256 in the manifest; prepare {task} "
                "again (`python -m evaluator datasets import` or `fetch`)"
            )
    return entry["sha256"]


def _load(root: Path, task: str, name: str, mmap: bool) -> np.ndarray:
    return np.load(root / task / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)


def dataset_sha256(task: str, data_dir: str | os.PathLike | None = None,
                   hidden_set: str | None = None) -> str:
    """The prepared dataset's SHA-256 (recorded in every scorecard for provenance); with
    ``hidden_set``, that of the imported set the task is scored on."""
    if hidden_set and hidden_set != task:
        return hidden_set_entry(hidden_set, data_dir, task)["sha256"]
    return prepared_entry(task, data_dir)["sha256"]


# An imported hidden set's name: lower-case letters, digits, '-' and '_' (it is a folder name).
HIDDEN_SET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")


def check_hidden_set_name(name: str) -> str:
    """``name`` if it can name an imported hidden set; a ``ValueError`` saying why not."""
    if not isinstance(name, str) or not HIDDEN_SET_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name a hidden set: use 1 to 48 lower-case letters, digits, '-' or "
            "'_', starting with a letter or digit"
        )
    if name in TASKS:
        raise ValueError(f"{name!r} is the name of the standard {name} set; choose another name")
    return name


def hidden_set_entry(name: str, data_dir: str | os.PathLike | None = None,
                     task: str | None = None) -> dict:
    """The manifest entry of the hidden set ``name``: a task's name for its standard (public) set,
    or an imported set's. ``DatasetNotPrepared`` (saying what to run) when it is not in
    ``data_dir``; a ``ValueError`` when it belongs to another task than ``task``."""
    if name in TASKS:
        entry = dict(prepared_entry(name, data_dir))
        entry.setdefault("public", True)
        entry.setdefault("name", name)
    else:
        check_hidden_set_name(name)
        root = resolve_data_dir(data_dir)
        entry = read_manifest(root).get("sets", {}).get(name)
        if entry is None or not all((root / name / f).exists() for f in entry["files"]):
            where = "" if data_dir is None else f" --data-dir {root}"
            raise DatasetNotPrepared(
                f"the hidden set {name!r} is not prepared in {root}: import it there with "
                f"`python -m evaluator datasets import --name {name} --task TASK --from PATH"
                f"{where}`"
            )
    if task is not None and entry["task"] != task:
        raise ValueError(f"the hidden set {name!r} is a {entry['task']} set, not a {task} set")
    return entry


def hidden_set_present(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether the hidden set ``name`` (a task's standard set, or an imported one) is prepared in
    ``data_dir``: one manifest read, no hashing."""
    try:
        hidden_set_entry(name, data_dir)
    except (DatasetError, ValueError):
        return False
    return True


def hidden_sets(data_dir: str | os.PathLike | None = None) -> dict[str, dict]:
    """The manifest entries of the imported hidden sets of ``data_dir``, by name."""
    return dict(read_manifest(data_dir).get("sets", {}))


def load_train(
    task: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The public training data, in memory: images ``(uint8 NCHW, int64 labels)``; for ``tinygpt``
    ``(int64 ids of the first 90% of the text, None)``."""
    prepared_entry(task, data_dir)
    root = resolve_data_dir(data_dir)
    if get_task(task).is_language_model:
        return _load(root, task, "train_ids", mmap=False), None
    return _load(root, task, "train_inputs", False), _load(root, task, "train_labels", False)


@dataclass(frozen=True, eq=False)  # eq=False: comparing or hashing arrays has no useful meaning
class HiddenSet:
    """One split of a task's hidden set, memory-mapped read-only.

    Image tasks fill ``inputs`` (uint8 ``[N,C,H,W]``) and ``labels`` (int64 ``[N]``); ``tinygpt``
    fills ``segments``: int64 id sequences, each to be read separately in windows of the model's
    context. ``sha256`` is the whole prepared dataset's SHA-256.
    """

    task: str
    split: str
    inputs: np.ndarray | None
    labels: np.ndarray | None
    segments: tuple[np.ndarray, ...]
    sha256: str

    def __len__(self) -> int:
        """Images in the split, or characters over all its segments."""
        if self.inputs is not None:
            return len(self.inputs)
        return sum(len(segment) for segment in self.segments)


def load_hidden(task: str, split: str, data_dir: str | os.PathLike | None = None,
                hidden_set: str | None = None) -> HiddenSet:
    """A split (``public``, ``private`` or ``all``) of a task's hidden set: its standard set, or
    the imported set ``hidden_set`` (which must be a set of ``task``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are: {', '.join(SPLITS)}")
    get_task(task)
    folder = hidden_set or task
    entry = hidden_set_entry(folder, data_dir, task)
    root = resolve_data_dir(data_dir)
    if not get_task(task).is_language_model:
        prefix = "test" if split == "all" else split
        inputs = _load(root, folder, f"{prefix}_inputs", mmap=True)
        labels = _load(root, folder, f"{prefix}_labels", mmap=True)
        return HiddenSet(task, split, inputs, labels, (), entry["sha256"])
    ids = _load(root, folder, "test_ids", mmap=True)
    if split == "all":
        segments = (ids,)
    else:
        bounds = _load(root, folder, "segments", mmap=False)
        chosen = _load(root, folder, f"{split}_segments", mmap=False)
        segments = tuple(ids[bounds[s, 0] : bounds[s, 1]] for s in chosen)
    return HiddenSet(task, split, None, None, segments, entry["sha256"])


def load_train_sample(task: str, data_dir: str | os.PathLike | None = None) -> HiddenSet:
    """The fixed sample of ``task``'s public training data that every scored model is also
    measured on (``evaluator.train_gap``), in the shape of a ``HiddenSet`` (split ``train``)."""
    entry = prepared_entry(task, data_dir)
    root = resolve_data_dir(data_dir)
    if get_task(task).is_language_model:
        ids = _load(root, task, "train_ids", mmap=True)
        bounds = text_sample_bounds(len(ids))
        segments = tuple(np.array(ids[a:b]) for a, b in bounds)
        return HiddenSet(task, "train", None, None, segments, entry["sha256"])
    inputs = _load(root, task, "train_inputs", mmap=True)
    labels = _load(root, task, "train_labels", mmap=True)
    chosen = image_sample_indices(len(labels))
    return HiddenSet(task, "train", np.array(inputs[chosen]), np.array(labels[chosen]), (),
                     entry["sha256"])


def as_model_input(task: str, inputs: np.ndarray) -> np.ndarray:
    """What a model of ``task`` takes: float32 pixel/255 for images, int64 ids for ``tinygpt``."""
    if get_task(task).is_language_model:
        return np.asarray(inputs, dtype=np.int64)
    inputs = np.asarray(inputs)
    if inputs.dtype != np.uint8:
        raise ValueError(f"{task} images must be uint8 pixels, got {inputs.dtype}")
    return np.divide(inputs, np.float32(255), dtype=np.float32)
