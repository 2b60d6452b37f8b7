"""Neural network layers (``reference_models.nn``), named like ``torch.nn``."""

from reference_models.nn import functional, init, utils
from reference_models.nn.attention import CausalSelfAttention, KVCache, MultiheadAttention
from reference_models.nn.layers import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    BCELoss,
    BCEWithLogitsLoss,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    CrossEntropyLoss,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    GroupNorm,
    Identity,
    L1Loss,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ModuleDict,
    ModuleList,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
)
from reference_models.nn.module import Module, Parameter, RemovableHandle
from reference_models.nn.normalization import LayerNorm, RMSNorm
from reference_models.nn.positional import (
    ALiBi,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)
from reference_models.nn.recurrent import GRU, LSTM, RNN, RNNBase
from reference_models.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
    "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout",
    "Dropout2d", "Embedding", "Flatten", "GELU", "GroupNorm", "Identity", "L1Loss", "LeakyReLU",
    "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList",
    "NLLLoss", "Parameter", "ReLU", "RemovableHandle", "Sequential", "SiLU", "Sigmoid",
    "Softmax", "Tanh", "Upsample", "functional", "init", "utils",
    # language track
    "CausalSelfAttention", "KVCache", "LayerNorm", "MultiheadAttention", "RMSNorm",
    "RotaryEmbedding", "SinusoidalPositionalEncoding",
    # encoders and encoder-decoders
    "ALiBi", "RelativePositionBias", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
    # recurrent
    "GRU", "LSTM", "RNN", "RNNBase",
]
