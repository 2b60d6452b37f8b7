"""``reference_models.utils.data`` (PyTorch's loader API, batches as tensors), modules that accept
numpy batches, and ``save``/``load`` of nested state without pickle (issue 17, items 2 and 3)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import reference_models as rm
from reference_models import data as batch_data
from reference_models import nn, optim
from reference_models.nn import functional as F
from reference_models.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
    random_split,
)


def test_tensor_dataset_items_and_batches_are_tensors() -> None:
    x, y = rm.randn(10, 3), rm.arange(10)
    ds = TensorDataset(x, y)
    first = ds[1]
    assert isinstance(first[0], rm.Tensor) and first[1].item() == 1 and len(ds) == 10
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(isinstance(b[0], rm.Tensor) for b in batches)
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(rm.randn(3), rm.randn(4))


def test_shuffling_follows_manual_seed_and_covers_every_item() -> None:
    ds = TensorDataset(rm.arange(20))

    def epoch(seed: int) -> list[int]:
        rm.manual_seed(seed)
        return [i for (b,) in DataLoader(ds, batch_size=6, shuffle=True) for i in b.tolist()]

    assert epoch(1) == epoch(1) != epoch(2) and sorted(epoch(3)) == list(range(20))


class Squares(Dataset):
    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int):
        return {"x": np.full(2, index, dtype=np.float32), "y": index * index, "name": f"n{index}"}


def test_default_collate_keeps_structure_and_pytorch_dtypes() -> None:
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].shape == (3, 2) and batch["x"].dtype == np.float32
    assert batch["y"].tolist() == [0, 1, 4] and batch["y"].dtype == np.int64
    assert batch["name"] == ["n0", "n1", "n2"]
    assert default_collate([1.5, 2.5]).dtype == np.float64  # Python floats, as in PyTorch
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object()])


def test_samplers_batch_sampler_and_collate_fn() -> None:
    ds = TensorDataset(rm.arange(7))
    sampler = BatchSampler(SequentialSampler(ds), 3, drop_last=False)
    assert list(sampler) == [[0, 1, 2], [3, 4, 5], [6]] and len(sampler) == 3
    loader = DataLoader(ds, batch_sampler=[[6, 0], [3]])
    assert [b[0].tolist() for b in loader] == [[6, 0], [3]]
    summed = DataLoader(list(range(6)), batch_size=4, collate_fn=sum)
    assert list(summed) == [6, 9]
    drawn = list(RandomSampler(ds, replacement=True, num_samples=50,
                               generator=np.random.default_rng(0)))
    assert len(drawn) == 50 and set(drawn) <= set(range(7))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    loader = DataLoader(ds, batch_size=2, num_workers=4, pin_memory=True, persistent_workers=True)
    assert len(list(loader)) == 4  # accepted; loading stays in this process


def test_random_split_by_lengths_and_fractions() -> None:
    parts = random_split(range(10), [0.7, 0.3], generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [4, 4])


def test_the_framework_datasets_load_whole_batches_as_tensors() -> None:
    ids = np.arange(100) % 7
    loader = DataLoader(batch_data.TextWindows(ids, context=8), batch_size=4)
    x, y = next(iter(loader))
    assert isinstance(x, rm.Tensor) and x.shape == (4, 8)
    np.testing.assert_array_equal(y.data[:, :-1], x.data[:, 1:])


def test_modules_accept_the_numpy_batches_of_reference_models_data() -> None:
    rm.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    images = np.random.default_rng(0).random((5, 3, 2, 2), dtype=np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    for inputs, targets in batch_data.DataLoader(batch_data.TensorDataset(images, labels), 5):
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
    assert model[1].weight.grad is not None


def test_save_and_load_a_training_checkpoint(tmp_path: Path) -> None:
    rm.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x = rm.randn(6, 3)
    for _ in range(2):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        sched.step()
    path = tmp_path / "ckpt.pt"
    rm.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "epoch": 2, "best": 0.75, "note": "run a",
             "sizes": (3, 4), "tags": None}, path)
    assert path.is_file() and not (tmp_path / "ckpt.pt.npz").exists()
    loaded = rm.load(path, map_location="cpu")
    assert loaded["epoch"] == 2 and loaded["best"] == 0.75 and loaded["sizes"] == (3, 4)
    assert loaded["note"] == "run a" and loaded["tags"] is None
    assert isinstance(loaded["model"]["0.weight"], rm.Tensor)
    assert 0 in loaded["optimizer"]["state"]  # integer keys survive

    rm.manual_seed(5)
    copy = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    copy.load_state_dict(loaded["model"])
    opt2 = optim.SGD(copy.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(loaded["optimizer"])
    for m, o in ((model, opt), (copy, opt2)):  # one more step: identical with restored momentum
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    np.testing.assert_array_equal(copy[0].weight.data, model[0].weight.data)


def test_save_refuses_objects_that_would_need_pickle_and_load_refuses_pickles(tmp_path) -> None:
    with pytest.raises(TypeError, match="state_dict"):
        rm.save(nn.Linear(2, 2), tmp_path / "model.pt")
    with pytest.raises(TypeError, match="without pickle"):
        rm.save({"f": lambda: 0}, tmp_path / "f.pt")
    pickled = tmp_path / "torch.pt"
    with zipfile.ZipFile(pickled, "w") as archive:  # what torch.save writes: a zip of a pickle
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ValueError):
        rm.load(pickled)
    with pytest.raises(RuntimeError, match="CPU only"):
        rm.load(pickled, map_location="cuda:0")
    buffer = io.BytesIO()
    rm.save([rm.ones(2), np.arange(3)], buffer)
    buffer.seek(0)
    restored = rm.load(buffer)
    assert isinstance(restored[0], rm.Tensor) and isinstance(restored[1], np.ndarray)


def test_torch_saved_state_loads_with_pytorch_names() -> None:
    """A state dict saved here loads into the same PyTorch model (names and shapes agree)."""
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    rm.manual_seed(0)
    rm.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).state_dict(), buffer)
    buffer.seek(0)
    state = {k: torch.from_numpy(v.data.copy()) for k, v in rm.load(buffer).items()}
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    theirs.load_state_dict(state)
