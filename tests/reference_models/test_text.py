"""Tokenizers: the tinygpt vocabulary, unknown characters, BPE training, round trips, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluator.tasks import TINYGPT_VOCABULARY
from reference_models.text import ByteBPETokenizer, CharTokenizer

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 20


def test_tinygpt_vocabulary_is_the_tasks() -> None:
    tok = CharTokenizer.tinygpt()
    assert tok.vocab_size == 65 and tok.vocabulary == TINYGPT_VOCABULARY
    ids = tok.encode("To be, or not to be?\n")
    assert ids.dtype == np.int64
    assert ids[0] == TINYGPT_VOCABULARY.index("T") and ids[-1] == 0  # "\n" sorts first
    assert tok.decode(ids) == "To be, or not to be?\n"


def test_unknown_characters_raise_or_map_to_the_declared_token() -> None:
    tok = CharTokenizer.tinygpt()
    with pytest.raises(ValueError, match=r"2 characters are not in the vocabulary.*'é'"):
        tok.encode("café!é")
    lenient = CharTokenizer(TINYGPT_VOCABULARY, unk_token="?")
    ids = lenient.encode("café")
    assert len(ids) == 4 and lenient.decode(ids) == "caf?"
    with pytest.raises(ValueError, match="unk_token"):
        CharTokenizer("abc", unk_token="?")


def test_char_tokenizer_from_corpus_and_files(tmp_path: Path) -> None:
    tok = CharTokenizer.from_corpus("hello world")
    assert tok.vocabulary == " dehlorw"
    tok.save(tmp_path / "char.json")
    again = CharTokenizer.load(tmp_path / "char.json")
    assert again.vocabulary == tok.vocabulary
    assert again.decode(again.encode("world hello")) == "world hello"
    with pytest.raises(ValueError, match="token ids must be in"):
        tok.decode([99])


def test_bpe_learns_merges_and_compresses() -> None:
    tok = ByteBPETokenizer.train(CORPUS, vocab_size=300)
    assert tok.vocab_size == 300
    ids = tok.encode(CORPUS)
    assert len(ids) < len(CORPUS.encode()) / 2  # 44 merges already halve the length
    assert tok.decode(ids) == CORPUS
    assert tok.token_bytes(int(tok.encode(" Citizen")[0])).startswith(b" Ci")


@pytest.mark.parametrize("text", [
    "", "plain ascii", "naïve café — “quotes”", "日本語のテキスト", "emoji 🎭🗡️ and\ttabs\r\n",
    "\x00\x01 control", "  leading and trailing  ", "x" * 1000,
])
def test_bpe_round_trips_any_utf8(text: str) -> None:
    tok = ByteBPETokenizer.train(CORPUS, vocab_size=320, special_tokens=["<|endoftext|>"])
    ids = tok.encode(text)
    assert ((0 <= ids) & (ids < tok.vocab_size)).all()
    assert tok.decode(ids) == text


def test_special_tokens_are_single_ids_and_never_split(tmp_path: Path) -> None:
    tok = ByteBPETokenizer.train(CORPUS, vocab_size=300, special_tokens=["<|endoftext|>"])
    eot = tok.special_tokens["<|endoftext|>"]
    assert eot == 299
    ids = tok.encode("Speak.<|endoftext|>All:")
    assert (ids == eot).sum() == 1
    assert tok.decode(ids) == "Speak.<|endoftext|>All:"
    as_text = tok.encode("Speak.<|endoftext|>All:", allowed_special="none")
    assert eot not in as_text and tok.decode(as_text) == "Speak.<|endoftext|>All:"
    with pytest.raises(ValueError, match="not special tokens"):
        tok.encode("x", allowed_special={"<|unknown|>"})


def test_bpe_save_and_load(tmp_path: Path) -> None:
    tok = ByteBPETokenizer.train(CORPUS, vocab_size=290, special_tokens=["<pad>", "<eos>"])
    path = tmp_path / "bpe.json"
    tok.save(path)
    data = json.loads(path.read_text())
    assert data["type"] == "byte_bpe" and len(data["merges"]) == 290 - 256 - 2
    again = ByteBPETokenizer.load(path)
    text = "Before we proceed<eos> any further 🎭"
    np.testing.assert_array_equal(again.encode(text), tok.encode(text))
    assert again.special_tokens == {"<pad>": 288, "<eos>": 289}
    (tmp_path / "char.json").write_text(json.dumps({"type": "char", "vocabulary": "ab"}))
    with pytest.raises(ValueError, match="not a byte-level BPE file"):
        ByteBPETokenizer.load(tmp_path / "char.json")


def test_bpe_training_is_deterministic_and_checks_the_size() -> None:
    a = ByteBPETokenizer.train(CORPUS, vocab_size=280)
    b = ByteBPETokenizer.train(CORPUS, vocab_size=280)
    assert a.merges == b.merges
    with pytest.raises(ValueError, match="smaller than the 256 byte ids"):
        ByteBPETokenizer.train(CORPUS, vocab_size=200)


def test_bpe_merge_order_matches_a_naive_trainer() -> None:
    """The incremental trainer agrees with recounting every pair from scratch at each merge."""
    text = "low lower lowest newer wider new " * 5
    tok = ByteBPETokenizer.train(text, vocab_size=256 + 12, min_frequency=1)
    import re

    from reference_models.text.bpe import PRETOKENIZE_PATTERN, _merge

    words = [list(p.encode()) for p in re.findall(PRETOKENIZE_PATTERN, text)]
    expected = []
    for step in range(12):
        counts: dict = {}
        for word in words:
            for pair in zip(word, word[1:], strict=False):
                counts[pair] = counts.get(pair, 0) + 1
        best = max(counts.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))[0]
        expected.append(best)
        words = [_merge(word, best, 256 + step) for word in words]
    assert tok.merges == expected
