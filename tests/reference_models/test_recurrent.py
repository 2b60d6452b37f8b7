"""nn.RNN / LSTM / GRU: PyTorch's signatures, shapes and parameter names (a torch state_dict loads),
outputs and gradients equal to torch's to 1e-4, finite-difference gradient checks in float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from tests.reference_models.gradcheck import numeric_grad

CONFIGS = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True, bias=False)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
]


def _ids(config) -> str:
    return config[0] + "-" + "-".join(f"{k}={v}" for k, v in config[1].items())


def _pair(kind: str, options: dict, input_size: int = 5, hidden: int = 4):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(input_size, hidden, **options)
    ours = getattr(nn, kind)(input_size, hidden, **options)
    state = {k: rm.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)  # PyTorch's names and shapes, loaded strictly
    return torch, ours, theirs


@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_outputs_and_gradients_match_pytorch(config) -> None:
    kind, options = config
    torch, ours, theirs = _pair(kind, options)
    gen = np.random.default_rng(0)
    steps, batch = 6, 3
    shape = (batch, steps, 5) if options.get("batch_first") else (steps, batch, 5)
    x = gen.standard_normal(shape).astype(np.float32)
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    h0 = gen.standard_normal((layers, batch, 4)).astype(np.float32)
    c0 = gen.standard_normal((layers, batch, 4)).astype(np.float32)

    def run(lib, module, leaf):
        xt = leaf(x)
        hx = (leaf(h0), leaf(c0)) if kind == "LSTM" else leaf(h0)
        out, state = module(xt, hx)
        finals = state if kind == "LSTM" else (state,)
        loss = (out * out).sum() + sum((f * f * 0.5).sum() for f in finals)
        loss.backward()
        return out, finals, xt

    out_o, fin_o, x_o = run(rm, ours, lambda a: rm.tensor(a, requires_grad=True))
    out_t, fin_t, x_t = run(torch, theirs, lambda a: torch.tensor(a, requires_grad=True))
    assert tuple(out_o.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(fin_o, fin_t, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x_o.grad.data, x_t.grad.numpy(), rtol=1e-4, atol=1e-5)
    grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, grads[name].numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_default_state_unbatched_input_and_names(kind: str) -> None:
    torch, ours, theirs = _pair(kind, dict(num_layers=2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = np.random.default_rng(2).standard_normal((7, 5)).astype(np.float32)  # (L, H_in)
    out_o, state_o = ours(rm.tensor(x))
    out_t, state_t = theirs(torch.tensor(x))
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    h_o = state_o[0] if kind == "LSTM" else state_o
    h_t = state_t[0] if kind == "LSTM" else state_t
    assert tuple(h_o.shape) == tuple(h_t.shape) == (2, 4)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_gradients_match_finite_differences(kind: str) -> None:
    rm.manual_seed(3)
    module = getattr(nn, kind)(3, 2, num_layers=2, bidirectional=True).double()
    x = np.random.default_rng(4).standard_normal((4, 2, 3))
    weights = np.random.default_rng(5).standard_normal((4, 2, 4))
    xt = rm.tensor(x, requires_grad=True, dtype=np.float64)

    def loss() -> float:
        with rm.no_grad():
            return float((module(xt)[0].data * weights).sum())

    (module(xt)[0] * rm.tensor(weights, dtype=np.float64)).sum().backward()
    checked = [("input", xt), *list(module.named_parameters())[:6]]
    for name, tensor in checked:
        expected = numeric_grad(loss, tensor.data)
        np.testing.assert_allclose(tensor.grad.data, expected, rtol=1e-5, atol=1e-7,
                                   err_msg=name)


def test_dropout_between_layers_only_in_training() -> None:
    rm.manual_seed(0)
    lstm = nn.LSTM(4, 3, num_layers=2, dropout=0.5)
    x = rm.randn(5, 2, 4)
    lstm.eval()
    first, second = lstm(x)[0], lstm(x)[0]
    np.testing.assert_array_equal(first.data, second.data)
    lstm.train()
    assert not np.allclose(lstm(x)[0].data, first.data)


def test_wrong_shapes_are_explained() -> None:
    gru = nn.GRU(4, 3)
    with pytest.raises(RuntimeError, match="input_size. Expected 4, got 5"):
        gru(rm.randn(2, 1, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \[1, 2, 3\]"):
        gru(rm.randn(6, 2, 4), rm.zeros(1, 3, 3))
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(4, 3, proj_size=2)


class Tagger(nn.Module):
    """A char model in the usual shape: embedding, LSTM, linear head on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: rm.Tensor) -> tuple[rm.Tensor, rm.Tensor]:
        out, (h, _) = self.lstm(x)
        return self.head(out[:, -1]), h


def test_an_lstm_model_trains_and_exports(tmp_path: Path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = Tagger()
    opt = rm.optim.Adam(model.parameters(), lr=0.05)
    x = rm.randn(16, 5, 6)
    y = rm.tensor((x.data[:, :, 0].sum(1) > 0).astype(np.int64))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x)[0], y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with pytest.warns(UserWarning, match="first element"):
        rm.export_onnx(model, x[:3], tmp_path / "lstm.onnx")
    session = ort.InferenceSession(str(tmp_path / "lstm.onnx"),
                                   providers=["CPUExecutionProvider"])
    batch = rm.randn(4, 5, 6)
    got = session.run(None, {session.get_inputs()[0].name: batch.data})[0]
    model.eval()
    with rm.no_grad():
        np.testing.assert_allclose(got, model(batch)[0].data, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["RNN", "GRU"])
def test_the_final_state_exports_with_the_batch_on_its_axis_1(kind: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = getattr(nn, kind)(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    proto = rm.export_onnx(model, rm.randn(2, 5, 4), tmp_path / "h.onnx", output_index=1)
    dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [4, "N", 3]  # (layers * directions, N, hidden), as h_n is
    session = ort.InferenceSession(str(tmp_path / "h.onnx"), providers=["CPUExecutionProvider"])
    x = rm.randn(6, 5, 4)
    with rm.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x.data})[0], model(x)[1].data,
                                   rtol=1e-5, atol=1e-5)


def test_a_dynamic_sequence_length_is_refused_for_an_unrolled_rnn() -> None:
    # the graph is unrolled over the example's 5 steps; the exporter's check at 4 steps says so
    from reference_models.export import ExportError

    model = nn.GRU(4, 3, batch_first=True)
    with pytest.raises(ExportError, match=r"input shape \[2, 4, 4\]"), pytest.warns(UserWarning):
        rm.export_onnx(model, rm.randn(2, 5, 4), None, dynamic_axes={1: "T"})
