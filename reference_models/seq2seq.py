"""An encoder-decoder transformer for sequence-to-sequence tasks, trained with teacher forcing.

    model = Seq2SeqTransformer(src_vocab_size=40, tgt_vocab_size=16, pad_id=0)
    logits = model(src, tgt_in)            # [N, T, V]: tgt_in is the target shifted right (BOS first)
    loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=0)

Teacher forcing: the decoder reads the true previous tokens (``tgt_in = [BOS, y1, ..., y_{T-1}]``)
and learns to predict ``tgt_out = [y1, ..., y_T, EOS]`` at every position at once; the causal mask
keeps each position from seeing its own answer. At inference ``reference_models.decoding`` feeds
back the model's own tokens (greedy or beam search) through ``encode`` and ``decode``.

Token embeddings are scaled by ``sqrt(d_model)`` and get sinusoidal positions, as in the paper;
padding (``pad_id``) is masked out of the encoder's self-attention and of the cross-attention, with
the mask computed from the ids by tensor ops, so it exports.
"""

from __future__ import annotations

import math

import numpy as np

from reference_models.nn.layers import Embedding, Linear
from reference_models.nn.module import Module
from reference_models.nn.positional import SinusoidalPositionalEncoding
from reference_models.nn.transformer import Transformer
from reference_models.tensor import Tensor, as_tensor

__all__ = ["Seq2SeqStep", "Seq2SeqTransformer"]


class Seq2SeqTransformer(Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64,
                 nhead: int = 4, num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: int = 128, dropout: float = 0.1, max_length: int = 64,
                 pad_id: int = 0, norm_first: bool = True) -> None:
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.src_embed = Embedding(src_vocab_size, d_model)
        self.tgt_embed = Embedding(tgt_vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_length)
        self.transformer = Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers,
                                       dim_feedforward, dropout, batch_first=True,
                                       norm_first=norm_first)
        self.generator = Linear(d_model, tgt_vocab_size)

    def _embed(self, table: Embedding, ids: Tensor) -> Tensor:
        return self.positions(table(ids) * math.sqrt(self.d_model))

    def encode(self, src: Tensor | np.ndarray) -> Tensor:
        """``int64 [N, S]`` source ids -> ``[N, S, d_model]`` memory."""
        src = as_tensor(src)
        return self.transformer.encoder(self._embed(self.src_embed, src),
                                        src_key_padding_mask=src == self.pad_id)

    def decode(self, tgt: Tensor | np.ndarray, memory: Tensor,
               src: Tensor | np.ndarray) -> Tensor:
        """Next-token logits ``[N, T, V]`` for every position of the target prefix ``tgt``."""
        src = as_tensor(src)
        h = self.transformer.decoder(self._embed(self.tgt_embed, as_tensor(tgt)), memory,
                                     tgt_is_causal=True,
                                     memory_key_padding_mask=src == self.pad_id)
        return self.generator(h)

    def forward(self, src: Tensor | np.ndarray, tgt: Tensor | np.ndarray) -> Tensor:
        return self.decode(tgt, self.encode(src), src)


class Seq2SeqStep(Module):
    """One decoding step as a single-input model, for ONNX export: ``int64 [N, S + T]`` (source
    ids, then the target prefix) -> ``[N, V]`` logits of the next token."""

    def __init__(self, model: Seq2SeqTransformer, source_length: int) -> None:
        super().__init__()
        self.model, self.source_length = model, source_length

    def forward(self, ids: Tensor) -> Tensor:
        src, tgt = ids[:, :self.source_length], ids[:, self.source_length:]
        return self.model(src, tgt)[:, -1]
