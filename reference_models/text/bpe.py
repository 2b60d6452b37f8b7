"""Byte-level BPE (byte-pair encoding), the tokenizer family of GPT-2 and most LLMs since.

    tok = ByteBPETokenizer.train(text, vocab_size=512, special_tokens=["<|endoftext|>"])
    ids = tok.encode("Wherefore art thou?")
    assert tok.decode(ids) == "Wherefore art thou?"
    tok.save("bpe.json"); tok = ByteBPETokenizer.load("bpe.json")

Ids 0-255 are the raw bytes, so ANY text (any UTF-8, emoji, a language never seen in training)
encodes and decodes back exactly: nothing is unknown. Training repeatedly merges the most frequent
adjacent pair of ids into a new id (``vocab_size - 256 - specials`` merges). Text is first split
into words, numbers, punctuation runs and spaces (GPT-2's pattern), and merges never cross those
pieces. Special tokens (e.g. ``<|endoftext|>``) get their own ids after the merges and are never
split.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["ByteBPETokenizer", "PRETOKENIZE_PATTERN"]

# GPT-2's split, with the standard library's ``re`` (``[^\W\d_]`` is "a letter" in any script).
PRETOKENIZE_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+"""

Pair = tuple[int, int]


class ByteBPETokenizer:
    def __init__(self, merges: Sequence[Pair], special_tokens: Sequence[str] = (),
                 pattern: str = PRETOKENIZE_PATTERN) -> None:
        self.merges: list[Pair] = [(int(a), int(b)) for a, b in merges]
        self.ranks: dict[Pair, int] = {pair: 256 + i for i, pair in enumerate(self.merges)}
        self.vocab: list[bytes] = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            if a >= len(self.vocab) or b >= len(self.vocab):
                raise ValueError(f"merge ({a}, {b}) refers to an id that does not exist yet")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.pattern = pattern
        self._split = re.compile(pattern)
        self.special_tokens: dict[str, int] = {}
        self._cache: dict[str, list[int]] = {}
        self.add_special_tokens(special_tokens)

    # ----------------------------------------------------------------- training
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int,
              special_tokens: Sequence[str] = (), pattern: str = PRETOKENIZE_PATTERN,
              min_frequency: int = 2) -> ByteBPETokenizer:
        """Learn merges from ``text`` until the vocabulary (bytes + merges + specials) reaches
        ``vocab_size``, or no pair occurs ``min_frequency`` times."""
        merges_wanted = vocab_size - 256 - len(special_tokens)
        if merges_wanted < 0:
            raise ValueError(f"vocab_size {vocab_size} is smaller than the 256 byte ids plus "
                             f"{len(special_tokens)} special tokens")
        splitter = re.compile(pattern)
        pieces: Counter[str] = Counter()
        for chunk in ([text] if isinstance(text, str) else text):
            for special in special_tokens:  # special tokens are not training text
                chunk = chunk.replace(special, " ")
            pieces.update(splitter.findall(chunk))
        words = [list(piece.encode("utf-8")) for piece in pieces]
        counts = list(pieces.values())
        pair_counts: Counter[Pair] = Counter()
        where: dict[Pair, set[int]] = {}
        for index, word in enumerate(words):
            for pair in zip(word, word[1:], strict=False):
                pair_counts[pair] += counts[index]
                where.setdefault(pair, set()).add(index)
        merges: list[Pair] = []
        for _ in range(merges_wanted):
            if not pair_counts:
                break
            # the most frequent pair; ties go to the smallest ids, so training is deterministic
            best = max(pair_counts.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))
            if best[1] < min_frequency:
                break
            pair, new_id = best[0], 256 + len(merges)
            merges.append(pair)
            for index in where.pop(pair, ()):
                word, count = words[index], counts[index]
                for old in zip(word, word[1:], strict=False):
                    pair_counts[old] -= count
                    if pair_counts[old] <= 0:
                        del pair_counts[old]
                word = _merge(word, pair, new_id)
                words[index] = word
                for new in zip(word, word[1:], strict=False):
                    pair_counts[new] += count
                    where.setdefault(new, set()).add(index)
        return cls(merges, special_tokens, pattern)

    def add_special_tokens(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            if not token:
                raise ValueError("a special token cannot be empty")
            if token not in self.special_tokens:
                self.special_tokens[token] = len(self.vocab) + len(self.special_tokens)
        self._special_split = (re.compile("(" + "|".join(
            re.escape(t) for t in sorted(self.special_tokens, key=len, reverse=True)) + ")")
            if self.special_tokens else None)

    # ----------------------------------------------------------------- using
    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, allowed_special: str | Iterable[str] = "all") -> np.ndarray:
        """Token ids (int64). ``allowed_special``: ``"all"``, ``"none"`` (special tokens in the
        text are encoded as ordinary text) or a collection of the special tokens to honour."""
        allowed = (set(self.special_tokens) if allowed_special == "all" else set()
                   if allowed_special == "none" else set(allowed_special))
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        ids: list[int] = []
        chunks = self._special_split.split(text) if self._special_split and allowed else [text]
        for chunk in chunks:
            if chunk in allowed:
                ids.append(self.special_tokens[chunk])
                continue
            for piece in self._split.findall(chunk):
                ids.extend(self._encode_piece(piece))
        return np.asarray(ids, dtype=np.int64)

    def _encode_piece(self, piece: str) -> list[int]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        word = list(piece.encode("utf-8"))
        while len(word) > 1:
            # apply the earliest-learned merge present, as training did
            pair = min(zip(word, word[1:], strict=False),
                       key=lambda p: self.ranks.get(p, 1 << 62))
            if pair not in self.ranks:
                break
            word = _merge(word, pair, self.ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[piece] = word
        return word

    def decode(self, ids: Iterable[int] | np.ndarray, errors: str = "replace") -> str:
        """Text of ``ids``. A cut in the middle of a multi-byte character decodes as U+FFFD
        (``errors="strict"`` raises instead)."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def decode_bytes(self, ids: Iterable[int] | np.ndarray) -> bytes:
        specials = {i: t.encode("utf-8") for t, i in self.special_tokens.items()}
        parts = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if 0 <= i < len(self.vocab):
                parts.append(self.vocab[i])
            elif i in specials:
                parts.append(specials[i])
            else:
                raise ValueError(f"token id {i} is outside the vocabulary of {self.vocab_size}")
        return b"".join(parts)

    def token_bytes(self, token_id: int) -> bytes:
        return self.decode_bytes([token_id])

    # ----------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return {"type": "byte_bpe", "version": 1, "pattern": self.pattern,
                "merges": [list(pair) for pair in self.merges],
                "special_tokens": self.special_tokens}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != "byte_bpe":
            raise ValueError(f"{path} is not a byte-level BPE file (type {data.get('type')!r})")
        specials = sorted(data.get("special_tokens", {}).items(), key=lambda item: item[1])
        tokenizer = cls(data["merges"], [token for token, _ in specials], data["pattern"])
        if tokenizer.special_tokens != data.get("special_tokens", {}):
            raise ValueError(f"{path}: special token ids do not follow the merges")
        return tokenizer


def _merge(word: list[int], pair: Pair, new_id: int) -> list[int]:
    """``word`` with every non-overlapping occurrence of ``pair`` (left to right) replaced."""
    out, i, n = [], 0, len(word)
    first, second = pair
    while i < n:
        if i + 1 < n and word[i] == first and word[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out
