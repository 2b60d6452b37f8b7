"""Text generation from a language model: greedy, temperature, top-k and top-p sampling.

    ids = generate(model, prompt_ids, max_new_tokens=200, temperature=0.8, top_k=20, seed=0)

``max_new_tokens`` is the token budget. ``seed`` makes sampling reproducible. With ``use_cache``
(the default, for models with ``new_cache()`` such as ``GPT``) each step feeds only the newest token
and reuses the keys and values of the earlier ones (a ``KVCache``); the tokens are the same as
without it. Once the text is longer than the model's context, each step recomputes the last
``context`` tokens (a sliding window), with or without the cache.
"""

from __future__ import annotations

import time

import numpy as np

from reference_models.autograd import no_grad
from reference_models.parallel import single_threaded_blas
from reference_models.tensor import Tensor

__all__ = ["generate", "sample_next", "tokens_per_second"]


def sample_next(logits: np.ndarray, generator: np.random.Generator, *, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """One next-token id per row of ``logits`` ``[N, V]``; ``temperature=0`` is greedy."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        k = min(top_k, logits.shape[-1])
        kth = np.partition(logits, -k, axis=-1)[:, -k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        # keep the smallest prefix whose mass reaches top_p (the most likely token always stays)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
        sorted_probs[before >= top_p] = 0
        probs = np.zeros_like(probs)
        np.put_along_axis(probs, order, sorted_probs, axis=-1)
        probs /= probs.sum(axis=-1, keepdims=True)
    draws = generator.random(len(probs))[:, None]
    picked = (np.cumsum(probs, axis=-1) < draws).sum(axis=-1)
    return np.minimum(picked, probs.shape[-1] - 1)


def generate(model, prompt, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
             seed: int | None = None, use_cache: bool = True,
             stop_token: int | None = None) -> np.ndarray:
    """The prompt followed by up to ``max_new_tokens`` generated ids (``[N, T + new]`` int64, or
    1-D for a 1-D prompt). Generation stops early when every row has produced ``stop_token``."""
    ids = np.asarray(prompt, dtype=np.int64)
    one_row = ids.ndim == 1
    ids = np.atleast_2d(ids)
    if ids.shape[1] == 0:
        raise ValueError("the prompt needs at least one token")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    context = model.config.context
    rng = np.random.default_rng(seed)
    use_cache = use_cache and hasattr(model, "new_cache")
    was_training = model.training
    model.eval()
    cache, finished = None, np.zeros(len(ids), dtype=bool)
    try:
        with no_grad(), single_threaded_blas():
            for _ in range(max_new_tokens):
                if use_cache and ids.shape[1] <= context:
                    if cache is None:  # first step: the whole prompt fills the cache
                        cache, feed = model.new_cache(), ids
                    else:
                        feed = ids[:, -1:]
                    logits = model(Tensor(feed), kv_cache=cache).data[:, -1]
                else:  # no cache, or past the context: recompute the last `context` tokens
                    logits = model(Tensor(ids[:, -context:])).data[:, -1]
                step = sample_next(logits, rng, temperature=0 if greedy else temperature,
                                   top_k=top_k, top_p=top_p)
                if stop_token is not None:
                    step = np.where(finished, stop_token, step)
                    finished |= step == stop_token
                ids = np.concatenate([ids, step[:, None]], axis=1)
                if stop_token is not None and finished.all():
                    break
    finally:
        model.train(was_training)
    return ids[0] if one_row else ids


def tokens_per_second(model, prompt_length: int = 1, new_tokens: int = 63,
                      use_cache: bool = True, seed: int = 0) -> float:
    """Generated tokens per second for one sequence (greedy, so both paths do the same work)."""
    prompt = np.zeros(prompt_length, dtype=np.int64)
    start = time.perf_counter()
    generate(model, prompt, new_tokens, greedy=True, seed=seed, use_cache=use_cache)
    return new_tokens / (time.perf_counter() - start)
