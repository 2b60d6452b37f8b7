"""Seq2seq recipe: an encoder-decoder transformer that rewrites dates as ISO 8601.

    "Friday, March 5, 2021" -> "2021-03-05"      "5 Mar 2021" -> "2021-03-05"
    "05.03.2021" -> "2021-03-05"                 "March 5, 2021" -> "2021-03-05"

The task is built in code: random dates from 1900 to 2099 written in one of seven formats
(``FORMATS``). The test dates are drawn first and never trained on. Characters are the tokens (ids
0, 1, 2 are padding, BOS and EOS). The model (2 + 2 pre-norm layers, width 64, ~0.2M parameters) is
trained with teacher forcing and cross-entropy, AdamW, warm-up and cosine decay; then the test set
is decoded with greedy search and with beam search and scored with exact match and character BLEU.

    python -m reference_models.recipes.seq2seq            # a few minutes on two busy cores
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_models import manual_seed, optim
from reference_models.decoding import beam_search, greedy_decode
from reference_models.metrics import corpus_bleu, exact_match
from reference_models.nn import functional as F
from reference_models.nn.utils import clip_grad_norm_
from reference_models.parallel import single_threaded_blas
from reference_models.seq2seq import Seq2SeqTransformer
from reference_models.text import CharTokenizer, pad_sequences

NAME = "seq2seq-dates"
PAD, BOS, EOS = 0, 1, 2
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FORMATS = (
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day:02d} {d.year}",
    lambda d: f"{DAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
)
# every character a source or a target can hold, after the three special ids
TOKENIZER = CharTokenizer("\x00\x01\x02" + "".join(sorted(set(
    "".join(MONTHS) + "".join(DAYS) + "0123456789 ,./-"))))
FIRST_DAY, DAY_COUNT = datetime.date(1900, 1, 1), (datetime.date(2100, 1, 1)
                                                    - datetime.date(1900, 1, 1)).days


@dataclass(frozen=True)
class Seq2SeqConfig:
    steps: int = 2500
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    test_size: int = 500
    beam_size: int = 4
    length_penalty: float = 1.0
    seed: int = 0
    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int = 128
    dropout: float = 0.1
    log_every: int = 250

    def replace(self, **changes: Any) -> Seq2SeqConfig:
        return dataclasses.replace(self, **changes)


CONFIG = Seq2SeqConfig()


def make_pairs(days: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(source, target) text for each day number (days since 1900-01-01), in random formats."""
    pairs = []
    for offset, style in zip(days.tolist(), rng.integers(0, len(FORMATS), len(days)).tolist(),
                             strict=True):
        date = FIRST_DAY + datetime.timedelta(days=offset)
        pairs.append((FORMATS[style](date), date.isoformat()))
    return pairs


def encode_batch(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded source ids, decoder inputs ``[BOS, y...]`` and targets ``[y..., EOS]``."""
    src = pad_sequences([TOKENIZER.encode(s) for s, _ in pairs], PAD).input_ids
    targets = [TOKENIZER.encode(t) for _, t in pairs]
    tgt_in = pad_sequences([np.concatenate([[BOS], t]) for t in targets], PAD).input_ids
    tgt_out = pad_sequences([np.concatenate([t, [EOS]]) for t in targets], PAD).input_ids
    return src, tgt_in, tgt_out


def build_model(config: Seq2SeqConfig = CONFIG) -> Seq2SeqTransformer:
    vocab = TOKENIZER.vocab_size
    return Seq2SeqTransformer(vocab, vocab, config.d_model, config.nhead, config.num_layers,
                              config.num_layers, config.dim_feedforward, config.dropout,
                              max_length=64, pad_id=PAD)


@dataclass
class Seq2SeqResult:
    steps: int
    final_loss: float
    training_seconds: float
    greedy_exact_match: float
    greedy_bleu: float
    beam_exact_match: float
    beam_bleu: float
    beam_size: int
    examples: list[tuple[str, str, str, str]]  # source, target, greedy, beam
    model: Seq2SeqTransformer = dataclasses.field(repr=False)

    def summary(self) -> str:
        return (f"{self.steps} steps in {self.training_seconds:.0f} s, final loss "
                f"{self.final_loss:.4f}; greedy: exact match {self.greedy_exact_match:.1%}, "
                f"BLEU {100 * self.greedy_bleu:.1f}; beam {self.beam_size}: exact match "
                f"{self.beam_exact_match:.1%}, BLEU {100 * self.beam_bleu:.1f}")


def evaluate(model: Seq2SeqTransformer, pairs: list[tuple[str, str]], beam_size: int,
             length_penalty: float = 1.0, batch_size: int = 250) -> dict[str, Any]:
    """Greedy and beam decodes of ``pairs``' sources, scored against their targets."""
    greedy, beam = [], []
    for start in range(0, len(pairs), batch_size):
        src = encode_batch(pairs[start:start + batch_size])[0]
        greedy += greedy_decode(model, src, BOS, EOS, max_length=12)
        beam += beam_search(model, src, BOS, EOS, max_length=12, beam_size=beam_size,
                            length_penalty=length_penalty)
    greedy_text = [TOKENIZER.decode(ids) if ids else "" for ids in greedy]
    beam_text = [TOKENIZER.decode(ids) if ids else "" for ids in beam]
    targets = [t for _, t in pairs]
    return {"greedy_exact_match": exact_match(greedy_text, targets),
            "greedy_bleu": corpus_bleu(greedy_text, targets),
            "beam_exact_match": exact_match(beam_text, targets),
            "beam_bleu": corpus_bleu(beam_text, targets),
            "examples": [(s, t, g, b) for (s, t), g, b in
                         zip(pairs[:8], greedy_text[:8], beam_text[:8], strict=True)]}


def train(config: Seq2SeqConfig = CONFIG, out_dir: str | Path | None = None, *,
          progress: bool = True) -> Seq2SeqResult:
    manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    test_days = rng.choice(DAY_COUNT, config.test_size, replace=False)
    test_pairs = make_pairs(test_days, rng)
    held_out = np.zeros(DAY_COUNT, dtype=bool)
    held_out[test_days] = True
    train_days = np.flatnonzero(~held_out)
    model = build_model(config)
    params = list(model.parameters())
    optimizer = optim.AdamW([{"params": [p for p in params if p.ndim >= 2],
                              "weight_decay": config.weight_decay},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=config.lr, betas=(0.9, 0.98))
    scheduler = optim.lr_scheduler.CosineWarmupLR(optimizer, min(config.warmup_steps,
                                                                 config.steps - 1),
                                                  config.steps, min_lr=config.min_lr)
    started, losses = time.perf_counter(), []
    model.train()
    with single_threaded_blas():
        for step in range(1, config.steps + 1):
            pairs = make_pairs(rng.choice(train_days, config.batch_size), rng)
            src, tgt_in, tgt_out = encode_batch(pairs)
            logits = model(src, tgt_in)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                   ignore_index=PAD)
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.data))
            if progress and (step % config.log_every == 0 or step == config.steps):
                print(f"step {step}/{config.steps}: loss {np.mean(losses[-config.log_every:]):.4f}"
                      f" ({time.perf_counter() - started:.0f} s)", flush=True)
        seconds = time.perf_counter() - started
        scores = evaluate(model, test_pairs, config.beam_size, config.length_penalty)
    result = Seq2SeqResult(config.steps, float(np.mean(losses[-50:])), seconds,
                           scores["greedy_exact_match"], scores["greedy_bleu"],
                           scores["beam_exact_match"], scores["beam_bleu"], config.beam_size,
                           scores["examples"], model)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                  if f.name != "model"}
        record["config"] = dataclasses.asdict(config)
        (out / "seq2seq_dates.run.json").write_text(json.dumps(record, indent=1) + "\n")
    if progress:
        print(result.summary())
        for source, target, greedy, beam in result.examples:
            print(f"  {source!r:34} -> greedy {greedy!r}, beam {beam!r} (want {target!r})")
    return result


if __name__ == "__main__":
    train(out_dir="runs")
