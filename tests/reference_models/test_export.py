"""ONNX export: real files loaded in onnxruntime, compared with the framework at several batch sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.export import ExportError, export_onnx
from reference_models.nn import functional as F

STANDARD_DOMAINS = {"", "ai.onnx"}


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def framework_output(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with rm.no_grad():
        return model(rm.Tensor(x, dtype=x.dtype)).data


def assert_matches_at_batches(model: nn.Module, path: Path, sample_shape: tuple[int, ...],
                              batches=(1, 3, 64)) -> None:
    gen = np.random.default_rng(0)
    for batch in batches:
        x = gen.random((batch, *sample_shape), dtype=np.float32)
        np.testing.assert_allclose(run_onnx(path, x), framework_output(model, x),
                                   rtol=1e-4, atol=1e-4, err_msg=f"batch {batch}")


class Normalize(nn.Module):
    """Per-channel normalization inside the graph, as the task contract asks."""

    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1))

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        return (x - self.mean) / self.std


def trained_bn_statistics(model: nn.Module, shape: tuple[int, ...]) -> None:
    """A few training-mode forwards so BatchNorm's running statistics are not the defaults."""
    model.train()
    for _ in range(3):
        model(rm.rand(16, *shape) * 2 + 0.5)


def make_mlp() -> nn.Module:
    rm.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(64, 10))


def make_cnn() -> nn.Module:
    rm.manual_seed(1)
    return nn.Sequential(
        Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26]),
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(32), nn.GELU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


def test_mlp_exports_for_mnist(tmp_path: Path) -> None:
    model = make_mlp()
    path = tmp_path / "mlp.onnx"
    export_onnx(model, rm.rand(2, 1, 28, 28), path, task="mnist")
    assert_matches_at_batches(model, path, (1, 28, 28))


def test_cnn_with_batch_norm_pooling_flatten_exports_for_cifar10(tmp_path: Path) -> None:
    model = make_cnn()
    trained_bn_statistics(model, (3, 32, 32))
    path = tmp_path / "cnn.onnx"
    proto = export_onnx(model, rm.rand(4, 3, 32, 32), path, task="cifar10")
    assert_matches_at_batches(model, path, (3, 32, 32))
    ops = {node.op_type for node in proto.graph.node}
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool", "Flatten", "Gemm"} <= ops
    assert all(node.domain in STANDARD_DOMAINS for node in proto.graph.node)


def test_signature_has_dynamic_batch_and_named_output(tmp_path: Path) -> None:
    path = tmp_path / "cnn.onnx"
    export_onnx(make_cnn(), rm.rand(2, 3, 32, 32), path)
    model = onnx.load(str(path))
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["N", 3, 32, 32]
    assert graph_output.name == "logits"
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ["N", 10]
    assert model.ir_version <= 10
    assert max(o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS) <= 26


def test_export_leaves_training_mode_and_weights_unchanged(tmp_path: Path) -> None:
    model = make_cnn()
    before = {name: value.clone() for name, value in model.state_dict().items()}  # a snapshot
    export_onnx(model, rm.rand(2, 3, 32, 32), tmp_path / "m.onnx")
    assert model.training
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_parameters_become_named_initializers(tmp_path: Path) -> None:
    model = make_cnn()
    proto = export_onnx(model, rm.rand(2, 3, 32, 32), None)
    names = {init.name for init in proto.graph.initializer}
    assert {"1.weight", "2.running_mean", "2.running_var", "14.weight"} <= names
    # the constants of the normalization are folded into initializers, nothing is left unused
    used = {name for node in proto.graph.node for name in node.input}
    assert names <= used


class Mixed(nn.Module):
    """Ops beyond the standard layers: slicing, cat, stack, softmax, reductions, reshape, where."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 6)
        self.mask = np.array([True, False, True, True, False, True])

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        h = self.proj(x.reshape(x.shape[0], 4, 8))          # batched linear -> MatMul + Add
        h = rm.cat([h[:, :2], h[:, 2:] * 2.0], dim=1)      # Slice + Concat
        h = h.masked_fill(self.mask, 0.5)                  # Where
        s = F.softmax(h, dim=-1) + F.log_softmax(h, dim=1).exp()
        m = s.mean(dim=1) - s.amax(dim=1) + s.sum(dim=1, keepdim=True).squeeze(1)
        v = rm.stack([m, m.sigmoid()], dim=1).flatten(1)   # Unsqueeze + Concat + Flatten
        return (v ** 2).sqrt() + x[:, 0:1].abs() + x.var(dim=1, keepdim=True).tanh()


def test_general_ops_export_and_match(tmp_path: Path) -> None:
    rm.manual_seed(2)
    model = Mixed()
    path = tmp_path / "mixed.onnx"
    export_onnx(model, rm.randn(3, 32), path)
    gen = np.random.default_rng(5)
    for batch in (1, 5):
        x = gen.standard_normal((batch, 32), dtype=np.float32)
        np.testing.assert_allclose(run_onnx(path, x), framework_output(model, x), rtol=1e-4,
                                   atol=1e-5)


class TinyLanguageModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(65, 16)
        self.head = nn.Linear(16, 65)

    def forward(self, ids: rm.Tensor) -> rm.Tensor:
        return self.head(F.gelu(self.embed(ids)))


def test_token_model_exports_for_tinygpt_with_dynamic_context(tmp_path: Path) -> None:
    rm.manual_seed(3)
    model = TinyLanguageModel()
    ids = np.random.default_rng(0).integers(0, 65, (2, 8))
    path = tmp_path / "lm.onnx"
    export_onnx(model, rm.Tensor(ids), path, task="tinygpt", dynamic_axes={1: "T"})
    for shape in ((1, 8), (3, 20)):
        batch = np.random.default_rng(1).integers(0, 65, shape)
        np.testing.assert_allclose(run_onnx(path, batch), framework_output(model, batch),
                                   rtol=1e-4, atol=1e-5)


def test_wrong_input_for_the_task_is_explained() -> None:
    with pytest.raises(ExportError, match=r"task 'cifar10' takes input of shape \[N, 3, 32, 32\]"):
        export_onnx(make_cnn(), rm.rand(2, 3, 28, 28), None, task="cifar10")
    with pytest.raises(ExportError, match="int64"):
        export_onnx(make_mlp(), rm.rand(2, 1, 28, 28), None, task="tinygpt")


def test_batch_norm_without_running_statistics_is_refused() -> None:
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ExportError, match="running statistics"):
        export_onnx(model, rm.rand(3, 4), None)


def test_a_loss_in_forward_is_refused() -> None:
    class WithLoss(nn.Module):
        def forward(self, x: rm.Tensor) -> rm.Tensor:
            return F.cross_entropy(x, np.zeros(x.shape[0], dtype=np.int64))

    with pytest.raises(ExportError, match="cross_entropy"):
        export_onnx(WithLoss(), rm.rand(3, 4), None)


def test_top_level_export_function_is_the_same() -> None:
    proto = rm.export_onnx(make_mlp(), rm.rand(2, 1, 28, 28), None, task="mnist")
    assert proto.graph.output[0].name == "logits"


class MaskAndCast(nn.Module):
    """Comparisons, argmax, casts and detach on the input stay in the graph (not frozen)."""

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        positive = rm.where(x > 0.5, x, x * 0.1)
        winners = x.argmax(dim=1, keepdim=True).float()
        return positive.detach() + winners + (x <= 0.2).float() + x.eq(x).float()


def test_comparisons_casts_and_argmax_follow_the_input(tmp_path: Path) -> None:
    model = MaskAndCast()
    path = tmp_path / "mask.onnx"
    export_onnx(model, rm.rand(3, 6), path)
    gen = np.random.default_rng(9)
    for batch in (1, 4):
        x = gen.random((batch, 6), dtype=np.float32)
        np.testing.assert_allclose(run_onnx(path, x), framework_output(model, x), rtol=1e-6)


def test_values_computed_outside_the_graph_are_caught() -> None:
    class Frozen(nn.Module):
        def forward(self, x: rm.Tensor) -> rm.Tensor:
            return x + rm.Tensor(np.maximum(x.data, 0))  # numpy on .data: a constant in the graph

    with pytest.raises(ExportError, match="numpy on .data"):
        export_onnx(Frozen(), rm.rand(3, 4), None)


def test_a_new_op_exports_through_the_public_translation_registry(tmp_path: Path) -> None:
    from reference_models.export import register_translation
    from reference_models.tensor import record_op

    class Softsign(nn.Module):
        def forward(self, x):
            data = x.data / (1 + np.abs(x.data))
            return record_op(data, (x,), "test_softsign", lambda g: (g / (1 + np.abs(x.data)) ** 2,))

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), Softsign())
    example = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ExportError, match="register_translation"):
        export_onnx(model, example, None)

    @register_translation("test_softsign")
    def _softsign(b, t) -> None:
        b.node("Softsign", b.inputs(t), b.out(t))

    try:
        path = tmp_path / "softsign.onnx"
        export_onnx(model, example, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        expected = model(rm.Tensor(example)).data
        got = session.run(None, {session.get_inputs()[0].name: example})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="already has an ONNX translation"):
            register_translation("test_softsign")(lambda b, t: None)
    finally:
        from reference_models import export

        export._TRANSLATIONS.pop("test_softsign", None)
