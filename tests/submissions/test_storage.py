"""Artifact storage: by content hash, bounded, never outside its directory."""

import hashlib

import pytest

from submissions.storage import UploadTooLarge, artifact_file, read_artifact, store_chunks


def test_files_are_stored_once_by_content_hash(settings):
    first = store_chunks([b"abc", b"def"])
    again = store_chunks([b"abcdef"])
    assert first == again
    assert first.sha256 == hashlib.sha256(b"abcdef").hexdigest() and first.size_bytes == 6
    assert read_artifact(first.path) == b"abcdef"
    assert artifact_file(first.path).parent.parent == settings.ARENA_ARTIFACT_DIR.resolve()


def test_too_large_upload_is_refused_and_leaves_nothing(settings):
    with pytest.raises(UploadTooLarge, match="upload limit"):
        store_chunks([b"x" * 10, b"y" * 10], max_bytes=15)
    assert [p.name for p in settings.ARENA_ARTIFACT_DIR.rglob("*") if p.is_file()] == []


def test_paths_outside_the_artifact_directory_are_refused():
    with pytest.raises(ValueError, match="outside"):
        artifact_file("../../etc/passwd")


def test_the_refusal_names_the_limit_as_the_docs_do(settings):
    # The docs say 64 MiB; 64 * 2**20 bytes written as decimal megabytes would read "67 MB".
    with pytest.raises(UploadTooLarge, match=r"64 MiB upload limit"):
        store_chunks([b"x" * 64, b"y" * 2**26], max_bytes=64 * 2**20)
