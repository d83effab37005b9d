"""The errors of the dataset modules (``training.datasets`` and the readers and fetchers
below it): each names the thing that is wrong and the command that fixes it. One base,
``DatasetError``, so that the CLI and the claims catch them together."""

from __future__ import annotations


class DatasetError(Exception):
    """Base of the dataset modules' errors, so the CLI and the claims can catch them together."""


class UnknownDataset(DatasetError, ValueError):
    """A name that is not in the registry (a ValueError: a KeyError would print quoted)."""


class DataMissing(DatasetError, FileNotFoundError):
    """The dataset's files are not on disk."""


class ChecksumError(DatasetError, ValueError):
    """A file is on disk but is not the file the registry names."""


class MalformedData(DatasetError, ValueError):
    """A file that passed (or has no) checksum but is not what its format says: truncated IDX,
    a pickle of the wrong structure."""


class UnsafePickle(MalformedData):
    """A pickle asked for a global that is not needed to rebuild a numpy array."""


class FetchError(DatasetError, RuntimeError):
    """A fetch step (pip download, apt-get download, an archive) failed."""
