"""Score a model locally, exactly as the server does, but never on the hidden test set.

``evaluator.scoring.score`` scores the hidden set of a prepared data directory. To score on a
*validation slice of the public training data* instead, ``validation_data_dir`` prepares a small
data directory of its own (with the evaluator's ``save_prepared`` / ``save_prepared_text``) whose
"hidden set" is that slice:

- images: the validation hold-out of ``reference_models.data.load_task_data`` (5,000 training images
  chosen with a fixed seed, the ones the recipes keep out when asked for validation);
- ``tinygpt``: the last 100,000 characters of the training text (the prepared text is the last
  1,000,000 training characters, so the evaluator's 90/10 cut puts exactly those 100,000 at the end).

The directory is cached under the system temp folder, keyed by the source dataset's SHA-256, so a
second ``arena check`` starts at once. Everything else (validation gate, locked-down child, latency
protocol, deflate size) is the evaluator's own code path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from reference_models.data import VALIDATION_SIZE, load_task_data


def validation_data_dir(task: str, data_dir: str | os.PathLike | None = None,
                        cache_root: str | os.PathLike | None = None) -> Path:
    """A prepared data directory whose hidden set is ``task``'s validation slice (cached)."""
    from evaluator.datasets import DatasetError, dataset_sha256, prepared_entry
    from evaluator.tasks import get_task

    spec = get_task(task)
    source_sha = dataset_sha256(spec.name, data_dir)  # DatasetNotPrepared says what to run
    root = Path(cache_root or Path(tempfile.gettempdir()) / "arena-check")
    target = root / f"{spec.name}-{source_sha[:16]}"
    try:
        prepared_entry(spec.name, target)
        return target
    except DatasetError:
        pass
    target.mkdir(parents=True, exist_ok=True)
    source = {"validation_slice_of": source_sha, "size": VALIDATION_SIZE[spec.name]}
    if spec.is_language_model:
        _prepare_text(target, data_dir, source)
    else:
        _prepare_images(spec.name, target, data_dir, source)
    return target


def _prepare_images(task: str, target: Path, data_dir, source: dict) -> None:
    from evaluator.datasets import save_prepared

    images, labels = load_task_data(task, "validation", data_dir)
    empty = np.zeros((0, *images.shape[1:]), dtype=np.uint8)
    save_prepared(task, target, train_inputs=empty, train_labels=np.zeros(0, np.int64),
                  test_inputs=images, test_labels=labels, source=source)


def _prepare_text(target: Path, data_dir, source: dict) -> None:
    from evaluator.datasets import decode_ids, load_train, save_prepared_text
    from evaluator.tasks import TINYGPT_TRAIN_FRACTION, TINYGPT_VOCABULARY

    ids, _ = load_train("tinygpt", data_dir)
    size = VALIDATION_SIZE["tinygpt"]
    total = round(size / (1 - TINYGPT_TRAIN_FRACTION))  # hidden part of `total` is exactly `size`
    text = decode_ids(ids[-total:], TINYGPT_VOCABULARY)
    save_prepared_text(target, text, source=source)


def check_model(model: bytes | str | os.PathLike, task: str, *,
                data_dir: str | os.PathLike | None = None, quick: bool = False,
                cache_root: str | os.PathLike | None = None) -> dict:
    """The evaluator's scorecard of ``model`` on ``task``'s validation slice (``split="all"``);
    its ``hidden_set`` names the slice. Only data present here is used.

    ``quick`` uses ``LatencyProtocol.quick()`` (a few timed runs; for tests, not for decisions).
    """
    from evaluator.scoring import LatencyProtocol, score

    protocol = LatencyProtocol.quick() if quick else LatencyProtocol.standard()
    slice_dir = validation_data_dir(task, data_dir, cache_root)
    card = score(model, task, split="all", data_dir=slice_dir, protocol=protocol)
    if card.get("hidden_set"):  # say which set it was: never a hidden set, public data only
        card["hidden_set"] |= {"name": f"{task} validation slice of the public training data",
                               "public": True, "standard": False}
    return card


__all__ = ["check_model", "validation_data_dir"]
