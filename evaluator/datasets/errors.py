"""The errors the dataset code raises: each message is one sentence a student can act on."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class: anything wrong with a dataset source, download or prepared cache."""


class DatasetFormatError(DatasetError, ValueError):
    """A source file is not in the format it claims (bad magic, truncated, unknown character...)."""


class DatasetSourceMissing(DatasetError, FileNotFoundError):
    """A source file that an import needs is not where it should be."""


class DownloadError(DatasetError):
    """A download failed: no network, an HTTP error, or a checksum that does not match."""


class DatasetNotPrepared(DatasetError):
    """The prepared arrays of a task are not in the data directory; the message says what to run."""
