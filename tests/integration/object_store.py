"""A real S3-compatible server for tests: moto's standalone server (``moto_server``), in its own
process on a free port, reached over HTTP by boto3 exactly as a MinIO would be. Nothing is mocked
inside the test process."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration import platform_stack as stack

ACCESS_KEY, SECRET_KEY, REGION = "arena-test", "arena-test-secret", "us-east-1"


def start_server(log: Path, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """Start ``moto_server`` on a free port; (process, endpoint URL) once it answers."""
    import requests

    binary = stack.VENV_BIN / "moto_server"
    require(binary.exists(), "moto_server (pip install 'moto[server]')")
    for _ in range(attempts):
        port = stack.free_port()
        handle = open(log, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                return process, endpoint
            except requests.RequestException:
                time.sleep(0.1)
        stack.kill(process)  # the port was taken meanwhile, or it never came up: try another
    raise AssertionError(f"moto_server did not start:\n{log.read_text(errors='replace')[-3000:]}")


def make_bucket(endpoint: str) -> str:
    import boto3

    name = f"arena-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY, region_name=REGION).create_bucket(Bucket=name)
    return name


def storage_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The environment a platform process needs to keep its artifacts in ``bucket``."""
    return {"ARENA_ARTIFACT_STORAGE": "s3", "ARENA_S3_BUCKET": bucket,
            "ARENA_S3_ENDPOINT_URL": endpoint, "ARENA_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "ARENA_S3_SECRET_ACCESS_KEY": SECRET_KEY, "ARENA_S3_REGION": REGION}


def storage_setting(endpoint: str, bucket: str) -> dict:
    """``STORAGES["artifacts"]`` for ``bucket`` (what settings.py builds from ``storage_env``)."""
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket, "endpoint_url": endpoint, "region_name": REGION,
        "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "location": "artifacts",
        "addressing_style": "path", "signature_version": "s3v4", "default_acl": None,
        "querystring_auth": False, "file_overwrite": True}}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The endpoint URL of a moto S3 server running for the whole session."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process, endpoint = start_server(log)
    yield endpoint
    stack.stop(process)


@pytest.fixture
def s3_storage(s3_server, settings, tmp_path):
    """This test's artifacts in a fresh bucket of the S3 server; the worker cache in tmp_path."""
    bucket = make_bucket(s3_server)
    settings.STORAGES = {**settings.STORAGES, "artifacts": storage_setting(s3_server, bucket)}
    settings.ARENA_ARTIFACT_CACHE_DIR = tmp_path / "artifact-cache"
    return {"endpoint": s3_server, "bucket": bucket}
