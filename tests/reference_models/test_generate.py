"""Generation: the KV cache changes nothing but speed; sampling rules, seeds and budgets."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models.generate import generate, sample_next
from reference_models.gpt import GPT, GPTConfig


def make_model(context: int = 128, **overrides) -> GPT:
    rm.manual_seed(7)
    # a large init spreads the logits, so sampled and greedy paths are not all the same token
    return GPT(GPTConfig(vocab_size=30, context=context, n_layer=2, n_head=4, n_embd=32,
                         init_std=0.3, **overrides))


@pytest.mark.parametrize("overrides", [{}, {"positions": "rope", "n_kv_head": 2}])
def test_100_greedy_tokens_are_identical_with_and_without_the_cache(overrides) -> None:
    model = make_model(**overrides)
    prompt = np.array([[1, 2, 3, 4, 5], [9, 8, 7, 6, 5]])
    cached = generate(model, prompt, 100, greedy=True, use_cache=True)
    recomputed = generate(model, prompt, 100, greedy=True, use_cache=False)
    assert cached.shape == (2, 105)
    np.testing.assert_array_equal(cached, recomputed)
    assert len(np.unique(cached[:, 5:])) > 3  # not a degenerate repetition of one token


def test_100_sampled_tokens_are_identical_with_and_without_the_cache() -> None:
    model = make_model()
    prompt = np.array([3, 1, 4])
    cached = generate(model, prompt, 100, temperature=0.9, top_k=10, seed=5)
    recomputed = generate(model, prompt, 100, temperature=0.9, top_k=10, seed=5,
                          use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)


def test_past_the_context_the_window_slides_identically() -> None:
    model = make_model(context=16)
    prompt = np.array([1, 2, 3])
    np.testing.assert_array_equal(generate(model, prompt, 40, greedy=True),
                                  generate(model, prompt, 40, greedy=True, use_cache=False))


def test_sampling_is_seeded() -> None:
    model = make_model()
    a = generate(model, [1], 50, temperature=1.0, seed=1)
    b = generate(model, [1], 50, temperature=1.0, seed=1)
    c = generate(model, [1], 50, temperature=1.0, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_budget_and_stop_token() -> None:
    model = make_model()
    assert generate(model, [1, 2], 0).tolist() == [1, 2]
    out = generate(model, [1, 2], 30, greedy=True)
    stop = int(out[5])
    first = 2 + int(np.flatnonzero(out[2:] == stop)[0])  # generation ends at its first occurrence
    stopped = generate(model, [1, 2], 30, greedy=True, stop_token=stop)
    assert stopped.tolist() == out[:first + 1].tolist()


def test_sample_next_rules() -> None:
    rng = np.random.default_rng(0)
    logits = np.tile(np.log([0.05, 0.5, 0.3, 0.15]), (2000, 1))
    assert (sample_next(logits, rng, temperature=0) == 1).all()
    assert (sample_next(logits, rng, top_k=1) == 1).all()
    top2 = sample_next(logits, rng, top_k=2)
    assert set(np.unique(top2)) == {1, 2}
    assert abs((top2 == 1).mean() - 0.5 / 0.8) < 0.05
    nucleus = sample_next(logits, rng, top_p=0.75)  # 0.5 + 0.3 reaches 0.75: tokens 1 and 2
    assert set(np.unique(nucleus)) == {1, 2}
    assert (sample_next(logits, rng, top_p=0.4) == 1).all()  # the top token alone reaches it
    plain = sample_next(logits, rng)
    np.testing.assert_allclose(np.bincount(plain, minlength=4) / 2000, [0.05, 0.5, 0.3, 0.15],
                               atol=0.04)
    cold = sample_next(logits, rng, temperature=0.2)
    assert (cold == 1).mean() > 0.9
    with pytest.raises(ValueError, match="top_p"):
        sample_next(logits, rng, top_p=0)
