"""The reference framework: numpy tensors with autograd, layers, optimizers and ONNX export.

Names mirror PyTorch (``Tensor``, ``nn.Conv2d``, ``optim.SGD``, ``no_grad``), so tutorials carry over.
"""

from reference_models import nn, optim
from reference_models.allocator import keep_freed_memory
from reference_models.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from reference_models.random import default_generator, manual_seed
from reference_models.tensor import (
    Tensor,
    arange,
    as_tensor,
    cat,
    exp,
    gather,
    log,
    matmul,
    ones,
    ones_like,
    rand,
    randn,
    sqrt,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)

keep_freed_memory()


def export_onnx(*args, **kwargs):  # imported lazily: onnx is only needed for export
    """Trace ``model`` on ``example_input`` and write a standard ONNX file (see ``export``)."""
    from reference_models.export import export_onnx as _export_onnx

    return _export_onnx(*args, **kwargs)


__all__ = [
    "Tensor", "arange", "as_tensor", "cat", "default_generator", "enable_grad", "exp",
    "export_onnx", "gather", "is_grad_enabled", "log", "manual_seed", "matmul", "nn", "no_grad",
    "ones", "ones_like", "optim", "rand", "randn", "set_grad_enabled", "sqrt", "stack", "tensor",
    "where", "zeros", "zeros_like",
]
