"""ONNX translations of the newer ops and models that return a tuple: each model is exported (the
exporter's own two-batch check runs) and then compared with the framework in onnxruntime to 1e-5
at several batch sizes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.export import ExportError, export_onnx
from reference_models.nn import functional as F


class Lambda(nn.Module):
    def __init__(self, fn: Callable[[rm.Tensor], rm.Tensor], *layers: nn.Module) -> None:
        super().__init__()
        self.fn, self.layers = fn, nn.ModuleList(layers)

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        return self.fn(x, *self.layers) if len(self.layers) else self.fn(x)


def ort_outputs(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def check(model: nn.Module, sample_shape: tuple[int, ...], tmp_path: Path,
          batches=(1, 2, 5), output_index: int | None = None, low: float = -1.0) -> set[str]:
    rm.manual_seed(0)
    gen = np.random.default_rng(1)
    example = (gen.random((3, *sample_shape)) * (1 - low) + low).astype(np.float32)
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, example, path, output_index=output_index)
    for batch in batches:
        x = (gen.random((batch, *sample_shape)) * (1 - low) + low).astype(np.float32)
        with rm.no_grad():
            out = model(rm.Tensor(x))
        if isinstance(out, tuple):
            out = out[output_index or 0]
        got = ort_outputs(path, x)[0]
        assert got.dtype == out.data.dtype
        np.testing.assert_allclose(got, out.data, rtol=1e-5, atol=1e-5, err_msg=f"batch {batch}")
    return {node.op_type for node in proto.graph.node}




CASES: dict[str, tuple[Callable, tuple[int, ...], str]] = {
    "clamp_both": (lambda x: x.clamp(-0.2, 0.5), (6,), "Min"),
    "clamp_min": (lambda x: rm.clamp(x, min=0.1) * 2, (6,), "Max"),
    "clamp_max_only": (lambda x: x.clamp(max=0.0), (6,), "Min"),
    "clamp_min_above_max": (lambda x: x.clamp(0.5, 0.1), (6,), "Min"),
    "ne": (lambda x: ((x * 4).floor() != 1).float() + x, (6,), "Not"),
    "pad": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), (2, 3, 4), "Pad"),
    "pad_last_dim": (lambda x: F.pad(x, (3, 0)), (5,), "Pad"),
    "tril": (lambda x: x.tril() + x.tril(-1), (4, 5), "Trilu"),
    "triu": (lambda x: rm.triu(x, 1) - x.triu(-2), (5, 4), "Trilu"),
    "prod": (lambda x: x.prod(1), (4, 3), "ReduceProd"),
    "prod_keepdim": (lambda x: x * x.prod(-1, keepdim=True), (4, 3), "ReduceProd"),
    "cumsum": (lambda x: x.cumsum(1) + rm.cumsum(x, -1), (4, 4), "CumSum"),
    "sort_values": (lambda x: x.sort(1, descending=True).values, (7,), "TopK"),
    "sort_indices": (lambda x: x.sort(-1).indices.float(), (7,), "TopK"),
    "sort_batch_free_axis": (lambda x: rm.sort(x, 2).values, (3, 5), "TopK"),
    "argsort": (lambda x: x.argsort(1, descending=True).float(), (6,), "TopK"),
    "topk": (lambda x: x.topk(3, dim=1).values * 2, (8,), "TopK"),
    "topk_smallest_indices": (lambda x: x.topk(2, 1, largest=False).indices.float(), (8,),
                              "TopK"),
    "min_dim": (lambda x: x.min(1).values + x.argmin(1).float(), (6,), "ArgMin"),
    "maximum_minimum": (lambda x: rm.maximum(x, x * 0.5) + rm.minimum(x, -x), (6,), "Max"),
    "sin_cos": (lambda x: rm.sin(x) * rm.cos(x), (6,), "Sin"),
    "expand": (lambda x: x[:, :1].expand(-1, 4) + x, (4,), "Expand"),
    "repeat": (lambda x: x.repeat(1, 3), (4,), "Tile"),
    "flip": (lambda x: x.flip(1) - x.flip(1, 2), (3, 4), "Slice"),
    "logical_not": (lambda x: (~(x > 0)).float(), (5,), "Not"),
    "logsumexp": (lambda x: rm.logsumexp(x * 3, 1) + rm.logsumexp(x, -1, keepdim=True).sum(1),
                  (4, 5), "ReduceLogSumExp"),
    "norm": (lambda x: x.norm(dim=1) + rm.norm(x, 2, (1, 2), keepdim=True).reshape(-1, 1),
             (3, 4), "ReduceL2"),
    "remainder_float": (lambda x: (x * 7) % 1.5 + (x * 5) % -0.7, (6,), "Floor"),
    "floor_divide_float": (lambda x: (x * 7) // 1.5 + (x * 5) // -0.7, (6,), "Floor"),
    "int_remainder_and_floor_divide": (
        lambda x: ((x * 20).long() % 3 + (x * 20).long() // -4 + (x * 20).long() % -3).float(),
        (6,), "Mod"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_exports_and_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    fn, shape, op_type = CASES[name]
    assert op_type in check(Lambda(fn), shape, tmp_path)


def test_ties_in_sort_and_topk_keep_index_order(tmp_path: Path) -> None:
    # rounded inputs make many ties: the file must pick the lowest index first, as the framework
    check(Lambda(lambda x: (x * 2).round().sort(1, descending=True).indices.float()), (9,),
          tmp_path)
    check(Lambda(lambda x: (x * 2).round().topk(3, 1).indices.float()), (9,), tmp_path)


def test_conv_transpose2d_exports(tmp_path: Path) -> None:
    rm.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
    assert "ConvTranspose" in check(Lambda(lambda x, m: m(x).relu(), layer), (3, 5, 6), tmp_path)
    plain = nn.ConvTranspose2d(2, 2, (2, 3), bias=False)
    check(Lambda(lambda x, m: m(x), plain), (2, 4, 4), tmp_path)


def _assign_column(x: rm.Tensor) -> rm.Tensor:
    y = x.clone()
    y[:, 0] = 0
    y[:, 2:4] = x[:, 2:4] * 3  # a value that depends on the input
    return y


def _assign_mask(x: rm.Tensor) -> rm.Tensor:
    y = x * 1
    y[y < 0.2] = -1.0
    return y


def _assign_3d(x: rm.Tensor) -> rm.Tensor:
    y = x.clone()
    y[:, :, 1] = rm.tensor([10.0, 20.0, 30.0])  # broadcast against the (N, 3) region
    y[:, 1:, ::2] = -x[:, 1:, ::2]
    y[..., -1] = x[:, 0, -1:].clone() + 5  # (N, 1) broadcasts over the 3 rows of each sample
    return y


@pytest.mark.parametrize("fn", [_assign_column, _assign_mask, _assign_3d])
def test_assignment_into_a_tensor_exports(fn: Callable, tmp_path: Path) -> None:
    shape = (3, 4) if fn is _assign_3d else (6,)
    ops = check(Lambda(fn), shape, tmp_path)
    assert ops & {"ScatterND", "Where"}


def test_assignment_into_part_of_the_batch_is_refused() -> None:
    def first_row(x: rm.Tensor) -> rm.Tensor:
        y = x.clone()
        y[0] = 0
        return y

    with pytest.raises(ExportError, match="batch dimension"):
        export_onnx(Lambda(first_row), np.ones((2, 3), np.float32), None)


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: rm.Tensor) -> tuple[rm.Tensor, rm.Tensor]:
        logits = self.fc(x)
        return logits, logits.softmax(-1)


def test_a_model_returning_a_tuple_exports_its_first_output_with_a_warning(tmp_path) -> None:
    with pytest.warns(UserWarning, match="tuple of 2.*first element.*output_index"):
        check(TwoOutputs(), (4,), tmp_path)


def test_output_index_chooses_another_output(tmp_path: Path) -> None:
    model = TwoOutputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a chosen output is not warned about
        check(model, (4,), tmp_path, output_index=1)
    probabilities = ort_outputs(tmp_path / "model.onnx", np.ones((2, 4), np.float32))[0]
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ExportError, match="output_index=2, but the model returns 2 outputs"):
        export_onnx(model, np.ones((2, 4), np.float32), None, output_index=2)
    with pytest.raises(ExportError, match="returns one Tensor"):
        export_onnx(nn.Linear(4, 2), np.ones((2, 4), np.float32), None, output_index=1)


def test_with_normalization_puts_the_loaders_normalize_inside_the_graph(tmp_path: Path) -> None:
    from reference_models.export import Normalize, with_normalization

    rm.manual_seed(0)
    trained = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10))
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    model = with_normalization(trained, mean, std)
    pixels = np.random.default_rng(0).random((2, 3, 6, 6), dtype=np.float32)
    rm.export_onnx(model, pixels, tmp_path / "normalized.onnx")
    raw = np.random.default_rng(1).random((5, 3, 6, 6), dtype=np.float32)
    got = ort_outputs(tmp_path / "normalized.onnx", raw)[0]
    by_hand = (raw - np.array(mean, np.float32)[:, None, None]) / np.array(std,
                                                                          np.float32)[:, None, None]
    with rm.no_grad():
        np.testing.assert_allclose(got, trained(rm.tensor(by_hand)).data, rtol=1e-5, atol=1e-5)
    assert model[1] is trained and "mean=" in repr(model[0])
    with pytest.raises(ValueError, match="one number per channel"):
        Normalize((0.5, 0.5), (0.2,))
    with pytest.raises(ValueError, match="3 channels, the input 1"):
        Normalize(mean, std)(rm.zeros(1, 1, 2, 2))


def test_with_normalization_passes_the_task_check_for_mnist(tmp_path: Path) -> None:
    from reference_models.export import with_normalization

    rm.manual_seed(0)
    model = with_normalization(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 0.1307, 0.3081)
    rm.export_onnx(model, np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx", task="mnist")
