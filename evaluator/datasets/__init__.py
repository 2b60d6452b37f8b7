"""The datasets of the built-in tasks: read the official formats, prepare cached arrays with a
SHA-256 manifest, and the fixed public/private halves of each hidden set (SPEC §2).

Typical use::

    from evaluator.datasets import import_from, load_hidden, as_model_input
    import_from("../shared/datasets")               # or fetch() where there is a network
    hidden = load_hidden("mnist", "public")
    scores = session.run(None, {"input": as_model_input("mnist", hidden.inputs[:256])})
"""

from evaluator.datasets.downloads import fetch
from evaluator.datasets.errors import (
    DatasetError,
    DatasetFormatError,
    DatasetNotPrepared,
    DatasetSourceMissing,
    DownloadError,
)
from evaluator.datasets.importer import import_from
from evaluator.datasets.readers import (
    decode_ids,
    encode_text,
    read_cifar10_binary,
    read_idx,
    read_image_folder,
    read_mnist,
    read_text,
)
from evaluator.datasets.splits import SPLIT_SEED
from evaluator.datasets.store import (
    SPLITS,
    HiddenSet,
    as_model_input,
    dataset_sha256,
    default_data_dir,
    load_hidden,
    load_train,
    prepared_entry,
    read_manifest,
    save_prepared,
    save_prepared_text,
    verify_prepared,
)

__all__ = [
    "SPLITS",
    "SPLIT_SEED",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotPrepared",
    "DatasetSourceMissing",
    "DownloadError",
    "HiddenSet",
    "as_model_input",
    "dataset_sha256",
    "decode_ids",
    "default_data_dir",
    "encode_text",
    "fetch",
    "import_from",
    "load_hidden",
    "load_train",
    "prepared_entry",
    "read_cifar10_binary",
    "read_idx",
    "read_image_folder",
    "read_manifest",
    "read_mnist",
    "read_text",
    "save_prepared",
    "save_prepared_text",
    "verify_prepared",
]
