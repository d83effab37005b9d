"""What a claim reads from a result file: a registry of metrics over the per-seed histories.

A metric returns a measurement the verdict can judge with a stated rule (``claims.stats``):
``Seeds`` (one value per seed), ``Difference`` (two runs' values, paired by seed where the
seeds match), ``AllOf`` (several such, every one must hold), ``Ranking`` (confusion counts
per seed) or, with what a reader needs to weigh it, ``Explained``. Epochs count from 1, as
Keras prints them. Each metric declares its shape, so a claim's test can build a stand-in
measurement before any training happened.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
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
    #: How many times these seeds' verdict could have been judged: one, plus one for each time
    #: seeds were added to the result files it reads (see ``looks``).
    looks: int = 1

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


@dataclass(frozen=True)
class Difference:
    """Two runs' per-seed values of one quantity; judged on the mean of ``a - b``."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    paired: bool
    what: str
    files: tuple[str, ...] = ()
    #: How many configurations the compared runs were picked among, on these same runs (the
    #: product of the grid sizes where a side is a grid's best point); the rule corrects for it.
    candidates: int = 1
    looks: int = 1  # as Seeds.looks
    #: ``a`` and ``b`` are logarithms (of times per round): the claim's figure is the ratio
    #: exp(mean a - mean b), and its threshold is judged as a logarithm too.
    log_ratio: bool = False

    def __str__(self) -> str:
        mean = statistics.fmean(self.a) - statistics.fmean(self.b)
        if self.log_ratio:
            return (f"{self.what}: ratio {math.exp(mean):.4g} of the geometric means "
                    f"({len(self.a)} against {len(self.b)} rounds, Welch on the log times)")
        pairing = "paired by seed" if self.paired else "unpaired"
        picked = f"; picked among {self.candidates} configurations" if self.candidates > 1 else ""
        return (f"{self.what}: mean difference {mean:.4g} ({pairing}; "
                f"{_values(self.a)} against {_values(self.b)}{picked})")


@dataclass(frozen=True)
class AllOf:
    """Several measurements that must all satisfy the claim ("A beats B and C")."""

    items: tuple[Any, ...]

    def __str__(self) -> str:
        return "; ".join(str(i) for i in self.items)


@dataclass(frozen=True)
class Ranking:
    """Confusion matrices per seed (seed, true, predicted): judged on the top-k errors."""

    matrices: tuple[tuple[tuple[int, ...], ...], ...]
    files: tuple[str, ...] = ()
    looks: int = 1  # as Seeds.looks

    def top(self, k: int) -> list[tuple[str, int]]:
        m = np.asarray(self.matrices).sum(0)
        np.fill_diagonal(m, -1)
        order = np.argsort(-m, axis=None, kind="stable")[:k]
        return [(f"{i // m.shape[1]}->{i % m.shape[1]}", int(m.flat[i])) for i in order]

    def __str__(self) -> str:
        top = ", ".join(f"{cell} ({n})" for cell, n in self.top(4))
        return f"most frequent errors summed over {len(self.matrices)} seeds: {top}"


@dataclass(frozen=True)
class Explained:
    """A measured value with what a reader needs to weigh it (which run, what else differs)."""

    value: Any
    why: str
    files: tuple[str, ...] = ()


def _values(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


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
            raise NotRun(f"needs a training result, {path.parent.name}/{path.name}: run "
                         f"'python -m claims train {recipe}' (add --device cpu to train without a GPU)")
        data = {**_read(path), "_file": f"{path.parent.name}/{path.name}"}
        if data.get("epochs_cap") and not allow_capped:
            raise CappedRun(f"needs a full run: {data['_file']} is capped at {data['epochs_cap']} of the "
                            f"recipe's {data['recipe_table']['epochs']} epochs")
        if data.get("limit"):
            raise CappedRun(f"needs a run on the whole dataset: {data['_file']} trained on a "
                            f"{data['limit']}-image subset")
        return data
    return load


def _read(path: Path) -> Result:
    """A result file, parsed once per process per state of the file (a report reads each a
    dozen times); shared between callers, which read it and never change it."""
    st = path.stat()
    return _read_as_of(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@lru_cache(maxsize=64)
def _read_as_of(path: str, *_stamp: int) -> Result:
    return results.read(Path(path))


def compute(spec: dict[str, Any], directory: Path | None = None,
            load: Callable[[str], Result] | None = None) -> Any:
    """The metric ``spec`` names, over the result files under ``directory`` (or what ``load``
    gives for a recipe: claims.perturb hands it altered copies)."""
    name = spec["metric"]
    if name not in METRICS:
        raise KeyError(f"unknown training metric {name!r}; valid: {', '.join(sorted(METRICS))}")
    if load is not None:
        return METRICS[name](spec, load)
    try:
        return METRICS[name](spec, loader(directory))
    except CappedRun:
        if name not in PREFIX_SAFE:
            raise
    value = METRICS[name](spec, loader(directory, allow_capped=True))
    return Seeds(value.values, value.files, lower_bound=True, looks=value.looks)


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
    return 1 + sum(max(len(d.get("provenance", {}).get("parts") or [None]), 1) - 1 for d in data)


def _seeds(values: list[float], data: Result) -> Seeds:
    return Seeds(tuple(float(v) for v in values), (data["_file"],), looks=looks(data))


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


def _difference(what: str, mine: list[float], theirs: list[float], data: Result, other: Result,
                candidates: int = 1) -> Difference:
    """Paired by seed when both runs trained the same seeds (the same initialisations and orders)."""
    paired = data.get("seeds") is not None and data.get("seeds") == other.get("seeds")
    return Difference(tuple(map(float, mine)), tuple(map(float, theirs)), paired, what,
                      (data["_file"], other["_file"]), candidates, looks(data, other))


@metric("best_grid_test_accuracy_difference", shape="difference")
def best_grid_test_accuracy_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Difference:
    """Final test accuracy of one grid's best point minus another grid's best point (a recipe
    of one point is its own best). Each best point is picked on the runs that are then
    compared, so the difference carries how many pairs of points it was picked among."""
    data, other = load(spec["recipe"]), load(spec["versus"])
    return _difference(f"best point of {spec['recipe']} - best point of {spec['versus']}, test accuracy",
                       list(_grid_best(data)[1].values), list(_grid_best(other)[1].values), data, other,
                       len(data["points"]) * len(other["points"]))


@metric("grid_knee", shape="value")
def grid_knee(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """The knee of mean test accuracy along a one-option grid (``option``), by Kneedle
    (Satopaa et al., 2011): both axes scaled to [0, 1], the point farthest above the chord
    from the first point to the last; the first point when none is above. The knee is where
    returns start to diminish: 'a trade-off on performance and size'. The explanation gives
    every point's distance, so a close call shows as one."""
    data = load(spec["recipe"])
    values = [p["options"][spec["option"]] for p in data["points"]]
    x = np.asarray(values, dtype=float)
    y = np.asarray([mean_accuracy(p) for p in data["points"]])
    above = (y - y.min()) / (np.ptp(y) or 1.0) - (x - x.min()) / np.ptp(x)
    knee = values[int(np.argmax(above))] if above.max() > 1e-9 else values[0]
    log_x = np.log(x)
    log_above = (y - y.min()) / (np.ptp(y) or 1.0) - (log_x - log_x.min()) / np.ptp(log_x)
    log_knee = values[int(np.argmax(log_above))] if log_above.max() > 1e-9 else values[0]
    return Explained(knee, "scaled accuracy above the chord: " + ", ".join(
        f"{v}: {a:.3f}" for v, a in zip(values, above, strict=True))
        + f"; on a logarithmic axis the knee is {log_knee}", (data["_file"],))


@metric("least_costly_grid_step", shape="difference")
def least_costly_grid_step(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """Along a one-option grid (``option``, e.g. the width), per seed the final test accuracy of
    each point minus that of the next larger one, paired by seed (one file, the same seeds): the
    step down whose mean costs least, for "making it smaller is not always worse". The step is
    picked on the runs that judge it, so it carries how many steps it was picked among (the
    rule corrects for them); the explanation gives every step's mean difference."""
    data = load(spec["recipe"])
    option = spec["option"]
    points = sorted(data["points"], key=lambda p: p["options"][option])
    steps = list(itertools.pairwise(points))
    if not steps:
        raise ValueError(f"{data['_file']} holds one point: no step along {option!r}")

    def mean_cost(step: tuple[dict[str, Any], dict[str, Any]]) -> float:
        return mean_accuracy(step[0]) - mean_accuracy(step[1])
    small, large = max(steps, key=mean_cost)
    name = f"{option} {small['options'][option]} - {option} {large['options'][option]}"
    difference = _difference(f"{name}, test accuracy", list(small["final"]["accuracy"]),
                             list(large["final"]["accuracy"]), data, data, len(steps))
    each = ", ".join(f"{a['options'][option]} - {b['options'][option]}: {mean_cost((a, b)):+.4g}"
                     for a, b in steps)
    return Explained(difference, f"mean difference of each step down the grid: {each}", (data["_file"],))


@metric("confusions", shape="ranking")
def confusions(spec: dict[str, Any], load: Callable[[str], Result]) -> Ranking:
    """Each seed's confusion matrix on the test set (true, predicted)."""
    data = load(spec["recipe"])
    matrices = np.asarray(_single(data)["final"]["confusion"], dtype=np.int64)
    return Ranking(tuple(tuple(tuple(int(v) for v in row) for row in m) for m in matrices), (data["_file"],),
                   looks(data))


def _finals(load: Callable[[str], Result], recipe: str) -> tuple[list[float], Result]:
    data = load(recipe)
    return list(_single(data)["final"]["accuracy"]), data


@metric("test_accuracy_difference", shape="all_of")
def test_accuracy_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """Final test accuracy of ``recipe`` (and each of ``also``) minus that of ``versus``: a
    recipe, a list of recipes (each compared), or a number (another source's figure)."""
    versus = spec["versus"]
    items: list[Any] = []
    for recipe in [spec["recipe"], *([spec["also"]] if "also" in spec else [])]:
        mine, data = _finals(load, recipe)
        if isinstance(versus, (int, float)):
            items.append(Seeds(tuple(v - versus for v in mine), (data["_file"],), looks=looks(data)))
            continue
        for other_name in versus if isinstance(versus, list) else [versus]:
            theirs, other = _finals(load, other_name)
            items.append(_difference(f"{recipe} - {other_name}, test accuracy", mine, theirs, data, other))
    return AllOf(tuple(items))


def _curves(load: Callable[[str], Result], recipe: str, key: str) -> tuple[list[list[float]], Result]:
    data = load(recipe)
    return _series(_single(data), key), data


@metric("epochs_to_loss_difference", shape="difference")
def epochs_to_loss_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Difference:
    """Epochs ``recipe`` takes to reach ``versus``'s final validation loss (its seed mean)
    minus the epochs ``versus`` takes; a seed that never reaches it counts one past its end."""
    mine, data = _curves(load, spec["recipe"], "val_loss")
    theirs, other = _curves(load, spec["versus"], "val_loss")
    target = statistics.fmean(s[-1] for s in theirs)

    def first(curve: list[float]) -> int:
        return next((i + 1 for i, v in enumerate(curve) if v <= target), len(curve) + 1)
    return _difference(f"epochs to a validation loss of {target:.4g}, {spec['recipe']} - {spec['versus']}",
                       [first(c) for c in mine], [first(c) for c in theirs], data, other)


@metric("val_loss_rise")
def val_loss_rise(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Overfitting: per seed, the final validation loss minus its minimum, or, with ``from``,
    minus its value at that epoch (the loss is worse at the end than it was there)."""
    curves, data = _curves(load, spec["recipe"], "val_loss")
    start = spec.get("from")
    return _seeds([c[-1] - (min(c) if start is None else c[start - 1]) for c in curves], data)


def _at(load: Callable[[str], Result], recipe: str, key: str, epoch: int) -> tuple[list[float], Result]:
    curves, data = _curves(load, recipe, key)
    return [c[epoch - 1] for c in curves], data


@metric("epoch_difference", shape="all_of")
def epoch_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """``key`` (val_accuracy, accuracy, ...) at ``epoch`` of ``recipe`` minus that of each
    ``versus`` (a recipe or a list), per seed."""
    key, epoch = spec["key"], spec["epoch"]
    mine, data = _at(load, spec["recipe"], key, epoch)
    items = []
    for other_name in spec["versus"] if isinstance(spec["versus"], list) else [spec["versus"]]:
        theirs, other = _at(load, other_name, key, epoch)
        items.append(_difference(f"{key} at epoch {epoch}, {spec['recipe']} - {other_name}",
                                 mine, theirs, data, other))
    return AllOf(tuple(items))


# -- the lottery-ticket experiment: one point per pruning iteration, 0 = unpruned ----------------
def _iteration_best(point: dict[str, Any]) -> list[float]:
    return [max(s) for s in _series(point, "test_accuracy")]


@metric("best_test_accuracy_at_iteration")
def best_test_accuracy_at_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    data = load(spec["recipe"])
    return _seeds(_iteration_best(data["points"][spec["iteration"]]), data)


@metric("accuracy_drop_per_iteration", shape="all_of")
def accuracy_drop_per_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """Per seed, the fall of the best test accuracy from each iteration to the next, one part
    per step ("at each iteration"): their mean over the steps would telescope to the first
    minus the last and leave the iterations between unjudged."""
    data = load(spec["recipe"])
    best = np.array([_iteration_best(p) for p in data["points"]])  # (iterations, seeds)
    return AllOf(tuple(Seeds(tuple(float(v) for v in best[k] - best[k + 1]), (data["_file"],),
                             looks=looks(data)) for k in range(len(best) - 1)))


@metric("min_best_test_accuracy_over_iterations")
def min_best_test_accuracy_over_iterations(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    data = load(spec["recipe"])
    return _seeds(list(np.array([_iteration_best(p) for p in data["points"]]).min(0)), data)


@metric("pruned_epochs_to_99_difference", shape="difference")
def pruned_epochs_to_99_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """Epochs to reach 99% test accuracy of the pruned iterations (their mean, per seed) minus
    the unpruned network's, paired by seed (every iteration rewinds the same seed's
    initialisation); never reaching 99% counts as one past the end. The explanation gives
    each iteration's epochs per seed."""
    data = load(spec["recipe"])

    def epochs_to_99(point: dict[str, Any]) -> list[int]:
        return [next((i + 1 for i, a in enumerate(s) if a >= 0.99), len(s) + 1)
                for s in _series(point, "test_accuracy")]
    epochs = [epochs_to_99(p) for p in data["points"]]
    unpruned, pruned = epochs[0], np.mean(epochs[1:], axis=0)
    each = ", ".join(f"iteration {k}: {tuple(e)}" for k, e in enumerate(epochs))
    diff = Difference(tuple(float(v) for v in pruned), tuple(float(v) for v in unpruned), True,
                      "epochs to 99% test accuracy, pruned iterations' mean - unpruned", (data["_file"],),
                      looks=looks(data))
    return Explained(diff, f"epochs to 99% per seed, {each}", (data["_file"],))


# -- the notebook's readings of its training curves (dense-vs-conv), defined before measuring ------
def _window(curve: list[float], first: int | None, last: int | None) -> list[float]:
    """Epochs ``1..first`` of a seed's curve, or its last ``last`` epochs."""
    return curve[:first] if first is not None else curve[-last:]


def _gaps(spec: dict[str, Any], load: Callable[[str], Result], sign: int) -> AllOf:
    """Per seed, over a window of epochs (``first`` N or the ``last`` N), the mean of
    ``sign * (accuracy - val_accuracy)`` and of ``sign * (val_loss - loss)``: how much worse
    (sign +1) or better (sign -1) the validation curves are than the training curves."""
    data = load(spec["recipe"])
    point = _single(data)
    first, last = spec.get("first"), spec.get("last")
    items = []
    for a, b in (("accuracy", "val_accuracy"), ("val_loss", "loss")):
        pairs = zip(_series(point, a), _series(point, b), strict=True)
        values = [sign * statistics.fmean(np.subtract(_window(x, first, last), _window(y, first, last)))
                  for x, y in pairs]
        items.append(Seeds(tuple(float(v) for v in values), (data["_file"],), looks=looks(data)))
    return AllOf(tuple(items))


@metric("train_val_gap", shape="all_of")
def train_val_gap(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """Overfitting as the notebook reads it, "the delta between train and validation": per
    seed, over the ``last`` epochs (10 in its claims), the mean of training accuracy minus
    validation accuracy (part 1) and of validation loss minus training loss (part 2). Both
    above 0: the validation curves lie on the worse side of the training curves (overfitting
    visible); both at or below 0: no overfitting visible on either curve."""
    return _gaps(spec, load, 1)


@metric("early_val_advantage", shape="all_of")
def early_val_advantage(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """"The validation metrics are better than the training during first epochs": per seed,
    over epochs 1..``first`` (3 in its claim), the mean of validation accuracy minus training
    accuracy (part 1) and of training loss minus validation loss (part 2); above 0 = the
    validation curve is on the better side."""
    return _gaps(spec, load, -1)


def _jitter(curve: list[float]) -> float:
    """The standard deviation of a curve's epoch-to-epoch changes over its second half (the
    epochs after the midpoint): its noise around its trend once the initial descent is over,
    which would otherwise dominate the changes of the training curve."""
    return float(np.std(np.diff(curve[len(curve) // 2:]), ddof=1))


@metric("val_jitter_ratio", shape="all_of")
def val_jitter_ratio(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """"The variance of the validation loss and metric is high": per seed, the jitter (``_jitter``:
    the standard deviation of the epoch-to-epoch changes over the second half of the epochs) of
    the validation curve divided by that of the training curve, for the loss (part 1) and the
    accuracy (part 2). The claims
    read "high" as a ratio above 2: the validation curve wobbles at least twice as much as the
    training curve drawn beside it."""
    data = load(spec["recipe"])
    point = _single(data)
    items = []
    for key in ("loss", "accuracy"):
        ratios = [_jitter(v) / max(_jitter(t), 1e-12) for v, t in
                  zip(_series(point, f"val_{key}"), _series(point, key), strict=True)]
        items.append(Seeds(tuple(ratios), (data["_file"],), looks=looks(data)))
    return AllOf(tuple(items))


@metric("val_jitter_difference", shape="all_of")
def val_jitter_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """"The variation on the validation curves are much lower": the jitter (``_jitter``, over the
    second half of the epochs) of ``recipe``'s validation loss (part 1) and validation accuracy
    (part 2) minus ``versus``'s, per seed (paired where the seeds match)."""
    data, other = load(spec["recipe"]), load(spec["versus"])
    items = []
    for key in ("val_loss", "val_accuracy"):
        mine = [_jitter(c) for c in _series(_single(data), key)]
        theirs = [_jitter(c) for c in _series(_single(other), key)]
        items.append(_difference(f"jitter of {key}, {spec['recipe']} - {spec['versus']}",
                                 mine, theirs, data, other))
    return AllOf(tuple(items))


metric("final_train_loss")(_per_seed("loss", lambda s, _: s[-1]))


# -- qualitative statements about training curves, each read by a definition fixed before measuring --
def _versus(spec: dict[str, Any]) -> list[str]:
    return spec["versus"] if isinstance(spec["versus"], list) else [spec["versus"]]


@metric("epochs_to_near_best")
def epochs_to_near_best(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """How soon a run converges: per seed, the first epoch (from 1) at which ``key`` (default
    val_accuracy) comes within ``margin`` of that seed's best value of it over the whole run
    (its highest; its lowest for a ``key`` ending in 'loss'). "Converges to very good values
    pretty quickly" is read as this epoch being early in the run (the claim states how early)."""
    key, margin = spec.get("key", "val_accuracy"), spec["margin"]
    lower = key.endswith("loss")
    curves, data = _curves(load, spec["recipe"], key)

    def first(curve: list[float]) -> int:
        best = min(curve) if lower else max(curve)
        near = [v <= best + margin if lower else v >= best - margin for v in curve]
        return near.index(True) + 1
    return _seeds([first(c) for c in curves], data)


@metric("overfitting_gap_difference", shape="all_of")
def overfitting_gap_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """Over-fitting compared between runs: per seed, the last epoch's training accuracy (Keras'
    running mean, as the post's curves plot it) minus its validation accuracy, of ``recipe``
    minus that of each ``versus`` (a recipe or a list). Below zero: ``recipe``'s fit to the
    training data runs less far ahead of the held-out data, i.e. it over-fits less. ``against``
    names the held-out curve (default ``val_accuracy``; ``test_accuracy`` where a run monitors
    the test set and holds no validation split)."""
    held_out = spec.get("against", "val_accuracy")

    def gaps(recipe: str) -> tuple[list[float], Result]:
        train, data = _curves(load, recipe, "accuracy")
        val, _ = _curves(load, recipe, held_out)
        return [t[-1] - v[-1] for t, v in zip(train, val, strict=True)], data
    mine, data = gaps(spec["recipe"])
    items = []
    for other_name in _versus(spec):
        theirs, other = gaps(other_name)
        what = f"last epoch's training - {held_out.replace('_', ' ')}, {spec['recipe']} - {other_name}"
        items.append(_difference(what, mine, theirs, data, other))
    return AllOf(tuple(items))


@metric("curves_gap_change")
def curves_gap_change(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Two runs' curves "converging towards each other": per seed, the absolute difference of
    ``key`` (default val_accuracy) between ``recipe`` and ``versus`` at the last epoch minus the
    absolute difference at the first epoch. Below zero: they ended closer than they started.
    Seeds pair by seed when both runs trained the same seeds, else each seed of ``recipe``
    meets ``versus``'s seed-mean curve."""
    key = spec.get("key", "val_accuracy")
    mine, data = _curves(load, spec["recipe"], key)
    theirs, other = _curves(load, spec["versus"], key)
    if not (data.get("seeds") is not None and data.get("seeds") == other.get("seeds")):
        mean = [statistics.fmean(c[0] for c in theirs), statistics.fmean(c[-1] for c in theirs)]
        theirs = [mean] * len(mine)
    change = [abs(m[-1] - t[-1]) - abs(m[0] - t[0]) for m, t in zip(mine, theirs, strict=True)]
    return Seeds(tuple(float(c) for c in change), (data["_file"], other["_file"]), looks=looks(data, other))


# -- the MNIST post's readings of its training curves (tds-mnist-10k), defined before measuring --
def _first_epoch_reaching(curve: list[float], threshold: float) -> int:
    """The first epoch (from 1) whose value reaches ``threshold``; one past the end if none does."""
    return next((i + 1 for i, v in enumerate(curve) if v >= threshold), len(curve) + 1)


@metric("epochs_to_test_accuracy")
def epochs_to_test_accuracy(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """How fast a run converges: per seed, the first epoch (from 1) at which the test accuracy
    reaches ``threshold``; a seed that never reaches it counts one past its last epoch."""
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    return _seeds([_first_epoch_reaching(c, spec["threshold"]) for c in curves], data)


def _falls(curve: list[float], first: int, last: int | None = None) -> float:
    """Mean over epochs ``first``..``last`` (from 2; default the curve's last) of the fall from
    the epoch before, max(0, value[e-1] - value[e]): 0 for a curve that only rises."""
    stop = len(curve) if last is None else min(last, len(curve))
    drops = [max(0.0, curve[e - 2] - curve[e - 1]) for e in range(max(first, 2), stop + 1)]
    if not drops:
        raise ValueError(f"no epochs between {first} and {stop} to measure falls over")
    return statistics.fmean(drops)


@metric("test_accuracy_falls")
def test_accuracy_falls(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """How unsteady training is: per seed, the mean fall of the test accuracy from one epoch to
    the next, max(0, acc[e-1] - acc[e]), over epochs ``from`` (default 2) to the seed's last.
    Rises count zero, so steady learning scores 0 and every dip adds its depth."""
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    return _seeds([_falls(c, spec.get("from", 2)) for c in curves], data)


@metric("test_accuracy_falls_early_minus_late")
def test_accuracy_falls_early_minus_late(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """"Initial fluctuation" that settles: per seed, the mean fall of the test accuracy (see
    test_accuracy_falls) over epochs 2..``split`` minus that over epochs ``split``+1 to the seed's
    last. Above 0: the curve dips more, and deeper, before ``split`` than after."""
    k = spec["split"]
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    return _seeds([_falls(c, 2, k) - _falls(c, k + 1) for c in curves], data)


@metric("mean_test_accuracy_after")
def mean_test_accuracy_after(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Where a run settles ("converges towards 99% after 10 epochs"): per seed, the mean test
    accuracy over epochs ``after``+1 to the seed's last."""
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    return _seeds([statistics.fmean(c[spec["after"]:]) for c in curves], data)


@metric("test_accuracy_rise_after")
def test_accuracy_rise_after(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Whether a run is still approaching where it settles ("converges towards 99%"): per seed,
    over the epochs after ``after``, the mean test accuracy of their second half minus that of
    their first half. Above 0: the curve still rises; a flat or falling curve scores 0 or less."""
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    rises = []
    for curve in curves:
        tail = curve[spec["after"]:]
        if len(tail) < 2:
            raise ValueError(f"{data['_file']}: fewer than two epochs after epoch {spec['after']}")
        half = len(tail) // 2
        rises.append(statistics.fmean(tail[half:]) - statistics.fmean(tail[:half]))
    return _seeds(rises, data)


@metric("test_evaluated_each_epoch")
def test_evaluated_each_epoch(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Per seed, the fraction of the epochs it ran (those with a training loss) whose log also
    holds a test accuracy: 1 when the test set was evaluated after every epoch."""
    data = load(spec["recipe"])
    point = _single(data)
    ran = _series(point, "loss")
    fractions = []
    for s, curve in enumerate(ran):
        tested = [e.get("test_accuracy", [math.nan] * len(ran))[s] for e in point["epochs"][:len(curve)]]
        fractions.append(sum(not math.isnan(v) for v in tested) / len(curve))
    return _seeds(fractions, data)


@metric("lr_reduction_factor")
def lr_reduction_factor(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """The factor the trainer actually cut the learning rate by: per seed, the mean of
    lr[e] / lr[e-1] over the epochs where the logged learning rate fell (1 where it never did)."""
    curves, data = _curves(load, spec["recipe"], "lr")
    ratios = [[c[e] / c[e - 1] for e in range(1, len(c)) if c[e] < c[e - 1]] for c in curves]
    return _seeds([statistics.fmean(r) if r else 1.0 for r in ratios], data)


@metric("epochs_run_at_iteration")
def epochs_run_at_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Per seed, how many epochs pruning iteration ``iteration`` (0 = unpruned) ran before
    EarlyStopping (or the recipe's end) stopped it."""
    data = load(spec["recipe"])
    return _seeds([len(s) for s in _series(data["points"][spec["iteration"]], "loss")], data)


@metric("each_recipe", shape="all_of")
def each_recipe(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """One per-seed metric ``of`` (its other keys from this spec) for each of ``recipes``:
    every one must satisfy the claim ("each approach keeps accuracy above 99%")."""
    return AllOf(tuple(METRICS[spec["of"]]({**spec, "recipe": r}, load) for r in spec["recipes"]))


@metric("paired_difference", shape="all_of")
def paired_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """A run against others (an ablation against its run): per-seed metric ``of`` (a name or a
    list of names; their other keys from this spec) of ``recipe`` minus that of each ``versus``
    (a recipe or a list), paired by seed where both trained the same seeds (the same data order
    and initialisation streams); one difference per metric and run, every one must satisfy the
    claim."""
    data = load(spec["recipe"])
    versus = spec["versus"] if isinstance(spec["versus"], list) else [spec["versus"]]
    items = []
    for name in spec["of"] if isinstance(spec["of"], list) else [spec["of"]]:
        mine = METRICS[name]({**spec, "recipe": spec["recipe"]}, load)
        for other_name in versus:
            theirs = METRICS[name]({**spec, "recipe": other_name}, load)
            items.append(_difference(f"{name}, {spec['recipe']} - {other_name}", list(mine.values),
                                     list(theirs.values), data, load(other_name)))
    return AllOf(tuple(items))


def _iteration_falls(data: Result, iteration: int, first: int, last: int | None) -> list[float]:
    return [_falls(c, first, last) for c in _series(data["points"][iteration], "test_accuracy")]


@metric("iteration_test_accuracy_falls_difference", shape="difference")
def iteration_test_accuracy_falls_difference(spec: dict[str, Any],
                                              load: Callable[[str], Result]) -> Difference:
    """Fluctuation compared between pruning iterations (0 = unpruned): per seed, the mean fall of
    the test accuracy from one epoch to the next (see test_accuracy_falls) over epochs ``from``
    (default 2) to ``to`` (default the seed's last) of ``iteration`` minus that of iteration
    ``versus``, paired by seed (every iteration rewinds the same seed's initialisation)."""
    data = load(spec["recipe"])
    first, last = spec.get("from", 2), spec.get("to")
    return Difference(tuple(_iteration_falls(data, spec["iteration"], first, last)),
                      tuple(_iteration_falls(data, spec["versus"], first, last)), True,
                      f"mean fall of test accuracy over epochs {first}-{last or 'end'}, iteration "
                      f"{spec['iteration']} - iteration {spec['versus']}", (data["_file"],),
                      looks=looks(data))


@metric("iteration_test_accuracy_falls_early_minus_late")
def iteration_test_accuracy_falls_early_minus_late(spec: dict[str, Any],
                                                   load: Callable[[str], Result]) -> Seeds:
    """Fluctuation that settles, in one pruning iteration: per seed, the mean fall of the test
    accuracy over epochs 2..``split`` of ``iteration`` minus that over epochs ``split``+1 to the
    seed's last (see test_accuracy_falls_early_minus_late)."""
    data, k, i = load(spec["recipe"]), spec["split"], spec["iteration"]
    early, late = _iteration_falls(data, i, 2, k), _iteration_falls(data, i, k + 1, None)
    return _seeds([a - b for a, b in zip(early, late, strict=True)], data)
