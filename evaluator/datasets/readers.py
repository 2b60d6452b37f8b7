"""Readers for the official dataset formats: MNIST IDX, the CIFAR-10 binary release, image folders
(or tarballs of them) and UTF-8 text.

Every reader returns plain numpy arrays and raises ``DatasetFormatError`` naming the file and what
is wrong with it. Nothing here unpickles anything or extracts an archive to disk.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from evaluator.datasets.errors import DatasetFormatError, DatasetSourceMissing

# IDX type codes (third magic byte) and the big-endian numpy dtype each one stores.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue 32x32 planes
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch.bin"

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetSourceMissing(f"{path} does not exist") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetFormatError(f"{path} is a damaged or truncated gzip file ({error})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not), in native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DatasetFormatError(
            f"{path} is not an IDX file: its first bytes {raw[:4].hex()!r} are not an IDX magic number"
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise DatasetFormatError(f"{path} is truncated: it ends inside the IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_bytes
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DatasetFormatError(
            f"{path} is {problem}: header shape {shape} needs {expected} data bytes, found {actual}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_bytes).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_mnist(folder: str | os.PathLike, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images as uint8 ``[N,1,28,28]`` and labels as int64 ``[N]`` for ``prefix`` (``train``
    or ``t10k``), from the official ``<prefix>-images-idx3-ubyte.gz`` and labels files."""
    folder = Path(folder)
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetFormatError(
            f"{folder}/{prefix}-images-idx3-ubyte.gz holds {images.dtype} {images.shape}, "
            "not uint8 images [N,H,W]"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetFormatError(
            f"{folder}: {len(images)} {prefix} images but labels of shape {labels.shape}"
        )
    return images[:, None, :, :], labels.astype(np.int64)


def _iter_tar_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """Each regular file of a (possibly compressed) tarball as (name, bytes), streamed in archive
    order without extracting anything to disk."""
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    yield member.name, handle.read() if handle else b""
    except FileNotFoundError:
        raise DatasetSourceMissing(f"{path} does not exist") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DatasetFormatError(f"{path} is not a readable tar archive ({error})") from None


def cifar_records(name: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(raw) == 0 or len(raw) % CIFAR_RECORD_BYTES:
        raise DatasetFormatError(
            f"{name} is truncated or not a CIFAR-10 batch: {len(raw)} bytes is not a whole number "
            f"of {CIFAR_RECORD_BYTES}-byte records"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DatasetFormatError(f"{name} has a label {labels.max()} outside 0-9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def read_cifar10_binary(source: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The CIFAR-10 binary release (``cifar-10-binary.tar.gz`` or a folder holding its ``.bin``
    batches) as ``{"train": (images, labels), "test": (images, labels)}``: uint8 RGB ``[N,3,32,32]``
    and int64 labels, in the official record order."""
    source = Path(source)
    wanted = set(CIFAR_TRAIN_BATCHES) | {CIFAR_TEST_BATCH}
    if source.is_dir():
        found = {p.name: p.read_bytes() for p in source.rglob("*.bin") if p.name in wanted}
    else:
        found = {Path(n).name: b for n, b in _iter_tar_files(source) if Path(n).name in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        raise DatasetFormatError(f"{source} is missing the CIFAR-10 batches {', '.join(missing)}")
    train = [cifar_records(f"{source}:{n}", found[n]) for n in CIFAR_TRAIN_BATCHES]
    return {
        "train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        "test": cifar_records(f"{source}:{CIFAR_TEST_BATCH}", found[CIFAR_TEST_BATCH]),
    }


def _image_entry(name: str, flat: bool = False) -> tuple[str, str, str] | None:
    """(split, class, file) for an image path ending ``<split>/<class>/<file>``; None to skip it
    (not an image, a hidden file such as macOS ``._x.jpg``, or too shallow). ``flat``: paths
    ``<class>/<file>`` are split ``test``."""
    parts = Path(name).parts
    if flat and len(parts) == 2:
        parts = ("test", *parts)
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    if any(part.startswith(".") for part in parts[-3:]):
        return None
    return parts[-3], parts[-2], parts[-1]


def _decode_image(name: str, blob: bytes, mode: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob), formats=("JPEG", "PNG")) as image:
            if image.mode != mode:
                image = image.convert(mode)
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetFormatError(f"{name} is not a readable JPEG or PNG image ({error})") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _collect_images(source: Path, flat: bool = False) -> dict[tuple[str, str, str], bytes]:
    if source.is_dir():
        files = (p for p in source.rglob("*") if p.is_file())
        entries = ((_image_entry(str(p.relative_to(source)), flat), p) for p in files)
        return {key: p.read_bytes() for key, p in entries if key is not None}
    if not source.exists():
        raise DatasetSourceMissing(f"{source} does not exist")
    entries = ((_image_entry(name, flat), blob) for name, blob in _iter_tar_files(source))
    return {key: blob for key, blob in entries if key is not None}


def _class_labels(source: Path, keys, classes: tuple[str, ...] | None) -> dict[str, int]:
    found = sorted({cls for _, cls, _ in keys})
    if classes is None:
        return {cls: i for i, cls in enumerate(found)}
    unknown = [cls for cls in found if cls not in classes]
    if unknown:
        raise DatasetFormatError(
            f"{source} has class folders {unknown} that are not among the task's classes {list(classes)}"
        )
    return {cls: i for i, cls in enumerate(classes)}


def read_image_folder(
    source: str | os.PathLike,
    *,
    classes: tuple[str, ...] | None = None,
    mode: str = "RGB",
    flat: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images laid out as ``<split>/<class>/<file>.jpg|png``, in a folder or a (compressed) tarball.

    Returns ``{split: (images uint8 [N,C,H,W], labels int64 [N])}``, images ordered by class then
    file name. A label is the class folder's index in ``classes`` (the sorted folder names when
    ``classes`` is None). ``mode`` is the Pillow mode to convert to ("RGB" or "L"). All images must
    have the same size. ``flat``: images laid out ``<class>/<file>`` come back as split ``test``.
    """
    source = Path(source)
    blobs = _collect_images(source, flat)
    if not blobs:
        raise DatasetFormatError(f"{source} holds no <split>/<class>/*.jpg or *.png images")
    labels_of = _class_labels(source, blobs, classes)
    result = {}
    for split in sorted({split for split, _, _ in blobs}):
        keys = sorted((k for k in blobs if k[0] == split), key=lambda k: (labels_of[k[1]], k[2]))
        result[split] = _decode_split(source, keys, blobs, labels_of, mode)
    return result


def _decode_split(source: Path, keys, blobs, labels_of, mode: str) -> tuple[np.ndarray, np.ndarray]:
    first = _decode_image(f"{source}:{'/'.join(keys[0])}", blobs[keys[0]], mode)
    images = np.empty((len(keys), *first.shape), dtype=np.uint8)
    for i, key in enumerate(keys):
        name = f"{source}:{'/'.join(key)}"
        pixels = first if i == 0 else _decode_image(name, blobs[key], mode)
        if pixels.shape != first.shape:
            raise DatasetFormatError(
                f"{name} is {pixels.shape[1]}x{pixels.shape[0]} but the other images are "
                f"{first.shape[1]}x{first.shape[0]}; every image must have the same size"
            )
        images[i] = pixels
    labels = np.array([labels_of[cls] for _, cls, _ in keys], dtype=np.int64)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels


def read_text(path: str | os.PathLike) -> str:
    """The contents of a UTF-8 text file, exactly (no newline translation)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetSourceMissing(f"{path} does not exist") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFormatError(
            f"{path} is not UTF-8 text: byte {error.start} ({raw[error.start:error.start + 1]!r}) "
            "cannot be decoded"
        ) from None


def encode_text(text: str, vocabulary: str) -> np.ndarray:
    """Character ids (int64, a character's position in ``vocabulary``); a ``DatasetFormatError``
    (a ``ValueError``) naming the characters that are not in the vocabulary."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    table = np.full(max(int(codes.max(initial=0)), max(map(ord, vocabulary))) + 1, -1, np.int64)
    table[[ord(c) for c in vocabulary]] = np.arange(len(vocabulary))
    ids = table[codes]
    unknown_at = np.flatnonzero(ids < 0)
    if unknown_at.size:
        first = int(unknown_at[0])
        line = text.count("\n", 0, first) + 1
        chars = sorted({text[i] for i in unknown_at[:10000]})[:10]
        raise DatasetFormatError(
            f"the text has {unknown_at.size} characters outside the task's vocabulary, such as "
            f"{''.join(chars)!r} (first at character {first}, line {line})"
        )
    return ids


def decode_ids(ids: np.ndarray, vocabulary: str) -> str:
    """The text that character ids stand for (the inverse of ``encode_text``)."""
    return "".join(vocabulary[i] for i in np.asarray(ids).ravel())
