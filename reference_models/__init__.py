"""The reference framework: numpy tensors with autograd, layers, optimizers and ONNX export.

Names mirror PyTorch (``Tensor``, ``nn.Conv2d``, ``optim.SGD``, ``no_grad``), so a PyTorch program
runs with ``import reference_models as torch``; docs/from-pytorch.md lists what differs.
"""

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from reference_models import autograd, nn, optim, utils
from reference_models.allocator import keep_freed_memory
from reference_models.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from reference_models.checkpoint import load, save
from reference_models.device import cuda, device
from reference_models.random import default_generator, manual_seed, seed
from reference_models.tensor import (
    Tensor,
    TensorData,
    ValuesIndices,
    arange,
    as_tensor,
    cat,
    clamp,
    cos,
    cumsum,
    empty,
    equal,
    exp,
    expand,
    eye,
    from_numpy,
    full,
    full_like,
    gather,
    linspace,
    log,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    minimum,
    multinomial,
    norm,
    ones,
    ones_like,
    pow,  # noqa: F401 - torch.pow; not in __all__ (it would replace the builtin)
    prod,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    stack,
    tensor,
    topk,
    tril,
    triu,
    where,
    zeros,
    zeros_like,
)

keep_freed_memory()

# PyTorch's dtype names: numpy's types, which compare equal to a tensor's dtype
# (``x.dtype == torch.float32``) and are accepted wherever a dtype is.
float32 = float = np.float32
float64 = double = np.float64
float16 = half = np.float16
int64 = long = np.int64
int32 = int = np.int32
int16 = short = np.int16
int8 = np.int8
uint8 = np.uint8
bool = np.bool_
dtype = np.dtype


def _method(name: str) -> Callable[..., Any]:
    def function(input: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(as_tensor(input), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``torch.{name}(input, ...)``: the same as ``input.{name}(...)``."
    return function


# torch.<name>(x, ...) spellings of tensor methods (torch.max(x, 1), torch.argmax(x, dim=1), ...)
_METHOD_FUNCTIONS = [
    "abs", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "argsort", "chunk",
    "clone", "detach", "eq", "flatten", "flip", "floor", "ge", "gt", "isnan", "le", "lt", "max",
    "mean", "min", "mm", "ne", "numel", "permute", "relu", "reshape", "round", "rsqrt", "sigmoid",
    "sign", "squeeze", "std", "sum", "t", "tanh", "transpose", "unbind", "unsqueeze", "var",
]
for _name in _METHOD_FUNCTIONS:
    globals()[_name] = _method(_name)
del _name


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


inference_mode = no_grad  # the same effect here: nothing is recorded


def export_onnx(*args, **kwargs):  # imported lazily: onnx is only needed for export
    """Trace ``model`` on ``example_input`` and write a standard ONNX file (see ``export``)."""
    from reference_models.export import export_onnx as _export_onnx

    return _export_onnx(*args, **kwargs)


# ``from reference_models import *`` must not replace Python's own float, int, max, sum...
__all__ = [
    "Tensor", "TensorData", "ValuesIndices", "arange", "as_tensor", "autograd", "cat", "clamp",
    "cos", "cuda", "cumsum", "default_generator", "device", "dtype", "empty", "enable_grad", "equal",
    "exp", "expand", "export_onnx", "eye", "float16", "float32", "float64", "from_numpy", "full",
    "full_like", "gather", "inference_mode", "int8", "int16", "int32", "int64",
    "is_grad_enabled", "is_tensor", "linspace", "log", "log_softmax", "logsumexp",
    "manual_seed", "matmul", "maximum", "minimum", "multinomial", "nn", "no_grad", "norm",
    "numel", "ones", "ones_like", "optim", "prod", "rand", "rand_like", "randint", "utils",
    "randn", "randn_like", "randperm", "save", "seed", "set_grad_enabled", "sin", "softmax",
    "sort", "load",
    "split", "sqrt", "stack", "tensor", "topk", "tril", "triu", "uint8", "where", "zeros",
    "zeros_like",
]
__all__ += [name for name in _METHOD_FUNCTIONS if not hasattr(builtins, name)]
