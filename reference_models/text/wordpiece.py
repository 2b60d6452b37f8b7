"""WordPiece (BERT's tokenizer): words split into the longest pieces of a vocabulary.

    tok = WordPieceTokenizer.train(lines, vocab_size=1000)
    ids = tok.encode("To be, or not to be")          # [CLS] to be , or not to be [SEP]
    tok.tokenize("unbelievable")                     # ['un', '##bel', '##iev', '##able']
    batch = tok.encode_batch(lines, max_length=32)   # padded ids and attention mask

Text is split into words at whitespace and punctuation (each punctuation mark is a word), lower-cased
if ``lowercase``. Each word is then cut greedily, longest match first, into pieces of the
vocabulary; pieces after the first carry the ``##`` prefix. A word that cannot be cut becomes
``[UNK]``. Training starts from single characters and repeatedly merges a pair of adjacent pieces:
by default the most frequent pair (what Hugging Face's WordPiece trainer does), or with
``rule="score"`` the pair with the highest ``count(ab) / (count(a) * count(b))`` (the score of the
WordPiece papers, which prefers pairs whose parts are rarely seen apart; on a small vocabulary it
spends the merges on rare whole words).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from reference_models.text.padding import PaddedBatch, pad_sequences

__all__ = ["SPECIAL_TOKENS", "WordPieceTokenizer", "pre_tokenize"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PREFIX = "##"


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P") or (ch.isascii() and not ch.isalnum()
                                                        and not ch.isspace())


def pre_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words of ``text``: split at whitespace, every punctuation character a word of its own."""
    if lowercase:
        text = text.lower()
    words, current = [], []
    for ch in text:
        if ch.isspace() or _is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            if not ch.isspace():
                words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


class WordPieceTokenizer:
    """A WordPiece vocabulary (id = position); the five BERT special tokens come first."""

    def __init__(self, vocabulary: Sequence[str], lowercase: bool = True,
                 max_input_chars_per_word: int = 100) -> None:
        vocabulary = list(vocabulary)
        missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
        if missing:
            raise ValueError(f"the vocabulary lacks the special tokens {missing}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary has repeated tokens")
        self.vocabulary, self.lowercase = vocabulary, lowercase
        self.max_input_chars_per_word = max_input_chars_per_word
        self.token_to_id = {t: i for i, t in enumerate(vocabulary)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.token_to_id[t] for t in SPECIAL_TOKENS)

    # ----------------------------------------------------------------- training
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, lowercase: bool = True,
              min_frequency: int = 1, rule: str = "frequency") -> WordPieceTokenizer:
        """Learn a vocabulary of up to ``vocab_size`` tokens from ``text`` (a string or lines)."""
        if rule not in ("frequency", "score"):
            raise ValueError(f"rule must be 'frequency' or 'score', not {rule!r}")
        lines = [text] if isinstance(text, str) else text
        words = Counter(w for line in lines for w in pre_tokenize(line, lowercase))
        words = Counter({w: c for w, c in words.items() if c >= min_frequency})
        splits = {w: [w[0]] + [PREFIX + ch for ch in w[1:]] for w in words}
        vocabulary = list(SPECIAL_TOKENS)
        seen = set(vocabulary)
        for pieces in splits.values():
            for piece in pieces:
                if piece not in seen:
                    seen.add(piece)
                    vocabulary.append(piece)
        if vocab_size < len(vocabulary):
            raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocabulary)} "
                             "special tokens and characters of the text")
        piece_count: Counter = Counter()
        pair_count: Counter = Counter()
        pair_words: dict[tuple[str, str], set[str]] = defaultdict(set)
        for w, c in words.items():
            _count(splits[w], c, piece_count, pair_count, pair_words, w, +1)
        while len(vocabulary) < vocab_size and pair_count:
            if rule == "frequency":
                best = max(pair_count, key=lambda p: (pair_count[p], p))
            else:
                best = max(pair_count, key=lambda p: (pair_count[p] / (piece_count[p[0]]
                                                                        * piece_count[p[1]]), p))
            a, b = best
            merged = a + (b[len(PREFIX):] if b.startswith(PREFIX) else b)
            for w in list(pair_words[best]):
                c = words[w]
                _count(splits[w], c, piece_count, pair_count, pair_words, w, -1)
                splits[w] = _merge(splits[w], a, b, merged)
                _count(splits[w], c, piece_count, pair_count, pair_words, w, +1)
            pair_count.pop(best, None)
            if merged not in seen:
                seen.add(merged)
                vocabulary.append(merged)
        return cls(vocabulary, lowercase)

    # ----------------------------------------------------------------- encoding
    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def __len__(self) -> int:
        return self.vocab_size

    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text`` (no special tokens)."""
        pieces: list[str] = []
        for word in pre_tokenize(text, self.lowercase):
            pieces.extend(self._word_pieces(word))
        return pieces

    def _word_pieces(self, word: str) -> list[str]:
        if len(word) > self.max_input_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else PREFIX + word[start:end]
                if piece in self.token_to_id:
                    break
                end -= 1
            if end == start:  # no piece fits: the whole word is unknown (as BERT does)
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def encode(self, text: str, add_special_tokens: bool = True,
               max_length: int | None = None) -> np.ndarray:
        """Token ids (int64); ``[CLS] ... [SEP]`` around them by default; cut to ``max_length``
        (keeping ``[SEP]`` last)."""
        ids = [self.token_to_id[p] for p in self.tokenize(text)]
        if add_special_tokens:
            if max_length is not None:
                ids = ids[:max(max_length - 2, 0)]
            ids = [self.cls_id, *ids, self.sep_id]
        elif max_length is not None:
            ids = ids[:max_length]
        return np.asarray(ids, dtype=np.int64)

    def encode_batch(self, texts: Iterable[str], max_length: int | None = None,
                     padding: str = "longest", add_special_tokens: bool = True) -> PaddedBatch:
        """Encode, truncate to ``max_length`` and pad with ``[PAD]`` (see ``pad_sequences``)."""
        rows = [self.encode(t, add_special_tokens, max_length) for t in texts]
        return pad_sequences(rows, self.pad_id, max_length=max_length, padding=padding)

    def decode(self, ids: Iterable[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Pieces joined back into words (``##`` pieces glued to the one before)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size}), got "
                             f"{int(ids.min())}..{int(ids.max())}")
        words: list[str] = []
        for i in ids.tolist():
            token = self.vocabulary[i]
            if skip_special_tokens and token in SPECIAL_TOKENS:
                continue
            if token.startswith(PREFIX) and words:
                words[-1] += token[len(PREFIX):]
            else:
                words.append(token)
        return " ".join(words)

    # ----------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return {"type": "wordpiece", "vocabulary": self.vocabulary, "lowercase": self.lowercase}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> WordPieceTokenizer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != "wordpiece":
            raise ValueError(f"{path} is not a WordPiece tokenizer file "
                             f"(type {data.get('type')!r})")
        return cls(data["vocabulary"], data.get("lowercase", True))


def _count(pieces: list[str], c: int, piece_count: Counter, pair_count: Counter,
           pair_words: dict, word: str, sign: int) -> None:
    for piece in pieces:
        piece_count[piece] += sign * c
    for pair in zip(pieces, pieces[1:], strict=False):
        pair_count[pair] += sign * c
        if sign > 0:
            pair_words[pair].add(word)
        elif pair_count[pair] <= 0:
            del pair_count[pair]


def _merge(pieces: list[str], a: str, b: str, merged: str) -> list[str]:
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out
