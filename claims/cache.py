"""The report's cache of measurements, so that ``claims report`` answers at once when nothing
it depends on has changed.

An entry is valid only under the key it was written with: a sha256 over the content of every
claim file, every Python file of the project (claims/, models/, training/), every file under
the results directory (result files, benchmark files, plots), the versions of Python, torch,
torchvision, numpy and scipy, and the state of the data files (path, size and modification
time, as ``training.datasets.facts`` keys its own cache: the data are checked against their
pinned digests when measured, and rewriting a file changes its time). Any change gives a new
key, so a stale entry is never served; it is measured again and replaces the old one.

The file is JSON (never pickle: loading it runs no code) and is written atomically; a file
that cannot be read or parsed is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENV_VAR = "LEAN_CNN_CACHE"
FORMAT = 1
#: The project's code: a change anywhere in it may change a measurement.
CODE_DIRS = ("claims", "models", "training")
_PACKAGES = ("torch", "torchvision", "numpy", "scipy")


def default_path() -> Path:
    """``$LEAN_CNN_CACHE``, else ``<repo>/.cache/claims-report.json`` (gitignored)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else REPO / ".cache" / "claims-report.json"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _files(root: Path, pattern: str) -> list[Path]:
    """Files under ``root`` matching ``pattern``, sorted, skipping hidden directories
    (checkpoints, locks, caches) and __pycache__."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob(pattern) if p.is_file()
                  and not any(part.startswith(".") or part == "__pycache__"
                              for part in p.relative_to(root).parts))


def _add_contents(h: Any, label: str, root: Path, paths: Iterable[Path]) -> None:
    h.update(f"\0{label} {root}\n".encode())
    for path in paths:
        h.update(f"\0{path.relative_to(root)}\n".encode())
        h.update(path.read_bytes())


def key(registry_dirs: Iterable[Path]) -> str:
    """The digest of everything a measurement depends on (see the module's docstring)."""
    from training import datasets, results  # light: no torch

    h = hashlib.sha256()
    h.update(f"format {FORMAT}\npython {sys.version}\n".encode())
    for package in _PACKAGES:
        h.update(f"{package} {_version(package)}\n".encode())
    for name in CODE_DIRS:
        _add_contents(h, "code", REPO / name, _files(REPO / name, "*.py"))
    for directory in sorted({Path(d).resolve() for d in registry_dirs}):
        _add_contents(h, "claims", directory, sorted(directory.glob("*.toml")))
    where = results.results_dir().resolve()
    _add_contents(h, "results", where, _files(where, "*"))
    data = datasets.data_root().resolve()
    h.update(f"\0data {data}\n".encode())
    for path in _files(data, "*"):
        stat = path.stat()
        h.update(f"{path.relative_to(data)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load(path: Path, digest: str) -> dict[str, Any]:
    """The entry stored under ``digest``, or an empty one when the file is absent, unreadable,
    not this format or written under another key."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("key") != digest:
        return {}
    entry = stored.get("entry")
    return entry if isinstance(entry, dict) else {}


def save(path: Path, digest: str, entry: dict[str, Any]) -> None:
    """Replace the cache file whole (atomically); a cache that cannot be written is no error."""
    from training import files

    data = json.dumps({"format": FORMAT, "key": digest, "entry": entry}, separators=(",", ":"))
    try:
        files.write_atomic(path, data.encode(), fsync=False)
    except OSError as error:
        print(f"note: the report's cache {path} could not be written: {error}", file=sys.stderr)
