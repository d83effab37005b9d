"""The saved pytest-benchmark runs: where they are, and the timings the claims read from them.

A timing is a sample of one day's machine, so earlier runs are kept beside the latest as
sessions; each file is parsed once per process per state of the file (``files.read_once``)
and indexed by (what, model, batch).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training import files, results


class BenchmarkMissing(LookupError):
    """No saved benchmark has the timing a claim needs; says how to produce it."""


class BenchmarkDamaged(results.ResultError):
    """A saved benchmark file, or the entry a claim reads in it, cannot be read: the claims that
    read it wait for it to be restored, and the rest of a report goes on."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Timing:
    """One model's mean time per batch in a saved pytest-benchmark run."""

    seconds_per_batch: float
    batch: int
    threads: int
    device: str
    file: str
    #: Seconds per batch in each of the run's rounds (pytest-benchmark's ``stats.data``).
    rounds: tuple[float, ...] = ()
    #: The processor the run recorded (pytest-benchmark's ``machine_info``), "" where it has none:
    #: sessions on different processors can rank two models differently.
    machine: str = ""

    @property
    def images_per_s(self) -> float:
        return self.batch / self.seconds_per_batch


def benchmark_file(device: str, directory: Path | str | None = None) -> Path:
    return results.results_dir(directory) / f"benchmarks-{device}.json"


def _how(device: str, path: Path) -> str:
    where = "on a CUDA machine" if device == "cuda" else "on a machine without a GPU"
    return (f"run 'pytest -m benchmark --benchmark-enable --benchmark-json results/{path.name}' {where} "
            "and commit the file")


def sessions(device: str, directory: Path | str | None = None) -> list[Path]:
    """The saved benchmark runs for ``device``: the latest, ``benchmarks-DEVICE.json``, then
    earlier ones kept beside it as ``benchmarks-DEVICE-DATE.json``, newest first. A timing is
    a sample of one day's machine: sessions are what show how much it varies."""
    latest = benchmark_file(device, directory)
    earlier = sorted(latest.parent.glob(f"benchmarks-{device}-*.json"), key=_recorded, reverse=True)
    return [latest, *earlier]


def _recorded(path: Path) -> tuple[bool, datetime, str]:
    """When the run in ``path`` was made (pytest-benchmark's ``datetime``, in UTC), then its
    name: the names alone misorder sessions kept by hand (``-s9`` after ``-s12``). A file that
    cannot be read, or records no time, sorts last, and says why when a claim reads it."""
    try:
        when = files.read_once(path, _timings_in).recorded
    except OSError:
        when = None
    return when is not None, when or datetime.min.replace(tzinfo=timezone.utc), path.name


def kept_sessions(device: str, directory: Path | str | None = None) -> list[Path]:
    """The sessions of ``device`` that exist, the latest first."""
    return [path for path in sessions(device, directory) if path.exists()]


def earlier_name(latest: Path) -> str:
    """The name the latest session ``benchmarks-DEVICE.json`` is kept under once a newer run
    takes its place: ``benchmarks-DEVICE-DATE.json`` by the date it records (pytest-benchmark's
    ``datetime``), with ``-2``, ``-3`` ... where that name is taken."""
    try:
        date = str(json.loads(latest.read_text(encoding="utf-8"))["datetime"])[:10]
    except (OSError, ValueError, KeyError, TypeError):
        date = "undated"
    stem = f"{latest.stem}-{date}"
    names = itertools.chain([f"{stem}.json"], (f"{stem}-{n}.json" for n in itertools.count(2)))
    return next(name for name in names if not (latest.parent / name).exists())


def timings(what: str, model: str, batch: int, device: str,
            directory: Path | str | None = None) -> list[Timing]:
    """``timing`` in every saved session that holds it, the latest first."""
    found = [timing(what, model, batch, device, directory)]
    for path in sessions(device, directory)[1:]:
        try:
            found.append(timing(what, model, batch, device, path=path))
        except BenchmarkMissing:
            continue
    return found


def timing(what: str, model: str, batch: int, device: str, directory: Path | str | None = None,
           path: Path | None = None) -> Timing:
    """The mean time of ``tests/test_benchmarks.py::test_throughput`` for (what, model, batch)
    in the saved run for ``device`` (or in the session file ``path``)."""
    path = path or benchmark_file(device, directory)
    if not path.exists():
        raise BenchmarkMissing(f"needs a benchmark run, results/{path.name}: {_how(device, path)}")
    run = files.read_once(path, _timings_in)
    if run.error:  # the file as a whole is unreadable
        raise BenchmarkDamaged(f"{run.error}; {_how(device, path)}", path)
    found = run.timings.get((what, model, batch))
    if isinstance(found, ValueError):  # this entry is malformed; the others may be sound
        raise BenchmarkDamaged(f"{found}; {_how(device, path)}", path)
    if found is None:
        raise BenchmarkMissing(f"needs a {what} timing of {model} at batch {batch}, which "
                               f"results/{path.name} lacks: {_how(device, path)}")
    return found


def _processor(run: dict[str, Any]) -> str:
    """"Intel(R) Xeon(R) Processor, 2 cores" from pytest-benchmark's ``machine_info`` ("" where
    it records none)."""
    info = run.get("machine_info")
    cpu = info.get("cpu") if isinstance(info, dict) else None
    brand = cpu.get("brand_raw") if isinstance(cpu, dict) else None
    if not isinstance(brand, str) or not brand.strip():
        return ""
    count = cpu.get("count")
    return brand.strip() + (f", {count} cores" if type(count) is int and count > 0 else "")


def _machine(run: dict[str, Any], info: dict[str, Any]) -> str:
    """What an entry ran on: the GPU's name for a CUDA timing (``extra_info["gpu"]``, which
    tests/test_benchmarks.py records), the processor for a CPU one; "" where the file does not
    say (the host's processor is not what a GPU timing measures)."""
    if info.get("device") == "cpu":
        return _processor(run)
    gpu = info.get("gpu")
    return gpu.strip() if isinstance(gpu, str) else ""


def _when(value: Any) -> datetime | None:
    """pytest-benchmark's ``datetime`` (ISO 8601) in UTC; None where it is not one."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@dataclass(frozen=True)
class _Run:
    """A parsed pytest-benchmark JSON file; one that cannot be read carries why (parsed once,
    like a readable one, and raised where a claim reads it)."""

    recorded: datetime | None  # its ``datetime``, in UTC
    timings: dict[tuple[Any, Any, Any], Timing | ValueError]
    error: str = ""


def _timings_in(path: Path) -> _Run:
    """A pytest-benchmark JSON file's throughput timings by (what, model, batch), the first of
    each; an entry that cannot be read is kept as the error its lookup raises."""
    try:
        run = json.loads(path.read_text())
        entries = run["benchmarks"]
        iter(entries)
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError, UnicodeDecodeError) as error:
        return _Run(None, {}, f"{path} is not a pytest-benchmark JSON file ({type(error).__name__}: {error})")
    out: dict[tuple[Any, Any, Any], Timing | ValueError] = {}
    for b in entries:
        info = b.get("extra_info", {}) if isinstance(b, dict) else {}
        key = (info.get("what"), info.get("model"), info.get("batch")) if isinstance(info, dict) else (None,)
        try:
            if key[0] is None or key in out:
                continue
        except TypeError:  # an unhashable field: no lookup can name this entry
            continue
        try:
            stats = b["stats"]
            out[key] = Timing(stats["mean"], key[2], info["threads"], info["device"],
                              f"results/{path.name}", tuple(float(t) for t in stats.get("data") or ()),
                              _machine(run, info))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            out[key] = ValueError(f"{path}: the {key[0]} timing of {key[1]} at batch {key[2]} is not "
                                  f"a pytest-benchmark entry ({error!r})")
    return _Run(_when(run.get("datetime")), out)
