"""The IDX file format of MNIST and its kin (Fashion-MNIST, KMNIST): one array per file,
gzipped or not, read strictly (a truncated or padded file is refused), and a set of four
such files read as a dataset's train and test splits."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.arrays import Arrays, split_facts
from training.dataset_errors import MalformedData

_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: The four files of an MNIST-like set, as the split arrays they hold.
IDX_STEMS = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
             "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


def _header(data: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, dims, header length) of an IDX file's leading bytes, checked."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise MalformedData(f"{path}: not an IDX file (magic bytes {data[:4].hex() or 'none'})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim > 32:  # numpy's limit (32 in numpy 1.x); MNIST's files have 1 and 3
        raise MalformedData(f"{path}: IDX header says {ndim} dimensions, more than an array can have")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MalformedData(f"{path}: truncated IDX header ({len(data)} bytes, needs {header})")
    return dtype, struct.unpack(f">{ndim}I", data[4:header]), header


def read_idx_dims(path: Path) -> tuple[int, ...]:
    """An IDX file's dims from its header alone (the first bytes, decompressed): what the
    dataset facts need, without decompressing 47 MB of images."""
    try:
        with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as file:
            data = file.read(4 + 4 * 32)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise MalformedData(f"{path}: not a readable gzip file ({error})") from None
    return _header(data, path)[1]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped if it ends in .gz): magic 0 0 dtype ndim, big-endian uint32 dims,
    then the data; the length must match the dims exactly."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise MalformedData(f"{path}: not a readable gzip file ({error})") from None
    dtype, dims, header = _header(data, path)
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow it
    if len(data) - header != expected:
        raise MalformedData(f"{path}: IDX header says {dims} of {dtype.name} = {expected} bytes of data, "
                            f"the file holds {len(data) - header}: truncated or padded")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def idx_set_facts(directory: Path, classes: tuple[str, ...],
                  stems: Mapping[str, str] = IDX_STEMS) -> dict[str, Any]:
    """``facts_of(read_idx_set(...))`` from the four files' headers: for a set whose files
    the registry pins by checksum, so that a header stands for the data behind it."""
    dims = {key: read_idx_dims(directory / stem) for key, stem in stems.items()}
    _pair_up(directory, dims)
    sizes = {split: dims[f"{split}_labels"][0] for split in ("train", "test")}
    return split_facts(sizes, dims["train_images"][1:], classes)


def _pair_up(directory: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Each split's images (N, H, W) and labels (N,) agree in N, from the arrays' shapes or the
    headers' dims."""
    for split in ("train", "test"):
        images, labels = shapes[f"{split}_images"], shapes[f"{split}_labels"]
        if len(images) != 3 or len(labels) != 1 or images[0] != labels[0]:
            raise MalformedData(f"{directory}: {split} images {images} and labels {labels} do not pair up")


def read_idx_set(directory: Path, classes: tuple[str, ...], stems: Mapping[str, str] = IDX_STEMS) -> Arrays:
    """Four IDX files (train/test images/labels), checked for agreeing lengths."""
    arrays = {key: read_idx(directory / stem) for key, stem in stems.items()}
    _pair_up(directory, {key: array.shape for key, array in arrays.items()})
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        if labels.size and not 0 <= labels.min() <= labels.max() < len(classes):
            raise MalformedData(f"{directory}: {split} labels outside 0..{len(classes) - 1}")
    return Arrays(arrays["train_images"].astype(np.uint8), arrays["train_labels"].astype(np.int64),
                  arrays["test_images"].astype(np.uint8), arrays["test_labels"].astype(np.int64), classes)
