"""Train-gap measurements: each model's loss and accuracy on the evaluator's fixed training sample
against the hidden test set, the figures the test-set-training flag's thresholds come from.

    .venv/bin/python benchmarks/train_gap.py --data-dir /tmp/arena-data [MODEL.onnx:TASK ...]

Every shipped baseline in ``reference_models/baselines`` whose task is prepared is measured, plus
any ``path:task`` given (the models trained with and without the test set for docs/evaluator.md
were given this way; ``tests/evaluator/test_train_gap.py`` trains such a pair too). Models run
in plain onnxruntime sessions (these are our own files; the scorer runs the same arithmetic,
``evaluator.train_gap``, in its sandbox). The table prints the relative loss gap, the flag's input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator import train_gap  # noqa: E402
from evaluator.datasets import DatasetError, as_model_input, load_hidden, load_train  # noqa: E402
from evaluator.datasets.splits import image_sample_indices, text_sample_bounds  # noqa: E402
from evaluator.metrics import Tally, next_char_tally, window_batches  # noqa: E402
from evaluator.runtime import make_session  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402

BASELINES = ROOT / "reference_models" / "baselines"


def _tally_images(session, inputs: np.ndarray, labels: np.ndarray, task: str) -> Tally:
    name = session.get_inputs()[0].name
    tally = Tally()
    for start in range(0, len(labels), 500):
        scores = session.run(None, {name: as_model_input(task, inputs[start:start + 500])})[0]
        tally.add(train_gap.loss_tally(scores, labels[start:start + 500]))
    return tally


def _tally_text(session, segments, context: int) -> Tally:
    name = session.get_inputs()[0].name
    tally = Tally()
    for inputs, targets in window_batches(segments, context, 16):
        tally.add(next_char_tally(session.run(None, {name: inputs})[0], targets))
    return tally


def measure(model: bytes | str, task: str, data_dir: Path) -> dict:
    """``evaluator.train_gap.summarize`` of one model on ``task``'s standard (public) set."""
    spec = get_task(task)
    data = Path(model).read_bytes() if isinstance(model, str | Path) else model
    session = make_session(data)
    hidden = {split: load_hidden(task, split, data_dir) for split in ("public", "private")}
    train_inputs, train_labels = load_train(task, data_dir)
    if spec.is_language_model:
        shape = session.get_inputs()[0].shape
        context = shape[1] if isinstance(shape[1], int) else spec.max_context
        bounds = text_sample_bounds(len(train_inputs))
        train = _tally_text(session, [train_inputs[a:b] for a, b in bounds], context)
        tallies = {s: _tally_text(session, h.segments, context) for s, h in hidden.items()}
    else:
        chosen = image_sample_indices(len(train_inputs))
        train = _tally_images(session, train_inputs[chosen], train_labels[chosen], task)
        tallies = {s: _tally_images(session, h.inputs, h.labels, task) for s, h in hidden.items()}
    return train_gap.summarize(train, tallies, spec.kind, public_set=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="more models as PATH:TASK")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    todo = []
    for path in sorted(BASELINES.glob("*.onnx")):
        task = path.stem.split("_")[0]
        todo.append((path.stem, path, task))
    for item in args.models:
        path, _, task = item.rpartition(":")
        todo.append((Path(path).stem, Path(path), task))
    print(f"{'model':<28} {'train loss':>10} {'hidden loss':>11} {'rel. gap':>9} "
          f"{'train acc':>9} {'hidden acc':>10} {'flag':>5}")
    for name, path, task in todo:
        try:
            result = measure(path, task, args.data_dir)
        except DatasetError as error:
            print(f"{name:<28} skipped: {error}")
            continue
        figures = result["figures"]
        print(f"{name:<28} {figures['train']['loss']:>10.4f} {figures['hidden']['loss']:>11.4f} "
              f"{result['relative_loss_gap']:>+9.3f} {figures['train']['accuracy']:>9.4f} "
              f"{figures['hidden']['accuracy']:>10.4f} {'YES' if result['flagged'] else 'no':>5}")
    print(f"flagged when the relative gap < {train_gap.BETTER_ON_HIDDEN} (training loss below "
          f"{train_gap.JUDGED_BELOW}), or the training loss <= {train_gap.CLOSE_FIT_LOSS} and the "
          f"relative gap < {train_gap.CLOSE_FIT_MIN_GAP}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
