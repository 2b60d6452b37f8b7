"""Quantization: INT8 QDQ export that really stores integers and runs on integer kernels, and whose
onnxruntime outputs match the framework's fake-quantized outputs; QAT gradients; dynamic INT8 and
INT4 weight-only graph rewrites; the INT8 schemes (integer types) and their default.

These tests compare onnxruntime's *optimized* session (integer kernels chosen by the CPU) with the
framework, so they must hold on x86 with VNNI and without it. They did not on AMD Zen 3 (AVX2,
no VNNI) when the default stored full 8-bit weights: there onnxruntime's u8s8 kernel adds pairs of
products in saturating int16 and the outputs moved by tens of quantization steps (reproduced
under ``qemu-x86_64 -cpu Haswell``: 39 steps in the one-step test, 8.6% of the logit spread in
the full-model test, 16% for dynamic INT8; see the tests' comments for the figures). The
default is now 7-bit weights (``"u8s7"``), exact on both; ``test_int8_portability.py`` runs the
emulated AVX2 kernels themselves."""

from __future__ import annotations

import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from evaluator.validation import validate
from reference_models import Tensor, manual_seed, nn, no_grad, optim
from reference_models.compress.fake_quant import (
    DEFAULT_SCHEME,
    INT8_SCHEMES,
    affine_qparams,
    fake_quantize,
    int8_scheme,
    symmetric_qparams,
)
from reference_models.compress.observers import PercentileObserver
from reference_models.compress.quantize import (
    calibrate,
    export_quantized,
    integer_kernel_count,
    prepare,
    quantizers,
)
from reference_models.compress.weight_only import (
    int4_blocks,
    int4_dequantize,
    quantize_dynamic,
    quantize_int4,
)
from reference_models.export import export_onnx
from reference_models.nn import functional as F

RNG = np.random.default_rng(0)


def small_cnn() -> nn.Sequential:
    manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )
    for module in model.modules():  # batch norms with statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.data[:] = RNG.normal(0, 0.2, module.num_features)
            module.running_var.data[:] = RNG.uniform(0.5, 2.0, module.num_features)
            module.weight.data[:] = RNG.uniform(0.5, 1.5, module.num_features)
            module.bias.data[:] = RNG.normal(0, 0.1, module.num_features)
    return model.eval()


def images(n: int) -> np.ndarray:
    return RNG.random((n, 3, 32, 32), dtype=np.float32)


def run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def quantized_cnn():
    float_model = small_cnn()
    qmodel = calibrate(prepare(float_model), [images(32), images(32)])
    proto = export_quantized(qmodel, None, task="cifar10")
    return float_model, qmodel, proto.SerializeToString()


@pytest.fixture(scope="module")
def quantized_cnn_u8u8():
    """The other scheme that is exact on every x86 kernel (uint8 weights, zero point 128)."""
    qmodel = calibrate(prepare(small_cnn(), scheme="u8u8"), [images(32), images(32)])
    return None, qmodel, export_quantized(qmodel, None, task="cifar10").SerializeToString()


EXACT_SCHEMES = ["quantized_cnn", "quantized_cnn_u8u8"]  # u8s7 (the default) and u8u8


def test_int8_export_is_really_smaller_on_disk_and_deflated(quantized_cnn):
    float_model, _, qbytes = quantized_cnn
    fbytes = export_onnx(float_model, images(1), None, task="cifar10").SerializeToString()
    # a small model: graph structure and scales weigh more than in a real one (about 4x there)
    assert len(qbytes) * 2.5 < len(fbytes)
    assert len(zlib.compress(qbytes, 9)) * 2.5 < len(zlib.compress(fbytes, 9))
    initializers = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(qbytes)
                    .graph.initializer}
    int8 = [a for a in initializers.values() if a.dtype == np.int8 and a.size > 100]
    assert sum(a.size for a in int8) == 3 * 16 * 9 + 16 * 32 * 9 + 512 * 10  # every weight
    assert not [n for n, a in initializers.items() if a.dtype == np.float32 and a.size > 32]


def test_int8_export_passes_the_validation_gate_and_runs_on_integer_kernels(quantized_cnn):
    _, _, qbytes = quantized_cnn
    report = validate(qbytes, "cifar10")
    assert report.ok, report.summary()
    kernels = integer_kernel_count(qbytes)
    assert kernels.get("QLinearConv") == 2, kernels
    assert kernels.get("QGemm") == 1, kernels


@pytest.mark.parametrize("fixture", EXACT_SCHEMES)
def test_onnxruntime_matches_the_fake_quantized_framework_within_one_step(fixture, request):
    """Up to a quantized activation, onnxruntime's integer kernels and the framework's fake
    quantization may differ by at most one step (a rounding tie decided differently).
    Measured with these models through ``portability.run_emulated``: u8s7 0 steps, u8u8 at
    most 1 step on 0.008% of the values, identically natively (AVX-512 VNNI) and under qemu
    Haswell (AVX2 kernels); full 8-bit weights (u8s8) gave 39 steps on 48% of the values there."""
    _, qmodel, _ = request.getfixturevalue(fixture)
    prefix = qmodel[:3]  # conv, pool, conv: its output is quantized by the second conv's quantizer
    step = float(qmodel[2].output_quantizer.qparams.scale)
    x = images(16)
    got = run(export_quantized(prefix, None, example_input=x[:1]).SerializeToString(), x)
    with no_grad():
        expected = prefix(Tensor(x)).data
    assert np.max(np.abs(got - expected)) <= step * 1.001
    assert np.mean(np.abs(got - expected) > step / 2) < 0.01  # and almost always exactly equal


@pytest.mark.parametrize("fixture", EXACT_SCHEMES)
def test_full_int8_model_agrees_with_the_framework(fixture, request):
    """A one-step difference in a hidden activation moves the logits a little: measured at most
    0.11% of the logit spread (u8u8; u8s7 0.05%) natively and on emulated AVX2 alike, so 2% is a
    safe bound; the saturating full 8-bit weights moved them by 8.6% of it on emulated AVX2."""
    _, qmodel, qbytes = request.getfixturevalue(fixture)
    x = images(64)
    got = run(qbytes, x)
    with no_grad():
        expected = qmodel(Tensor(x)).data
    spread = float(np.abs(expected).max())
    assert np.max(np.abs(got - expected)) <= 0.02 * spread
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.95


def _weight_initializers(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer
            if t.name.endswith("weight_quantized")}


def test_default_scheme_stores_7_bit_weights_and_the_others_stay_available():
    assert DEFAULT_SCHEME == "u8s7" and int8_scheme().name == "u8s7"
    x = images(8)
    spans = {}
    for scheme in ("u8s7", "u8s8", "u8u8", "s8s8"):
        qmodel = calibrate(prepare(small_cnn(), scheme=scheme), [x])
        weights = _weight_initializers(export_quantized(qmodel, None, example_input=x[:1]))
        assert len(weights) == 3
        dtypes = {a.dtype for a in weights.values()}
        centred = [a.astype(np.int64) - (128 if a.dtype == np.uint8 else 0)
                   for a in weights.values()]
        spans[scheme] = (dtypes, max(int(np.abs(c).max()) for c in centred))
        activation = quantizers(qmodel)[0].qparams.dtype
        assert activation == INT8_SCHEMES[scheme].activations
    assert spans["u8s7"] == ({np.dtype(np.int8)}, 63)  # 7 bits: 255 * 63 * 2 fits int16
    assert spans["u8s8"] == ({np.dtype(np.int8)}, 127)
    assert spans["u8u8"] == ({np.dtype(np.uint8)}, 127)  # zero point 128
    assert spans["s8s8"] == ({np.dtype(np.int8)}, 127)


def test_scheme_names_and_the_older_reduce_range_flag():
    assert int8_scheme(reduce_range=True).name == "u8s7"
    assert int8_scheme(reduce_range=False).name == "u8s8"
    assert prepare(small_cnn(), reduce_range=False)[0].reduce_range is False
    with pytest.raises(ValueError, match="unknown INT8 scheme 'u4s4'"):
        prepare(small_cnn(), scheme="u4s4")
    with pytest.raises(ValueError, match="contradicts"):
        int8_scheme("u8s8", reduce_range=True)
    with pytest.raises(ValueError, match="uint8"):
        quantize_dynamic(onnx.ModelProto(), scheme="s8s8")


def test_prepare_folds_batch_norm_and_shares_ranges_across_max_pool():
    float_model = small_cnn()
    qmodel = prepare(float_model)
    x = images(4)
    with no_grad():  # observing: float outputs, batch norm folded into the conv
        assert np.allclose(qmodel(Tensor(x)).data, float_model(Tensor(x)).data, atol=1e-4)
    first, second = qmodel[0], qmodel[2]
    assert second.input_quantizer is first.output_quantizer  # MaxPool keeps the scale
    assert len(quantizers(qmodel)) == 3  # input, after conv 1, after conv 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in qmodel.modules())


def test_fake_quantize_rounds_half_to_even_and_clips():
    qparams = affine_qparams(0.0, 2.55)  # scale 0.01, zero point 0
    x = Tensor(np.array([0.005, 0.015, -1.0, 3.0, 1.234], dtype=np.float32))
    out = fake_quantize(x, qparams).data
    assert np.allclose(out, [0.0, 0.02, 0.0, 2.55, 1.23], atol=1e-6)


def test_straight_through_estimator_passes_gradients_inside_the_range_only():
    qparams = affine_qparams(-1.0, 1.0)
    x = Tensor(np.array([-2.0, -0.5, 0.3, 0.99, 5.0], dtype=np.float32), requires_grad=True)
    fake_quantize(x, qparams).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_symmetric_weights_are_per_channel_with_zero_at_zero():
    weight = np.stack([np.linspace(-1, 1, 9), np.linspace(-0.01, 0.01, 9)]).astype(np.float32)
    qparams = symmetric_qparams(weight, axis=0)
    assert np.allclose(qparams.scale, [1 / 127, 0.01 / 127])
    q = qparams.quantize(weight)
    assert q.dtype == np.int8 and q[:, 4].tolist() == [0, 0] and q.max() == 127
    assert np.abs(qparams.dequantize(q) - weight).max() <= qparams.scale.max() / 2 + 1e-7
    seven = symmetric_qparams(weight, axis=0, reduce_range=True)
    assert np.allclose(seven.scale, [1 / 63, 0.01 / 63]) and seven.quantize(weight).max() == 63
    unsigned = symmetric_qparams(weight, axis=0, dtype="uint8")
    u = unsigned.quantize(weight)
    assert u.dtype == np.uint8 and u[:, 4].tolist() == [128, 128] and (u.min(), u.max()) == (1, 255)
    assert np.allclose(unsigned.dequantize(u), qparams.dequantize(q))  # the same 255 levels


def test_percentile_observer_clips_outliers_that_minmax_keeps():
    values = np.concatenate([RNG.normal(0, 1, 100_000), [1000.0]]).astype(np.float32)
    observer = PercentileObserver(99.9)
    observer.observe(values)
    low, high = observer.range()
    assert 2 < high < 5 and -5 < low < -2
    assert observer.high == 1000.0  # the min/max view still sees the outlier


def test_quantization_aware_training_lowers_the_loss_through_fake_quantization():
    manual_seed(1)
    x = RNG.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    qmodel = calibrate(prepare(model), [x])
    before = qmodel[0].layer.weight.data.copy()
    optimizer = optim.SGD(qmodel.parameters(), lr=0.2)
    qmodel.train()
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(qmodel(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.6 * losses[0]
    assert not np.allclose(before, qmodel[0].layer.weight.data)  # the float weights learned
    proto = export_quantized(qmodel.eval(), None, example_input=x[:1])
    assert any(t.data_type == onnx.TensorProto.INT8 for t in proto.graph.initializer)


@pytest.fixture(scope="module")
def float_mlp_proto():
    manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    x = RNG.random((1, 1, 28, 28), dtype=np.float32)
    return model, export_onnx(model, x, None, task="mnist")


def test_dynamic_int8_stores_int8_weights_and_runs_dynamic_integer_kernels(float_mlp_proto):
    """Within 5% of the logit spread of the float model on any x86 CPU: 7-bit weights (the
    default) measured 1.2% natively and under qemu Haswell alike; full 8-bit weights measured
    1.0% natively but 16% (and 91% class agreement) under qemu Haswell."""
    model, proto = float_mlp_proto
    quantized = quantize_dynamic(proto).SerializeToString()
    weights = [numpy_helper.to_array(t) for t in onnx.load_from_string(quantized).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    assert weights and max(int(np.abs(w).max()) for w in weights) == 63
    assert validate(quantized, "mnist").ok
    assert len(zlib.compress(quantized, 9)) * 3 < len(zlib.compress(proto.SerializeToString(), 9))
    assert integer_kernel_count(quantized).get("DynamicQuantizeMatMul") == 2
    x = RNG.random((32, 1, 28, 28), dtype=np.float32)
    with no_grad():
        expected = model(Tensor(x)).data
    got = run(quantized, x)
    assert np.max(np.abs(got - expected)) < 0.05 * np.abs(expected).max()


def test_int4_weight_only_runs_in_onnxruntime_with_matmulnbits(float_mlp_proto):
    """onnxruntime 1.31 runs com.microsoft.MatMulNBits (4-bit blocks) on CPU, and the validation
    gate accepts it: the outputs equal x @ dequantized weights."""
    model, proto = float_mlp_proto
    quantized = quantize_int4(proto, block_size=32).SerializeToString()
    report = validate(quantized, "mnist")
    assert report.ok, report.summary()
    assert len(zlib.compress(quantized, 9)) * 5 < len(zlib.compress(proto.SerializeToString(), 9))
    assert integer_kernel_count(quantized).get("MatMulNBits") == 2
    x = RNG.random((8, 1, 28, 28), dtype=np.float32)
    w1, w2 = model[1].weight.data.T, model[3].weight.data.T
    d1 = int4_dequantize(*int4_blocks(w1, 32), w1.shape[0])
    d2 = int4_dequantize(*int4_blocks(w2, 32), w2.shape[0])
    hidden = np.maximum(x.reshape(8, -1) @ d1 + model[1].bias.data, 0)
    expected = hidden @ d2 + model[3].bias.data
    assert np.allclose(run(quantized, x), expected, atol=1e-3)


def test_dynamic_int8_and_int4_work_on_the_gpt():
    from reference_models.gpt import GPT, GPTConfig

    manual_seed(3)
    model = GPT(GPTConfig(context=16, n_layer=1, n_head=2, n_embd=32))
    ids = RNG.integers(0, 65, (2, 16)).astype(np.int64)
    proto = export_onnx(model, ids[:1], None, task="tinygpt")
    expected = run(proto.SerializeToString(), ids)
    for rewrite, kernel in ((quantize_dynamic, "DynamicQuantizeMatMul"),
                            (quantize_int4, "MatMulNBits")):
        quantized = rewrite(proto).SerializeToString()
        assert validate(quantized, "tinygpt").ok
        assert integer_kernel_count(quantized).get(kernel, 0) >= 4  # qkv, proj, fc, mlp proj
        got = run(quantized, ids)
        assert np.mean(got.argmax(-1) == expected.argmax(-1)) > 0.9
