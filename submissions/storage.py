"""Artifact storage: uploaded models kept by content hash through Django's storage API, never served.

The backend is ``settings.STORAGES["artifacts"]``: local files under ``ARENA_ARTIFACT_DIR`` (the
embedded default), or an S3-compatible object store (django-storages with boto3: MinIO, Ceph,
AWS S3) when ``ARENA_ARTIFACT_STORAGE=s3``. Keys are ``<2 hex>/<sha256>.onnx`` either way, so
identical files are stored once and a key names its bytes.

- An upload streams to a local temporary file while it is hashed (never the whole file in
  memory), then goes to the store in one ``save`` (boto3 sends large files in parts).
- A worker reads an artifact through the same API into its own local cache
  (``ARENA_ARTIFACT_CACHE_DIR``, bounded by ``ARENA_ARTIFACT_CACHE_MB``), checks its SHA-256
  against the key, and never needs the web host's disk. With local files the cache is skipped:
  the file is already local.
- Nothing here makes a URL: no storage is ever served to a browser (the S3 backend is configured
  without public ACLs or signed URLs, and no view reads it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.onnx$")
_COPY_CHUNK = 1 << 20
_S3_PART = 8 << 20


class UploadTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class StoredArtifact:
    path: str  # the storage key, ``<2 hex>/<sha256>.onnx``
    sha256: str
    size_bytes: int


def artifact_storage() -> Storage:
    """The configured artifact storage (local files under ``ARENA_ARTIFACT_DIR`` by default)."""
    config = dict(settings.STORAGES["artifacts"])
    if config["BACKEND"] == "django.core.files.storage.FileSystemStorage":
        # Read the folder now, not at start-up, so a test's own folder takes effect.
        config["OPTIONS"] = {**config.get("OPTIONS", {}),
                             "location": str(settings.ARENA_ARTIFACT_DIR), "base_url": None}
    return _storage(json.dumps(config, sort_keys=True, default=str))


@lru_cache(maxsize=8)
def _storage(config: str) -> Storage:
    # One instance per configuration: an S3 backend holds a boto3 session and connection pool.
    config = json.loads(config)
    if config["BACKEND"] == "storages.backends.s3.S3Storage":
        from boto3.s3.transfer import TransferConfig

        # boto3 sends a large file in parts, by default up to 10 parts of 8 MB read into memory
        # at once (160 MB more in a web worker during a 200 MB upload, measured); two at a time.
        transfer = TransferConfig(multipart_threshold=_S3_PART, multipart_chunksize=_S3_PART,
                                  max_concurrency=settings.ARENA_S3_UPLOAD_THREADS)
        # s3transfer's own setting, which boto3's constructor does not take.
        transfer.max_in_memory_upload_chunks = settings.ARENA_S3_UPLOAD_THREADS
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "transfer_config": transfer}
    return storages.create_storage(config)


def _is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def check_key(key: str) -> str:
    """``key`` when it is an artifact key; a ValueError for anything else (a path, ``..``)."""
    if not _KEY.match(key):
        raise ValueError(f"artifact key {key!r} is not <2 hex>/<sha256>.onnx (outside the store)")
    return key


def store_chunks(chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredArtifact:
    """Stream ``chunks`` to the artifact store, hashing as it goes; identical files are stored
    once. Raises ``UploadTooLarge`` past ``max_bytes`` (nothing is stored then)."""
    max_bytes = settings.ARENA_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    digest = hashlib.sha256()
    size = 0
    storage = artifact_storage()
    # A local store gets the temporary file in its own folder (the final move is a rename).
    folder = Path(settings.ARENA_ARTIFACT_DIR) if _is_local(storage) else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix=".upload-", dir=folder) as spool:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(
                    f"the file is larger than the {max_bytes / 2**20:.0f} MiB upload limit"
                )
            digest.update(chunk)
            spool.write(chunk)
        spool.flush()
        sha = digest.hexdigest()
        key = f"{sha[:2]}/{sha}.onnx"
        if not storage.exists(key):
            spool.seek(0)
            saved = storage.save(key, File(spool, name=key))
            if saved != key:
                # A concurrent identical upload stored the key first (the local backend then
                # picks another name): the same bytes are under the key already.
                storage.delete(saved)
    if _is_local(storage):
        os.chmod(storage.path(key), 0o640)
    return StoredArtifact(key, sha, size)


def store_bytes(data: bytes) -> StoredArtifact:
    return store_chunks([data])


def artifact_file(key: str) -> Path:
    """A local file holding the artifact ``key``: the stored file itself for local storage, else
    this host's cached copy, fetched from the store (streamed) and checked against its hash."""
    check_key(key)
    storage = artifact_storage()
    if _is_local(storage):
        return Path(storage.path(key))
    cache = Path(settings.ARENA_ARTIFACT_CACHE_DIR)
    cached = cache / key
    if cached.is_file():
        os.utime(cached)  # recently used: evicted last
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temp_name = tempfile.mkstemp(dir=cached.parent, prefix=".fetch-")
    try:
        with os.fdopen(handle, "wb") as out, storage.open(key, "rb") as remote:
            while chunk := remote.read(_COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != key[3:67]:
            raise ValueError(f"artifact {key} read from the store does not match its SHA-256")
        os.replace(temp_name, cached)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _evict(cache, keep=cached)
    return cached


def _evict(cache: Path, keep: Path) -> None:
    """Drop the least recently used cached artifacts past ``ARENA_ARTIFACT_CACHE_MB``."""
    limit = settings.ARENA_ARTIFACT_CACHE_MB * 2**20
    files = [(path.stat().st_mtime, path.stat().st_size, path)
             for path in cache.glob("*/*.onnx") if path.is_file()]
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit:
            return
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


def read_artifact(key: str) -> bytes:
    return artifact_file(key).read_bytes()
