"""Neural network layers (``reference_models.nn``), named like ``torch.nn``."""

from reference_models.nn import functional, init, utils
from reference_models.nn.attention import CausalSelfAttention, KVCache, MultiheadAttention
from reference_models.nn.layers import (
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ModuleList,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from reference_models.nn.module import Module, Parameter, RemovableHandle
from reference_models.nn.normalization import LayerNorm, RMSNorm
from reference_models.nn.positional import RotaryEmbedding, SinusoidalPositionalEncoding

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout",
    "Embedding", "Flatten", "GELU", "Identity", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d",
    "Module", "ModuleList", "Parameter", "ReLU", "RemovableHandle", "Sequential", "Sigmoid",
    "Softmax", "Tanh", "functional", "init", "utils",
    # language track
    "CausalSelfAttention", "KVCache", "LayerNorm", "MultiheadAttention", "RMSNorm",
    "RotaryEmbedding", "SinusoidalPositionalEncoding",
]
