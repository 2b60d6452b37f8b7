"""Artifact storage: uploaded models kept by content hash under ARENA_ARTIFACT_DIR, never served."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


class UploadTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class StoredArtifact:
    path: str  # relative to the artifact directory
    sha256: str
    size_bytes: int


def artifact_root() -> Path:
    root = Path(settings.ARENA_ARTIFACT_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def store_chunks(chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredArtifact:
    """Stream ``chunks`` to disk, hashing as it goes; identical files are stored once."""
    max_bytes = settings.ARENA_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    root = artifact_root()
    digest = hashlib.sha256()
    size = 0
    handle, temp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(
                        f"the file is larger than the {max_bytes / 2**20:.0f} MiB upload limit"
                    )
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        relative = f"{sha[:2]}/{sha}.onnx"
        final = root / relative
        final.parent.mkdir(exist_ok=True)
        os.replace(temp_name, final)  # atomic; a concurrent identical upload writes the same bytes
        os.chmod(final, 0o640)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return StoredArtifact(relative, sha, size)


def store_bytes(data: bytes) -> StoredArtifact:
    return store_chunks([data])


def artifact_file(relative: str) -> Path:
    """The absolute path of a stored artifact; refuses anything outside the artifact directory."""
    root = artifact_root().resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"artifact path {relative!r} is outside the artifact directory")
    return path


def read_artifact(relative: str) -> bytes:
    return artifact_file(relative).read_bytes()
