"""Language-track layers against PyTorch: same weights, outputs and gradients within 1e-4 relative.
Optional: skipped where PyTorch is not installed (it is not a dependency)."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.gpt import GPT, GPTConfig
from reference_models.nn import functional as F
from reference_models.nn.functional import causal_mask
from tests.reference_models.test_torch_parity import assert_close, copy_into_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RNG = np.random.default_rng(3)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def both(array: np.ndarray):
    return rm.Tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


@pytest.mark.parametrize("case", ["none", "causal", "causal_rectangular", "bool", "float",
                                  "padding", "gqa_causal", "scale"])
def test_scaled_dot_product_attention(case: str) -> None:
    length, source = (4, 7) if case == "causal_rectangular" else (6, 6)
    heads_kv = 2 if case == "gqa_causal" else 4
    q_np, k_np, v_np = rand(2, 4, length, 8, scale=2), rand(2, heads_kv, source, 8, scale=2), \
        rand(2, heads_kv, source, 5)
    ours_kwargs, theirs_kwargs = {}, {}
    if case in ("causal", "causal_rectangular", "gqa_causal"):
        ours_kwargs = theirs_kwargs = {"is_causal": True}
    if case == "gqa_causal":
        ours_kwargs = theirs_kwargs = {"is_causal": True, "enable_gqa": True}
    if case == "bool":
        mask = causal_mask(length, source, 1) & (RNG.random((length, source)) > 0.3)
        mask[:, 0] = True  # no fully masked rows (PyTorch gives NaN there, we give 0)
        ours_kwargs, theirs_kwargs = {"attn_mask": mask}, {"attn_mask": torch.from_numpy(mask)}
    if case == "float":
        bias = rand(length, source)
        bias[RNG.random((length, source)) > 0.7] = -np.inf
        bias[:, 0] = 0
        ours_kwargs, theirs_kwargs = {"attn_mask": bias}, {"attn_mask": torch.from_numpy(bias)}
    if case == "padding":
        keep = np.ones((2, 1, 1, source), dtype=bool)
        keep[0, ..., 4:] = False
        ours_kwargs, theirs_kwargs = {"attn_mask": keep}, {"attn_mask": torch.from_numpy(keep)}
    if case == "scale":
        ours_kwargs = theirs_kwargs = {"scale": 0.2}
    (q, tq), (k, tk), (v, tv) = both(q_np), both(k_np), both(v_np)
    ours = F.scaled_dot_product_attention(q, k, v, **ours_kwargs)
    theirs = TF.scaled_dot_product_attention(tq, tk, tv, **theirs_kwargs)
    assert_close(ours.data, theirs, "attention output")
    g = rand(*ours.shape)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))
    for name, a, b in (("query", q, tq), ("key", k, tk), ("value", v, tv)):
        assert_close(a.grad, b.grad, f"gradient of {name}")


def compare(ours: nn.Module, theirs, x: np.ndarray) -> None:
    copy_into_torch(ours, theirs)
    xo, xt = both(x)
    yo, yt = ours(xo), theirs(xt)
    assert_close(yo.data, yt, "forward")
    g = rand(*yo.shape)
    yo.backward(g)
    yt.backward(torch.from_numpy(g))
    assert_close(xo.grad, xt.grad, "input gradient")
    for name, param in dict(theirs.named_parameters()).items():
        assert_close(dict(ours.named_parameters())[name].grad, param.grad, f"gradient of {name}")


@pytest.mark.parametrize("shape", [16, (4, 16)])
def test_layer_norm(shape) -> None:
    ours, theirs = nn.LayerNorm(shape), torch.nn.LayerNorm(shape)
    ours.weight.data[...] = rand(*ours.weight.shape) + 1
    ours.bias.data[...] = rand(*ours.bias.shape)
    compare(ours, theirs, rand(3, 4, 16, scale=3) + 2)


def test_rms_norm() -> None:
    ours, theirs = nn.RMSNorm(16, eps=1e-6), torch.nn.RMSNorm(16, eps=1e-6)
    ours.weight.data[...] = rand(16) + 1
    compare(ours, theirs, rand(3, 5, 16, scale=2))


def test_embedding_with_repeated_ids() -> None:
    ours, theirs = nn.Embedding(10, 6), torch.nn.Embedding(10, 6)
    copy_into_torch(ours, theirs)
    ids = np.array([[1, 1, 4, 9], [4, 1, 0, 0]])
    out, tout = ours(rm.Tensor(ids)), theirs(torch.from_numpy(ids))
    assert_close(out.data, tout, "forward")
    g = rand(2, 4, 6)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    assert_close(ours.weight.grad, theirs.weight.grad, "weight gradient")


def test_multihead_attention_with_masks() -> None:
    ours = nn.MultiheadAttention(16, 4)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    copy_into_torch(ours, theirs)
    q_np, kv_np = rand(2, 5, 16), rand(2, 7, 16)
    blocked = ~causal_mask(5, 7, 2)
    padding = np.zeros((2, 7), dtype=bool)
    padding[1, 5:] = True
    (q, tq), (kv, tkv) = both(q_np), both(kv_np)
    out, weights = ours(q, kv, kv, key_padding_mask=padding, attn_mask=blocked)
    tout, tweights = theirs(tq, tkv, tkv, key_padding_mask=torch.from_numpy(padding),
                            attn_mask=torch.from_numpy(blocked))
    assert_close(out.data, tout, "output")
    assert_close(weights.data, tweights, "averaged weights")
    g = rand(*out.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    assert_close(q.grad, tq.grad, "query gradient")
    assert_close(kv.grad, tkv.grad, "key/value gradient")
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.grad, theirs_params[name].grad, f"gradient of {name}")


def test_rotary_embedding() -> None:
    rope = nn.RotaryEmbedding(8, 32)
    x_np = rand(2, 3, 10, 8)
    xo, xt = both(x_np)
    out = rope(xo, offset=5)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    angles = torch.outer(torch.arange(5, 15, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1).float()
    rotated = torch.cat([-xt[..., 4:], xt[..., :4]], dim=-1)
    tout = xt * angles.cos() + rotated * angles.sin()
    assert_close(out.data, tout, "forward")
    g = rand(*out.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    assert_close(xo.grad, xt.grad, "input gradient")


class TorchBlock(torch.nn.Module):
    """An independent pre-norm GPT block (nanoGPT's), with the same parameter names."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = torch.nn.LayerNorm(d)
        self.attn = torch.nn.Module()
        self.attn.c_attn = torch.nn.Linear(d, 3 * d)
        self.attn.c_proj = torch.nn.Linear(d, d)
        self.ln_2 = torch.nn.LayerNorm(d)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc = torch.nn.Linear(d, 4 * d)
        self.mlp.c_proj = torch.nn.Linear(4 * d, d)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn.c_proj(y.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp.c_proj(TF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class TorchGPT(torch.nn.Module):
    def __init__(self, vocab: int, context: int, layers: int, d: int, heads: int) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d)
        self.wpe = torch.nn.Embedding(context, d)
        self.h = torch.nn.ModuleList(TorchBlock(d, heads) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(d)
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def baseline_config() -> GPTConfig:
    return GPTConfig(vocab_size=65, context=64, n_layer=4, n_head=4, n_embd=128)


def test_gpt_block_forward_and_backward() -> None:
    rm.manual_seed(0)
    model = GPT(baseline_config())
    block = model.h[0]
    for param in block.parameters():  # non-trivial norms and biases
        param.data[...] += rand(*param.shape, scale=0.05)
    compare(block, TorchBlock(128, 4), rand(3, 64, 128))


def test_whole_gpt_logits_loss_and_gradients_with_tied_embeddings() -> None:
    rm.manual_seed(1)
    model = GPT(baseline_config())
    theirs = TorchGPT(65, 64, 4, 128, 4)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    theirs.load_state_dict(state)
    ids, targets = RNG.integers(0, 65, (4, 64)), RNG.integers(0, 65, (4, 64))
    logits = model(ids)
    tlogits = theirs(torch.from_numpy(ids))
    assert_close(logits.data, tlogits, "logits")
    loss = F.cross_entropy(logits.reshape(-1, 65), targets.reshape(-1))
    tloss = TF.cross_entropy(tlogits.reshape(-1, 65), torch.from_numpy(targets).reshape(-1))
    assert_close(loss.data, tloss, "loss")
    loss.backward()
    tloss.backward()
    theirs_params = dict(theirs.named_parameters())
    for name, param in model.named_parameters():  # wte holds both uses of the tied matrix
        assert_close(param.grad, theirs_params[name].grad, f"gradient of {name}")
