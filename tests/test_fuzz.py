"""Fuzzing (hypothesis): random bytes and mutations of valid files into the IDX, gzip and pickle
readers and the checkpoint loader, random argument vectors into the train/data parsers. The
only outcomes allowed are a result or one of the project's own errors (for the parsers,
argparse's usage error, exit status 2), each example within a second.

A short, derandomized profile runs with ``-m unit``; the long one with ``-m slow``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import pickle
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training import cli, data_cli, results
from training import datasets as ds

FAST = settings(max_examples=30, deadline=1000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, deadline=1000, database=None)  # ~15 s; make test (CI) runs it
PROFILES = [pytest.param(FAST, marks=pytest.mark.unit, id="short"),
            pytest.param(SLOW, marks=pytest.mark.slow, id="slow")]


# --- valid files to mutate ----------------------------------------------------------------------

def idx_file(array: np.ndarray) -> bytes:
    code = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


IDX = idx_file(np.arange(48, dtype=np.uint8).reshape(3, 4, 4))
_rng = np.random.default_rng(0)
PAIRS = tuple((_rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, _rng.integers(0, 10, n))
              for n in (2, 1, 1))
PICKLES = [pickle.dumps(PAIRS, protocol=2), pickle.dumps(PAIRS, protocol=4)]


@st.composite
def mutated(draw: st.DrawFn, valid: list[bytes]) -> bytes:
    """A valid file with a few bytes flipped, cut, inserted or removed."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("flip", "set", "cut", "insert", "delete")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


def files_of(valid: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, mutations of the valid files, and either gzipped, or the gzip mutated."""
    raw = st.one_of(st.binary(max_size=600), mutated(valid))
    return st.one_of(raw, raw.map(gzip.compress), mutated([gzip.compress(v) for v in valid]))


# --- the readers ---------------------------------------------------------------------------------

def read_idx(path: Path) -> object:
    return ds.read_idx(path)


def read_idx_gz(path: Path) -> object:
    return ds.read_idx(path.rename(path.with_suffix(".gz")))


def read_pickle(path: Path) -> object:
    return ds.read_mnist_pickle(path)


def load_checkpoint(path: Path) -> object:
    return results.load_checkpoint(path, torch.device("cpu"))


_checkpoint = io.BytesIO()
torch.save({"key": "k", "trainer": {"w": torch.arange(6.0)}, "history": [{"loss": [1.0]}]}, _checkpoint)

READERS: dict[str, tuple[Callable[[Path], object], list[bytes], type[Exception]]] = {
    "idx": (read_idx, [IDX], ds.DatasetError),
    "idx.gz": (read_idx_gz, [gzip.compress(IDX)], ds.DatasetError),
    "pickle.gz": (read_pickle, [gzip.compress(p) for p in PICKLES], ds.DatasetError),
    "checkpoint": (load_checkpoint, [_checkpoint.getvalue()], results.ResultError),
}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("reader", READERS)
def test_readers_give_a_result_or_their_own_error(reader, profile):
    read, valid, own = READERS[reader]
    with tempfile.TemporaryDirectory() as tmp:
        @profile
        @given(files_of(valid))
        def check(data: bytes) -> None:
            path = Path(tmp) / "f"
            for old in Path(tmp).iterdir():
                old.unlink()
            path.write_bytes(data)
            with contextlib.suppress(own):
                read(path)

        check()


# --- the parsers ----------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m claims")
    sub = top.add_subparsers(dest="command", required=True)
    data_cli.add(sub)
    cli.add(sub)
    return top


WORDS = ["train", "data", "verify", "fetch", "list", "recipes", "plots", "bench", "--seeds", "--max-epochs",
         "--device", "--threads", "--results", "--time-limit", "--restart", "--replace", "--all", "--quiet",
         "--no-plots", "--data-root", "--root", "--force", "--from", "--batch", "--steps", "--ratio",
         "--help", "lenet0", "mnist", "0", "1", "-1", "7", "0-9", "9-0", "3-3", "99999999999", "1e9", "nan",
         "-inf", "cuda", "cpu", "tpu", "cuda:0", "cuda:-1", "", "-", "--", "=", "--seeds=1-2"]


@pytest.mark.parametrize("profile", PROFILES)
def test_the_parser_gives_arguments_or_a_usage_error(profile):
    top = parser()

    @profile
    @given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=8))
    def check(argv: list[str]) -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                args = top.parse_args(argv)
            except SystemExit as stop:
                assert stop.code in (0, 2)  # --help, or a usage error with its message
                return
        if args.command == "train":
            assert args.seeds is None or len(set(args.seeds)) == len(args.seeds) >= 1
            assert args.max_epochs is None or args.max_epochs >= 1

    check()
