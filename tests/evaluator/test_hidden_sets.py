"""Imported hidden sets: every format the evaluator reads, the manifest's SHA-256 and public flag,
loading a track's set by name, and the errors an instructor sees."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from evaluator.datasets import (
    DatasetFormatError,
    DatasetNotPrepared,
    dataset_sha256,
    hidden_set_entry,
    hidden_set_present,
    import_hidden_set,
    load_hidden,
    read_manifest,
    verify_prepared,
)
from evaluator.datasets.commands import main as datasets_main
from evaluator.datasets.store import combined_sha256, file_sha256
from evaluator.tasks import CIFAR10_CLASSES, TINYGPT_VOCABULARY


def _digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), np.arange(count) % 10


def _write_idx(path, array: np.ndarray) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_png_folder_of_class_folders_becomes_a_hidden_set(tmp_path):
    images, labels = _digits(40)
    for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "src" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
    result = import_hidden_set("exam-2026", "mnist", tmp_path / "src", tmp_path / "data")
    assert result["format"] == "folder" and result["public"] is False
    assert result["counts"] == {"test": 40, "public": 20, "private": 20}
    hidden = load_hidden("mnist", "all", tmp_path / "data", hidden_set="exam-2026")
    assert hidden.inputs.shape == (40, 1, 28, 28)
    # Ordered by class then file name: the pixels are the PNGs' exactly (PNG is lossless).
    order = sorted(range(40), key=lambda i: (labels[i], f"{i:03d}"))
    assert np.array_equal(hidden.inputs[:, 0], images[order])
    assert np.array_equal(hidden.labels, labels[order])
    halves = [load_hidden("mnist", s, tmp_path / "data", hidden_set="exam-2026") for s in
              ("public", "private")]
    assert sorted(np.concatenate([h.labels for h in halves]).tolist()) == sorted(labels.tolist())


def test_idx_pair_records_sha256_of_files_and_sources(tmp_path):
    images, labels = _digits(30, seed=1)
    _write_idx(tmp_path / "imgs.gz", images)
    _write_idx(tmp_path / "labels.gz", labels.astype(np.uint8))
    result = import_hidden_set("idx-set", "mnist", tmp_path / "imgs.gz", tmp_path / "data",
                               labels=tmp_path / "labels.gz")
    assert result["format"] == "idx"
    entry = read_manifest(tmp_path / "data")["sets"]["idx-set"]
    assert entry["task"] == "mnist" and entry["public"] is False
    files = {name: file_sha256(tmp_path / "data" / "idx-set" / name) for name in entry["files"]}
    assert files == entry["files"] and entry["sha256"] == combined_sha256(files)
    assert entry["source"]["files"][str(tmp_path / "imgs.gz")] == hashlib.sha256(
        (tmp_path / "imgs.gz").read_bytes()).hexdigest()
    assert verify_prepared("idx-set", tmp_path / "data") == entry["sha256"]
    assert dataset_sha256("mnist", tmp_path / "data", hidden_set="idx-set") == entry["sha256"]
    hidden = load_hidden("mnist", "all", tmp_path / "data", hidden_set="idx-set")
    assert np.array_equal(hidden.inputs[:, 0], images)


def test_cifar_binary_records_and_public_flag(tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (25, 3 * 32 * 32), dtype=np.uint8)
    labels = (np.arange(25) % 10).astype(np.uint8)
    (tmp_path / "mine.bin").write_bytes(np.concatenate([labels[:, None], pixels], 1).tobytes())
    result = import_hidden_set("cifar-mine", "cifar10", tmp_path / "mine.bin", tmp_path / "data",
                               public=True)
    assert result["format"] == "cifar" and result["public"] is True
    hidden = load_hidden("cifar10", "all", tmp_path / "data", hidden_set="cifar-mine")
    assert np.array_equal(hidden.inputs.reshape(25, -1), pixels)
    assert hidden_set_entry("cifar-mine", tmp_path / "data")["public"] is True
    assert len(CIFAR10_CLASSES) == 10


def test_utf8_text_is_a_whole_hidden_text(tmp_path):
    text = ("To be, or not to be: that is the question.\n" * 60)
    (tmp_path / "play.txt").write_text(text, encoding="utf-8")
    result = import_hidden_set("new-play", "tinygpt", tmp_path / "play.txt", tmp_path / "data")
    assert result["format"] == "text" and result["counts"]["test"] == len(text)
    hidden = load_hidden("tinygpt", "all", tmp_path / "data", hidden_set="new-play")
    assert "".join(TINYGPT_VOCABULARY[i] for i in hidden.segments[0]) == text
    halves = [load_hidden("tinygpt", s, tmp_path / "data", hidden_set="new-play")
              for s in ("public", "private")]
    assert len(halves[0]) + len(halves[1]) == len(text)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="standard mnist set"):
        import_hidden_set("mnist", "mnist", tmp_path, tmp_path / "data")
    with pytest.raises(ValueError, match="cannot name a hidden set"):
        import_hidden_set("../etc", "mnist", tmp_path, tmp_path / "data")
    (tmp_path / "bad.txt").write_text("café " * 400, encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="outside the task's vocabulary"):
        import_hidden_set("bad", "tinygpt", tmp_path / "bad.txt", tmp_path / "data")
    with pytest.raises(DatasetNotPrepared, match="import --name absent --task"):
        load_hidden("mnist", "all", tmp_path / "data", hidden_set="absent")
    assert not hidden_set_present("absent", tmp_path / "data")


def test_a_set_of_another_task_is_refused(tmp_path):
    images, labels = _digits(20)
    _write_idx(tmp_path / "i.gz", images)
    _write_idx(tmp_path / "l.gz", labels.astype(np.uint8))
    import_hidden_set("digits", "mnist", tmp_path / "i.gz", tmp_path / "data",
                      labels=tmp_path / "l.gz")
    with pytest.raises(ValueError, match="is a mnist set, not a cifar10 set"):
        load_hidden("cifar10", "all", tmp_path / "data", hidden_set="digits")


def test_cli_imports_and_lists_a_named_set(tmp_path, capsys):
    images, labels = _digits(20)
    _write_idx(tmp_path / "i.gz", images)
    _write_idx(tmp_path / "l.gz", labels.astype(np.uint8))
    code = datasets_main(["import", "--name", "final", "--task", "mnist", "--from",
                          str(tmp_path / "i.gz"), "--labels", str(tmp_path / "l.gz"),
                          "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0 and "final (mnist, idx): 20 images" in out and "hidden (not public)" in out
    sha = read_manifest(tmp_path / "data")["sets"]["final"]["sha256"]
    assert sha in out
    assert datasets_main(["info", "--verify", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "final (mnist, hidden)" in out and "verified" in out
    assert datasets_main(["import", "--name", "x", "--from", str(tmp_path)]) == 2
    assert "one --task" in capsys.readouterr().err
    json.dumps(read_manifest(tmp_path / "data"))  # still plain JSON


def _exam_set(tmp_path, count: int = 60):
    images, labels = _digits(count, seed=3)
    _write_idx(tmp_path / "i.gz", images)
    _write_idx(tmp_path / "l.gz", labels.astype(np.uint8))
    import_hidden_set("exam", "mnist", tmp_path / "i.gz", tmp_path / "data",
                      labels=tmp_path / "l.gz")
    return tmp_path / "data"


def test_local_score_on_a_set_that_is_not_public_prints_no_private_figure(tmp_path, capsys):
    from evaluator.cli import main
    from tests.evaluator import model_zoo

    data = _exam_set(tmp_path)
    model = tmp_path / "m.onnx"
    model.write_bytes(model_zoo.mnist_linear())
    common = [str(model), "--task", "mnist", "--data-dir", str(data), "--quick",
              "--hidden-set", "exam"]
    assert main(["score", *common, "--split", "all"]) == 2
    assert "its private half is never shown" in capsys.readouterr().err
    assert main(["score", *common, "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["valid"] and card["split"] == "public"
    assert card["hidden_set"]["name"] == "exam" and card["hidden_set"]["public"] is False
    assert "private" not in card["splits"] and card["splits"]["public"]["count"] == 30
    assert "private" not in json.dumps(card["train_gap"])
    assert main(["score", *common]) == 0
    out = capsys.readouterr().out
    assert "exam (not public)" in out and "public half accuracy" in out
    assert "private" not in out


def test_local_score_needs_the_set_here_and_says_which_it_used(tmp_path, capsys,
                                                               prepared_mnist_dir):
    from evaluator.cli import main
    from tests.evaluator import model_zoo

    model = tmp_path / "m.onnx"
    model.write_bytes(model_zoo.mnist_linear())
    assert main(["score", str(model), "--task", "mnist", "--data-dir", str(prepared_mnist_dir),
                 "--quick", "--hidden-set", "exam"]) == 1
    err = capsys.readouterr().err
    assert "not your model's fault" in err and "the hidden set 'exam' is not prepared" in err
    assert main(["score", str(model), "--task", "mnist", "--data-dir", str(prepared_mnist_dir),
                 "--quick"]) == 0
    out = capsys.readouterr().out
    assert "mnist (public labels)" in out and "private half accuracy" in out
