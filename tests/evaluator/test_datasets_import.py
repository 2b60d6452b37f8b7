"""``import_from``, ``fetch`` (against a local HTTP server and an unreachable loopback port) and the
``datasets`` command line, on small copies of the datasets written by the tests."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import time

import numpy as np
import pytest

import evaluator.datasets.downloads as downloads_module
from evaluator.datasets import (
    DatasetError,
    DatasetSourceMissing,
    DownloadError,
    decode_ids,
    fetch,
    import_from,
    load_hidden,
    load_train,
    read_manifest,
    verify_prepared,
)
from evaluator.datasets.commands import main
from evaluator.datasets.sources import OFFICIAL_SOURCES, RemoteFile
from evaluator.tasks import CIFAR10_CLASSES, TINYGPT_VOCABULARY
from tests.evaluator.test_datasets_readers import (
    SMALL_TEXT,
    image_tree,
    jpeg_bytes,
    write_image_tar,
    write_source_tree,
)

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens there


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_from_prepares_all_three_tasks(tmp_path):
    source = write_source_tree(tmp_path / "src")
    results = import_from(source, tmp_path / "data")
    assert results["mnist"]["train"] == 20 and results["mnist"]["test"] == 10
    assert results["cifar10"]["train"] == 10 and results["cifar10"]["test"] == 6
    assert results["tinygpt"]["train"] == int(len(SMALL_TEXT) * 0.9)
    assert load_hidden("cifar10", "all", tmp_path / "data").inputs.shape == (6, 3, 32, 32)
    ids, _ = load_train("tinygpt", tmp_path / "data")
    assert decode_ids(ids, TINYGPT_VOCABULARY) == SMALL_TEXT[: results["tinygpt"]["train"]]
    sources = read_manifest(tmp_path / "data")["tasks"]["mnist"]["source"]["files"]
    assert sources["mnist/t10k-labels-idx1-ubyte.gz"] == sha256_of(source / "mnist/t10k-labels-idx1-ubyte.gz")


def test_import_from_reads_cifar10_from_a_jpeg_tarball(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    tree = image_tree(np.random.default_rng(0), CIFAR10_CLASSES, {"train": 2, "test": 1})
    write_image_tar(source / "cifar10-jpg.tar.gz", tree, jpeg_bytes)
    results = import_from(source, tmp_path / "data", ["cifar10"])
    assert results["cifar10"]["train"] == 20 and results["cifar10"]["test"] == 10
    np.testing.assert_array_equal(load_hidden("cifar10", "all", tmp_path / "data").labels, np.arange(10))


def test_import_from_names_what_is_missing(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(DatasetSourceMissing, match=r"cannot import mnist: .*train-images-idx3-ubyte.gz does not exist"):
        import_from(tmp_path / "src", tmp_path / "data", ["mnist"])
    with pytest.raises(DatasetSourceMissing, match="cannot import cifar10: .* holds none of cifar-10-binary.tar.gz"):
        import_from(tmp_path / "src", tmp_path / "data", ["cifar10"])
    with pytest.raises(DatasetSourceMissing, match="is not a folder"):
        import_from(tmp_path / "absent", tmp_path / "data")


# --- fetch ---------------------------------------------------------------------------------------


def sources_served_from(base_url: str, source) -> dict[str, tuple[RemoteFile, ...]]:
    """OFFICIAL_SOURCES with every URL moved to ``base_url`` and the SHA-256s of the small copies."""
    return {
        task: tuple(
            RemoteFile(remote.path, (base_url + remote.path,), sha256_of(source / remote.path))
            for remote in remotes
        )
        for task, remotes in OFFICIAL_SOURCES.items()
    }


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on a free loopback port serving a small source tree; yields (url, tree, log)."""
    tree = write_source_tree(tmp_path / "served")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tree)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", tree, requests
    server.shutdown()
    server.server_close()


def test_fetch_downloads_verifies_and_prepares(tmp_path, file_server):
    url, tree, requests = file_server
    sources = sources_served_from(url, tree)
    results = fetch(tmp_path / "data", sources=sources, progress=False)
    assert results["mnist"]["test"] == 10 and results["cifar10"]["train"] == 10
    assert sha256_of(tmp_path / "data/downloads/cifar-10-binary.tar.gz") == sha256_of(tree / "cifar-10-binary.tar.gz")
    assert len(requests) == 6
    fetch(tmp_path / "data", ["mnist"], sources=sources, progress=False)
    assert len(requests) == 6, "files already downloaded with the right SHA-256 are not downloaded again"


def test_fetch_refuses_a_file_with_the_wrong_sha256(tmp_path, file_server):
    url, tree, _ = file_server
    wrong = {"tinygpt": (RemoteFile("tinyshakespeare/input.txt", (url + "tinyshakespeare/input.txt",), "0" * 64),)}
    with pytest.raises(DownloadError, match="SHA-256 [0-9a-f]{64} does not match the expected 0000"):
        fetch(tmp_path / "data", ["tinygpt"], sources=wrong, progress=False)
    assert not list((tmp_path / "data/downloads").rglob("input.txt*"))
    assert "tinygpt" not in read_manifest(tmp_path / "data")["tasks"]


def test_fetch_tries_the_next_mirror(tmp_path, file_server):
    url, tree, _ = file_server
    path = "tinyshakespeare/input.txt"
    mirrors = {"tinygpt": (RemoteFile(path, (url + "missing/" + path, url + path), sha256_of(tree / path)),)}
    assert fetch(tmp_path / "data", ["tinygpt"], sources=mirrors, progress=False)["tinygpt"]["test"] > 0


def test_fetch_without_network_fails_quickly_with_a_clear_error(tmp_path):
    offline = {"mnist": (RemoteFile("mnist/train-images-idx3-ubyte.gz", (UNREACHABLE + "train-images-idx3-ubyte.gz",), "0" * 64),)}
    started = time.monotonic()
    with pytest.raises(DownloadError) as error:
        fetch(tmp_path / "data", ["mnist"], sources=offline, progress=False)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message.startswith("could not download mnist/train-images-idx3-ubyte.gz")
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in message
    assert "python -m evaluator datasets import --from DIR" in message


def test_official_sources_are_pinned_https_downloads():
    for remotes in OFFICIAL_SOURCES.values():
        for remote in remotes:
            assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0
            assert remote.urls and all(u.startswith(("https://", "http://")) for u in remote.urls)
            assert remote.urls[0].startswith("https://")
    assert [r.path for r in OFFICIAL_SOURCES["cifar10"]] == ["cifar-10-binary.tar.gz"]


# --- the command line ----------------------------------------------------------------------------


def test_cli_import_then_info(tmp_path, capsys):
    source = write_source_tree(tmp_path / "src")
    assert main(["import", "--from", str(source), "--data-dir", str(tmp_path / "data"), "--task", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "mnist: 20 training and 10 hidden (5 public / 5 private) images" in out
    assert main(["info", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    sha = read_manifest(tmp_path / "data")["tasks"]["mnist"]["sha256"]
    assert f"mnist: {tmp_path / 'data' / 'mnist'}  sha256 {sha}" in out
    assert "cifar10: not prepared; run `python -m evaluator datasets fetch --task cifar10" in out


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["import", "--from", str(tmp_path / "absent"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err

    offline = {"tinygpt": (RemoteFile("tinyshakespeare/input.txt", (UNREACHABLE + "input.txt",), "0" * 64),)}
    monkeypatch.setattr(downloads_module, "OFFICIAL_SOURCES", offline)
    assert main(["fetch", "--task", "tinygpt", "--data-dir", str(tmp_path / "data")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "downloading tinyshakespeare/input.txt from http://127.0.0.1:9/input.txt"
    assert lines[1].startswith("error: could not download tinyshakespeare/input.txt") and len(lines) == 2

    bad = tmp_path / "bad"
    (bad / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (bad / "mnist" / name).write_bytes(b"\x00\x00\x08\x03garbage")
    assert main(["import", "--from", str(bad), "--data-dir", str(tmp_path / "data"), "--task", "mnist"]) == 2
    assert "is truncated: it ends inside the IDX header" in capsys.readouterr().err


def test_cli_rejects_an_unknown_task(capsys):
    assert main(["import", "--from", ".", "--task", "imagenet"]) == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_import_without_tasks_takes_what_is_there(tmp_path, capsys):
    source = write_source_tree(tmp_path / "src")
    (source / "cifar-10-binary.tar.gz").unlink()
    assert sorted(import_from(source, tmp_path / "data")) == ["mnist", "tinygpt"]
    assert main(["import", "--from", str(source), "--data-dir", str(tmp_path / "cli")]) == 0
    assert f"not found in {source}, so not imported: cifar10" in capsys.readouterr().out
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetSourceMissing, match="holds none of the datasets"):
        import_from(tmp_path / "nothing", tmp_path / "data")


def test_info_verify_finds_a_changed_file(tmp_path, capsys):
    source = write_source_tree(tmp_path / "src")
    data = tmp_path / "data"
    import_from(source, data, ["mnist", "tinygpt"])
    assert verify_prepared("mnist", data) == read_manifest(data)["tasks"]["mnist"]["sha256"]
    assert main(["info", "--verify", "--data-dir", str(data)]) == 0
    assert "verified" in capsys.readouterr().out
    labels = data / "mnist" / "private_labels.npy"
    raw = bytearray(labels.read_bytes())
    raw[-1] ^= 1
    labels.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="private_labels.npy does not match its SHA-256"):
        verify_prepared("mnist", data)
    assert main(["info", "--verify", "--data-dir", str(data)]) == 2
    out = capsys.readouterr().out
    assert "CHANGED" in out and "prepare the CHANGED task again" in out
