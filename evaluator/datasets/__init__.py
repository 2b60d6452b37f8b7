"""The datasets of the built-in tasks: read the official formats, prepare cached arrays with a
SHA-256 manifest, and the fixed public/private halves of each hidden set (SPEC §2); an
instructor's own hidden sets imported under a name (``import_hidden_set``).

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
from evaluator.datasets.hidden_sets import import_hidden_set
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
    check_hidden_set_name,
    dataset_sha256,
    default_data_dir,
    hidden_set_entry,
    hidden_set_present,
    hidden_sets,
    load_hidden,
    load_train,
    load_train_sample,
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
    "check_hidden_set_name",
    "dataset_sha256",
    "decode_ids",
    "default_data_dir",
    "encode_text",
    "fetch",
    "hidden_set_entry",
    "hidden_set_present",
    "hidden_sets",
    "import_from",
    "import_hidden_set",
    "load_hidden",
    "load_train",
    "load_train_sample",
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
