"""Encoder-decoders end to end: greedy and beam search, BLEU / perplexity / exact match, attention
maps and their heat maps, ONNX export of a decoding step, and the seq2seq recipe scaled down."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.attention_maps import attention_maps, plot_attention, plot_attention_maps
from reference_models.decoding import beam_search, greedy_decode
from reference_models.export import export_onnx
from reference_models.gpt import GPT, GPTConfig
from reference_models.metrics import (
    bits_per_token,
    corpus_bleu,
    exact_match,
    perplexity,
    sentence_bleu,
)
from reference_models.recipes import seq2seq as recipe
from reference_models.seq2seq import Seq2SeqStep, Seq2SeqTransformer

BOS, EOS, A, B = 1, 2, 3, 4


class TableModel:
    """A fake encoder-decoder whose next-token probabilities depend on the prefix only."""

    training = False

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]) -> None:
        self.table = table

    def train(self, mode: bool = True) -> None:
        pass

    def eval(self) -> None:
        pass

    def encode(self, src: rm.Tensor) -> rm.Tensor:
        return rm.Tensor(np.zeros((src.shape[0], 1, 1), dtype=np.float32))

    def decode(self, tgt: rm.Tensor, memory: rm.Tensor, src) -> rm.Tensor:
        logits = np.full((tgt.shape[0], tgt.shape[1], 5), -1e9)
        for row, prefix in enumerate(tgt.data.tolist()):
            probs = self.table.get(tuple(prefix[1:]), {EOS: 1.0})
            for token, p in probs.items():
                logits[row, -1, token] = math.log(p)
        return rm.Tensor(logits.astype(np.float32))


# greedy takes A (0.6) and ends with p = 0.6 * 0.34; B then EOS has p = 0.4 * 0.9 = 0.36
TRAP = {(): {A: 0.6, B: 0.4}, (A,): {EOS: 0.34, A: 0.33, B: 0.33}, (B,): {EOS: 0.9, A: 0.1}}


def test_beam_search_finds_the_likelier_output_greedy_misses() -> None:
    src = np.ones((2, 3), dtype=np.int64)
    model = TableModel(TRAP)
    assert greedy_decode(model, src, BOS, EOS, 5) == [[A], [A]]
    assert beam_search(model, src, BOS, EOS, 5, beam_size=2, length_penalty=0.0) == [[B], [B]]
    assert beam_search(model, src, BOS, EOS, 5, beam_size=1) == [[A], [A]]  # beam 1 = greedy
    hyps = beam_search(model, src, BOS, EOS, 5, beam_size=2, length_penalty=0.0,
                       return_hypotheses=True)[0]
    assert hyps[0].log_prob == pytest.approx(math.log(0.36), rel=1e-6)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_the_length_penalty_decides_between_short_and_long_outputs() -> None:
    # [A] ends at once with p = 0.5 * 0.5 = 0.25; [B, B, B] has p = 0.5 * 0.8^2 * 0.7 = 0.224:
    # lower in total, higher per token
    table = {(): {A: 0.5, B: 0.5}, (A,): {EOS: 0.5, A: 0.5}, (B,): {B: 0.8, EOS: 0.2},
             (B, B): {B: 0.8, EOS: 0.2}, (B, B, B): {EOS: 0.7, B: 0.3}}
    src = np.ones((1, 2), dtype=np.int64)
    model = TableModel(table)
    kwargs = dict(beam_size=3, early_stopping=False)
    assert beam_search(model, src, BOS, EOS, 6, length_penalty=0.0, **kwargs) == [[A]]
    assert beam_search(model, src, BOS, EOS, 6, length_penalty=1.0, **kwargs) == [[B, B, B]]


def test_decoding_stops_at_max_length_without_eos() -> None:
    model = TableModel({(): {A: 1.0}, (A,): {A: 1.0}, (A, A): {A: 1.0}, (A, A, A): {A: 1.0}})
    src = np.ones((1, 2), dtype=np.int64)
    assert greedy_decode(model, src, BOS, EOS, 3) == [[A, A, A]]
    assert beam_search(model, src, BOS, EOS, 3, beam_size=2) == [[A, A, A]]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, BOS, EOS, 3, beam_size=0)


# ----------------------------------------------------------------------------- metrics
def test_bleu_is_papinenis() -> None:
    reference = "the cat is on the mat".split()
    # clipped unigram precision: "the" counts at most twice
    assert corpus_bleu([["the"] * 7], [reference], max_n=1) == pytest.approx(2 / 7)
    # 2 of 2 unigrams and 1 of 1 bigram match; 2 words against 6: brevity penalty e^(1 - 3)
    assert corpus_bleu([["the", "cat"]], [reference], max_n=2) == pytest.approx(math.exp(-2))
    assert corpus_bleu([reference], [reference]) == pytest.approx(1.0)
    assert corpus_bleu([["a", "b", "c"]], [reference]) == 0.0
    # two references: the closer length and the best counts are used
    assert corpus_bleu([["the", "cat"]], [[["the", "cat"], reference]], max_n=2) == 1.0
    assert 0 < sentence_bleu(list("2021-03-05"), "2021-03-06") < 1
    assert exact_match(["ab", "cd"], ["ab", "ce"]) == 0.5


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size() -> None:
    logits = np.zeros((3, 4, 10))
    targets = np.arange(12).reshape(3, 4) % 10
    assert perplexity(logits, targets) == pytest.approx(10.0)
    assert bits_per_token(logits, targets) == pytest.approx(math.log2(10))
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    confident = np.full((1, 2, 10), -30.0)
    confident[0, 0, 3] = 30.0
    # the second position is padding: only the confident right answer counts
    assert perplexity(confident, np.array([[3, 0]]), ignore_index=0) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- model, maps
def small_model(seed: int = 0) -> Seq2SeqTransformer:
    rm.manual_seed(seed)
    return Seq2SeqTransformer(12, 9, d_model=16, nhead=2, num_encoder_layers=1,
                              num_decoder_layers=2, dim_feedforward=32, max_length=16)


def test_teacher_forced_logits_do_not_see_later_target_tokens() -> None:
    model = small_model().eval()
    src = np.array([[3, 4, 5, 0]])
    tgt = np.array([[1, 5, 6, 7]])
    changed = tgt.copy()
    changed[0, 3] = 8
    a, b = model(src, tgt).data, model(src, changed).data
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-6, atol=1e-6)
    # padding in the source changes nothing: masked out of encoder and cross-attention
    longer = np.array([[3, 4, 5, 0, 0, 0]])
    np.testing.assert_allclose(model(longer, tgt).data, a, rtol=1e-5, atol=1e-5)


def test_attention_maps_hold_every_head_of_every_layer() -> None:
    model = small_model()
    src, tgt = np.array([[3, 4, 5, 0], [6, 7, 8, 9]]), np.array([[1, 5, 6], [1, 2, 3]])
    maps = attention_maps(model, src, tgt)
    assert [(m.name.split(".")[1], m.kind) for m in maps] == [
        ("encoder", "self"), ("decoder", "self"), ("decoder", "cross"), ("decoder", "self"),
        ("decoder", "cross")]
    encoder_self, decoder_self, cross = maps[0].weights, maps[1].weights, maps[2].weights
    assert encoder_self.shape == (2, 2, 4, 4) and cross.shape == (2, 2, 3, 4)
    for m in maps:
        np.testing.assert_allclose(m.weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(encoder_self[0, :, :, 3] == 0) and np.all(cross[0, :, :, 3] == 0)  # padding
    assert np.all(np.triu(decoder_self[1], k=1) == 0)  # causal
    # the same weights as nn.MultiheadAttention's need_weights gives
    model.eval()
    layer = model.transformer.encoder.layers[0]
    x = layer.norm1(model._embed(model.src_embed, rm.Tensor(src)))  # pre-norm layers
    _, averaged = layer.self_attn(x, x, x, key_padding_mask=src == 0)
    np.testing.assert_allclose(encoder_self.mean(axis=1), averaged.data, rtol=1e-5, atol=1e-6)
    assert not any(m.keep_attention_weights for m in model.modules()
                   if isinstance(m, nn.MultiheadAttention))


def test_gpt_attention_maps_are_causal() -> None:
    rm.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, context=8, n_layer=2, n_head=2, n_embd=16))
    maps = attention_maps(gpt, np.array([[1, 2, 3, 4, 5]]))
    assert len(maps) == 2 and maps[0].weights.shape == (1, 2, 5, 5)
    assert np.all(np.triu(maps[1].weights[0], k=1) == 0)
    with pytest.raises(ValueError, match="no attention layer"):
        attention_maps(nn.Linear(2, 2), rm.Tensor(np.zeros((1, 2))))


def test_heat_maps_put_the_tokens_on_the_axes(tmp_path) -> None:
    model = small_model()
    src, tgt = np.array([[3, 4, 5, 6]]), np.array([[1, 5, 6]])
    maps = attention_maps(model, src, tgt)
    source, target = list("abcd"), ["<s>", "x", "y"]
    fig = plot_attention(maps[2], target, source)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == source
    assert [t.get_text() for t in ax.get_yticklabels()] == target
    assert len(fig.axes) == 2 + 1  # two heads and the colour bar
    path = plot_attention_maps(maps, {"source": source, "target": target},
                               path=tmp_path / "maps.png")
    assert path is not None and (tmp_path / "maps.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="query tokens"):
        plot_attention(maps[2], source, source)


def test_a_decoding_step_exports_and_runs_in_onnxruntime() -> None:
    model = small_model(1)
    example = np.array([[3, 4, 5, 0, 0, 1, 5, 6], [6, 7, 8, 9, 10, 1, 2, 3]], dtype=np.int64)
    export_onnx(Seq2SeqStep(model, 5), example, None)  # raises unless ORT agrees to 1e-4


# ----------------------------------------------------------------------------- the recipe
def test_the_date_task_pairs_formats_with_iso_dates() -> None:
    pairs = recipe.make_pairs(np.array([0, 44_000]), np.random.default_rng(0))
    assert pairs[0][1] == "1900-01-01" and pairs[1][1] == "2020-06-20"
    src, tgt_in, tgt_out = recipe.encode_batch(pairs)
    assert tgt_in[0, 0] == recipe.BOS and tgt_out[0, 10] == recipe.EOS
    np.testing.assert_array_equal(tgt_in[:, 1:], tgt_out[:, :-1])  # shifted by one
    assert recipe.TOKENIZER.decode(src[0][src[0] != recipe.PAD]) == pairs[0][0]


def test_the_seq2seq_recipe_trains_and_decodes_scaled_down(tmp_path) -> None:
    result = recipe.train(recipe.CONFIG.replace(steps=40, test_size=16, d_model=32,
                                                dim_feedforward=64, beam_size=2),
                          out_dir=tmp_path, progress=False)
    assert result.final_loss < math.log(recipe.TOKENIZER.vocab_size)  # below uniform guessing
    for value in (result.greedy_exact_match, result.greedy_bleu, result.beam_exact_match,
                  result.beam_bleu):
        assert 0.0 <= value <= 1.0
    assert (tmp_path / "seq2seq_dates.run.json").is_file()
