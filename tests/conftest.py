"""Fixtures every part of the suite shares.

Tests that need something real (a dataset copy, Redis, PostgreSQL, chromium) call ``require``: outside
CI a missing thing skips the test; under ``CI=true`` it fails it, so CI never passes by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, what: str) -> None:
    """Skip (or, under CI, fail) the calling test when ``condition`` is false."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only copies of MNIST, CIFAR-10 and Tiny Shakespeare laid out like ../shared/datasets."""
    path = Path(os.environ.get("ARENA_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
    require((path / "mnist").is_dir(), f"the shared datasets at {path}")
    return path


def _prepare_datasets(shared: Path, fallback: Path, tasks: tuple[str, ...]) -> Path:
    """A data directory where ``tasks`` are prepared from ``shared``: ``$ARENA_TEST_DATA_CACHE`` when
    set (reused as is when it already holds these tasks, prepared from these very source files with
    the current split seed; imported into otherwise), else ``fallback``."""
    from evaluator.datasets import SPLIT_SEED, DatasetError, import_from, prepared_entry
    from evaluator.datasets.store import file_sha256

    cache = os.environ.get("ARENA_TEST_DATA_CACHE", "").strip()
    target = Path(cache).expanduser() if cache else fallback

    def is_current(task: str) -> bool:
        try:
            entry = prepared_entry(task, target)
        except DatasetError:
            return False
        files = entry.get("source", {}).get("files", {})
        return entry.get("split_seed") == SPLIT_SEED and bool(files) and all(
            (shared / name).is_file() and file_sha256(shared / name) == sha
            for name, sha in files.items()
        )

    stale = [task for task in tasks if not (cache and is_current(task))]
    if stale:
        import_from(shared, target, stale)
    return target


@pytest.fixture(scope="session")
def prepared_data_dir(shared_datasets: Path, tmp_path_factory) -> Path:
    """A data directory with all three real tasks prepared (``load_hidden(task, split, dir)``)."""
    fallback = tmp_path_factory.mktemp("prepared-data")
    return _prepare_datasets(shared_datasets, fallback, ("mnist", "cifar10", "tinygpt"))


@pytest.fixture(scope="session")
def prepared_mnist_dir(shared_datasets: Path, tmp_path_factory) -> Path:
    """A data directory with only the real MNIST prepared (about a second)."""
    fallback = tmp_path_factory.mktemp("prepared-mnist")
    return _prepare_datasets(shared_datasets, fallback, ("mnist",))
