"""Compression: quantization (PTQ, QAT, dynamic, INT4), pruning, distillation, low-rank
factorization, and a comparison report computed by the evaluator.

Each technique is its own module; see ``docs/compression.md`` for measured trade-offs.
"""

# The quantization ops' ONNX translations, registered wherever the quantized layers can exist.
from reference_models.compress import qdq_export  # noqa: E402,F401
