"""Language-track throughput: tokenizer encoding speed and generation with and without a KV cache.

    ARENA_DATA_DIR=/tmp/arena-data .venv/bin/python benchmarks/language.py [--bpe-vocab 512]

Encodes the tinygpt training text (the first 90% of Tiny Shakespeare, or a built-in sample when
the data is not prepared) with the character tokenizer and with a byte-level BPE trained on it,
and generates 200 tokens from the TinyGPT baseline's architecture (4 layers, width 128, context
256 here so the cache is used all the way) with and without the cache. Prints rates and ratios,
and the load average: on a busy machine the figures are low and noisy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its evaluator.py would shadow the
# evaluator package: put the repository root first instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

if __name__ == "__main__":  # one BLAS thread: generation is latency-bound, not GEMM-bound
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import reference_models as rm  # noqa: E402
from reference_models.generate import tokens_per_second  # noqa: E402
from reference_models.gpt import GPT, GPTConfig  # noqa: E402
from reference_models.text import ByteBPETokenizer, CharTokenizer  # noqa: E402


def training_text() -> tuple[str, str]:
    try:
        from reference_models.data import load_task_data

        ids, _ = load_task_data("tinygpt", "train", None, 0)
        return CharTokenizer.tinygpt().decode(ids), "tinygpt training text"
    except Exception as error:  # noqa: BLE001 - no prepared data: a sample keeps it runnable
        print(f"(no tinygpt data: {error})")
        sample = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 4000
        return sample, "built-in sample (no ARENA_DATA_DIR)"


def rate(fn, size: int) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return size / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpe-vocab", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=200)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    text, source = training_text()
    print(f"text: {source}, {len(text):,} characters")
    char = CharTokenizer.tinygpt()
    chars_per_s, _ = rate(lambda: char.encode(text), len(text))
    print(f"CharTokenizer.encode: {chars_per_s / 1e6:8.2f} M chars/s")
    train_part = text[:300_000]
    _, train_seconds = rate(lambda: ByteBPETokenizer.train(train_part, args.bpe_vocab), 1)
    bpe = ByteBPETokenizer.train(train_part, args.bpe_vocab)
    print(f"ByteBPETokenizer.train ({args.bpe_vocab} ids on {len(train_part):,} chars): "
          f"{train_seconds:.1f} s")
    bpe_rate, _ = rate(lambda: bpe.encode(text), len(text))
    bpe._cache.clear()
    cold_rate, _ = rate(lambda: bpe.encode(text[:200_000]), 200_000)
    tokens = len(bpe.encode(text))
    print(f"ByteBPETokenizer.encode: {bpe_rate / 1e6:8.2f} M chars/s warm cache, "
          f"{cold_rate / 1e6:.2f} M chars/s cold; {len(text) / tokens:.2f} chars per token")
    rm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, context=256, n_layer=4, n_head=4, n_embd=128))
    new = args.new_tokens
    cached = tokens_per_second(model, new_tokens=new, use_cache=True)
    uncached = tokens_per_second(model, new_tokens=new, use_cache=False)
    print(f"generate {new} tokens, TinyGPT 4x128: {cached:7.1f} tok/s with KV cache, "
          f"{uncached:7.1f} tok/s without ({cached / uncached:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
