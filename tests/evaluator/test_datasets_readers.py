"""The dataset readers, on small files written here in the official formats, and on broken ones.

The writers at the top build the official formats byte by byte (independently of the readers); the
other dataset tests import them.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluator.datasets import (
    DatasetFormatError,
    DatasetSourceMissing,
    decode_ids,
    encode_text,
    read_cifar10_binary,
    read_idx,
    read_image_folder,
    read_mnist,
    read_text,
)
from evaluator.tasks import CIFAR10_CLASSES, TINYGPT_VOCABULARY

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: two zero bytes, the type code, the rank, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records of 3073 bytes: the label, then the 1024 red, 1024 green and 1024 blue pixels."""
    return b"".join(
        bytes([int(label)]) + image.astype(np.uint8).tobytes() for image, label in zip(images, labels, strict=True)
    )


def add_to_tar(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def random_cifar(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def write_cifar_binary_tar(path: Path, train: list, test: tuple) -> Path:
    """``cifar-10-binary.tar.gz`` layout: ``cifar-10-batches-bin/data_batch_{1..5}.bin``, ``test_batch.bin``."""
    with tarfile.open(path, "w:gz") as archive:
        add_to_tar(archive, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n")
        for i, (images, labels) in enumerate(train, start=1):
            add_to_tar(archive, f"cifar-10-batches-bin/data_batch_{i}.bin", cifar_batch_bytes(images, labels))
        add_to_tar(archive, "cifar-10-batches-bin/test_batch.bin", cifar_batch_bytes(*test))
    return path


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of an ``[H,W,3]`` or ``[H,W]`` uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def image_tree(rng: np.random.Generator, classes: tuple[str, ...], per_class: dict[str, int]) -> dict:
    """``{"split/class/name.png": pixels}`` with file names deliberately not in creation order."""
    tree = {}
    for split, count in per_class.items():
        for cls in classes:
            for i in reversed(range(count)):
                tree[f"{split}/{cls}/{i:04d}.png"] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return tree


def write_image_folder(root: Path, tree: dict, encode=png_bytes) -> Path:
    for name, pixels in tree.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(encode(pixels))
    return root


def write_image_tar(path: Path, tree: dict, encode=png_bytes, prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, pixels in tree.items():
            add_to_tar(archive, prefix + name, encode(pixels))
    return path


def expected_split(tree: dict, split: str, classes: tuple[str, ...]):
    """What a reader must return for ``split``: ordered by class index, then file name, as NCHW."""
    names = sorted(
        (n for n in tree if n.startswith(split + "/")),
        key=lambda n: (classes.index(n.split("/")[1]), n.split("/")[2]),
    )
    images = np.stack([tree[n] for n in names]).transpose(0, 3, 1, 2)
    labels = np.array([classes.index(n.split("/")[1]) for n in names])
    return images, labels


SMALL_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 8


def write_source_tree(root: Path, seed: int = 0) -> Path:
    """A small copy of all three datasets laid out like ../shared/datasets (CIFAR-10 as the official
    binary tarball): 20/10 MNIST images, 5x2/6 CIFAR-10 images, 512 characters of text."""
    rng = np.random.default_rng(seed)
    (root / "mnist").mkdir(parents=True)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(root / f"mnist/{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"mnist/{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    train = [random_cifar(rng, 2) for _ in range(5)]
    write_cifar_binary_tar(root / "cifar-10-binary.tar.gz", train, random_cifar(rng, 6))
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare/input.txt").write_text(SMALL_TEXT, encoding="utf-8")
    return root


# --- IDX -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-5, 0, 70000, 2**31 - 1], dtype=np.int32),
        np.array([[1.5, -2.25], [3.0, 1e-3]], dtype=np.float32),
    ],
)
def test_read_idx_round_trips_every_dtype(tmp_path, array, compress):
    path = write_idx(tmp_path / "x.idx.gz", array, compress=compress)
    result = read_idx(path)
    assert result.dtype == array.dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x08\x03\x00\x00" + bytes(20)))
    with pytest.raises(DatasetFormatError, match="not an IDX file"):
        read_idx(path)


def test_read_idx_rejects_truncated_data(tmp_path):
    raw = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DatasetFormatError, match=r"truncated: header shape \(10, 28, 28\)"):
        read_idx(path)


def test_read_idx_rejects_a_truncated_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="damaged or truncated gzip"):
        read_idx(path)


def test_read_idx_rejects_trailing_bytes_and_a_cut_header(tmp_path):
    (tmp_path / "long").write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"extra")
    with pytest.raises(DatasetFormatError, match="longer than its header says"):
        read_idx(tmp_path / "long")
    (tmp_path / "cut").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DatasetFormatError, match="inside the IDX header"):
        read_idx(tmp_path / "cut")


def test_read_idx_names_a_missing_file(tmp_path):
    with pytest.raises(DatasetSourceMissing, match="absent.gz does not exist"):
        read_idx(tmp_path / "absent.gz")


def test_read_mnist_returns_nchw_uint8_images_and_int64_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    got_images, got_labels = read_mnist(tmp_path, "t10k")
    assert got_images.shape == (7, 1, 28, 28) and got_images.dtype == np.uint8
    assert got_labels.dtype == np.int64
    np.testing.assert_array_equal(got_images[:, 0], images)
    np.testing.assert_array_equal(got_labels, labels)


def test_read_mnist_rejects_labels_that_do_not_match_the_images(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DatasetFormatError, match="5 train images but labels of shape"):
        read_mnist(tmp_path, "train")


# --- CIFAR-10 binary -----------------------------------------------------------------------------


def test_read_cifar10_binary_tarball_keeps_record_order_and_rgb_planes(tmp_path):
    rng = np.random.default_rng(1)
    train = [random_cifar(rng, n) for n in (3, 2, 4, 1, 2)]
    test = random_cifar(rng, 5)
    splits = read_cifar10_binary(write_cifar_binary_tar(tmp_path / "c.tar.gz", train, test))
    np.testing.assert_array_equal(splits["train"][0], np.concatenate([t[0] for t in train]))
    np.testing.assert_array_equal(splits["train"][1], np.concatenate([t[1] for t in train]))
    np.testing.assert_array_equal(splits["test"][0], test[0])
    assert splits["test"][1].dtype == np.int64
    # byte 1 of a record is the top-left red pixel, byte 1025 the top-left green one
    record = cifar_batch_bytes(test[0][:1], test[1][:1])
    assert splits["test"][0][0, 0, 0, 0] == record[1] and splits["test"][0][0, 1, 0, 0] == record[1025]


def test_read_cifar10_binary_reads_an_extracted_folder_too(tmp_path):
    rng = np.random.default_rng(2)
    train, test = [random_cifar(rng, 2) for _ in range(5)], random_cifar(rng, 3)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i, batch in enumerate(train, start=1):
        (folder / f"data_batch_{i}.bin").write_bytes(cifar_batch_bytes(*batch))
    (folder / "test_batch.bin").write_bytes(cifar_batch_bytes(*test))
    np.testing.assert_array_equal(read_cifar10_binary(folder)["test"][0], test[0])


def test_read_cifar10_binary_rejects_a_truncated_batch(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for i in range(1, 6):
            add_to_tar(archive, f"b/data_batch_{i}.bin", cifar_batch_bytes(*random_cifar(rng, 2)))
        add_to_tar(archive, "b/test_batch.bin", cifar_batch_bytes(*random_cifar(rng, 2))[:-7])
    with pytest.raises(DatasetFormatError, match="test_batch.bin is truncated"):
        read_cifar10_binary(path)


def test_read_cifar10_binary_names_missing_batches_and_bad_labels(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "partial.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add_to_tar(archive, "b/data_batch_1.bin", cifar_batch_bytes(*random_cifar(rng, 1)))
    with pytest.raises(DatasetFormatError, match="missing the CIFAR-10 batches data_batch_2.bin"):
        read_cifar10_binary(path)
    images = random_cifar(rng, 1)[0]
    train = [random_cifar(rng, 1) for _ in range(5)]
    bad = write_cifar_binary_tar(tmp_path / "bad.tar.gz", train, (images, np.array([12])))
    with pytest.raises(DatasetFormatError, match="label 12 outside 0-9"):
        read_cifar10_binary(bad)


def test_read_cifar10_binary_rejects_something_that_is_not_a_tarball(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(gzip.compress(b"this is not a tar archive" * 40))
    with pytest.raises(DatasetFormatError, match="not a readable tar archive"):
        read_cifar10_binary(path)


# --- image folders and tarballs -------------------------------------------------------------------

CLASSES = ("cat", "airplane", "dog")  # deliberately not sorted: the label is the index here


def test_read_image_folder_orders_by_class_then_name_and_decodes_exactly(tmp_path):
    tree = image_tree(np.random.default_rng(5), CLASSES, {"train": 3, "test": 2})
    splits = read_image_folder(write_image_folder(tmp_path / "set", tree), classes=CLASSES)
    assert sorted(splits) == ["test", "train"]
    for split in ("train", "test"):
        images, labels = expected_split(tree, split, CLASSES)
        assert splits[split][0].dtype == np.uint8 and splits[split][0].shape[1:] == (3, 32, 32)
        np.testing.assert_array_equal(splits[split][0], images)
        np.testing.assert_array_equal(splits[split][1], labels)


def test_read_image_folder_from_a_tarball_matches_the_folder(tmp_path):
    tree = image_tree(np.random.default_rng(6), CLASSES, {"train": 2, "test": 2})
    from_folder = read_image_folder(write_image_folder(tmp_path / "set", tree), classes=CLASSES)
    tarball = write_image_tar(tmp_path / "set.tar.gz", tree, prefix="release/")
    from_tar = read_image_folder(tarball, classes=CLASSES)
    for split in from_folder:
        np.testing.assert_array_equal(from_tar[split][0], from_folder[split][0])
        np.testing.assert_array_equal(from_tar[split][1], from_folder[split][1])


def test_read_image_folder_labels_sorted_folder_names_without_classes(tmp_path):
    tree = image_tree(np.random.default_rng(7), CLASSES, {"train": 1})
    _, labels = read_image_folder(write_image_folder(tmp_path / "set", tree))["train"]
    # sorted: airplane=0, cat=1, dog=2, and images come in that order
    np.testing.assert_array_equal(labels, [0, 1, 2])


def test_read_image_folder_skips_hidden_and_non_image_files(tmp_path):
    tree = image_tree(np.random.default_rng(8), CLASSES, {"test": 1})
    root = write_image_folder(tmp_path / "set", tree)
    (root / "test" / "cat" / "._0000.png").write_bytes(b"AppleDouble junk")
    (root / "test" / "cat" / "notes.txt").write_text("not an image")
    (root / "README.png").write_bytes(b"too shallow to be <split>/<class>/<file>")
    images, _ = read_image_folder(root, classes=CLASSES)["test"]
    assert len(images) == 3


def test_read_image_folder_converts_grayscale_with_mode_l(tmp_path):
    pixels = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)
    (tmp_path / "s/train/7").mkdir(parents=True)
    (tmp_path / "s/train/7/a.png").write_bytes(png_bytes(pixels))
    images, _ = read_image_folder(tmp_path / "s", mode="L")["train"]
    assert images.shape == (1, 1, 28, 28)
    np.testing.assert_array_equal(images[0, 0], pixels)


def test_read_image_folder_reads_jpeg_close_to_the_original(tmp_path):
    tree = {"test/cat/a.jpg": np.full((32, 32, 3), (200, 40, 90), dtype=np.uint8)}
    images, _ = read_image_folder(write_image_tar(tmp_path / "j.tar", tree, jpeg_bytes))["test"]
    assert np.abs(images[0].mean(axis=(1, 2)) - (200, 40, 90)).max() < 3


def test_read_image_folder_rejects_unknown_classes_mixed_sizes_and_broken_images(tmp_path):
    tree = image_tree(np.random.default_rng(9), ("cat", "zebra"), {"train": 1})
    with pytest.raises(DatasetFormatError, match=r"class folders \['zebra'\]"):
        read_image_folder(write_image_folder(tmp_path / "a", tree), classes=CLASSES)

    tree = {"train/cat/a.png": np.zeros((32, 32, 3), np.uint8), "train/cat/b.png": np.zeros((8, 8, 3), np.uint8)}
    with pytest.raises(DatasetFormatError, match="b.png is 8x8 but the other images are 32x32"):
        read_image_folder(write_image_folder(tmp_path / "b", tree), classes=CLASSES)

    root = write_image_folder(tmp_path / "c", {"train/cat/a.png": np.zeros((32, 32, 3), np.uint8)})
    (root / "train/cat/b.png").write_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8))[:60])
    with pytest.raises(DatasetFormatError, match="b.png is not a readable JPEG or PNG image"):
        read_image_folder(root, classes=CLASSES)


def test_read_image_folder_says_when_there_are_no_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="holds no <split>/<class>/"):
        read_image_folder(tmp_path / "empty")
    with pytest.raises(DatasetSourceMissing, match="does not exist"):
        read_image_folder(tmp_path / "absent.tar.gz")


def test_read_image_folder_accepts_the_cifar10_class_names(tmp_path):
    tree = image_tree(np.random.default_rng(10), CIFAR10_CLASSES, {"test": 1})
    _, labels = read_image_folder(write_image_tar(tmp_path / "c.tar.gz", tree), classes=CIFAR10_CLASSES)["test"]
    np.testing.assert_array_equal(labels, np.arange(10))


# --- text ----------------------------------------------------------------------------------------


def test_read_text_keeps_the_exact_characters(tmp_path):
    text = "First Citizen:\r\nBefore we proceed — any further?\n"
    (tmp_path / "t.txt").write_bytes(text.encode("utf-8"))
    assert read_text(tmp_path / "t.txt") == text


def test_read_text_names_the_first_byte_that_is_not_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("abc caf\xe9".encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"not UTF-8 text: byte 7 \(b'\\xe9'\)"):
        read_text(tmp_path / "latin1.txt")


def test_encode_text_uses_positions_in_the_vocabulary_and_round_trips():
    text = "Hello, World!\nzz"
    ids = encode_text(text, TINYGPT_VOCABULARY)
    assert ids.dtype == np.int64
    assert ids.tolist() == [TINYGPT_VOCABULARY.index(c) for c in text]
    assert decode_ids(ids, TINYGPT_VOCABULARY) == text


def test_encode_text_names_unknown_characters_and_where_the_first_is():
    with pytest.raises(ValueError, match=r"2 characters outside the task's vocabulary, such as '#é' \(first at character 8, line 2\)"):
        encode_text("to be\nor#not é", TINYGPT_VOCABULARY)


def test_read_image_folder_refuses_a_decompression_bomb(tmp_path, monkeypatch):
    # Pillow refuses images over twice MAX_IMAGE_PIXELS; lowered here so a 32x32 image counts as one
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    root = write_image_folder(tmp_path / "s", {"train/cat/a.png": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(DatasetFormatError, match="a.png is not a readable JPEG or PNG image"):
        read_image_folder(root)
