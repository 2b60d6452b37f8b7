"""Datasets, the loader (order, seeding, drop_last) and batch-wise augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from reference_models.data import (
    VALIDATION_SIZE,
    Compose,
    DataLoader,
    Dataset,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    TextWindows,
    load_task_data,
)


def numbered(count: int) -> TensorDataset:
    return TensorDataset(np.arange(count * 2).reshape(count, 2), np.arange(count))


def test_tensor_dataset_items_and_length_mismatch():
    dataset = numbered(5)
    x, y = dataset[3]
    assert len(dataset) == 5 and list(x) == [6, 7] and y == 3
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_loader_without_shuffle_keeps_order_and_keeps_the_short_last_batch():
    loader = DataLoader(numbered(10), batch_size=4)
    batches = [y for _, y in loader]
    assert len(loader) == 3
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last_drops_the_short_batch():
    loader = DataLoader(numbered(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [4, 4]


def test_shuffle_is_a_permutation_that_changes_every_epoch_and_is_seeded():
    loader = DataLoader(numbered(100), batch_size=32, shuffle=True, seed=7)
    first = np.concatenate([y for _, y in loader])
    second = np.concatenate([y for _, y in loader])
    assert sorted(first) == list(range(100))
    assert not np.array_equal(first, np.arange(100))
    assert not np.array_equal(first, second)
    again = DataLoader(numbered(100), batch_size=32, shuffle=True, seed=7)
    assert np.array_equal(np.concatenate([y for _, y in again]), first)
    other = DataLoader(numbered(100), batch_size=32, shuffle=True, seed=8)
    assert not np.array_equal(np.concatenate([y for _, y in other]), first)


def test_without_a_seed_manual_seed_decides_the_order():
    from reference_models import manual_seed

    def order():
        manual_seed(11)
        loader = DataLoader(numbered(40), batch_size=8, shuffle=True)
        return np.concatenate([y for _, y in loader])

    first = order()
    assert np.array_equal(first, order())
    manual_seed(12)
    other = np.concatenate([y for _, y in DataLoader(numbered(40), batch_size=8, shuffle=True)])
    assert not np.array_equal(first, other)


def test_inputs_and_labels_stay_paired_after_shuffling():
    for x, y in DataLoader(numbered(50), batch_size=8, shuffle=True, seed=1):
        assert np.array_equal(x[:, 0], 2 * y)


def test_a_plain_dataset_is_batched_by_stacking_items():
    class Squares(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, index):
            return np.array([index, index * index]), index

    (x, y), *_ = DataLoader(Squares(), batch_size=3)
    assert x.tolist() == [[0, 0], [1, 1], [2, 4]] and y.tolist() == [0, 1, 2]


def test_the_transform_applies_to_whole_batches_of_inputs_only():
    loader = DataLoader(numbered(6), batch_size=3, transform=lambda batch: batch * 10)
    x, y = next(iter(loader))
    assert x.tolist() == [[0, 10], [20, 30], [40, 50]] and y.tolist() == [0, 1, 2]


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(numbered(3), batch_size=0)


def images(count=6, channels=3, size=8) -> np.ndarray:
    # Every pixel distinct and non-zero, so a crop can be located exactly in the original.
    values = np.arange(1, count * channels * size * size + 1) % 251 + 1
    return values.reshape(count, channels, size, size).astype(np.uint8)


def test_random_crop_with_padding_shifts_content_and_fills_with_zeros():
    batch = images(count=64)
    cropped = RandomCrop(8, padding=2, seed=0)(batch)
    assert cropped.shape == batch.shape and cropped.dtype == np.uint8
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for i in range(len(batch)):
        matches = [
            (top, left)
            for top in range(5)
            for left in range(5)
            if np.array_equal(padded[i, :, top : top + 8, left : left + 8], cropped[i])
        ]
        assert len(matches) == 1, "every crop is one window of its own padded image"
        offsets.add(matches[0])
    assert len(offsets) > 10, "images get different offsets"
    shifted = [i for i in range(len(batch)) if not np.array_equal(cropped[i], batch[i])]
    assert shifted and (cropped == 0).any()


def test_random_crop_to_a_smaller_size_without_padding():
    batch = images(count=4, size=8).astype(np.float32)
    cropped = RandomCrop(5, seed=1)(batch)
    assert cropped.shape == (4, 3, 5, 5) and cropped.dtype == np.float32
    with pytest.raises(ValueError, match="does not fit"):
        RandomCrop(9)(batch)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        RandomCrop(5)(batch[0])


def test_horizontal_flip_mirrors_some_images_and_leaves_the_others():
    batch = images(count=200)
    flipped = RandomHorizontalFlip(seed=3)(batch)
    mirrored = [np.array_equal(flipped[i], batch[i, :, :, ::-1]) for i in range(200)]
    unchanged = [np.array_equal(flipped[i], batch[i]) for i in range(200)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 60 < sum(mirrored) < 140
    assert np.array_equal(RandomHorizontalFlip(p=1.0)(batch), batch[:, :, :, ::-1])
    assert np.array_equal(RandomHorizontalFlip(p=0.0)(batch), batch)


def test_augmentation_in_a_loader_follows_the_loader_seed():
    dataset = TensorDataset(images(count=32), np.arange(32))
    augment = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])

    def run(seed):
        loader = DataLoader(dataset, batch_size=8, shuffle=True, seed=seed, transform=augment)
        return np.concatenate([x for x, _ in loader])

    assert np.array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_text_windows_pair_each_token_with_the_next():
    ids = np.arange(20)
    windows = TextWindows(ids, context=4)
    assert len(windows) == 4  # starts 0, 4, 8, 12 (16 would need token 20)
    x, y = windows[1]
    assert x.tolist() == [4, 5, 6, 7] and y.tolist() == [5, 6, 7, 8]
    overlapping = TextWindows(ids, context=4, stride=1)
    assert len(overlapping) == 16
    xb, yb = next(iter(DataLoader(overlapping, batch_size=16)))
    assert xb.shape == (16, 4) and np.array_equal(yb[:, :-1], xb[:, 1:])
    with pytest.raises(ValueError, match="too short"):
        TextWindows(np.arange(3), context=4)


@pytest.mark.integration
def test_task_data_come_from_the_evaluator_readers_with_a_fixed_holdout(prepared_mnist_dir):
    train_x, train_y = load_task_data("mnist", "train", prepared_mnist_dir)
    val_x, val_y = load_task_data("mnist", "validation", prepared_mnist_dir)
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (1, 28, 28)
    assert train_y.dtype == np.int64
    assert len(val_x) == VALIDATION_SIZE["mnist"] and len(train_x) + len(val_x) == 60_000
    everything, labels = load_task_data("mnist", "train", prepared_mnist_dir, validation_size=0)
    assert len(everything) == 60_000
    # the hold-out does not overlap the rest: together they are the whole training set
    sums = np.sort(np.concatenate([train_x, val_x]).reshape(60_000, -1).sum(axis=1))
    assert np.array_equal(sums, np.sort(everything.reshape(60_000, -1).sum(axis=1)))
    again, _ = load_task_data("mnist", "validation", prepared_mnist_dir)
    assert np.array_equal(again, val_x)


@pytest.fixture(scope="module")
def prepared_tinygpt_dir(shared_datasets, tmp_path_factory):
    from evaluator.datasets import import_from

    data_dir = tmp_path_factory.mktemp("prepared-tinygpt")
    import_from(shared_datasets, data_dir, ["tinygpt"])  # a fraction of a second
    return data_dir


@pytest.mark.integration
def test_tinygpt_data_are_token_ids_ending_in_the_holdout(prepared_tinygpt_dir):
    from evaluator.tasks import TINYGPT_VOCABULARY

    train_ids, none = load_task_data("tinygpt", "train", prepared_tinygpt_dir)
    val_ids, _ = load_task_data("tinygpt", "validation", prepared_tinygpt_dir)
    assert none is None and train_ids.dtype == np.int64
    assert len(val_ids) == VALIDATION_SIZE["tinygpt"]
    assert 0 <= train_ids.min() and train_ids.max() < len(TINYGPT_VOCABULARY)
    everything, _ = load_task_data("tinygpt", "train", prepared_tinygpt_dir, validation_size=0)
    assert np.array_equal(np.concatenate([train_ids, val_ids]), everything)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        load_task_data("mnist", "test")

