"""The prepared-data cache: the manifest's SHA-256s, the fixed public/private splits, loading."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from evaluator.datasets import (
    SPLIT_SEED,
    DatasetNotPrepared,
    as_model_input,
    dataset_sha256,
    decode_ids,
    default_data_dir,
    load_hidden,
    load_train,
    read_manifest,
    save_prepared,
    save_prepared_text,
)
from evaluator.datasets.splits import seeded_permutation
from evaluator.tasks import TINYGPT_VOCABULARY


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small_images(seed: int, n_train: int = 12, n_test: int = 10):
    rng = np.random.default_rng(seed)
    return {
        "train_inputs": rng.integers(0, 256, (n_train, 1, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train),
        "test_inputs": rng.integers(0, 256, (n_test, 1, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test),
    }


@pytest.fixture
def mnist_dir(tmp_path):
    arrays = small_images(0)
    save_prepared("mnist", tmp_path, **arrays)
    return tmp_path, arrays


def test_seeded_permutation_is_the_sha256_order_of_seed_and_index():
    expected = sorted(range(50), key=lambda i: hashlib.sha256(f"{SPLIT_SEED}:{i}".encode()).hexdigest())
    assert seeded_permutation(50).tolist() == expected
    assert seeded_permutation(50).tolist() != list(range(50))
    assert seeded_permutation(50, seed=SPLIT_SEED + 1).tolist() != expected


def test_image_splits_are_disjoint_halves_of_the_seeded_permutation(mnist_dir):
    data_dir, arrays = mnist_dir
    public, private, every = (load_hidden("mnist", s, data_dir) for s in ("public", "private", "all"))
    order = seeded_permutation(10)
    np.testing.assert_array_equal(public.inputs, arrays["test_inputs"][order[:5]])
    np.testing.assert_array_equal(public.labels, arrays["test_labels"][order[:5]])
    np.testing.assert_array_equal(private.inputs, arrays["test_inputs"][order[5:]])
    np.testing.assert_array_equal(every.inputs, arrays["test_inputs"])
    np.testing.assert_array_equal(every.labels, arrays["test_labels"])
    indices = {s: np.load(data_dir / "mnist" / f"{s}_indices.npy") for s in ("public", "private")}
    assert not set(indices["public"]) & set(indices["private"])
    assert sorted([*indices["public"], *indices["private"]]) == list(range(10))
    assert len(public) == len(private) == 5 and len(every) == 10
    assert public.segments == () and public.split == "public" and public.task == "mnist"


def test_splits_are_the_same_when_prepared_again_elsewhere(tmp_path, mnist_dir):
    data_dir, arrays = mnist_dir
    save_prepared("mnist", tmp_path / "other", **arrays)
    assert dataset_sha256("mnist", tmp_path / "other") == dataset_sha256("mnist", data_dir)
    np.testing.assert_array_equal(
        load_hidden("mnist", "private", tmp_path / "other").labels,
        load_hidden("mnist", "private", data_dir).labels,
    )


def test_manifest_sha256s_match_the_files(mnist_dir):
    data_dir, _ = mnist_dir
    entry = json.loads((data_dir / "manifest.json").read_text())["tasks"]["mnist"]
    files = sorted(p.name for p in (data_dir / "mnist").iterdir())
    assert sorted(entry["files"]) == files
    for name in files:
        assert entry["files"][name] == sha256_of(data_dir / "mnist" / name)
    lines = "".join(f"{name} {sha256_of(data_dir / 'mnist' / name)}\n" for name in files)
    assert entry["sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert dataset_sha256("mnist", data_dir) == entry["sha256"]
    assert load_hidden("mnist", "public", data_dir).sha256 == entry["sha256"]
    public = np.load(data_dir / "mnist" / "public_indices.npy")
    assert entry["splits"]["public"]["indices_sha256"] == hashlib.sha256(public.astype("<i8").tobytes()).hexdigest()
    assert entry["split_seed"] == SPLIT_SEED
    assert entry["counts"] == {"train": 12, "test": 10, "public": 5, "private": 5}


def test_the_dataset_sha256_changes_with_one_label(tmp_path, mnist_dir):
    data_dir, arrays = mnist_dir
    arrays["test_labels"] = arrays["test_labels"].copy()
    arrays["test_labels"][3] = (arrays["test_labels"][3] + 1) % 10
    save_prepared("mnist", tmp_path / "changed", **arrays)
    assert dataset_sha256("mnist", tmp_path / "changed") != dataset_sha256("mnist", data_dir)


def test_hidden_arrays_are_read_only_memory_maps(mnist_dir):
    hidden = load_hidden("mnist", "public", mnist_dir[0])
    assert isinstance(hidden.inputs, np.memmap)
    with pytest.raises(ValueError, match="read-only"):
        hidden.inputs[0, 0, 0, 0] = 1


def test_load_train_returns_the_training_arrays(mnist_dir):
    data_dir, arrays = mnist_dir
    inputs, labels = load_train("mnist", data_dir)
    np.testing.assert_array_equal(inputs, arrays["train_inputs"])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, arrays["train_labels"])


def test_preparing_again_replaces_a_task_and_keeps_the_others(mnist_dir):
    data_dir, _ = mnist_dir
    save_prepared_text(data_dir, "abc\n" * 100)
    replacement = small_images(1, n_train=4, n_test=6)
    save_prepared("mnist", data_dir, **replacement)
    manifest = read_manifest(data_dir)
    assert sorted(manifest["tasks"]) == ["mnist", "tinygpt"]
    assert manifest["tasks"]["mnist"]["counts"]["test"] == 6
    np.testing.assert_array_equal(load_hidden("mnist", "all", data_dir).inputs, replacement["test_inputs"])
    assert not [p for p in data_dir.iterdir() if "staging" in p.name]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_inputs": np.zeros((3, 28, 28), np.uint8)}, r"uint8 \[N,1,28,28\], got uint8 \[3, 28, 28\]"),
        ({"test_inputs": np.zeros((10, 1, 28, 28), np.float32)}, "got float32"),
        ({"test_labels": np.full(10, 10)}, r"labels must lie in 0..9"),
        ({"train_labels": np.zeros(3)}, "12 images but labels of shape"),
    ],
)
def test_save_prepared_rejects_arrays_that_do_not_fit_the_task(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        save_prepared("mnist", tmp_path, **(small_images(2) | change))
    assert not (tmp_path / "manifest.json").exists()


def test_cifar10_wants_three_channels(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 \[N,3,32,32\]"):
        save_prepared("cifar10", tmp_path, **small_images(3))


# --- tinygpt -------------------------------------------------------------------------------------

TEXT = "".join(TINYGPT_VOCABULARY[(i * 7) % len(TINYGPT_VOCABULARY)] for i in range(1000))


def test_text_is_cut_ninety_ten_and_the_hidden_part_into_sixteen_segments(tmp_path):
    save_prepared_text(tmp_path, TEXT)
    train, labels = load_train("tinygpt", tmp_path)
    assert labels is None and train.dtype == np.int64
    assert decode_ids(train, TINYGPT_VOCABULARY) == TEXT[:900]
    (whole,) = load_hidden("tinygpt", "all", tmp_path).segments
    assert decode_ids(whole, TINYGPT_VOCABULARY) == TEXT[900:]
    bounds = np.load(tmp_path / "tinygpt" / "segments.npy")
    assert bounds.shape == (16, 2)
    assert bounds[:, 0].tolist() == [6 * i for i in range(16)]
    assert bounds[:, 1].tolist() == [6 * (i + 1) for i in range(15)] + [100]  # remainder in the last


def test_text_halves_are_eight_disjoint_segments_each_in_text_order(tmp_path):
    save_prepared_text(tmp_path, TEXT)
    hidden = TEXT[900:]
    order = seeded_permutation(16)
    chosen = {"public": sorted(order[:8]), "private": sorted(order[8:])}
    bounds = [(6 * i, 6 * i + 6) for i in range(15)] + [(90, 100)]
    for split, segment_numbers in chosen.items():
        segments = load_hidden("tinygpt", split, tmp_path).segments
        assert len(segments) == 8
        expected = [hidden[bounds[s][0] : bounds[s][1]] for s in segment_numbers]
        assert [decode_ids(s, TINYGPT_VOCABULARY) for s in segments] == expected
    assert not set(chosen["public"]) & set(chosen["private"])
    entry = read_manifest(tmp_path)["tasks"]["tinygpt"]
    assert entry["splits"]["public"]["segments"] == [int(s) for s in chosen["public"]]
    assert entry["counts"]["public"] + entry["counts"]["private"] == 100


def test_text_with_an_unknown_character_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"outside the task's vocabulary, such as '~'"):
        save_prepared_text(tmp_path, TEXT + "~")
    assert not (tmp_path / "manifest.json").exists()


# --- loading ---------------------------------------------------------------------------------------


def test_an_unprepared_task_says_which_command_to_run(tmp_path, mnist_dir):
    with pytest.raises(DatasetNotPrepared, match=r"python -m evaluator datasets fetch --task cifar10 --data-dir"):
        load_hidden("cifar10", "public", mnist_dir[0])
    (mnist_dir[0] / "mnist" / "public_inputs.npy").unlink()
    with pytest.raises(DatasetNotPrepared, match="mnist dataset is not prepared"):
        load_hidden("mnist", "public", mnist_dir[0])
    with pytest.raises(DatasetNotPrepared):
        load_train("tinygpt", tmp_path / "nothing-here")


def test_unknown_tasks_and_splits_are_named(mnist_dir):
    with pytest.raises(ValueError, match="unknown split 'secret'"):
        load_hidden("mnist", "secret", mnist_dir[0])
    with pytest.raises(ValueError, match="unknown task 'imagenet'"):
        load_hidden("imagenet", "public", mnist_dir[0])


def test_as_model_input_scales_pixels_to_float32():
    pixels = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    result = as_model_input("cifar10", pixels)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.array([[[[0.0, 0.2, 1.0]]]], dtype=np.float32))
    with pytest.raises(ValueError, match="must be uint8 pixels"):
        as_model_input("mnist", pixels.astype(np.float32))
    ids = as_model_input("tinygpt", np.array([[1, 2, 3]], dtype=np.int32))
    assert ids.dtype == np.int64 and ids.tolist() == [[1, 2, 3]]


def test_default_data_dir_follows_arena_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path / "data"))
    assert default_data_dir() == tmp_path / "data"
    monkeypatch.delenv("ARENA_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "model-arena" / "data"


def test_tasks_prepared_at_the_same_time_all_reach_the_manifest(tmp_path):
    import threading

    jobs = [
        threading.Thread(target=save_prepared, args=("mnist", tmp_path), kwargs=small_images(4)),
        threading.Thread(target=save_prepared_text, args=(tmp_path, TEXT)),
        threading.Thread(target=save_prepared, args=("mnist", tmp_path), kwargs=small_images(5)),
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    manifest = read_manifest(tmp_path)
    assert sorted(manifest["tasks"]) == ["mnist", "tinygpt"]
    for task, entry in manifest["tasks"].items():  # the manifest describes the files that won
        assert all(entry["files"][n] == sha256_of(tmp_path / task / n) for n in entry["files"])
