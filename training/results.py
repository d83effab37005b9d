"""Result files: one JSON per recipe under ``results/``, with the provenance that makes a
verdict trustworthy (commit, versions, device, seeds, date, wall time, the data's digest and
sizes), written atomically. Checkpoints for resuming a killed run live beside them in
``results/.checkpoints/`` and are loaded with ``torch.load(weights_only=True)``: tensors and
plain containers only, so no file there can run code. A lock per recipe and results directory
(``results/.locks/``) keeps two runs from writing the same result. ``merge`` joins two runs of
the same recipe with different seeds into one result.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training import files

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parent.parent
FORMAT = 1
DEFAULT_SEEDS = (0, 1, 2)  # the seeds a run trains unless told


class ResultError(ValueError):
    """A result file is unreadable or not one of ours, or cannot be written or merged."""


class Damaged(ResultError):
    """A result file that is not valid JSON or not of our format and shape: its seeds cannot be
    read, so the claims that read it wait until it is restored or retrained."""

    def __init__(self, path: Path, problem: str) -> None:
        into = "" if path.parent.resolve() == (REPO / "results").resolve() else f" --results {path.parent}"
        super().__init__(f"{path}: {problem}; restore it (git checkout -- {path}, where it is "
                         f"committed) or retrain it: python -m claims train {path.stem} --replace{into}")
        self.path = path


class CheckpointError(ResultError):
    """A checkpoint that does not load safely: refused, never run."""


class Busy(ResultError):
    """Another run holds the lock of this recipe and results directory."""


#: Where the result files are, when no directory is named.
ENV_VAR = "LEAN_CNN_RESULTS"


def results_dir(directory: Path | str | None = None) -> Path:
    """``directory``, else $LEAN_CNN_RESULTS, else ``<repo>/results``."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get(ENV_VAR) or REPO / "results")  # set but empty: the default


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


def lock_path(recipe: str, directory: Path | str | None = None) -> Path:
    return results_dir(directory) / ".locks" / f"{recipe}.lock"


def device_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


#: What ``git_dirty`` leaves out: a run started beside another run's fresh, uncommitted result
#: file, or beside edits of the docs, ran the committed code.
NOT_CODE = (":(exclude)results", ":(exclude)docs", ":(exclude)*.md")


def provenance(device: torch.device) -> dict[str, Any]:
    """Who ran what, where and when; the recipe, seeds, data and timings are added by the runner."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:  # read the version without importing torchvision (seconds at start-up)
        vision = version("torchvision")
    except PackageNotFoundError:
        vision = None
    # the code as committed or not: result files, docs and the README do not change a run
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE)
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "torch": torch.__version__,
        "torchvision": vision,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device_name(device),
        "python": platform.python_version(),
        "host": platform.node(),
        "date": now(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write then rename: a killed writer leaves the old file or none, never half of one
    (its temporary file is removed by the next write, see ``training.files``)."""
    try:
        files.write_atomic(path, data)
    except OSError as error:
        raise ResultError(f"cannot write {path}: {error.strerror or error}") from None


def check_readable(directory: Path | str | None = None) -> Path:
    """The results directory to read, which must be one: a mistyped --results or
    $LEAN_CNN_RESULTS would otherwise make every result look untrained, silently."""
    where = results_dir(directory)
    if where.is_dir():
        return where
    named = "--results" if directory is not None else f"${ENV_VAR}" if os.environ.get(ENV_VAR) else ""
    raise FileNotFoundError(f"the results directory {str(where)!r}{f' ({named})' if named else ''} is not a "
                            "directory; name one that 'python -m claims train --results DIR' wrote"
                            + (f", or leave {named} out for results/" if named else ""))


def check_writable(directory: Path | str | None = None) -> Path:
    """The results directory, made if needed, after writing and removing a file in it, so that
    a run stops before training rather than after it."""
    where = results_dir(directory)
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe = files.temporary_name(where / ".writable")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ResultError(f"results directory {where} is not writable ({error.strerror or error}); "
                          "choose another with --results DIR") from None
    return where


def write(path: Path, result: dict[str, Any]) -> None:
    text = json.dumps({"format": FORMAT, **result}, indent=1, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode())


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Damaged(path, f"not valid JSON ({error})") from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ResultError(f"{path}: cannot read it ({error.strerror or error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("points"), list):
        raise Damaged(path, f"not a result file of format {FORMAT}")
    if problem := _shape_problem(data):
        raise Damaged(path, f"{problem}: the file is damaged or was edited by hand")
    return data


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _shape_problem(data: dict[str, Any]) -> str:
    """What in a result's seeds, curves and final figures is not a value per seed, or ''. The
    metrics read these, and a string where a number belongs surfaced as an error in the claim
    file that asked (found by a new-user trial)."""
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        return "'seeds' is not a list of whole numbers"
    for i, point in enumerate(data["points"]):
        if not isinstance(point, dict):
            return f"point {i} is not a table"
        epochs, final = point.get("epochs", []), point.get("final", {})
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            return f"point {i}'s 'epochs' is not a list of tables"
        if not isinstance(final, dict):
            return f"point {i}'s 'final' is not a table"
        rows = [(f"epoch {e + 1}", key, values)
                for e, row in enumerate(epochs) for key, values in row.items()]
        rows += [("final", key, values) for key, values in final.items() if key != "confusion"]
        for where, key, values in rows:
            if not isinstance(values, list) or len(values) != len(seeds) or not all(map(_number, values)):
                return (f"point {i}, {where}: {key!r} is not one number per seed ({len(seeds)}): "
                        f"{str(values)[:60]}")
        for matrix in final.get("confusion", []):
            if not isinstance(matrix, list) or not all(isinstance(row, list) and all(map(_number, row))
                                                       for row in matrix):
                return f"point {i}, final: 'confusion' is not a list of matrices of counts"
    return ""


# --- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Tensors (generator states as uint8 tensors) in plain dicts, lists and tuples of numbers,
    strings and None: all that ``torch.load(weights_only=True)`` admits, nothing to allow-list."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at ``path``, None if there is none. Loaded with ``weights_only=True``: a
    file that asks for anything but tensors and plain containers (a pickled ``__reduce__``,
    any other global), or is empty, truncated or not a checkpoint, is refused unrun."""
    import torch

    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():  # a damaged file's odd protocol byte: the refusal says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # whatever fails, the file is refused, never run
        raise CheckpointError(_refused(path, _why(error))) from None
    if not isinstance(state, dict) or not isinstance(state.get("key"), str):
        raise CheckpointError(_refused(path, "it is not a checkpoint of this trainer"))
    return state


def _why(error: Exception) -> str:
    """torch's reason without its advice to load the file with weights_only=False."""
    paragraphs = [p.strip() for p in str(error).split("\n\n") if p.strip()]
    advice = ("Weights only load failed", "Check the documentation")
    kept = [p for p in paragraphs if not p.startswith(advice)]
    if paragraphs and not kept:
        kept = ["it holds something other than tensors and plain containers"]
    detail = " ".join(kept[0].split())[:300] if kept else "empty or truncated"
    return f"{type(error).__name__}: {detail}"


def _refused(path: Path, why: str) -> str:
    recipe, directory = path.parent.name, path.parent.parent.parent
    where = "" if directory.resolve() == results_dir().resolve() else f" --results {directory}"
    return (f"checkpoint {path} does not load safely and was not used ({why}). To discard it and "
            f"train {recipe} from the start: python -m claims train {recipe}{where} --restart")


# --- the lock -----------------------------------------------------------------------------------

@contextmanager
def lock(recipe: str, directory: Path | str | None = None, *, wait: bool = False) -> Iterator[Path]:
    """Hold the lock of ``recipe`` in ``directory`` (``fcntl.flock`` on
    ``.locks/RECIPE.lock``, which holds the holder's pid). Without ``wait``, a held lock
    raises ``Busy`` at once, naming the holder; the kernel releases it when the holder exits,
    however it ends."""
    path = lock_path(recipe, directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ResultError(f"cannot create the lock {path} ({error.strerror or error}); "
                          "choose a writable --results DIR") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            who = f"pid {holder[0]} on {holder[1]}" if len(holder) >= 2 else "another process"
            raise Busy(f"{recipe}: another run ({who}) is training it into {results_dir(directory)} "
                       f"and holds {path}. This run stops rather than waits: let that one finish, "
                       "or train into another --results DIR") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {platform.node()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


# --- merging runs of other seeds ----------------------------------------------------------------

_SAME = ("recipe", "recipe_table", "epochs_cap", "limit")


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """As JSON holds it (tuples become lists), without the file's format tag or loader keys."""
    text = json.dumps({k: v for k, v in result.items() if k != "format" and not k.startswith("_")},
                      allow_nan=True)
    return json.loads(text)


def mergeable(a: dict[str, Any], b: dict[str, Any], *, points: bool = True) -> None:
    """Raise ResultError unless ``b``'s seeds can join ``a``'s: the same recipe table, cap,
    subset and grid, disjoint seeds, and the same data where both record its digest.
    ``points=False`` leaves out the grid points (``b`` is a run about to start)."""
    a, b = _plain(a), _plain(b)
    for which, result in (("first", a), ("second", b)):
        seeds = result.get("seeds")
        if not (isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)
                and (not points or isinstance(result.get("points"), list))):
            raise ResultError(f"cannot merge: the {which} result has no list of seeds and grid points")
    for key in _SAME:
        if a.get(key) != b.get(key):
            raise ResultError(f"cannot merge runs with a different {key}: {a.get(key)!r} and {b.get(key)!r}")
    overlap = sorted(set(a["seeds"]) & set(b["seeds"]))
    if overlap:
        raise ResultError(f"cannot merge: both runs hold seed{'s' * (len(overlap) > 1)} "
                          f"{' '.join(map(str, overlap))}")
    known_a = (a.get("provenance") or {}).get("datasets") or {}
    known_b = (b.get("provenance") or {}).get("datasets") or {}
    for name in known_a.keys() & known_b.keys():
        if known_a[name].get("sha256") != known_b[name].get("sha256"):
            raise ResultError(f"cannot merge runs on different {name} data: sha256 "
                              f"{known_a[name].get('sha256')} and {known_b[name].get('sha256')}")
    if not points:
        return
    if len(a["points"]) != len(b["points"]):
        raise ResultError(f"cannot merge: {len(a['points'])} and {len(b['points'])} grid points")
    for number, (pa, pb) in enumerate(zip(a["points"], b["points"], strict=True)):
        options_a = {k: v for k, v in pa["options"].items() if k != "remaining"}
        options_b = {k: v for k, v in pb["options"].items() if k != "remaining"}
        if options_a != options_b:
            raise ResultError(f"cannot merge: grid point {number} has options {options_a} and {options_b}")
        for point, result in ((pa, a), (pb, b)):
            _check_point(point, len(result["seeds"]), number)
        if _row_keys(pa) and _row_keys(pb) and _row_keys(pa) != _row_keys(pb):
            raise ResultError(f"cannot merge: grid point {number} logs {sorted(_row_keys(pa))} and "
                              f"{sorted(_row_keys(pb))}")


def _row_keys(point: dict[str, Any]) -> set[str]:
    return set(point["epochs"][0]) if point["epochs"] else set()


def _check_point(point: dict[str, Any], seeds: int, number: int) -> None:
    lists = [("stopped_epoch", point["stopped_epoch"]), ("best_epoch", point["best_epoch"]),
             *((f"final.{k}", v) for k, v in point["final"].items()),
             *((f"epochs[{i}].{k}", v) for i, row in enumerate(point["epochs"]) for k, v in row.items())]
    if isinstance(point["options"].get("remaining"), list):
        lists.append(("options.remaining", point["options"]["remaining"]))
    for name, values in lists:
        if not isinstance(values, list) or len(values) != seeds:
            raise ResultError(f"grid point {number}: {name} should hold one entry per seed ({seeds})")


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One result of ``a``'s seeds followed by ``b``'s, as if they had been trained together
    (a seed's run does not depend on the seeds beside it): every per-seed list is joined on
    the seed axis; epoch rows past a run's end hold NaN for its seeds, as rows after a seed
    stopped early already do. The provenance keeps each run's own as ``parts``."""
    mergeable(a, b)
    a, b = _plain(a), _plain(b)
    na, nb = len(a["seeds"]), len(b["seeds"])
    points = [_merge_point(pa, pb, na, nb) for pa, pb in zip(a["points"], b["points"], strict=True)]
    joined = {"seeds": a["seeds"] + b["seeds"], "provenance": _merge_provenance(a, b), "points": points}
    return {**{k: joined.get(k, v) for k, v in a.items()}, **joined}


def _merge_point(pa: dict[str, Any], pb: dict[str, Any], na: int, nb: int) -> dict[str, Any]:
    keys = list(pa["epochs"][0] if pa["epochs"] else pb["epochs"][0] if pb["epochs"] else [])

    def row(point: dict[str, Any], epoch: int, key: str, seeds: int) -> list[Any]:
        return point["epochs"][epoch][key] if epoch < len(point["epochs"]) else [math.nan] * seeds

    epochs = [{k: row(pa, e, k, na) + row(pb, e, k, nb) for k in keys}
              for e in range(max(len(pa["epochs"]), len(pb["epochs"])))]
    options = dict(pa["options"])
    if isinstance(pa["options"].get("remaining"), list) or isinstance(pb["options"].get("remaining"), list):
        options["remaining"] = list(pa["options"].get("remaining") or [None] * na) + list(
            pb["options"].get("remaining") or [None] * nb)
    if set(pa["final"]) != set(pb["final"]):
        raise ResultError(f"cannot merge: final metrics {sorted(pa['final'])} and {sorted(pb['final'])}")
    return {**pa, "options": options, "epochs": epochs,
            "stopped_epoch": pa["stopped_epoch"] + pb["stopped_epoch"],
            "best_epoch": pa["best_epoch"] + pb["best_epoch"],
            "final": {k: pa["final"][k] + pb["final"][k] for k in pa["final"]}}


def _parts(result: dict[str, Any]) -> list[dict[str, Any]]:
    own = result.get("provenance") or {}
    return own["parts"] if "parts" in own else [{**own, "seeds": result["seeds"]}]


def _merge_provenance(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Each run's provenance under ``parts``; above them what they share, times summed, and
    for what differs the distinct strings joined with ' | ' (None for other kinds)."""
    parts = _parts(a) + _parts(b)
    keys = dict.fromkeys(k for part in parts for k in part if k not in ("seeds", "parts"))
    merged: dict[str, Any] = {}
    for key in keys:
        values = [part.get(key) for part in parts]
        present = [v for v in values if v is not None]
        if key in ("wall_s", "elapsed_s"):
            merged[key] = round(sum(present), 1)
        elif key == "git_dirty":
            merged[key] = any(present) if present else None
        elif key == "date":
            merged[key] = min(present, default=None)
        elif key == "finished":
            merged[key] = max(present, default=None)
        elif key == "datasets":
            merged[key] = {name: info for v in present for name, info in v.items()}
        elif all(v == values[0] for v in values):
            merged[key] = values[0]
        elif all(isinstance(v, str) for v in values):
            merged[key] = " | ".join(dict.fromkeys(values))
        else:
            merged[key] = None
    merged["parts"] = parts
    return merged
