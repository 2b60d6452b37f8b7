"""GPT pieces and the whole model: norms, embeddings, blocks, sizes, training, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import reference_models as rm
from reference_models import nn, optim
from reference_models.export import export_onnx
from reference_models.gpt import GPT, Block, GPTConfig, memory_estimate, parameter_counts
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients, numeric_grad

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def float64_module(module: nn.Module) -> nn.Module:
    for param in module.parameters():
        param.data = param.data.astype(np.float64)
    return module


def test_layer_norm_gradients_include_the_statistics() -> None:
    weight, bias = rand(6) + 1, rand(6)
    check_gradients(lambda x, w, b: F.layer_norm(x, 6, w, b), rand(3, 4, 6), weight, bias)
    check_gradients(lambda x: F.layer_norm(x, (4, 6)), rand(3, 4, 6))
    # with constant statistics the input gradient would be g * w / std; it is not
    x = rm.Tensor(rand(2, 6), requires_grad=True, dtype=np.float64)
    F.layer_norm(x, 6).sum().backward()
    np.testing.assert_allclose(x.grad, 0, atol=1e-12)  # sum of a normalized row is constant


def test_layer_norm_normalizes() -> None:
    out = nn.LayerNorm(16)(rm.Tensor(rand(4, 16) * 5 + 3)).data
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1, atol=1e-3)


def test_rms_norm_gradients_and_scale() -> None:
    check_gradients(lambda x, w: F.rms_norm(x, 5, w, eps=1e-6), rand(3, 5), rand(5))
    out = nn.RMSNorm(8)(rm.Tensor(rand(4, 8) * 3)).data
    np.testing.assert_allclose(np.sqrt((out ** 2).mean(-1)), 1, rtol=1e-4)


def test_embedding_gradient_accumulates_for_repeated_ids() -> None:
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    check_gradients(lambda w: F.embedding(ids, w), rand(5, 4))
    embedding = nn.Embedding(5, 4)
    embedding(rm.Tensor(ids)).sum().backward()
    np.testing.assert_array_equal(embedding.weight.grad[:, 0], [1, 3, 0, 2, 0])


@pytest.mark.parametrize("overrides", [
    {}, {"mlp": "swiglu", "norm": "rmsnorm"}, {"n_kv_head": 1, "positions": "rope"},
    {"bias": False, "positions": "sinusoidal"},
])
def test_block_gradients(overrides) -> None:
    rm.manual_seed(0)
    config = GPTConfig(vocab_size=11, context=8, n_layer=1, n_head=2, n_embd=8,
                       init_std=0.3, **overrides)  # tanh GELU: exact derivative
    model = float64_module(GPT(config))
    block = model.h[0]
    check_gradients(block, rand(2, 5, 8), rtol=1e-5, atol=1e-8)
    # and the parameters of the whole model, through the loss, by finite differences
    ids, targets = RNG.integers(0, 11, (2, 6)), RNG.integers(0, 11, 12)

    def loss() -> rm.Tensor:
        return F.cross_entropy(model(ids).reshape(12, 11), targets)

    model.zero_grad()
    loss().backward()
    for name, param in model.named_parameters():
        expected = numeric_grad(lambda: float(loss().data), param.data)
        np.testing.assert_allclose(param.grad, expected, rtol=1e-5, atol=1e-8, err_msg=name)


def test_tied_weights_are_one_parameter_counted_once() -> None:
    model = GPT(GPTConfig(vocab_size=13, context=8, n_layer=2, n_head=2, n_embd=8))
    assert model.lm_head.weight is model.wte.weight
    params = list(model.parameters())
    assert sum(p is model.wte.weight for p in params) == 1
    untied = GPT(GPTConfig(vocab_size=13, context=8, n_layer=2, n_head=2, n_embd=8,
                           tie_weights=False))
    counts, counts_untied = parameter_counts(model), parameter_counts(untied)
    assert counts["head"] == 0 and counts_untied["head"] == 13 * 8
    assert counts_untied["total"] - counts["total"] == 13 * 8


@pytest.mark.parametrize("overrides", [
    {}, {"tie_weights": False}, {"mlp": "swiglu", "norm": "rmsnorm", "bias": False},
    {"n_kv_head": 2, "positions": "rope"}, {"positions": "sinusoidal"},
])
def test_parameter_counts_and_memory_estimate_match_the_model(overrides) -> None:
    config = GPTConfig(vocab_size=65, context=32, n_layer=3, n_head=4, n_embd=32, **overrides)
    model = GPT(config)
    counts = parameter_counts(model)
    actual = sum(p.numel() for p in model.parameters())
    assert counts["total"] == actual
    assert counts["embeddings"] + counts["attention"] + counts["feed_forward"] + \
        counts["norms"] + counts["head"] == actual
    memory = memory_estimate(config, batch_size=8)
    assert memory["parameters"] == actual
    assert memory["training_total_bytes"] > memory["inference_total_bytes"] > actual * 4
    assert memory_estimate(config, batch_size=16)["training_activation_bytes"] == \
        2 * memory["training_activation_bytes"]


def test_the_baseline_shape_has_nanogpt_parameter_count() -> None:
    counts = parameter_counts(GPT(GPTConfig()))  # 4 layers, 4 heads, width 128, tied
    assert counts["attention"] == 4 * (128 * 384 + 384 + 128 * 128 + 128)
    assert counts["feed_forward"] == 4 * (128 * 512 + 512 + 512 * 128 + 128)
    assert counts["total"] == 809_856


def test_causal_model_ignores_the_future() -> None:
    model = GPT(GPTConfig(vocab_size=20, context=16, n_layer=2, n_head=2, n_embd=16))
    ids = RNG.integers(0, 20, (1, 12))
    changed = ids.copy()
    changed[0, 8:] = (changed[0, 8:] + 1) % 20
    with rm.no_grad():
        a, b = model(ids).data, model(changed).data
    np.testing.assert_array_equal(a[:, :8], b[:, :8])
    assert not np.allclose(a[:, 8:], b[:, 8:])


def test_context_longer_than_the_model_is_explained() -> None:
    model = GPT(GPTConfig(vocab_size=20, context=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match="longer than the model's context of 8"):
        model(np.zeros((1, 9), dtype=np.int64))


def test_gpt_learns_a_repeating_text() -> None:
    rm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, context=16, n_layer=2, n_head=2, n_embd=32))
    text = np.tile(np.array([0, 1, 2, 3, 4, 5, 6, 2, 4]), 20)
    opt = optim.AdamW(model.parameters(), lr=3e-3)
    starts = np.arange(0, 100, 7)
    x = text[starts[:, None] + np.arange(16)]
    y = text[starts[:, None] + np.arange(1, 17)]
    for _ in range(150):
        loss = F.cross_entropy(model(x).reshape(-1, 7), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.data) < 0.05
    with rm.no_grad():
        assert (model(x).data.argmax(-1)[:, 2:] == y[:, 2:]).all()


@pytest.mark.parametrize("overrides", [
    {}, {"mlp": "swiglu", "norm": "rmsnorm", "n_kv_head": 2, "positions": "rope"},
    {"positions": "sinusoidal", "tie_weights": False, "gelu_approximate": "none"},
])
def test_gpt_exports_for_tinygpt_and_matches_in_onnxruntime(tmp_path: Path, overrides) -> None:
    rm.manual_seed(4)
    config = GPTConfig(vocab_size=65, context=32, n_layer=2, n_head=4, n_embd=32, **overrides)
    model = GPT(config)
    path = tmp_path / "gpt.onnx"
    export_onnx(model, np.zeros((1, 32), dtype=np.int64), path, task="tinygpt")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["N", 32]
    assert session.get_outputs()[0].shape == ["N", 32, 65]
    ids = RNG.integers(0, 65, (3, 32))
    with rm.no_grad():
        expected = model.eval()(ids).data
    got = session.run(None, {"input": ids})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # one initializer per weight (tied weights stored once) plus small constants
    assert path.stat().st_size < 4 * sum(p.numel() for p in model.parameters()) + 64_000


def test_block_runs_standalone() -> None:
    config = GPTConfig(vocab_size=5, context=8, n_layer=1, n_head=2, n_embd=8)
    out = Block(config)(rm.Tensor(rand(2, 3, 8)))
    assert out.shape == (2, 3, 8)
