"""The real MNIST, CIFAR-10 and Tiny Shakespeare copies in ../shared/datasets, imported for real."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from evaluator.datasets import (
    decode_ids,
    load_hidden,
    load_train,
    read_idx,
    read_manifest,
)
from evaluator.tasks import TINYGPT_VOCABULARY
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

# From ../shared/datasets/README.md
SOURCE_SHA256 = {
    "mnist/train-images-idx3-ubyte.gz": "71524e2cd1ad2968737f7f2f2ff69cbfc32df8ccddff51593f7cb2d4e0eb5b64",
    "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz": "b3d1ecee69772f10ad3399fcfc183a460646f07b37c22f1e3902096b8afcbc32",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "cifar10-jpg.tar.gz": "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db",
    "tinyshakespeare/input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
}


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_the_shared_source_files_are_the_documented_ones(shared_datasets, prepared_data_dir):
    for name, sha in SOURCE_SHA256.items():
        assert sha256_of(shared_datasets / name) == sha, name
    manifest = read_manifest(prepared_data_dir)["tasks"]
    recorded = {name: sha for entry in manifest.values() for name, sha in entry["source"]["files"].items()}
    assert recorded == SOURCE_SHA256


def test_mnist_counts_and_labels(shared_datasets, prepared_data_dir):
    train_x, train_y = load_train("mnist", prepared_data_dir)
    assert train_x.shape == (60000, 1, 28, 28) and train_x.dtype == np.uint8
    hidden = load_hidden("mnist", "all", prepared_data_dir)
    assert hidden.inputs.shape == (10000, 1, 28, 28)
    official = read_idx(shared_datasets / "mnist/t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(hidden.labels, official)
    np.testing.assert_array_equal(train_y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])  # MNIST's well-known start


def test_cifar10_counts_classes_and_channel_order(prepared_data_dir):
    train_x, train_y = load_train("cifar10", prepared_data_dir)
    assert train_x.shape == (50000, 3, 32, 32) and train_x.dtype == np.uint8
    assert np.bincount(train_y).tolist() == [5000] * 10
    hidden = load_hidden("cifar10", "all", prepared_data_dir)
    assert hidden.inputs.shape == (10000, 3, 32, 32)
    assert np.bincount(hidden.labels).tolist() == [1000] * 10
    np.testing.assert_array_equal(hidden.labels, np.repeat(np.arange(10), 1000))  # class, then file
    # CIFAR-10's published channel means (R 125.3, G 123.0, B 113.9): RGB order, not BGR
    means = train_x[:, :, ::4, ::4].mean(axis=(0, 2, 3))
    assert np.allclose(means, [125.3, 123.0, 113.9], atol=2.5), means


def test_tinyshakespeare_ninety_ten_and_vocabulary(shared_datasets, prepared_data_dir):
    text = (shared_datasets / "tinyshakespeare/input.txt").read_text(encoding="utf-8")
    assert len(text) == 1_115_394
    assert "".join(sorted(set(text))) == TINYGPT_VOCABULARY
    train, _ = load_train("tinygpt", prepared_data_dir)
    assert len(train) == 1_003_854
    assert decode_ids(train[:14], TINYGPT_VOCABULARY) == "First Citizen:"
    (whole,) = load_hidden("tinygpt", "all", prepared_data_dir).segments
    assert decode_ids(whole, TINYGPT_VOCABULARY) == text[1_003_854:]
    public = load_hidden("tinygpt", "public", prepared_data_dir)
    private = load_hidden("tinygpt", "private", prepared_data_dir)
    assert len(public.segments) == len(private.segments) == 8
    assert len(public) + len(private) == 111_540
    assert sorted({len(s) for s in (*public.segments, *private.segments)}) == [6971, 6975]


def test_image_splits_are_halves_and_the_manifest_hashes_hold(prepared_data_dir):
    manifest = read_manifest(prepared_data_dir)["tasks"]
    for task in ("mnist", "cifar10"):
        public = load_hidden(task, "public", prepared_data_dir)
        private = load_hidden(task, "private", prepared_data_dir)
        assert len(public) == len(private) == 5000
        assert public.sha256 == manifest[task]["sha256"]
        indices = [np.load(prepared_data_dir / task / f"{s}_indices.npy") for s in ("public", "private")]
        assert np.array_equal(np.sort(np.concatenate(indices)), np.arange(10000))
    for task, entry in manifest.items():
        for name, sha in entry["files"].items():
            assert sha256_of(prepared_data_dir / task / name) == sha, (task, name)


def test_the_command_line_imports_mnist_and_shows_it(shared_datasets, tmp_path):
    env = {**os.environ, "ARENA_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "evaluator", "datasets"]
    done = subprocess.run(
        [*command, "import", "--from", str(shared_datasets), "--task", "mnist"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "mnist: 60,000 training and 10,000 hidden (5,000 public / 5,000 private) images" in done.stdout
    info = subprocess.run([*command, "info"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    sha = read_manifest(tmp_path / "data")["tasks"]["mnist"]["sha256"]
    assert f"sha256 {sha}" in info.stdout and "tinygpt: not prepared" in info.stdout
