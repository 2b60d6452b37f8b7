"""BERT-style recipe: which play of Tiny Shakespeare is a speech from?

The text is a sequence of speeches, each headed by its speaker (``ROMEO:``). Tiny Shakespeare does
not name its plays, but many speakers belong to one play only: ``PLAYS`` lists them for five plays
(Coriolanus, Romeo and Juliet, Measure for Measure, The Taming of the Shrew, The Winter's Tale).
The task keeps those speakers' speeches (without the speaker's name), labelled by play, holds out a
seeded fifth as the test set, trains a WordPiece tokenizer on the training speeches, and trains an
``EncoderClassifier`` ([CLS] + up to 63 pieces of the speech, 2 pre-norm layers, width 64) with
AdamW. It reports test accuracy next to the majority-class baseline. ``task="speaker"`` asks
instead which of the ``num_speakers`` most frequent speakers speaks (much harder: ~700 speeches).

The text comes from the prepared ``tinygpt`` data (``load_task_data``, as the tinygpt recipe),
decoded back to characters.

    python -m reference_models.recipes.encoder_classifier --data-dir /tmp/arena-data
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_models import manual_seed, no_grad, optim
from reference_models.bert import EncoderClassifier, EncoderConfig
from reference_models.data import load_task_data
from reference_models.nn import functional as F
from reference_models.nn.utils import clip_grad_norm_
from reference_models.parallel import single_threaded_blas
from reference_models.text import CharTokenizer, WordPieceTokenizer

NAME = "shakespeare-play"
SPEAKER = re.compile(r"^([A-Z][A-Za-z' ]*[A-Za-z]):$")
PLAYS = {
    "Coriolanus": ("MENENIUS", "CORIOLANUS", "SICINIUS", "BRUTUS", "COMINIUS", "VOLUMNIA",
                   "AUFIDIUS", "MARCIUS", "VIRGILIA", "LARTIUS", "VALERIA"),
    "Romeo and Juliet": ("ROMEO", "JULIET", "Nurse", "BENVOLIO", "MERCUTIO", "FRIAR LAURENCE",
                         "CAPULET", "LADY CAPULET", "MONTAGUE", "PARIS", "TYBALT", "SAMPSON",
                         "GREGORY"),
    "Measure for Measure": ("DUKE VINCENTIO", "ISABELLA", "LUCIO", "ANGELO", "ESCALUS",
                            "Provost", "POMPEY", "CLAUDIO", "ELBOW", "MARIANA",
                            "MISTRESS OVERDONE"),
    "The Taming of the Shrew": ("PETRUCHIO", "TRANIO", "KATHARINA", "BAPTISTA", "HORTENSIO",
                                "GRUMIO", "LUCENTIO", "GREMIO", "BIONDELLO", "BIANCA", "SLY",
                                "CURTIS", "Pedant", "VINCENTIO"),
    "The Winter's Tale": ("LEONTES", "CAMILLO", "AUTOLYCUS", "PAULINA", "POLIXENES", "FLORIZEL",
                          "HERMIONE", "PERDITA", "ANTIGONUS"),
}


@dataclass(frozen=True)
class SpeakerConfig:
    task: str = "play"  # or "speaker"
    num_speakers: int = 5
    vocab_size: int = 2000
    max_length: int = 64
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    seed: int = 0
    pooling: str = "cls"
    d_model: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    limit: int | None = None  # characters of the text to use (quick trials)
    log_every: int = 250

    def replace(self, **changes: Any) -> SpeakerConfig:
        return dataclasses.replace(self, **changes)


CONFIG = SpeakerConfig()


def speeches(text: str) -> list[tuple[str, str]]:
    """``(speaker, speech)`` for every block of the play text that starts with ``NAME:``."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").split("\n")
        match = SPEAKER.match(lines[0].strip()) if lines else None
        if match and len(lines) > 1:
            out.append((match.group(1), " ".join(line.strip() for line in lines[1:])))
    return out


def make_dataset(text: str, task: str = "play", num_speakers: int = 5, seed: int = 0):
    """Train and test ``(speech, label)`` lists and the class names (label = index)."""
    found = speeches(text)
    if task == "play":
        names = list(PLAYS)
        index = {speaker: i for i, play in enumerate(names) for speaker in PLAYS[play]}
    elif task == "speaker":
        names = [name for name, _ in Counter(n for n, _ in found).most_common(num_speakers)]
        index = {name: i for i, name in enumerate(names)}
    else:
        raise ValueError(f"task must be 'play' or 'speaker', not {task!r}")
    examples = [(speech, index[name]) for name, speech in found if name in index]
    order = np.random.default_rng(seed).permutation(len(examples))
    cut = len(examples) // 5
    test = [examples[i] for i in order[:cut]]
    train = [examples[i] for i in order[cut:]]
    return train, test, names


def load_text(data_dir: str | Path | None) -> str:
    ids, _ = load_task_data("tinygpt", "train", data_dir, validation_size=0)
    return CharTokenizer.tinygpt().decode(ids)


@dataclass
class SpeakerResult:
    speakers: list[str]
    train_examples: int
    test_examples: int
    test_accuracy: float
    majority_accuracy: float
    final_loss: float
    training_seconds: float
    model: EncoderClassifier = dataclasses.field(repr=False)
    tokenizer: WordPieceTokenizer = dataclasses.field(repr=False)

    def summary(self) -> str:
        return (f"{len(self.speakers)} classes ({', '.join(self.speakers)}); "
                f"{self.train_examples} training and {self.test_examples} test speeches; test "
                f"accuracy {self.test_accuracy:.1%} (majority class {self.majority_accuracy:.1%}); "
                f"{self.training_seconds:.0f} s of training")


def accuracy(model: EncoderClassifier, ids: np.ndarray, labels: np.ndarray) -> float:
    was_training = model.training
    model.eval()
    with no_grad():
        predictions = np.concatenate([model(ids[i:i + 256]).data.argmax(-1)
                                      for i in range(0, len(ids), 256)])
    model.train(was_training)
    return float((predictions == labels).mean())


def train(config: SpeakerConfig = CONFIG, data_dir: str | Path | None = None, *,
          progress: bool = True, text: str | None = None) -> SpeakerResult:
    manual_seed(config.seed)
    text = load_text(data_dir) if text is None else text
    if config.limit is not None:
        text = text[:config.limit]
    train_set, test_set, names = make_dataset(text, config.task, config.num_speakers, config.seed)
    tokenizer = WordPieceTokenizer.train([s for s, _ in train_set], config.vocab_size)
    x_train = tokenizer.encode_batch([s for s, _ in train_set], config.max_length,
                                     padding="max_length").input_ids
    y_train = np.array([label for _, label in train_set])
    x_test = tokenizer.encode_batch([s for s, _ in test_set], config.max_length,
                                    padding="max_length").input_ids
    y_test = np.array([label for _, label in test_set])
    model = EncoderClassifier(EncoderConfig(
        tokenizer.vocab_size, len(names), config.max_length, config.d_model,
        num_layers=config.num_layers, dropout=config.dropout, pad_id=tokenizer.pad_id,
        pooling=config.pooling))
    params = list(model.parameters())
    optimizer = optim.AdamW([{"params": [p for p in params if p.ndim >= 2],
                              "weight_decay": config.weight_decay},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=config.lr)
    scheduler = optim.lr_scheduler.CosineWarmupLR(
        optimizer, min(config.warmup_steps, config.steps - 1), config.steps)
    rng = np.random.default_rng(config.seed)
    losses, started = [], time.perf_counter()
    if progress:
        print(f"{len(names)} classes, {len(x_train)} training speeches, vocabulary "
              f"{tokenizer.vocab_size}", flush=True)
    model.train()
    with single_threaded_blas():
        for step in range(1, config.steps + 1):
            batch = rng.integers(0, len(x_train), config.batch_size)
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.data))
            if progress and (step % config.log_every == 0 or step == config.steps):
                print(f"step {step}/{config.steps}: loss {np.mean(losses[-config.log_every:]):.4f}"
                      f", test accuracy {accuracy(model, x_test, y_test):.1%}", flush=True)
        seconds = time.perf_counter() - started
        test_accuracy = accuracy(model, x_test, y_test)
    majority = float(np.mean(y_test == np.bincount(y_train).argmax()))
    result = SpeakerResult(names, len(x_train), len(x_test), test_accuracy, majority,
                           float(np.mean(losses[-50:])), seconds, model, tokenizer)
    if progress:
        print(result.summary())
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=CONFIG.steps)
    args = parser.parse_args()
    train(CONFIG.replace(steps=args.steps), args.data_dir)
