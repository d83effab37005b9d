"""Result files: one JSON per recipe under ``results/``, with the provenance that makes a
verdict trustworthy (commit, versions, device, seeds, date, wall time), written atomically.
Checkpoints for resuming a killed run live beside them in ``results/.checkpoints/``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
FORMAT = 1


class ResultError(ValueError):
    """A result file is unreadable or not one of ours."""


def results_dir(directory: Path | str | None = None) -> Path:
    """``directory``, else $LEAN_CNN_RESULTS, else ``<repo>/results``."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get("LEAN_CNN_RESULTS", REPO / "results"))


def path_for(recipe: str, directory: Path | str | None = None) -> Path:
    return results_dir(directory) / f"{recipe}.json"


def checkpoint_path(recipe: str, point: int, directory: Path | str | None = None) -> Path:
    return results_dir(directory) / ".checkpoints" / recipe / f"point{point}.pt"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance(device: torch.device) -> dict[str, Any]:
    """Who ran what, where and when; the recipe, seeds and timings are added by the runner."""
    import torchvision

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device_name(device),
        "python": platform.python_version(),
        "host": platform.node(),
        "date": now(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write then rename: a killed writer leaves the old file or none, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(path: Path, result: dict[str, Any]) -> None:
    text = json.dumps({"format": FORMAT, **result}, indent=1, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode())


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ResultError(f"{path}: not valid JSON ({error}); delete it and rerun "
                          f"'python -m claims train {path.stem}'") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "points" not in data:
        raise ResultError(f"{path}: not a result file of format {FORMAT}; "
                          f"rerun 'python -m claims train {path.stem}'")
    return data


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return torch.load(path, map_location=device, weights_only=False)
