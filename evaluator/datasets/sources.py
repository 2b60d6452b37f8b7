"""Where each task's data comes from: the official downloads (with their SHA-256) and the layout of
a local copy (the layout of ``../shared/datasets/``, which ``fetch`` also downloads into)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One official file: where it goes in the local layout, its mirrors (tried in order) and the
    SHA-256 the download must have."""

    path: str
    urls: tuple[str, ...]
    sha256: str


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

OFFICIAL_SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": tuple(
        RemoteFile(f"mnist/{name}", tuple(m + name for m in MNIST_MIRRORS), sha)
        for name, sha in MNIST_FILES.items()
    ),
    "cifar10": (
        RemoteFile(
            "cifar-10-binary.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        ),
    ),
    "tinygpt": (
        RemoteFile(
            "tinyshakespeare/input.txt",
            (
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                "tinyshakespeare/input.txt",
            ),
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        ),
    ),
}

# Local layout, relative to the source folder. CIFAR-10 may come in any of these forms; the first
# one present wins (the official binary release first: it is lossless and in the official order).
MNIST_DIR = "mnist"
CIFAR10_CANDIDATES = (
    "cifar-10-binary.tar.gz",
    "cifar-10-batches-bin",
    "cifar10-jpg.tar.gz",
    "cifar10",
)
TINYSHAKESPEARE_TEXT = "tinyshakespeare/input.txt"
