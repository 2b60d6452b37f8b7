"""nn.Transformer* against PyTorch (torch state_dicts load, outputs and gradients agree to 1e-4),
finite-difference gradients, ONNX export in onnxruntime, ALiBi and relative position biases."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.export import export_onnx
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


PAD = np.array([[False] * 5, [False] * 3 + [True] * 2])


def test_encoder_layer_post_norm_and_pre_norm_are_the_two_residual_orders() -> None:
    rm.manual_seed(0)
    x = rm.Tensor(rand(2, 5, 8))
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True,
                                           norm_first=norm_first).eval()
        attn = layer.self_attn(x, x, x, need_weights=False)[0] if not norm_first else None
        if norm_first:
            h = x + layer.self_attn(layer.norm1(x), layer.norm1(x), layer.norm1(x),
                                    need_weights=False)[0]
            expected = h + layer.linear2(F.relu(layer.linear1(layer.norm2(h))))
        else:
            h = layer.norm1(x + attn)
            expected = layer.norm2(h + layer.linear2(F.relu(layer.linear1(h))))
        np.testing.assert_allclose(layer(x).data, expected.data, rtol=1e-6, atol=1e-6)


def test_parameter_names_are_pytorchs() -> None:
    model = nn.Transformer(8, 2, 1, 1, 16)
    names = set(model.state_dict())
    for name in ("encoder.layers.0.self_attn.in_proj_weight", "encoder.layers.0.linear1.weight",
                 "encoder.layers.0.norm2.bias", "encoder.norm.weight",
                 "decoder.layers.0.multihead_attn.out_proj.weight", "decoder.layers.0.norm3.weight",
                 "decoder.norm.bias"):
        assert name in names
    layers = model.encoder.layers
    assert layers[0].linear1.weight is not nn.TransformerEncoder(layers[0], 2).layers[0].linear1.weight


def test_gradients_of_an_encoder_layer_match_finite_differences() -> None:
    rm.manual_seed(1)
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=norm_first).double()
        check_gradients(lambda x, layer=layer: layer(x, src_key_padding_mask=PAD[:, 1:]),
                        rand(2, 4, 4), rtol=1e-5, atol=1e-6)


def test_gradients_of_a_decoder_layer_match_finite_differences_for_tgt_and_memory() -> None:
    rm.manual_seed(2)
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, batch_first=True).double()
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64)
    check_gradients(lambda t, m: layer(t, m, tgt_mask=mask, memory_key_padding_mask=PAD[:, 1:]),
                    rand(2, 3, 4), rand(2, 4, 4), rtol=1e-5, atol=1e-6)


def test_square_subsequent_mask_forbids_later_positions() -> None:
    mask = nn.Transformer.generate_square_subsequent_mask(3).data
    assert mask[0, 1] == -np.inf and mask[2, 0] == 0 and mask[1, 1] == 0


# ----------------------------------------------------------------------------- PyTorch parity
torch_params = pytest.mark.parametrize("norm_first,activation,batch_first", [
    (False, "relu", True), (True, "gelu", True), (False, "gelu", False)])


def _load(ours: nn.Module, theirs) -> None:
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys


def _compare_grads(ours: nn.Module, theirs) -> None:
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.data, p.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)


@torch_params
def test_transformer_matches_pytorch_outputs_and_gradients(norm_first, activation,
                                                           batch_first) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=24, dropout=0.0, activation=activation,
                  batch_first=batch_first, norm_first=norm_first)
    theirs = torch.nn.Transformer(8, 2, 2, 2, **kwargs)
    ours = nn.Transformer(8, 2, 2, 2, **kwargs)
    _load(ours, theirs)
    src, tgt = rand(2, 5, 8), rand(2, 4, 8)
    if not batch_first:
        src, tgt = src.transpose(1, 0, 2).copy(), tgt.transpose(1, 0, 2).copy()
    g = rand(*tgt.shape)
    theirs.train()  # no fast path: the reference math
    st, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    yt = theirs(st, tt, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4),
                src_key_padding_mask=torch.tensor(PAD), memory_key_padding_mask=torch.tensor(PAD))
    yt.backward(torch.tensor(g))
    so, to = rm.Tensor(src, requires_grad=True), rm.Tensor(tgt, requires_grad=True)
    yo = ours(so, to, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4),
              src_key_padding_mask=PAD, memory_key_padding_mask=PAD)
    yo.backward(g)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(so.grad.data, st.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to.grad.data, tt.grad.numpy(), rtol=1e-4, atol=1e-4)
    _compare_grads(ours, theirs)


def test_encoder_with_a_tensor_padding_mask_and_causal_flag_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    layer_t = torch.nn.TransformerEncoderLayer(8, 4, 16, dropout=0.0, batch_first=True)
    theirs = torch.nn.TransformerEncoder(layer_t, 2, norm=torch.nn.LayerNorm(8),
                                         enable_nested_tensor=False).train()
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 4, 16, dropout=0.0,
                                                            batch_first=True), 2,
                                 norm=nn.LayerNorm(8))
    _load(ours, theirs)
    x = rand(2, 5, 8)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5)
    yt = theirs(torch.tensor(x), mask=causal, src_key_padding_mask=torch.tensor(PAD),
                is_causal=True)
    yo = ours(rm.Tensor(x), src_key_padding_mask=rm.Tensor(PAD), is_causal=True)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-4, atol=1e-4)


def test_decoder_layer_matches_pytorch_in_eval_mode() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    theirs = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True, norm_first=True).eval()
    ours = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True, norm_first=True).eval()
    _load(ours, theirs)
    t, m = rand(3, 4, 8), rand(3, 6, 8)
    with torch.no_grad():
        yt = theirs(torch.tensor(t), torch.tensor(m), tgt_is_causal=True,
                    tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4))
    yo = ours(rm.Tensor(t), rm.Tensor(m), tgt_is_causal=True)
    np.testing.assert_allclose(yo.data, yt.numpy(), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- export
class TokenEncoder(nn.Module):
    """Token ids -> per-sequence logits, padding mask computed from the ids inside the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 8)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True), 2)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: rm.Tensor) -> rm.Tensor:
        h = self.encoder(self.embed(ids), src_key_padding_mask=ids == 0)
        return self.head(h[:, 0])


def test_an_encoder_with_a_padding_mask_exports_and_the_mask_follows_the_input(tmp_path) -> None:
    import onnxruntime as ort

    rm.manual_seed(3)
    model = TokenEncoder()
    example = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], dtype=np.int64)
    export_onnx(model, example, tmp_path / "enc.onnx")  # check=True: ORT at two batch sizes
    session = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
    other = np.array([[7, 0, 0, 0, 0], [9, 9, 9, 9, 0], [1, 1, 1, 1, 1]], dtype=np.int64)
    got = session.run(None, {"input": other})[0]
    with rm.no_grad():
        expected = model.eval()(rm.Tensor(other)).data
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


class WholeTransformer(nn.Module):
    """``[N, S + T, E]`` in (source then target), decoder features out: one input for export."""

    def __init__(self, source_length: int) -> None:
        super().__init__()
        self.source_length = source_length
        self.model = nn.Transformer(8, 2, 1, 2, 16, batch_first=True, norm_first=True)

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        s = self.source_length
        return self.model(x[:, :s], x[:, s:], tgt_is_causal=True)


def test_the_whole_transformer_exports_and_matches_in_onnxruntime() -> None:
    rm.manual_seed(4)
    export_onnx(WholeTransformer(5), rand(2, 9, 8), None)  # raises unless ORT agrees to 1e-4


# ----------------------------------------------------------------------------- positions
def test_alibi_slopes_and_bias_are_the_papers() -> None:
    np.testing.assert_allclose(nn.ALiBi(8).slopes, 2.0 ** -np.arange(1, 9))
    assert len(nn.positional.alibi_slopes(6)) == 6
    bias = nn.ALiBi(2)(3, 4).data
    assert bias.shape == (2, 3, 4)
    np.testing.assert_allclose(bias[0, 2], -(2.0 ** -4) * np.array([2, 1, 0, 1]))
    causal = nn.ALiBi(2)(3, 3, causal=True).data
    assert causal[1, 0, 1] == -np.inf and causal[1, 1, 0] == -(2.0 ** -8)


def test_alibi_as_an_attention_mask_penalises_distance() -> None:
    q = k = rm.Tensor(np.zeros((1, 2, 4, 4), dtype=np.float32))  # equal scores without the bias
    v = rm.Tensor(np.eye(4, dtype=np.float32)[None, None].repeat(2, axis=1))
    weights = F.scaled_dot_product_attention(q, k, v, attn_mask=nn.ALiBi(2)(4, 4)).data
    assert np.all(np.diff(weights[0, 0, 0]) < 0)  # query 0: nearer keys weigh more
    slopes = nn.ALiBi(2).slopes
    expected = np.exp(-slopes[0] * np.arange(4))
    np.testing.assert_allclose(weights[0, 0, 0], expected / expected.sum(), rtol=1e-6)


def test_relative_position_buckets_are_t5s() -> None:
    buckets = nn.positional.relative_position_buckets
    relative = np.array([-200, -20, -3, 0, 3, 20, 200])
    # values of T5's _relative_position_bucket (32 buckets, max distance 128)
    np.testing.assert_array_equal(buckets(relative), [15, 10, 3, 0, 19, 26, 31])
    np.testing.assert_array_equal(buckets(relative, bidirectional=False), [31, 17, 3, 0, 0, 0, 0])


def test_a_relative_position_bias_gets_its_gradient_through_attention() -> None:
    rm.manual_seed(5)
    q, k, v = rand(1, 2, 3, 4), rand(1, 2, 3, 4), rand(1, 2, 3, 4)
    check_gradients(lambda q, bias: F.scaled_dot_product_attention(
        q, rm.Tensor(k, dtype=np.float64), rm.Tensor(v, dtype=np.float64), attn_mask=bias),
        q, rand(2, 3, 3))
    bias = nn.RelativePositionBias(2, num_buckets=8, max_distance=16)
    mha = nn.MultiheadAttention(4, 2)
    x = rm.Tensor(rand(1, 3, 4))
    mha(x, x, x, attn_mask=bias(3, 3), need_weights=False)[0].sum().backward()
    grad = bias.relative_attention_bias.weight.grad.data
    assert grad.shape == (8, 2) and np.abs(grad).sum() > 0
