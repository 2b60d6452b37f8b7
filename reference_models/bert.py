"""A BERT-style encoder with a classification head (one label per sequence) or a sequence-tagging
head (one label per token), and attention pooling.

    config = EncoderConfig(vocab_size=1000, num_classes=5)
    model = EncoderClassifier(config)                # [CLS] pooling by default
    logits = model(ids)                               # int64 [N, T] -> [N, num_classes]
    tagger = TokenClassifier(config)                  # -> [N, T, num_classes]

Token embeddings plus learned position embeddings, pre-norm ``nn.TransformerEncoder`` layers with
GELU and a final LayerNorm (BERT's shape, pre-norm for stable training from scratch). Padding
(``pad_id``) is masked out of every attention layer by ``ids == pad_id``, a tensor op, so the
models export to ONNX with the mask following the input. Pooling turns ``[N, T, E]`` into
``[N, E]``:

- ``"cls"``: the features of the first token (``[CLS]``), as BERT;
- ``"mean"``: the mean over the non-padding tokens;
- ``"attention"``: ``AttentionPooling``, a learned score per token, softmax over the non-padding
  tokens, the weighted sum of their features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_models.nn.layers import Dropout, Embedding, Linear
from reference_models.nn.module import Module
from reference_models.nn.normalization import LayerNorm
from reference_models.nn.transformer import TransformerEncoder, TransformerEncoderLayer
from reference_models.tensor import Tensor, arange, as_tensor, where

__all__ = ["AttentionPooling", "EncoderClassifier", "EncoderConfig", "TextEncoder",
           "TokenClassifier"]


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    num_classes: int
    max_length: int = 64
    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.1
    pad_id: int = 0
    pooling: str = "cls"


class TextEncoder(Module):
    """Token ids ``[N, T]`` -> contextual features ``[N, T, d_model]``."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = Embedding(config.vocab_size, config.d_model)
        self.position_embedding = Embedding(config.max_length, config.d_model)
        self.dropout = Dropout(config.dropout)
        layer = TransformerEncoderLayer(config.d_model, config.nhead, config.dim_feedforward,
                                        config.dropout, activation="gelu", batch_first=True,
                                        norm_first=True)
        self.encoder = TransformerEncoder(layer, config.num_layers, norm=LayerNorm(config.d_model))

    def forward(self, ids: Tensor | np.ndarray) -> Tensor:
        ids = as_tensor(ids)
        t = ids.shape[1]
        if t > self.config.max_length:
            raise ValueError(f"{t} tokens exceed max_length {self.config.max_length}; truncate "
                             "them (e.g. encode_batch(..., max_length=))")
        h = self.token_embedding(ids) + self.position_embedding(arange(t))
        return self.encoder(self.dropout(h), src_key_padding_mask=ids == self.config.pad_id)


class AttentionPooling(Module):
    """``softmax`` over the tokens of a learned score ``w . h_t`` (padding excluded), then the
    weighted sum of the features: the sequence's summary the model learns to look at."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = Linear(d_model, 1)

    def forward(self, features: Tensor, padding: Tensor) -> Tensor:
        scores = self.score(features).squeeze(-1)  # [N, T]
        weights = where(padding, -np.inf, scores).softmax(dim=-1)
        return (weights.unsqueeze(-1) * features).sum(dim=1)


class EncoderClassifier(Module):
    """One label per sequence: encoder, pooling, dropout, linear head."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.pooling not in ("cls", "mean", "attention"):
            raise ValueError(f"pooling must be 'cls', 'mean' or 'attention', not "
                             f"{config.pooling!r}")
        self.config = config
        self.encoder = TextEncoder(config)
        self.pool = AttentionPooling(config.d_model) if config.pooling == "attention" else None
        self.dropout = Dropout(config.dropout)
        self.head = Linear(config.d_model, config.num_classes)

    def forward(self, ids: Tensor | np.ndarray) -> Tensor:
        ids = as_tensor(ids)
        h = self.encoder(ids)
        padding = ids == self.config.pad_id
        if self.config.pooling == "cls":
            pooled = h[:, 0]
        elif self.config.pooling == "mean":
            keep = where(padding, 0.0, 1.0).unsqueeze(-1)  # [N, T, 1]
            pooled = (h * keep).sum(dim=1) / keep.sum(dim=1)
        else:
            pooled = self.pool(h, padding)
        return self.head(self.dropout(pooled))


class TokenClassifier(Module):
    """One label per token (sequence tagging): encoder, dropout, linear head on every position.
    Train with ``cross_entropy(..., ignore_index=-100)`` on the labels of padding set to -100."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config)
        self.dropout = Dropout(config.dropout)
        self.head = Linear(config.d_model, config.num_classes)

    def forward(self, ids: Tensor | np.ndarray) -> Tensor:
        return self.head(self.dropout(self.encoder(ids)))
