"""Digests: of a file on disk (what the dataset registry pins) and of decoded arrays (what a
run trained and was tested on, whichever files or cache they came from)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=64)
def _digest_cached(path: str, algorithm: str, _mtime_ns: int, _size: int) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, computed once per process per (path, mtime, size)."""
    stat = path.stat()
    return _digest_cached(str(path.resolve()), algorithm, stat.st_mtime_ns, stat.st_size)


_SPLIT_ARRAYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")


def arrays_digest(arrays: Any) -> str:
    """sha256 of the arrays themselves (name, dtype and shape of each, then its bytes), in split
    order: what a run trained and was tested on, whichever files or cache they came from."""
    h = hashlib.sha256()
    for key in _SPLIT_ARRAYS:
        array = getattr(arrays, key, None)
        if array is None:
            continue
        array = np.ascontiguousarray(array)
        h.update(f"{key} {array.dtype.str} {array.shape}\n".encode())
        h.update(array.data)
    return h.hexdigest()
