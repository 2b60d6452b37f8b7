"""Module bookkeeping: registration, state dicts, modes, hooks, and the layers' behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.nn import functional as F


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.not_a_weight = 3

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        return self.head(F.relu(self.bn(self.conv(x)))) * self.scale


def test_named_parameters_and_buffers_use_dotted_names() -> None:
    model = Block()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                     "head.1.weight", "head.1.bias"]
    assert [n for n, _ in model.named_buffers()] == [
        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in model.named_children()] == ["conv", "bn", "head"]
    assert len(list(model.modules())) == 6
    assert sum(p.numel() for p in model.parameters()) == 1 + 4 * 27 + 4 + 8 + 64 * 5 + 5


def test_shared_parameters_are_listed_once() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    model.append(model[0])
    assert len(list(model.parameters())) == 2


def test_state_dict_round_trip_reproduces_outputs() -> None:
    rm.manual_seed(0)
    source = Block()
    source(rm.randn(8, 3, 4, 4))  # move the batch norm statistics
    state = source.state_dict()
    assert all(isinstance(v, rm.Tensor) for v in state.values())  # tensors, as in PyTorch
    rm.manual_seed(1)
    target = Block()
    target.load_state_dict(state)
    x = rm.randn(2, 3, 4, 4)
    source.eval()
    target.eval()
    np.testing.assert_array_equal(source(x).data, target(x).data)
    snapshot = {name: value.clone() for name, value in state.items()}
    state["conv.weight"][...] = 0  # as in PyTorch, a state dict holds the live memory...
    assert np.abs(source.conv.weight.data).sum() == 0
    assert np.abs(target.conv.weight.data).sum() > 0  # ...and loading copies it
    assert np.abs(snapshot["conv.weight"].data).sum() > 0  # clone() is the snapshot


def test_load_state_dict_explains_mismatches() -> None:
    model = Block()
    state = model.state_dict()
    with pytest.raises(ValueError, match=r"'conv.weight' has shape \(2, 3, 3, 3\), the model "):
        Block().load_state_dict({**state, "conv.weight": np.zeros((4, 3, 3, 3))[:2]})
    del state["bn.running_mean"]
    with pytest.raises(KeyError, match="missing keys \\['bn.running_mean'\\]"):
        Block().load_state_dict(state)
    result = Block().load_state_dict({**state, "extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bn.running_mean"] and result.unexpected_keys == ["extra"]


def test_train_and_eval_reach_every_submodule() -> None:
    model = Block()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_batch_norm_tracks_running_statistics_and_uses_them_in_eval() -> None:
    bn = nn.BatchNorm2d(2, momentum=0.5)
    x = rm.Tensor(np.random.default_rng(0).normal(3.0, 2.0, (16, 2, 4, 4)).astype(np.float32))
    bn(x)
    batch_mean = x.data.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * batch_mean, rtol=1e-5)
    unbiased = x.data.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_var.data, 0.5 + 0.5 * unbiased, rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()
    expected = (x.data - bn.running_mean.data.reshape(1, 2, 1, 1)) / np.sqrt(
        bn.running_var.data.reshape(1, 2, 1, 1) + bn.eps)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_refuses_the_wrong_rank() -> None:
    with pytest.raises(ValueError, match="expects a 4-D input"):
        nn.BatchNorm2d(3)(rm.randn(2, 3))


def test_dropout_module_follows_the_mode() -> None:
    drop = nn.Dropout(0.5)
    x = rm.ones(100)
    assert (drop(x).data == 0).any()
    drop.eval()
    assert drop(x) is x


def test_forward_hooks_count_parameters_and_flops() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 10))
    flops: dict[str, int] = {}

    def count(module: nn.Module, inputs: tuple, output: rm.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            k = module.weight.shape[1] * module.kernel_size[0] * module.kernel_size[1]
            flops[type(module).__name__] = 2 * k * output.numel()
        elif isinstance(module, nn.Linear):
            flops[type(module).__name__] = 2 * module.in_features * output.numel()

    handles = [m.register_forward_hook(count) for m in model.modules()]
    model(rm.randn(1, 3, 4, 4))
    assert flops == {"Conv2d": 2 * 27 * 8 * 16, "Linear": 2 * 128 * 10}
    for handle in handles:
        handle.remove()
    flops.clear()
    model(rm.randn(1, 3, 4, 4))
    assert flops == {}


def test_a_forward_hook_can_replace_the_output() -> None:
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda module, inputs, output: output * 0)
    assert not layer(rm.randn(3, 2)).data.any()


def test_zero_grad_and_requires_grad() -> None:
    model = Block()
    F.cross_entropy(model(rm.randn(2, 3, 4, 4)), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not model(rm.randn(2, 3, 4, 4)).requires_grad


def test_sequential_indexing_iteration_and_repr() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(model[0], nn.Linear) and isinstance(model[-1], nn.Linear)
    assert len(model[1:]) == 2 and len(model) == 3
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in repr(model)
    named = nn.Sequential({"fc": nn.Linear(2, 2)})
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]


def test_module_list_registers_its_items() -> None:
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(layers.parameters())) == 6 and len(layers) == 3


def test_default_init_matches_pytorch_bounds() -> None:
    rm.manual_seed(0)
    layer = nn.Linear(100, 50)
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound


def test_conv_refuses_channel_mismatch_clearly() -> None:
    with pytest.raises(ValueError, match="input has 4 channels, the weight expects 3"):
        nn.Conv2d(3, 8, 3)(rm.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)


def test_losses_as_modules() -> None:
    logits, target = rm.randn(4, 3), np.array([0, 1, 2, 1])
    assert nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target, label_smoothing=0.1).item())
    assert nn.MSELoss()(logits, rm.zeros(4, 3)).item() == pytest.approx(
        float((logits.data ** 2).mean()))


def test_assigning_a_registered_buffer_keeps_it_a_buffer() -> None:
    bn = nn.BatchNorm1d(3)
    bn.running_mean = rm.Tensor(np.full(3, 2.0))
    assert "running_mean" in dict(bn.named_buffers())
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [2.0, 2.0, 2.0])


def test_batch_norm_on_a_large_batch_matches_the_formula() -> None:
    """Large inputs are normalized in parallel row blocks; the result must not change."""
    x = rm.Tensor(np.random.default_rng(3).normal(1.0, 3.0, (64, 16, 32, 32)).astype(np.float32),
                  requires_grad=True)
    bn = nn.BatchNorm2d(16)
    y = F.relu(bn(x))
    mean = x.data.mean(axis=(0, 2, 3), keepdims=True)
    std = np.sqrt(x.data.var(axis=(0, 2, 3), keepdims=True) + bn.eps)
    np.testing.assert_allclose(y.data, np.maximum((x.data - mean) / std, 0), rtol=1e-4, atol=1e-4)
    y.sum().backward()
    # d/dx of sum(relu(xhat)): zero mean over each channel, as batch norm's gradient always is
    np.testing.assert_allclose(x.grad.mean(axis=(0, 2, 3)), 0, atol=1e-5)
