"""WordPiece training and tokenization, padding and truncation."""

from __future__ import annotations

import numpy as np
import pytest

from reference_models.text import WordPieceTokenizer, pad_sequences
from reference_models.text.wordpiece import SPECIAL_TOKENS, pre_tokenize

CORPUS = ["the player plays; the players played.", "Playing is play, replay it!",
          "a stranger danger", "the strangest player"] * 5


def test_pre_tokenize_splits_words_and_every_punctuation_mark() -> None:
    assert pre_tokenize("Hello, World!  Bye...") == ["hello", ",", "world", "!", "bye", ".",
                                                     ".", "."]
    assert pre_tokenize("Hello", lowercase=False) == ["Hello"]


def test_training_merges_frequent_pieces_into_words() -> None:
    tok = WordPieceTokenizer.train(CORPUS, vocab_size=80)
    assert tok.vocabulary[:5] == list(SPECIAL_TOKENS) and tok.vocab_size <= 80
    assert tok.tokenize("the player") == ["the", "player"]
    assert tok.tokenize("players") == ["players"]  # a frequent word became one token
    pieces = tok.tokenize("replayers")  # a new word: pieces after the first carry ##
    assert pieces[0] == "replay" and len(pieces) > 1
    assert all(p.startswith("##") for p in pieces[1:])
    assert "".join(p.removeprefix("##") for p in tok.tokenize("replaying")) == "replaying"
    assert tok.tokenize("xyz") == ["[UNK]"]  # no piece for x: the whole word is unknown


def test_the_score_rule_is_the_likelihood_ratio() -> None:
    by_score = WordPieceTokenizer.train(CORPUS, vocab_size=60, rule="score")
    by_count = WordPieceTokenizer.train(CORPUS, vocab_size=60)
    assert by_score.vocabulary != by_count.vocabulary
    with pytest.raises(ValueError, match="rule"):
        WordPieceTokenizer.train(CORPUS, vocab_size=60, rule="bpe")
    with pytest.raises(ValueError, match="smaller than"):
        WordPieceTokenizer.train(CORPUS, vocab_size=10)


def test_encode_adds_cls_and_sep_and_decode_glues_pieces(tmp_path) -> None:
    tok = WordPieceTokenizer.train(CORPUS, vocab_size=80)
    ids = tok.encode("The strangest players!")
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and ids.dtype == np.int64
    assert tok.decode(ids) == "the strangest players !"
    assert len(tok.encode("the player plays the players", max_length=4)) == 4
    tok.save(tmp_path / "wp.json")
    again = WordPieceTokenizer.load(tmp_path / "wp.json")
    np.testing.assert_array_equal(again.encode("replay"), tok.encode("replay"))


def test_encode_batch_pads_and_truncates() -> None:
    tok = WordPieceTokenizer.train(CORPUS, vocab_size=80)
    batch = tok.encode_batch(["the player", "the strangest player plays it"], max_length=5)
    assert batch.input_ids.shape == (2, 5)
    np.testing.assert_array_equal(batch.attention_mask[0], [1, 1, 1, 1, 0])
    assert batch.input_ids[0, 4] == tok.pad_id and batch.input_ids[1, 4] == tok.sep_id
    assert batch.key_padding_mask[0, 4] and not batch.key_padding_mask[1].any()
    fixed = tok.encode_batch(["the"], max_length=8, padding="max_length")
    assert fixed.input_ids.shape == (1, 8)


def test_pad_sequences_pads_left_or_right_and_refuses_what_it_cannot_do() -> None:
    batch = pad_sequences([[5, 6, 7], [8]], pad_id=0, side="left")
    np.testing.assert_array_equal(batch.input_ids, [[5, 6, 7], [0, 0, 8]])
    np.testing.assert_array_equal(batch.lengths, [3, 1])
    with pytest.raises(ValueError, match="truncation=True"):
        pad_sequences([[1, 2, 3]], 0, max_length=2, truncation=False)
    with pytest.raises(ValueError, match="needs max_length"):
        pad_sequences([[1]], 0, padding="max_length")
