"""Compression: quantization (PTQ, QAT, dynamic, INT4), pruning, distillation, low-rank
factorization, and a comparison report computed by the evaluator.

Each technique is its own module; see ``docs/compression.md`` for measured trade-offs.
"""
