"""PyTorch habits that used to give a different answer without an error (issue 17, item 1).

Comparisons are elementwise, ``max(dim)`` returns ``(values, indices)``, ``arange`` infers its
dtype, in-place operators change the tensor itself under PyTorch's autograd rules, and ``.grad``
and state-dict values are tensors. Where PyTorch is installed the results are compared with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn, no_grad, optim
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients


def test_comparisons_are_elementwise_and_tensors_stay_hashable() -> None:
    a, b = rm.tensor([1.0, 2.0, 3.0]), rm.tensor([1.0, 0.0, 3.0])
    assert (a == b).tolist() == [True, False, True]
    assert (a != b).tolist() == [False, True, False]
    assert (a == 2).tolist() == [False, True, False] and (2 == a).tolist() == [False, True, False]
    assert (np.array([1.0, 0.0, 0.0]) == a).tolist() == [True, False, False]
    # identity keys, as in PyTorch: two equal-valued tensors are two different keys
    twin = rm.tensor([1.0, 2.0, 3.0])
    assert len({a, twin}) == 2 and {a: "a"}[a] == "a" and a in {a}
    assert rm.equal(a, twin) and not rm.equal(a, b)


def test_a_causal_mask_built_with_eq_masks_the_future() -> None:
    """minGPT's ``masked_fill(bias == 0, -inf)`` used to mask nothing."""
    bias = rm.tril(rm.ones(4, 4)).reshape(1, 1, 4, 4)
    att = rm.zeros(1, 1, 4, 4).masked_fill(bias[:, :, :4, :4] == 0, float("-inf"))
    weights = F.softmax(att, dim=-1).data[0, 0]
    np.testing.assert_allclose(np.triu(weights, 1), 0)
    np.testing.assert_allclose(weights[3], 0.25)


def test_one_value_tensors_convert_and_bigger_ones_refuse() -> None:
    label, prediction = rm.tensor(3), rm.tensor(3)
    assert bool(label == prediction) and label == prediction  # the tutorial's `if` works
    assert int(rm.tensor([7])) == 7 and float(rm.tensor(2.5)) == 2.5
    assert [10, 20, 30][rm.tensor(2)] == 30 and list(range(rm.tensor(3))) == [0, 1, 2]
    assert f"{rm.tensor(0.123456):.3f}" == "0.123"
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(rm.tensor([1.0, 2.0]) > 0)
    with pytest.raises(TypeError, match="index"):
        [1, 2][rm.tensor(1.0)]
    with pytest.raises(TypeError, match="0-d"):
        list(rm.tensor(1.0))


def test_max_and_min_with_dim_return_values_and_indices() -> None:
    x = rm.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
    values, indices = x.max(1)  # any batch size, including 2
    assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
    assert x.max(dim=0).indices.tolist() == [1, 0, 1] and x.min(1)[1].tolist() == [0, 1]
    assert x.max(1, keepdim=True).values.shape == (2, 1)
    assert x.max().item() == 6.0 and rm.max(x, rm.zeros(2, 3)).shape == (2, 3)
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 0], [0, 0, 1]])
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


def test_sort_and_topk_return_values_and_indices() -> None:
    x = rm.tensor([[3.0, 1.0, 2.0], [0.0, 9.0, 4.0]])
    assert x.sort().indices.tolist() == [[1, 2, 0], [0, 2, 1]]
    assert x.sort(dim=1, descending=True).values.tolist() == [[3, 2, 1], [9, 4, 0]]
    top = x.topk(2)
    assert top.values.tolist() == [[3, 2], [9, 4]] and top.indices.tolist() == [[0, 2], [1, 2]]


@pytest.mark.parametrize("call", [lambda x: x.max(1).values, lambda x: x.min(0).values,
                                  lambda x: x.sort(1).values * rm.arange(5.0),
                                  lambda x: x.topk(3, dim=0).values])
def test_values_gradients_match_finite_differences(call) -> None:
    data = np.random.default_rng(0).permutation(20).reshape(4, 5).astype(np.float64)
    check_gradients(call, data)


def test_arange_infers_the_dtype_as_pytorch() -> None:
    assert rm.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert rm.arange(0, 1, 0.25).dtype == np.float32 and rm.arange(5).dtype == np.int64
    assert rm.arange(5.0).dtype == np.float32 and rm.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert rm.arange(3, dtype=rm.float32).dtype == np.float32


def test_a_hand_written_sgd_step_trains_the_parameter_itself() -> None:
    rm.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = rm.randn(16, 3), rm.randn(16, 1)
    weight = model.weight
    losses = []
    for _ in range(20):
        loss = F.mse_loss(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert model.weight is weight  # updated in place, not rebound
    assert losses[-1] < 0.7 * losses[0]


def test_in_place_on_a_leaf_that_requires_grad_is_an_error_outside_no_grad() -> None:
    w = rm.ones(3, requires_grad=True)
    for change in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(),
                   lambda: w.__isub__(1), lambda: w.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="leaf Variable"):
            change()
    assert w.tolist() == [1.0, 1.0, 1.0]
    with no_grad():
        w.fill_(2.0).clamp_(max=1.5)
    assert w.tolist() == [1.5, 1.5, 1.5]


def test_in_place_methods_change_the_tensor_and_its_views() -> None:
    t = rm.tensor([[1.0, -2.0], [3.0, -4.0]])
    alias, row = t, t[0]
    t += 1
    assert alias is t and t.tolist() == [[2.0, -1.0], [4.0, -3.0]]
    row *= 10  # a view: the base changes too
    assert t.tolist() == [[20.0, -10.0], [4.0, -3.0]]
    t.masked_fill_(t < 0, 0.0).add_(1, alpha=2)
    assert t.tolist() == [[22.0, 2.0], [6.0, 2.0]]
    t[t > 5] = -1.0
    assert t.tolist() == [[-1.0, 2.0], [-1.0, 2.0]]
    t.copy_(rm.tensor([1, 2]))
    assert t.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    ints = rm.tensor([1, 2])
    with pytest.raises(TypeError):
        ints += 0.5  # PyTorch: result type Float can't be cast to Long


def test_in_place_inside_a_graph_gives_pytorch_gradients() -> None:
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)

    def program(lib, a):
        b = a * 2
        b += 1
        b[0] = 0.5
        b.mul_(a)
        return (b * b).sum()

    ours = rm.tensor(data, requires_grad=True)
    program(rm, ours).backward()
    theirs = torch.tensor(data, requires_grad=True)
    program(torch, theirs).backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-6)


def test_backward_refuses_values_changed_in_place_after_they_were_used() -> None:
    a = rm.randn(3, requires_grad=True)
    b = a * 1
    c = b * b  # needs b's value for its gradient
    b += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = model(rm.randn(4, 2)).sum()
    loss.backward()
    opt.step()
    stale = model(rm.randn(4, 2)).sum()
    stale.backward()  # a graph built after the step is fine
    loss2 = (model.weight * 2).sum()
    opt.step()  # changes the weight loss2 was built from
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss2.backward()


def test_in_place_on_a_view_inside_a_graph_is_refused() -> None:
    a = rm.randn(2, 3, requires_grad=True)
    b = a * 1
    row = b[0]
    with pytest.raises(NotImplementedError, match="view"):
        row += 1


def test_grad_and_state_dict_values_are_tensors() -> None:
    rm.manual_seed(0)
    model = nn.Linear(4, 2)
    model(rm.randn(3, 4)).sum().backward()
    assert isinstance(model.weight.grad, rm.Tensor)
    model.weight.grad.zero_()
    model.bias.grad.data.zero_()
    assert not model.weight.grad.data.any() and not model.bias.grad.data.any()
    model.weight.data.normal_(0, 0.02)
    assert 0.005 < float(model.weight.data.std()) < 0.05
    model.bias.data.fill_(0.5)
    state = model.state_dict()
    assert all(isinstance(v, rm.Tensor) for v in state.values())
    assert state["bias"].tolist() == [0.5, 0.5]
    model.weight.grad = np.ones((2, 4))  # assigning an array keeps .grad a tensor
    assert isinstance(model.weight.grad, rm.Tensor) and model.weight.grad.dtype == np.float32


def test_optimizers_and_clipping_work_on_tensor_gradients() -> None:
    torch = pytest.importorskip("torch")
    rm.manual_seed(0)
    ours = nn.Linear(4, 3)
    theirs = torch.nn.Linear(4, 3)
    theirs.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in
                            ours.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    opt_o = optim.AdamW(ours.parameters(), lr=0.05)
    opt_t = torch.optim.AdamW(theirs.parameters(), lr=0.05)
    for _ in range(3):
        for model, opt, inp, clip in ((ours, opt_o, rm.tensor(x), nn.utils.clip_grad_norm_),
                                      (theirs, opt_t, torch.tensor(x),
                                       torch.nn.utils.clip_grad_norm_)):
            opt.zero_grad()
            (model(inp) ** 2).mean().backward()
            clip(model.parameters(), 0.1)
            opt.step()
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), atol=1e-6)


class Residual(nn.Module):
    """A ResNet block's ``out += identity``: in place inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        out = self.fc(x)
        out += x
        out *= 0.5
        return out.relu()


def test_in_place_ops_in_forward_export_and_train(tmp_path: Path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = Residual()
    x = rm.randn(3, 6)
    loss = model(x).sum()
    loss.backward()
    assert model.fc.weight.grad is not None
    model.eval()
    path = tmp_path / "residual.onnx"
    rm.export_onnx(model, x, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.data})[0]
    with no_grad():
        np.testing.assert_allclose(got, model(x).data, rtol=1e-5, atol=1e-6)


def test_mixed_dtypes_promote_as_pytorch() -> None:
    ints, floats = rm.tensor([1, 2]), rm.tensor([0.5, 0.5])
    assert (ints + floats).dtype == np.float32 and (ints / 2).dtype == np.float32
    assert (ints * 1.5).dtype == np.float32 and (ints // 2).dtype == np.int64
    assert (rm.tensor([1, 2], dtype=np.int32) + 1).dtype == np.int32
    assert (ints ** 2).dtype == np.int64 and (2 ** floats).dtype == np.float32
    with pytest.raises(TypeError):
        floats + [1.0, 2.0]  # PyTorch takes tensors and numbers, not lists


def test_from_pytorch_doc_blocks_run_as_written(capsys) -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "from-pytorch.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"from-pytorch.md block {number}", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "leaf Variable" in out and "[1, 0] True" in out
    assert namespace["logits"].shape == (16, 1)


class MaxOverFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        h = self.fc(x)
        return h.max(1, keepdim=True).values + h  # indices depend on the input


def test_max_values_export_computes_the_indices_instead_of_freezing_them(tmp_path: Path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = MaxOverFeatures().eval()
    rm.export_onnx(model, rm.randn(3, 6), tmp_path / "max.onnx")
    session = ort.InferenceSession(str(tmp_path / "max.onnx"), providers=["CPUExecutionProvider"])
    other = rm.randn(5, 6) * 3  # other rows: their argmax differs from the example's
    got = session.run(None, {session.get_inputs()[0].name: other.data})[0]
    with no_grad():
        np.testing.assert_allclose(got, model(other).data, rtol=1e-5, atol=1e-6)


def test_an_op_without_a_translation_is_a_clear_export_error(tmp_path: Path) -> None:
    # sort/topk/logsumexp export now (tests/reference_models/test_export_ops.py); cross-entropy
    # inside forward does not
    from reference_models.export import ExportError

    class Loss(nn.Module):
        def forward(self, x: rm.Tensor) -> rm.Tensor:
            return F.binary_cross_entropy_with_logits(x, rm.zeros(x.shape), reduction="none")

    with pytest.raises(ExportError, match="'binary_cross_entropy_with_logits'.*"
                                          "register_translation"):
        rm.export_onnx(Loss(), rm.randn(2, 3), tmp_path / "loss.onnx")


def test_values_read_before_an_in_place_change_keep_their_gradient() -> None:
    # (y * 2) and the mask read y before it changed: their gradients go to the old value, as in
    # PyTorch (this used to close a circle through y)
    torch = pytest.importorskip("torch")
    data = np.arange(6, dtype=np.float32).reshape(2, 3) - 2

    def program(lib, x):
        y = x * 3
        y[:, 0] = (y * 2).sum()
        y[y < 0] = 0.5
        return (y * y).sum()

    ours, theirs = rm.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    program(rm, ours).backward()
    program(torch, theirs).backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-6)
