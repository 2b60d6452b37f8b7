"""Artifact storage: by content hash, bounded, never outside the store; local files and a real
S3-compatible server (moto's standalone server, its own process, on a free port)."""

import hashlib

import pytest

from submissions.storage import UploadTooLarge, artifact_file, read_artifact, store_chunks
from tests.integration import object_store
from tests.integration.object_store import ACCESS_KEY, REGION, SECRET_KEY

# The fixtures that start a real S3-compatible server and give each test its own bucket.
s3_server, s3_storage = object_store.s3_server, object_store.s3_storage


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


# --- The S3-compatible backend, against a real server (moto's, in its own process) ----------------


def _objects(store: dict) -> dict[str, bytes]:
    import boto3

    client = boto3.client("s3", endpoint_url=store["endpoint"], aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION)
    listing = client.list_objects_v2(Bucket=store["bucket"]).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=store["bucket"], Key=item["Key"])["Body"].read()
            for item in listing}


def test_s3_stores_once_by_content_hash_and_a_worker_reads_it_into_its_cache(
        s3_storage, settings, tmp_path):
    settings.ARENA_ARTIFACT_DIR = tmp_path / "never-used"
    first = store_chunks([b"abc", b"def"])
    again = store_chunks([b"abcdef"])
    assert first == again and first.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert _objects(s3_storage) == {f"artifacts/{first.path}": b"abcdef"}
    # The web host's disk holds nothing: the upload went to the store.
    assert not settings.ARENA_ARTIFACT_DIR.exists()
    cached = artifact_file(first.path)
    assert cached.parent.parent == settings.ARENA_ARTIFACT_CACHE_DIR
    assert read_artifact(first.path) == b"abcdef"


def test_s3_a_worker_with_its_own_cache_reads_what_another_host_stored(s3_storage, settings,
                                                                       tmp_path):
    stored = store_chunks([b"model bytes" * 1000])
    settings.ARENA_ARTIFACT_CACHE_DIR = tmp_path / "second-host-cache"  # another host
    assert read_artifact(stored.path) == b"model bytes" * 1000
    assert (settings.ARENA_ARTIFACT_CACHE_DIR / stored.path).is_file()


def test_s3_a_tampered_object_is_refused_and_not_cached(s3_storage, settings):
    import boto3

    stored = store_chunks([b"honest"])
    boto3.client("s3", endpoint_url=s3_storage["endpoint"], aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY, region_name=REGION).put_object(
        Bucket=s3_storage["bucket"], Key=f"artifacts/{stored.path}", Body=b"evil")
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        read_artifact(stored.path)
    assert not (settings.ARENA_ARTIFACT_CACHE_DIR / stored.path).exists()


def test_s3_too_large_upload_is_refused_and_stores_nothing(s3_storage):
    with pytest.raises(UploadTooLarge, match="upload limit"):
        store_chunks([b"x" * 10, b"y" * 10], max_bytes=15)
    assert _objects(s3_storage) == {}


def test_s3_keys_that_are_not_artifact_keys_are_refused(s3_storage):
    for key in ("../../etc/passwd", "ab/../../x.onnx", "AB/" + "0" * 64 + ".onnx"):
        with pytest.raises(ValueError, match="outside"):
            artifact_file(key)


def test_the_cache_drops_the_least_recently_used_past_its_size(s3_storage, settings):
    import os

    settings.ARENA_ARTIFACT_CACHE_MB = 1
    keys = [store_chunks([bytes([i]) * 400_000]).path for i in range(4)]
    for age, key in enumerate(keys):
        path = artifact_file(key)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # older first
    cached = {key for key in keys if (settings.ARENA_ARTIFACT_CACHE_DIR / key).exists()}
    assert keys[-1] in cached and len(cached) == 2, cached  # 2 x 400 kB fit in 1 MiB
    assert read_artifact(keys[0]) == bytes([0]) * 400_000  # fetched again when needed
