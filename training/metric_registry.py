"""The registry of training metrics (``METRICS``, ``SHAPES``, ``@metric``), the reader of
result files by recipe name, and what the metrics share to read per-seed histories.

A metric is registered here by the module that defines it (``training.metrics``,
``training.curve_metrics``, ``training.lottery_metrics``); ``training.metrics`` imports them
all, so a caller imports that. Epochs count from 1, as Keras prints them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from training import files, results
from training.measurements import Difference, HeldOut, Seeds


class WantsRun(Exception):
    """``recipe`` is the training run that would give the metric what it lacks."""

    def __init__(self, message: str, recipe: str = "") -> None:
        super().__init__(message)
        self.recipe = recipe


class NotRun(WantsRun):
    """The result file a metric needs does not exist (yet)."""


class CappedRun(WantsRun):
    """The result comes from a run capped below the recipe's epochs: only prefix-safe
    metrics may use it."""


class DamagedRun(WantsRun):
    """The result file is there but cannot be read (``training.results.Damaged``): the claims
    that read it wait for it to be restored, and the rest of a report goes on."""


Result = dict[str, Any]
Metric = Callable[[dict[str, Any], Callable[[str], Result]], Any]
METRICS: dict[str, Metric] = {}
#: What each metric returns: seeds, difference, all_of, ranking or value.
SHAPES: dict[str, str] = {}
#: Metrics whose value over a capped (prefix) run is a lower bound of the full run's.
PREFIX_SAFE = {"best_test_accuracy"}


def metric(name: str, shape: str = "seeds") -> Callable[[Metric], Metric]:
    def wrap(fn: Metric) -> Metric:
        METRICS[name] = fn
        SHAPES[name] = shape
        return fn
    return wrap


def loader(directory: Path | None = None, *, allow_capped: bool = False) -> Callable[[str], Result]:
    """A reader of result files by recipe name that says how to make a missing one."""
    def load(recipe: str) -> Result:
        path = results.path_for(recipe, directory)
        if not path.exists():
            raise NotRun(f"needs a training result, {path.parent.name}/{path.name}: run 'python -m claims "
                         f"train {recipe}' (add --device cpu to train without a GPU)", recipe)
        try:
            data = {**_read(path), "_file": f"{path.parent.name}/{path.name}"}
        except results.Damaged as error:
            raise DamagedRun(str(error), recipe) from None
        if data.get("epochs_cap") and not allow_capped:
            raise CappedRun(f"needs a full run: {data['_file']} is capped at {data['epochs_cap']} of the "
                            f"recipe's {data['recipe_table']['epochs']} epochs", recipe)
        if data.get("limit"):
            raise CappedRun(f"needs a run on the whole dataset: {data['_file']} trained on a "
                            f"{data['limit']}-image subset", recipe)
        return data
    return load


def _read(path: Path) -> Result:
    """A result file, parsed once per process per state of the file (a report reads each a
    dozen times); shared between callers, which read it and never change it."""
    return files.read_once(path, results.read)


def _series(point: dict[str, Any], key: str) -> list[list[float]]:
    """Per seed, the epoch values of ``key`` up to that seed's last epoch."""
    seeds = len(point["epochs"][0][key])
    return [[e[key][s] for e in point["epochs"] if not math.isnan(e[key][s])] for s in range(seeds)]


def _single(data: Result) -> dict[str, Any]:
    if len(data["points"]) != 1:
        raise ValueError(f"{data['_file']} holds a grid of {len(data['points'])} points; "
                         "use a best_grid_* metric")
    return data["points"][0]


def looks(*data: Result) -> int:
    """How many times a verdict on these result files could have been judged: once for their
    first seeds, and once more each time seeds were added to one of them (each addition,
    recorded as a part of the file's provenance, follows a verdict that did not decide)."""
    distinct = {d.get("_file", id(d)): d for d in data}.values()  # a file read twice is one file
    return 1 + sum(max(len(d.get("provenance", {}).get("parts") or [None]), 1) - 1 for d in distinct)


def _counts(values: list[float], ceilings: list[float], data: Result, beyond_limit: bool = False) -> Seeds:
    """Epoch counts per seed, discrete unless every seed sits at its ceiling (ran every epoch,
    or, ``beyond_limit``, never reached the mark and scored one past the run's limit): the same
    count there is the run's limit, which more seeds would not move, not a sample without
    spread."""
    at_ceiling = sum(v >= c for v, c in zip(values, ceilings, strict=True))
    seeds = _seeds(values, data, discrete=at_ceiling < len(values), censored=at_ceiling)
    return replace(seeds, beyond_limit=beyond_limit and at_ceiling > 0)


def epoch_limit(data: Result) -> int:
    """The most epochs a run of this file could train: its cap, else its recipe's epochs (not the
    epochs its longest seed logged, which early stopping may have ended before the limit)."""
    return int(data.get("epochs_cap") or data["recipe_table"]["epochs"])


def first_epoch(curve: list[float], reached: Callable[[float], bool], data: Result) -> int:
    """The first epoch (from 1) whose value ``reached`` accepts; where none does, one past the
    run's limit, not past the curve's own end: early stopping ends a stalled run early, and its
    own length would score it as fast."""
    return next((i + 1 for i, v in enumerate(curve) if reached(v)), epoch_limit(data) + 1)


def _seeds(values: list[float], data: Result, discrete: bool = False, censored: int = 0) -> Seeds:
    return Seeds(tuple(float(v) for v in values), (data["_file"],), looks=looks(data), discrete=discrete,
                 censored=censored)


def names(value: str | list[str]) -> list[str]:
    """A spec's ``versus`` or ``of``: one name, or a list of them."""
    return value if isinstance(value, list) else [value]


def mean_accuracy(point: dict[str, Any]) -> float:
    """A run's final test accuracy, mean over its seeds."""
    return statistics.fmean(point["final"]["accuracy"])


def best_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The grid point with the best mean test accuracy: how the notebook picks its winners."""
    return max(points, key=mean_accuracy)


#: The fewest shared seeds a comparison pairs; with fewer it compares the runs unpaired.
MIN_PAIRED = 3


def _difference(what: str, mine: list[float], theirs: list[float], data: Result, other: Result,
                candidates: int = 1, discrete: bool = False, held_out: HeldOut | None = None) -> Difference:
    """Paired by seed over the seeds both runs trained (the same initialisations and orders),
    when they share at least ``MIN_PAIRED`` seeds; unpaired otherwise. A run that gained seeds
    its counterpart lacks is thus still compared seed for seed, on the seeds they share.
    ``held_out`` (``held_out_of``), per seed as ``mine`` and ``theirs``, goes along on the
    same seeds."""
    mine_seeds, their_seeds = list(data.get("seeds") or []), list(other.get("seeds") or [])
    common = [s for s in mine_seeds if s in their_seeds]
    per_seed = len(mine_seeds) == len(mine) and len(their_seeds) == len(theirs)
    paired = per_seed and len(common) >= MIN_PAIRED

    def shared(values: list[float], seeds: list[int]) -> tuple[float, ...]:
        if paired and common != seeds:
            values = [values[seeds.index(s)] for s in common]
        return tuple(map(float, values))
    if paired and (common != mine_seeds or common != their_seeds):
        what += f" (the {len(common)} seeds both trained)"
    if held_out is not None:
        held_out = replace(held_out, a=shared(list(held_out.a), mine_seeds),
                           b=shared(list(held_out.b), their_seeds))
    return Difference(shared(mine, mine_seeds), shared(theirs, their_seeds), paired, what,
                      (data["_file"], other["_file"]), candidates, looks(data, other), discrete=discrete,
                      held_out=held_out)


def held_out_of(load: Callable[[str], Result], key: str, recipe: str, other: str) -> HeldOut:
    """Both runs' last value of curve ``key`` (a held-out accuracy) per seed, each in its own
    seed order; ``_difference`` aligns them with the compared values."""
    def last(name: str) -> tuple[float, ...]:
        return tuple(curve[-1] for curve in _curves(load, name, key)[0])
    return HeldOut(last(recipe), last(other), f"last epoch's {key.replace('_', ' ')}", (recipe, other))


def _curves(load: Callable[[str], Result], recipe: str, key: str) -> tuple[list[list[float]], Result]:
    data = load(recipe)
    return _series(_single(data), key), data
