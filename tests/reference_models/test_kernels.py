"""Fused kernels: exact gradients (finite differences), the same values and gradients as the
unfused ops, fused models training like unfused ones, and ONNX export in onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import kernels, nn
from reference_models.export import export_onnx
from reference_models.gpt import GPT, GPTConfig
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_bias_gelu_gradients_are_exact(approximate: str) -> None:
    # the exact GELU's erf is a polynomial fit (|error| < 1.5e-7): finite differences see it
    atol = 1e-7 if approximate == "tanh" else 1e-6
    check_gradients(lambda x, b: kernels.bias_gelu(x, b, approximate), rand(3, 4, 5) * 2,
                    rand(5), atol=atol)


def test_add_layer_norm_gradients_are_exact() -> None:
    check_gradients(kernels.add_layer_norm, rand(2, 3, 6), rand(2, 3, 6), rand(6), rand(6))
    check_gradients(kernels.add_layer_norm, rand(4, 5), rand(4, 5))


def test_relu_add_and_linear_gradients_are_exact() -> None:
    x = rand(2, 3, 4)
    x[np.abs(x) < 0.05] = 0.3  # keep finite differences away from the kink
    check_gradients(kernels.relu_add, x, rand(2, 3, 4) * 0.01)
    check_gradients(kernels.linear, rand(2, 3, 4), rand(5, 4), rand(5))
    check_gradients(kernels.linear, rand(6, 4), rand(5, 4))


def _values_and_grads(fn, *arrays):
    tensors = [rm.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.cos(np.arange(out.data.size)).reshape(out.shape).astype(np.float32))
    return out.data, [t.grad.data for t in tensors]


@pytest.mark.parametrize("fused,unfused", [
    (lambda x, b: kernels.bias_gelu(x, b), lambda x, b: F.gelu(x + b, "tanh")),
    (lambda x, r, w, b: kernels.add_layer_norm(x, r, w, b),
     lambda x, r, w, b: F.layer_norm(x + r, (8,), w, b)),
    (kernels.relu_add, lambda x, r: F.relu(x + r)),
    (kernels.linear, F.linear),
])
def test_fused_ops_equal_the_unfused_chain(fused, unfused) -> None:
    import inspect

    count = len(inspect.signature(unfused).parameters)
    shapes = {2: [(4, 6, 8), (4, 6, 8)], 3: [(4, 6, 8), (3, 8), (3,)],
              4: [(4, 6, 8), (4, 6, 8), (8,), (8,)]}[count]
    if unfused is not F.linear and count == 2 and fused is not kernels.relu_add:
        shapes = [(4, 6, 8), (8,)]
    arrays = [rand(*s) for s in shapes]
    got, got_grads = _values_and_grads(fused, *arrays)
    want, want_grads = _values_and_grads(unfused, *arrays)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_a_fused_gpt_computes_and_learns_exactly_like_the_unfused_one() -> None:
    config = GPTConfig(vocab_size=11, context=8, n_layer=2, n_head=2, n_embd=16)
    rm.manual_seed(0)
    plain = GPT(config)
    rm.manual_seed(0)
    fused = kernels.fuse(GPT(config))
    assert isinstance(fused.h[0].mlp, kernels.FusedMLP)
    assert fused.lm_head.weight is fused.wte.weight  # tied weights stay tied
    assert list(fused.state_dict()) == list(plain.state_dict())
    ids = np.random.default_rng(1).integers(0, 11, (3, 8))
    for model in (plain, fused):
        loss = F.cross_entropy(model(ids).reshape(-1, 11), ids.reshape(-1))
        loss.backward()
    np.testing.assert_allclose(fused(ids).data, plain(ids).data, rtol=1e-5, atol=1e-5)
    plain_grads = dict(plain.named_parameters())
    for name, p in fused.named_parameters():
        np.testing.assert_allclose(p.grad.data, plain_grads[name].grad.data, rtol=1e-4,
                                   atol=1e-5, err_msg=name)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.norm = kernels.AddLayerNorm(6)
        self.fc = kernels.FastLinear.from_linear(nn.Linear(6, 5))

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        h = kernels.relu_add(self.conv(x), x)  # [N, 4, 6, 6]
        h = self.norm(h, h * 0.5)
        return kernels.bias_gelu(self.fc(h), self.fc.bias)


def test_fused_kernels_export_and_run_in_onnxruntime() -> None:
    rm.manual_seed(2)
    export_onnx(Residual(), rand(2, 4, 6, 6).astype(np.float32), None)  # ORT to 1e-4
    rm.manual_seed(3)
    gpt = kernels.fuse(GPT(GPTConfig(vocab_size=11, context=8, n_layer=1, n_head=2, n_embd=16)))
    export_onnx(gpt, np.zeros((1, 8), dtype=np.int64), None)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="approximate"):
        kernels.bias_gelu(rm.Tensor(np.zeros(3)), rm.Tensor(np.zeros(3)), "fast")
