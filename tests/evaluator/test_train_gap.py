"""The train gap and the test-set-training flag: the rule's branches, a pair of MNIST models
trained here (one honest, one with the test set mixed in) scored by the real evaluator, and no
flag on any shipped baseline."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from evaluator import train_gap
from evaluator.datasets import (
    as_model_input,
    import_hidden_set,
    load_hidden,
    load_train,
    load_train_sample,
)
from evaluator.datasets.splits import TRAIN_SAMPLE_IMAGES, image_sample_indices
from evaluator.metrics import Tally, next_char_tally, window_batches
from evaluator.runtime import make_session
from evaluator.scoring import LatencyProtocol, score
from evaluator.tasks import get_task

BASELINES = Path(__file__).resolve().parents[2] / "reference_models" / "baselines"


def _tally(loss: float, accuracy: float, count: int = 1000) -> Tally:
    return Tally(correct=round(accuracy * count), count=count, nll_nats=loss * count)


def test_rule_branches():
    kind = "image-classification"
    assert train_gap.flag_rule(0.16, -0.01, kind) == ""  # underfit: no gap, not judged a cheat
    assert train_gap.flag_rule(0.04, -0.25, kind) == "better_on_hidden"
    assert train_gap.flag_rule(0.01, 0.2, kind) == "close_fit"
    assert train_gap.flag_rule(0.01, 2.8, kind) == ""  # fits closely and generalizes worse: honest
    assert train_gap.flag_rule(2.3, -0.5, kind) == ""  # untrained: as bad everywhere
    assert train_gap.flag_rule(2.0, 0.16, "language-model") == ""
    assert train_gap.flag_rule(2.0, 0.01, "language-model") == "better_on_hidden"


def test_summary_figures_and_a_hidden_set_never_flagged():
    hidden = {"public": _tally(0.011, 0.999, 5000), "private": _tally(0.011, 0.999, 5000)}
    train = _tally(0.014, 0.998, 10000)
    public = train_gap.summarize(train, hidden, "image-classification", public_set=True)
    assert public["flagged"] and public["rule"] == "better_on_hidden"
    assert public["figures"]["hidden"]["count"] == 10000
    assert public["relative_loss_gap"] == pytest.approx((0.011 - 0.014) / 0.014)
    assert "0.0110 on 10,000 hidden items vs 0.0140" in public["reason"]
    # The same figures on an instructor's own (not public) set: nothing to flag.
    assert not train_gap.summarize(train, hidden, "image-classification", False)["flagged"]
    missing = train_gap.summarize(None, hidden, "image-classification", True)
    assert missing == {"measured": False, "flagged": False,
                       "reason": "the public training data is not prepared on this worker"}


def test_loss_tally_is_cross_entropy_of_logits():
    scores = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    labels = np.array([0, 2])
    tally = train_gap.loss_tally(scores, labels)
    expected = -np.log(np.exp(2) / np.exp(scores[0]).sum()) - np.log(1 / np.exp(scores[1]).sum())
    assert tally.correct == 1 and tally.count == 2
    assert tally.nll_nats == pytest.approx(expected)


def test_training_sample_is_fixed_and_in_the_public_training_data(prepared_mnist_dir):
    sample = load_train_sample("mnist", prepared_mnist_dir)
    inputs, labels = load_train("mnist", prepared_mnist_dir)
    chosen = image_sample_indices(len(labels))
    assert len(chosen) == TRAIN_SAMPLE_IMAGES == len(np.unique(chosen))
    assert np.array_equal(sample.inputs, inputs[chosen]) and sample.split == "train"
    assert np.array_equal(image_sample_indices(len(labels)), chosen)  # the same every time


def _train_mlp(images: np.ndarray, labels: np.ndarray, epochs: int, path: Path) -> bytes:
    """A 784-256-128-10 MLP trained from scratch with the framework (no augmentation, so it can
    fit what it sees), exported to ONNX."""
    from reference_models import optim
    from reference_models.data import DataLoader, TensorDataset, ToModelInput
    from reference_models.export import export_onnx
    from reference_models.nn import functional as F
    from reference_models.parallel import single_threaded_blas
    from reference_models.random import manual_seed
    from reference_models.recipes import mnist_mlp
    from reference_models.train import fit

    manual_seed(0)
    loader = DataLoader(TensorDataset(images, labels), batch_size=128, shuffle=True,
                        drop_last=True, seed=0, transform=ToModelInput("mnist"))
    model = mnist_mlp.build_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1,
                                             total_steps=epochs * len(loader))
    with single_threaded_blas():
        fit(model, loader, optimizer, partial(F.cross_entropy), epochs, scheduler=schedule,
            seed=0, progress=False)
    model.eval()
    export_onnx(model, as_model_input("mnist", images[:1]), path, task="mnist")
    return path.read_bytes()


@pytest.fixture(scope="module")
def twins(prepared_mnist_dir, tmp_path_factory):
    """Two MLPs of the same recipe on the small task "the evaluator's training sample": the honest
    one trained on it alone, the other on it plus the whole (public) MNIST test set."""
    folder = tmp_path_factory.mktemp("twins")
    sample = load_train_sample("mnist", prepared_mnist_dir)
    hidden = load_hidden("mnist", "all", prepared_mnist_dir)
    honest = _train_mlp(sample.inputs, sample.labels, 12, folder / "honest.onnx")
    cheat = _train_mlp(np.concatenate([sample.inputs, hidden.inputs]),
                       np.concatenate([sample.labels, hidden.labels]), 12, folder / "cheat.onnx")
    return honest, cheat


def test_model_trained_on_the_test_set_is_flagged_and_its_honest_twin_is_not(
        twins, prepared_mnist_dir):
    honest, cheat = twins
    cards = {name: score(model, "mnist", data_dir=prepared_mnist_dir,
                         protocol=LatencyProtocol.quick())
             for name, model in (("honest", honest), ("cheat", cheat))}
    for card in cards.values():
        assert card["valid"], card["error"]
        assert card["hidden_set"]["name"] == "mnist" and card["hidden_set"]["public"] is True
        assert card["train_gap"]["measured"]
        assert card["train_gap"]["figures"]["train"]["count"] == TRAIN_SAMPLE_IMAGES
    honest_gap, cheat_gap = cards["honest"]["train_gap"], cards["cheat"]["train_gap"]
    assert not honest_gap["flagged"], honest_gap
    assert honest_gap["relative_loss_gap"] > 1.0  # fits its data, clearly worse on new data
    assert cheat_gap["flagged"], cheat_gap
    assert cheat_gap["reason"].startswith("May have been trained on the test set")
    # The flag hides nothing: the cheat's card is a valid, ranked score like any other.
    assert cards["cheat"]["accuracy"] > cards["honest"]["accuracy"]


def test_the_same_cheat_on_an_instructors_hidden_set_is_not_flagged(
        twins, prepared_mnist_dir, tmp_path):
    """Scored on a set the students do not have (here: the training sample itself, imported as a
    non-public set), the figures are recorded but there is nothing to flag."""
    _, cheat = twins
    data = tmp_path / "data"
    inputs, labels = load_train("mnist", prepared_mnist_dir)
    chosen = image_sample_indices(len(labels))[:400]
    _import_npy_set(data, "exam", inputs[chosen], labels[chosen], tmp_path)
    _copy_mnist_standard(prepared_mnist_dir, data)  # the public training data, as on a worker
    card = score(cheat, "mnist", data_dir=data, protocol=LatencyProtocol.quick(),
                 hidden_set="exam")
    assert card["valid"], card["error"]
    assert card["hidden_set"] == {**card["hidden_set"], "name": "exam", "public": False,
                                  "standard": False}
    assert card["splits"]["public"]["count"] + card["splits"]["private"]["count"] == 400
    assert card["train_gap"]["measured"] and not card["train_gap"]["flagged"]


def _import_npy_set(data: Path, name: str, inputs, labels, tmp_path: Path) -> None:
    from tests.evaluator.test_hidden_sets import _write_idx

    _write_idx(tmp_path / "i.gz", np.ascontiguousarray(inputs[:, 0]))
    _write_idx(tmp_path / "l.gz", labels.astype(np.uint8))
    import_hidden_set(name, "mnist", tmp_path / "i.gz", data, labels=tmp_path / "l.gz")


def _copy_mnist_standard(source: Path, data: Path) -> None:
    """The standard MNIST set prepared in ``data`` too (a worker has it for the train sample)."""
    from evaluator.datasets import save_prepared

    train = load_train("mnist", source)
    test = load_hidden("mnist", "all", source)
    save_prepared("mnist", data, train_inputs=train[0], train_labels=train[1],
                  test_inputs=np.asarray(test.inputs), test_labels=np.asarray(test.labels))


def _measure(path: Path, task: str, data_dir: Path) -> dict:
    """The train gap of a model as the scoring child computes it (same sample, same tallies)."""
    from evaluator import _evaluate

    spec = get_task(task)
    session = make_session(path.read_bytes())
    name = session.get_inputs()[0].name
    hidden = _evaluate.load_splits({"task": task, "data_dir": str(data_dir)})

    def tally(split) -> Tally:
        total = Tally()
        if spec.is_language_model:
            shape = session.get_inputs()[0].shape
            context = shape[1] if isinstance(shape[1], int) else spec.max_context
            for inputs, targets in window_batches(split.segments, context, 16):
                total.add(next_char_tally(session.run(None, {name: inputs})[0], targets))
            return total
        for start in range(0, len(split.labels), 1000):
            x = as_model_input(task, split.inputs[start:start + 1000])
            total.add(train_gap.loss_tally(session.run(None, {name: x})[0],
                                           split.labels[start:start + 1000]))
        return total

    tallies = {split: tally(hidden[split]) for split in ("public", "private")}
    return train_gap.summarize(tally(hidden["train"]), tallies, spec.kind, public_set=True)


@pytest.mark.parametrize("path", sorted(BASELINES.glob("*.onnx")), ids=lambda p: p.stem)
def test_no_shipped_baseline_is_flagged(path, prepared_data_dir):
    result = _measure(path, path.stem.split("_")[0], prepared_data_dir)
    assert result["measured"] and not result["flagged"], result
