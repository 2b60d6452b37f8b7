"""Dilated convolution (Conv2d / Conv1d ``dilation=``): PyTorch parity, finite-difference gradients,
``padding="same"`` with a dilated kernel, and ONNX export (Conv's ``dilations``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients

CASES = [  # stride, padding, dilation, groups
    (1, 0, 2, 1),
    (2, 1, (2, 3), 1),
    (1, 2, 2, 2),
    (1, (1, 3), (1, 3), 1),
]


@pytest.mark.parametrize("stride, padding, dilation, groups", CASES)
def test_conv2d_with_dilation_matches_pytorch(stride, padding, dilation, groups) -> None:
    torch = pytest.importorskip("torch")
    gen = np.random.default_rng(0)
    x = gen.standard_normal((2, 4, 9, 10)).astype(np.float32)
    w = gen.standard_normal((6, 4 // groups, 3, 3)).astype(np.float32)
    b = gen.standard_normal(6).astype(np.float32)
    ours = [rm.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out_o = F.conv2d(*ours, stride, padding, dilation, groups)
    out_t = torch.nn.functional.conv2d(*theirs, stride, padding, dilation, groups)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    weights = gen.standard_normal(out_t.shape).astype(np.float32)
    (out_o * rm.tensor(weights)).sum().backward()
    (out_t * torch.tensor(weights)).sum().backward()
    for a, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_dilated_conv_gradients_match_finite_differences() -> None:
    gen = np.random.default_rng(1)
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, 1, 1, 2), gen.standard_normal((1, 2, 6, 7)),
                    gen.standard_normal((3, 2, 2, 3)), gen.standard_normal(3))


def test_layers_take_dilation_and_same_padding() -> None:
    torch = pytest.importorskip("torch")
    for ours, theirs, shape in [
            (nn.Conv2d(3, 2, 3, dilation=2, padding="same"),
             torch.nn.Conv2d(3, 2, 3, dilation=2, padding="same"), (2, 3, 8, 8)),
            (nn.Conv1d(3, 2, 3, dilation=3, padding=2), torch.nn.Conv1d(3, 2, 3, dilation=3,
                                                                         padding=2), (2, 3, 12))]:
        ours.load_state_dict({k: rm.tensor(v.detach().numpy())
                              for k, v in theirs.state_dict().items()})
        x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(ours(rm.tensor(x)).data,
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert "dilation=(2, 2)" in repr(nn.Conv2d(3, 2, 3, dilation=2))


def test_dilated_conv_exports(tmp_path: Path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2, padding=2), nn.ReLU())
    rm.export_onnx(model, rm.randn(2, 3, 8, 8), tmp_path / "dilated.onnx")
    session = ort.InferenceSession(str(tmp_path / "dilated.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = rm.randn(3, 3, 8, 8)
    got = session.run(None, {session.get_inputs()[0].name: x.data})[0]
    with rm.no_grad():
        np.testing.assert_allclose(got, model(x).data, rtol=1e-5, atol=1e-5)


def test_a_quantized_dilated_conv_keeps_its_dilation_in_the_framework_and_the_file() -> None:
    import onnxruntime as ort

    from reference_models.compress.quantize import calibrate, export_quantized, prepare

    rm.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, dilation=2, padding=2), nn.ReLU(),
                          nn.Conv2d(8, 4, 3, dilation=(1, 2), padding=(1, 2))).eval()
    gen = np.random.default_rng(0)
    batches = [gen.random((8, 3, 10, 10), dtype=np.float32) for _ in range(2)]
    qmodel = calibrate(prepare(model), batches)
    x = gen.random((4, 3, 10, 10), dtype=np.float32)
    with rm.no_grad():
        expected, exact = qmodel(rm.tensor(x)).data, model(rm.tensor(x)).data
    # the fake-quantized framework stays near the float model (a dropped dilation would not)
    assert np.abs(expected - exact).max() < 0.1 * np.abs(exact).max()
    proto = export_quantized(qmodel, None, example_input=x[:1])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    # the last conv's output is float (no quantizer after it): the file computes the same
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
