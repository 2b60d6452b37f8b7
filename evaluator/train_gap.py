"""The train gap: a model's loss and accuracy on a fixed sample of the public training data against
the hidden set, and the test-set-training flag built on it (docs/evaluator.md, "The train gap").
The fixed training sample is chosen in ``evaluator.datasets.splits`` (``image_sample_indices``,
``text_sample_bounds``).

A model learns the examples it was trained on better than new ones, so a model that fits its
training data closely does measurably worse on a hidden set it has never seen. A model that does
*no worse* on a public hidden set (the standard MNIST, CIFAR-10 and Tiny Shakespeare test sets,
whose labels anyone can download) than on the training data, although it fits the training data
closely, or that does clearly *better* on it, has most likely seen the hidden set while training.
An underfit model shows no gap whether or not it saw the test set (and gains little from it): the
flag cannot tell those apart, and does not try. The flag is for the organizer to look at, with the
figures; it never hides a row. The thresholds come from the measurements in docs/evaluator.md
(``benchmarks/train_gap.py``).

Everything here is a pure function of arrays (the child feeds model outputs in).
"""

from __future__ import annotations

import math

import numpy as np

from evaluator.metrics import Tally

# The flag (measured in docs/evaluator.md, "The train gap"; benchmarks/train_gap.py). With
#   relative gap = (hidden loss - train loss) / max(train loss, LOSS_FLOOR)
# a model scored on a public hidden set is flagged when either
# - its relative gap is below BETTER_ON_HIDDEN[kind] (it does clearly better on the hidden set than
#   on data it was trained on), its training loss being below JUDGED_BELOW[kind] (an untrained
#   model, as bad everywhere, is not judged), or
# - it fits its training data closely (training loss at most CLOSE_FIT_LOSS[kind]) and yet its
#   relative gap is below CLOSE_FIT_MIN_GAP: honest models that fit their training data this
#   closely were measured at least 1.8x worse on the hidden set.
# Honest models measured on the standard MNIST set: -0.023 .. +1.81 (its test set is a little
# easier than its training set, so an underfit honest model shows no gap at all); models trained
# with the test set mixed in: -0.054 (the recipe itself, augmented and label-smoothed: not caught),
# -0.146, -0.239. Tiny Shakespeare's baselines: +0.163 (its hidden text is other plays).
BETTER_ON_HIDDEN = {"image-classification": -0.10, "language-model": 0.05}
# Language models: only models at least near the shipped baseline's 2.0 bits are judged, because a
# model that has learned little more than which characters follow which (about 2.5 bits) transfers
# that equally to any English text, seen or not.
JUDGED_BELOW = {"image-classification": 1.0, "language-model": 2.2}
CLOSE_FIT_LOSS = {"image-classification": 0.03, "language-model": None}
CLOSE_FIT_MIN_GAP = 0.5
# A training loss this small (nats, or bits per character) counts as this much, so a model that is
# nearly perfect on both sets is not judged by a ratio of two tiny numbers.
LOSS_FLOOR = 0.002


def flag_rule(train_loss: float, relative_gap: float, kind: str) -> str:
    """Which branch of the flag a measurement falls in: ``better_on_hidden``, ``close_fit`` or
    ``""`` (not flagged)."""
    if train_loss < JUDGED_BELOW[kind] and relative_gap < BETTER_ON_HIDDEN[kind]:
        return "better_on_hidden"
    close = CLOSE_FIT_LOSS[kind]
    if close is not None and train_loss <= close and relative_gap < CLOSE_FIT_MIN_GAP:
        return "close_fit"
    return ""


def loss_tally(scores: np.ndarray, labels: np.ndarray) -> Tally:
    """Top-1 hits and summed cross-entropy (nats) of class ``scores`` [N, C] taken as logits.

    A model whose outputs are probabilities rather than logits gets a loss on another scale than a
    logit model, but the same one on both sets, which is all the gap needs."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    nll = log_norm - shifted[np.arange(len(labels)), labels]
    hits = np.argmax(scores, axis=1) == labels
    return Tally(correct=int(hits.sum()), count=int(len(labels)), nll_nats=float(nll.sum()))


def _figures(tally: Tally, language: bool) -> dict:
    loss = None
    if tally.count:
        loss = tally.nll_nats / tally.count / (math.log(2) if language else 1.0)
    return {"accuracy": tally.accuracy, "loss": loss, "count": tally.count}


def summarize(train: Tally | None, hidden: dict[str, Tally], kind: str, public_set: bool) -> dict:
    """The scorecard's ``train_gap``: figures on the training sample and on each half and the
    whole of the hidden set, the gaps (hidden minus train for the loss, train minus hidden for
    the accuracy) on the whole hidden set, and the flag.

    ``loss`` is cross-entropy in nats per image, or bits per character for the language model.
    """
    language = kind == "language-model"
    if train is None or not train.count:
        return {"measured": False, "flagged": False,
                "reason": "the public training data is not prepared on this worker"}
    pooled = Tally()
    for tally in hidden.values():
        pooled.add(tally)
    figures = {"train": _figures(train, language), "hidden": _figures(pooled, language)}
    figures |= {name: _figures(tally, language) for name, tally in hidden.items()}
    loss_gap = figures["hidden"]["loss"] - figures["train"]["loss"]
    relative = loss_gap / max(figures["train"]["loss"], LOSS_FLOOR)
    rule = flag_rule(figures["train"]["loss"], relative, kind)
    flagged = bool(public_set and rule)
    return {
        "measured": True,
        "loss_unit": "bits per character" if language else "nats per image",
        "figures": figures,
        "loss_gap": loss_gap,
        "relative_loss_gap": relative,
        "accuracy_gap": figures["train"]["accuracy"] - figures["hidden"]["accuracy"],
        "rule": rule,
        "public_set": public_set,
        "flagged": flagged,
        "reason": flag_reason(rule, relative, figures, kind) if flagged else "",
    }


def flag_reason(rule: str, relative: float, figures: dict, kind: str) -> str:
    """The organizer's sentence for a flagged model."""
    train, hidden = figures["train"], figures["hidden"]
    if rule == "better_on_hidden":
        why = (f"it does better on the public hidden set than on the training data (relative loss "
               f"gap {relative:+.3f}, below {BETTER_ON_HIDDEN[kind]:+.2f})")
    else:
        why = (f"it fits its training data closely (loss {train['loss']:.4f}) and yet is hardly "
               f"worse on the public hidden set (relative loss gap {relative:+.3f}; honest models "
               f"that fit this closely were at least {CLOSE_FIT_MIN_GAP:+.1f})")
    return (f"May have been trained on the test set: {why}. Loss {hidden['loss']:.4f} on "
            f"{hidden['count']:,} hidden items vs {train['loss']:.4f} on {train['count']:,} "
            f"training items; accuracy {hidden['accuracy']:.4f} vs {train['accuracy']:.4f}.")
