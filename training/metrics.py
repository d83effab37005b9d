"""What a claim reads from a result file: a registry of metrics over the per-seed histories.

A metric of one run per seed returns ``Seeds`` (the values, their mean, spread and best),
which the verdict judges by a rule (see ``claims.verdict``); comparisons between runs
compare seed means and return a plain value. Epochs are counted from 1, as Keras prints them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training import results


class NotRun(Exception):
    """The result file a metric needs does not exist (yet)."""


class CappedRun(Exception):
    """The result comes from a run capped below the recipe's epochs: only prefix-safe
    metrics may use it."""


@dataclass(frozen=True)
class Seeds:
    """One metric over the seeds of a run."""

    values: tuple[float, ...]
    files: tuple[str, ...] = ()
    #: The run was a prefix (capped epochs): a maximum over it is only a lower bound.
    lower_bound: bool = False

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        text = (f"mean {self.mean:.4g} ± {self.std:.2g} over {len(self.values)} seeds "
                f"(min {min(self.values):.4g}, max {max(self.values):.4g})")
        if self.lower_bound:
            text += ", a lower bound (capped run)"
        return text + (f"; {', '.join(self.files)}" if self.files else "")


Result = dict[str, Any]
Metric = Callable[[dict[str, Any], Callable[[str], Result]], Any]
METRICS: dict[str, Metric] = {}
#: Metrics whose value over a capped (prefix) run is a lower bound of the full run's.
PREFIX_SAFE = {"best_test_accuracy"}


def metric(name: str) -> Callable[[Metric], Metric]:
    def wrap(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn
    return wrap


def loader(directory: Path | None = None, *, allow_capped: bool = False) -> Callable[[str], Result]:
    """A reader of result files by recipe name that says how to make a missing one."""
    def load(recipe: str) -> Result:
        path = results.path_for(recipe, directory)
        if not path.exists():
            raise NotRun(f"needs a training result, {path.parent.name}/{path.name}: run "
                         f"'python -m claims train {recipe}' (add --device cpu to train without a GPU)")
        data = results.read(path)
        data["_file"] = f"{path.parent.name}/{path.name}"
        if data.get("epochs_cap") and not allow_capped:
            raise CappedRun(f"needs a full run: {data['_file']} is capped at {data['epochs_cap']} of the "
                            f"recipe's {data['recipe_table']['epochs']} epochs")
        if data.get("limit"):
            raise CappedRun(f"needs a run on the whole dataset: {data['_file']} trained on a "
                            f"{data['limit']}-image subset")
        return data
    return load


def compute(spec: dict[str, Any], directory: Path | None = None) -> Any:
    name = spec["metric"]
    if name not in METRICS:
        raise KeyError(f"unknown training metric {name!r}; valid: {', '.join(sorted(METRICS))}")
    try:
        return METRICS[name](spec, loader(directory))
    except CappedRun:
        if name not in PREFIX_SAFE:
            raise
    value = METRICS[name](spec, loader(directory, allow_capped=True))
    return Seeds(value.values, value.files, lower_bound=True)


def _series(point: dict[str, Any], key: str) -> list[list[float]]:
    """Per seed, the epoch values of ``key`` up to that seed's last epoch."""
    seeds = len(point["epochs"][0][key])
    return [[e[key][s] for e in point["epochs"] if not math.isnan(e[key][s])] for s in range(seeds)]


def _single(data: Result) -> dict[str, Any]:
    if len(data["points"]) != 1:
        raise ValueError(f"{data['_file']} holds a grid of {len(data['points'])} points; "
                         "use a best_grid_* metric")
    return data["points"][0]


def _seeds(values: list[float], data: Result) -> Seeds:
    return Seeds(tuple(float(v) for v in values), (data["_file"],))


def _final(key: str) -> Metric:
    def fn(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
        data = load(spec["recipe"])
        return _seeds(_single(data)["final"][key], data)
    return fn


for _name, _key in {"test_accuracy": "accuracy", "test_loss": "loss", "test_precision": "precision",
                    "test_recall": "recall"}.items():
    metric(_name)(_final(_key))


def _per_seed(key: str, reduce: Callable[[list[float], dict[str, Any]], float]) -> Metric:
    """A metric of each seed's epoch series of ``key`` (its values up to that seed's stop)."""
    def fn(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
        data = load(spec["recipe"])
        return _seeds([reduce(s, spec) for s in _series(_single(data), key)], data)
    return fn


#: name -> (logged key, reduction of one seed's series); epochs count from 1.
_SERIES_METRICS: dict[str, tuple[str, Callable[[list[float], dict[str, Any]], float]]] = {
    # the best epoch's test accuracy (the MNIST post monitors the test set)
    "best_test_accuracy": ("test_accuracy", lambda s, _: max(s)),
    "test_accuracy_at_epoch": ("test_accuracy", lambda s, spec: s[spec["epoch"] - 1]),
    # how many epochs ran before EarlyStopping (or the recipe's end) stopped each seed
    "epochs_run": ("loss", lambda s, _: len(s)),
    "final_train_accuracy": ("accuracy", lambda s, _: s[-1]),
    # the epoch of the lowest validation loss: after it, the model overfits
    "best_val_loss_epoch": ("val_loss", lambda s, _: int(np.argmin(s)) + 1),
    # mean validation accuracy over the second half of the epochs (where it 'stagnates')
    "val_accuracy_plateau": ("val_accuracy", lambda s, _: statistics.fmean(s[len(s) // 2:])),
}
for _name, (_key, _reduce) in _SERIES_METRICS.items():
    metric(_name)(_per_seed(_key, _reduce))


def mean_accuracy(point: dict[str, Any]) -> float:
    """A run's final test accuracy, mean over its seeds."""
    return statistics.fmean(point["final"]["accuracy"])


def best_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The grid point with the best mean test accuracy: how the notebook picks its winners."""
    return max(points, key=mean_accuracy)


def _grid_best(data: Result) -> tuple[dict[str, Any], Seeds]:
    best = best_point(data["points"])
    return best, _seeds(best["final"]["accuracy"], data)


@metric("best_grid_test_accuracy")
def best_grid_test_accuracy(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Test accuracy of the grid point with the best mean test accuracy (as the notebook picks)."""
    return _grid_best(load(spec["recipe"]))[1]


@metric("best_grid_test_accuracy_above")
def best_grid_test_accuracy_above(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    return _grid_best(load(spec["recipe"]))[1].mean > _grid_best(load(spec["versus"]))[1].mean


@metric("grid_knee")
def grid_knee(spec: dict[str, Any], load: Callable[[str], Result]) -> Any:
    """The knee of mean test accuracy along a one-option grid (``option``), by Kneedle
    (Satopaa et al., 2011): both axes scaled to [0, 1], the point farthest above the chord
    from the first point to the last; the first point when none is above. The knee is where
    returns start to diminish: 'a trade-off on performance and size'. The explanation gives
    every point's distance, so a close call shows as one."""
    from claims.measures import Explained

    data = load(spec["recipe"])
    values = [p["options"][spec["option"]] for p in data["points"]]
    x = np.asarray(values, dtype=float)
    y = np.asarray([mean_accuracy(p) for p in data["points"]])
    above = (y - y.min()) / (np.ptp(y) or 1.0) - (x - x.min()) / np.ptp(x)
    knee = values[int(np.argmax(above))] if above.max() > 1e-9 else values[0]
    return Explained(knee, "scaled accuracy above the chord: " + ", ".join(
        f"{v}: {a:.3f}" for v, a in zip(values, above, strict=True)) + f" ({data['_file']})")


@metric("top2_confusions")
def top2_confusions(spec: dict[str, Any], load: Callable[[str], Result]) -> list[str]:
    """The two most frequent errors 'true->predicted', confusion matrices summed over seeds,
    in ascending order (the notebook names two without ranking them)."""
    matrix = np.asarray(_single(load(spec["recipe"]))["final"]["confusion"]).sum(0)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None, kind="stable")[::-1][:2]
    return sorted(f"{i // matrix.shape[1]}->{i % matrix.shape[1]}" for i in order)


def _mean_final(load: Callable[[str], Result], recipe: str) -> float:
    return mean_accuracy(_single(load(recipe)))


@metric("test_accuracy_below")
def test_accuracy_below(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    return _mean_final(load, spec["recipe"]) < _mean_final(load, spec["versus"])


@metric("test_accuracy_above")
def test_accuracy_above(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    """Mean test accuracy above a number (or another recipe's), for ``recipe`` and ``also``."""
    versus = spec["versus"]
    bar = versus if isinstance(versus, (int, float)) else _mean_final(load, versus)
    recipes = [spec["recipe"], *([spec["also"]] if "also" in spec else [])]
    return all(_mean_final(load, r) > bar for r in recipes)


@metric("test_accuracy_best_of")
def test_accuracy_best_of(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    mine = _mean_final(load, spec["recipe"])
    return all(mine > _mean_final(load, other) for other in spec["versus"])


def _mean_curve(load: Callable[[str], Result], recipe: str, key: str) -> np.ndarray:
    point = _single(load(recipe))
    return np.nanmean(np.array([e[key] for e in point["epochs"]], dtype=float), axis=1)


@metric("epochs_to_loss_later")
def epochs_to_loss_later(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    """Does ``recipe`` reach ``versus``'s final validation loss later (in epochs) than
    ``versus`` does? Seed-mean curves."""
    mine = _mean_curve(load, spec["recipe"], "val_loss")
    theirs = _mean_curve(load, spec["versus"], "val_loss")
    target = float(theirs[-1])

    def first(curve: np.ndarray) -> int:
        hits = np.nonzero(curve <= target)[0]
        return int(hits[0]) + 1 if len(hits) else len(curve) + 1
    return first(mine) > first(theirs)


@metric("val_loss_rises")
def val_loss_rises(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    """Overfitting: the final validation loss is above its minimum (seed-mean curve)."""
    curve = _mean_curve(load, spec["recipe"], "val_loss")
    return bool(curve[-1] > curve.min())


def _at_epoch(load: Callable[[str], Result], recipe: str, key: str, epoch: int) -> float:
    return float(_mean_curve(load, recipe, key)[epoch - 1])


@metric("val_accuracy_above")
def val_accuracy_above(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    e = spec["epoch"]
    mine = _at_epoch(load, spec["recipe"], "val_accuracy", e)
    return mine > _at_epoch(load, spec["versus"], "val_accuracy", e)


@metric("train_accuracy_below")
def train_accuracy_below(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    e = spec["epoch"]
    return _at_epoch(load, spec["recipe"], "accuracy", e) < _at_epoch(load, spec["versus"], "accuracy", e)


@metric("val_accuracy_best_of")
def val_accuracy_best_of(spec: dict[str, Any], load: Callable[[str], Result]) -> bool:
    e = spec["epoch"]
    mine = _at_epoch(load, spec["recipe"], "val_accuracy", e)
    return all(mine > _at_epoch(load, other, "val_accuracy", e) for other in spec["versus"])


# -- the lottery-ticket experiment: one point per pruning iteration, 0 = unpruned ----------------
def _iteration_best(point: dict[str, Any]) -> list[float]:
    return [max(s) for s in _series(point, "test_accuracy")]


@metric("best_test_accuracy_at_iteration")
def best_test_accuracy_at_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    data = load(spec["recipe"])
    return _seeds(_iteration_best(data["points"][spec["iteration"]]), data)


@metric("accuracy_drop_per_iteration")
def accuracy_drop_per_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Per seed, the mean fall of the best test accuracy from one iteration to the next."""
    data = load(spec["recipe"])
    best = np.array([_iteration_best(p) for p in data["points"]])  # (iterations, seeds)
    return _seeds(list((best[:-1] - best[1:]).mean(0)), data)


@metric("min_best_test_accuracy_over_iterations")
def min_best_test_accuracy_over_iterations(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    data = load(spec["recipe"])
    return _seeds(list(np.array([_iteration_best(p) for p in data["points"]]).min(0)), data)


@metric("pruned_not_faster_to_99")
def pruned_not_faster_to_99(spec: dict[str, Any], load: Callable[[str], Result]) -> Any:
    """The post: unlike the paper, the pruned networks did not learn faster. Epochs to reach
    99% test accuracy (seed mean; never reaching it counts as one past the end) of every
    pruned iteration against the unpruned network's; the explanation gives each one."""
    from claims.measures import Explained

    data = load(spec["recipe"])

    def epochs_to_99(point: dict[str, Any]) -> list[int]:
        return [next((i + 1 for i, a in enumerate(s) if a >= 0.99), len(s) + 1)
                for s in _series(point, "test_accuracy")]
    epochs = [epochs_to_99(p) for p in data["points"]]
    means = [statistics.fmean(e) for e in epochs]
    unpruned, *pruned = means
    each = ", ".join(f"iteration {k}: {m:.2f} {tuple(e)}"
                     for k, (m, e) in enumerate(zip(means, epochs, strict=True)))
    return Explained(all(e >= unpruned for e in pruned),
                     f"epochs to 99% test accuracy, seed mean (per seed): {each} ({data['_file']})")
