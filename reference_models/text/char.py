"""Character-level tokenizer: one id per character of a fixed vocabulary string.

    tok = CharTokenizer.tinygpt()           # the tinygpt task's 65 characters, id = position
    ids = tok.encode("To be, or not")       # int64 array
    text = tok.decode(ids)

A character outside the vocabulary raises a ``ValueError`` naming it, unless the tokenizer was built
with ``unk_token`` (a character of the vocabulary that stands in for every unknown one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["CharTokenizer"]


class CharTokenizer:
    def __init__(self, vocabulary: str, unk_token: str | None = None) -> None:
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary string has repeated characters")
        if not vocabulary:
            raise ValueError("the vocabulary is empty")
        if unk_token is not None and unk_token not in vocabulary:
            raise ValueError(f"unk_token {unk_token!r} must be one of the vocabulary's characters")
        self.vocabulary, self.unk_token = vocabulary, unk_token
        self.unk_id = None if unk_token is None else vocabulary.index(unk_token)
        self.char_to_id = {ch: i for i, ch in enumerate(vocabulary)}
        # A lookup table over code points makes encoding one numpy gather instead of a dict per char.
        self._table = np.full(max(map(ord, vocabulary)) + 1, -1, dtype=np.int64)
        self._table[[ord(ch) for ch in vocabulary]] = np.arange(len(vocabulary))
        self._chars = np.array(list(vocabulary))

    @classmethod
    def from_corpus(cls, text: str | Iterable[str], unk_token: str | None = None) -> CharTokenizer:
        """The sorted set of characters of ``text`` (plus ``unk_token``) as the vocabulary."""
        chars = set(text if isinstance(text, str) else "".join(text))
        if unk_token is not None:
            chars.add(unk_token)
        return cls("".join(sorted(chars)), unk_token)

    @classmethod
    def tinygpt(cls) -> CharTokenizer:
        """The ``tinygpt`` task's fixed vocabulary (``evaluator.tasks.TINYGPT_VOCABULARY``)."""
        from evaluator.tasks import TINYGPT_VOCABULARY

        return cls(TINYGPT_VOCABULARY)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int64) of every character of ``text``."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.full(codes.shape, -1, dtype=np.int64)
        inside = codes < len(self._table)
        ids[inside] = self._table[codes[inside]]
        unknown = ids < 0
        if unknown.any():
            if self.unk_id is None:
                bad = sorted({text[i] for i in np.flatnonzero(unknown)[:1000]})
                raise ValueError(f"{int(unknown.sum())} characters are not in the vocabulary, "
                                 f"e.g. {', '.join(map(repr, bad[:10]))}; clean the text or "
                                 "build the tokenizer with unk_token=")
            ids[unknown] = self.unk_id
        return ids

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size}), got "
                             f"{int(ids.min())}..{int(ids.max())}")
        return "".join(self._chars[ids].tolist())

    # ----------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return {"type": "char", "vocabulary": self.vocabulary, "unk_token": self.unk_token}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != "char":
            raise ValueError(f"{path} is not a character tokenizer file (type {data.get('type')!r})")
        return cls(data["vocabulary"], data.get("unk_token"))
