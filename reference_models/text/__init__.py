"""Text to token ids and back: character, byte-level BPE and WordPiece tokenizers; padding."""

from reference_models.text.bpe import ByteBPETokenizer
from reference_models.text.char import CharTokenizer
from reference_models.text.padding import PaddedBatch, pad_sequences
from reference_models.text.wordpiece import WordPieceTokenizer

__all__ = ["ByteBPETokenizer", "CharTokenizer", "PaddedBatch", "WordPieceTokenizer",
           "pad_sequences"]
