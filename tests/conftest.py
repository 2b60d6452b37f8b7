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
