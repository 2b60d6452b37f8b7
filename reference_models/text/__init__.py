"""Text to token ids and back: a character tokenizer and a byte-level BPE tokenizer."""

from reference_models.text.bpe import ByteBPETokenizer
from reference_models.text.char import CharTokenizer

__all__ = ["ByteBPETokenizer", "CharTokenizer"]
