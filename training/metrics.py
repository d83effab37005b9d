"""What a claim reads from a result file: a registry of metrics over the per-seed histories.

A metric returns a measurement the verdict can judge with a stated rule (``claims.stats``):
``Seeds`` (one value per seed), ``Difference`` (two runs' values, paired by seed where the
seeds match), ``AllOf`` (several such, every one must hold), ``Ranking`` (confusion counts
per seed) or, with what a reader needs to weigh it, ``Explained``. Epochs count from 1, as
Keras prints them. Each metric declares its shape, so a claim's test can build a stand-in
measurement before any training happened.

This module holds ``compute``, the final figures, the grid metrics and the comparisons
between runs. The measurement types are in ``training.measurements``; the registry, the
result-file loader and the helpers the metrics share in ``training.metric_registry``; the
readings of training curves in ``training.curve_metrics`` and the lottery's metrics in
``training.lottery_metrics``. Importing this module registers them all, and every name
stays importable from it.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# importing the other modules' metrics registers them
from training.curve_metrics import (  # noqa: F401
    curves_gap_change,
    early_val_advantage,
    epochs_to_near_best,
    epochs_to_test_accuracy,
    lr_reduction_factor,
    mean_test_accuracy_after,
    overfitting_gap_difference,
    test_accuracy_falls,
    test_accuracy_falls_early_minus_late,
    test_accuracy_rise_after,
    test_evaluated_each_epoch,
    train_val_gap,
    val_jitter_difference,
    val_jitter_ratio,
)
from training.lottery_metrics import (  # noqa: F401
    accuracy_drop_per_iteration,
    best_test_accuracy_at_iteration,
    epochs_run_at_iteration,
    iteration_test_accuracy_falls_difference,
    iteration_test_accuracy_falls_early_minus_late,
    min_best_test_accuracy_over_iterations,
    pruned_epochs_to_99_difference,
)
from training.measurements import (  # noqa: F401
    AllOf,
    Difference,
    Explained,
    HeldOut,
    Picks,
    Ranking,
    Seeds,
    _values,
)
from training.metric_registry import (  # noqa: F401
    METRICS,
    PREFIX_SAFE,
    SHAPES,
    CappedRun,
    DamagedRun,
    Metric,
    NotRun,
    Result,
    WantsRun,
    _counts,
    _curves,
    _difference,
    _read,
    _seeds,
    _series,
    _single,
    best_point,
    epoch_limit,
    first_epoch,
    held_out_of,
    loader,
    looks,
    mean_accuracy,
    metric,
    names,
)


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


def _final(key: str) -> Metric:
    def fn(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
        data = load(spec["recipe"])
        return _seeds(_single(data)["final"][key], data)
    return fn


for _name, _key in {"test_accuracy": "accuracy", "test_loss": "loss", "test_precision": "precision",
                    "test_recall": "recall"}.items():
    metric(_name)(_final(_key))


def _per_seed(key: str, reduce: Callable[[list[float], dict[str, Any]], float],
              discrete: bool = False) -> Metric:
    """A metric of each seed's epoch series of ``key`` (its values up to that seed's stop)."""
    def fn(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
        data = load(spec["recipe"])
        point = _single(data)
        values = [reduce(s, spec) for s in _series(point, key)]
        if discrete:  # an epoch count: at most the run's limit
            return _counts(values, [epoch_limit(data)] * len(values), data)
        return _seeds(values, data)
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
#: Those of them that count epochs.
_EPOCH_COUNTS = {"epochs_run", "best_val_loss_epoch"}
for _name, (_key, _reduce) in _SERIES_METRICS.items():
    metric(_name)(_per_seed(_key, _reduce, _name in _EPOCH_COUNTS))


metric("final_train_loss")(_per_seed("loss", lambda s, _: s[-1]))


def _grid_best(data: Result) -> tuple[dict[str, Any], Seeds]:
    best = best_point(data["points"])
    return best, _seeds(best["final"]["accuracy"], data)


@metric("best_grid_test_accuracy")
def best_grid_test_accuracy(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """The best test accuracy over the grid's points, per seed: the figure a source reports
    from its one run of a grid when it keeps the point with the best test accuracy (the
    notebook's ``np.argmax(accLeNet1)``), so that it is compared with what one run of the whole
    grid reports, the best of many included, not with one point's runs."""
    data = load(spec["recipe"])
    per_point = np.asarray([p["final"]["accuracy"] for p in data["points"]], dtype=float)
    return _seeds(list(per_point.max(axis=0)), data)


@metric("best_grid_test_accuracy_difference", shape="difference")
def best_grid_test_accuracy_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Difference:
    """Final test accuracy of one grid's best point minus another grid's best point (a recipe
    of one point is its own best). Each best point is picked on the runs that are then
    compared, so the difference carries how many pairs of points it was picked among."""
    data, other = load(spec["recipe"]), load(spec["versus"])
    return _difference(f"best point of {spec['recipe']} - best point of {spec['versus']}, test accuracy",
                       list(_grid_best(data)[1].values), list(_grid_best(other)[1].values), data, other,
                       len(data["points"]) * len(other["points"]))


def _above_chord(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each point's height above the chord from the first point to the last, both axes scaled to
    [0, 1], along the last axis of ``y``."""
    span = np.ptp(y, axis=-1, keepdims=True)
    return (y - y.min(axis=-1, keepdims=True)) / np.where(span > 0, span, 1.0) - (x - x.min()) / np.ptp(x)


def _knees(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kneedle (Satopaa et al., 2011) along the last axis of ``y``: the index of the point
    farthest above the chord; the first point where none is above."""
    above = _above_chord(x, y)
    return np.where(above.max(axis=-1) > 1e-9, above.argmax(axis=-1), 0)


@metric("grid_knee", shape="picks")
def grid_knee(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """The knee of test accuracy along a one-option grid (``option``), by Kneedle: where
    returns start to diminish, 'a trade-off on performance and size'. The source picked it
    from one run of its grid, so the measurement is what each seed's run of the grid picks
    (``Picks``; every point is evaluated on the same test images, so their test-set noise is
    shared, not redrawn point by point). The explanation gives each point's distance above the
    chord for the seeds' mean, and the knee on a logarithmic axis, so a close call shows."""
    data = load(spec["recipe"])
    points = sorted(data["points"], key=lambda p: p["options"][spec["option"]])
    values = [p["options"][spec["option"]] for p in points]
    x = np.asarray(values, dtype=float)
    accuracy = np.asarray([p["final"]["accuracy"] for p in points], dtype=float).T  # (seeds, points)
    picks = Picks(tuple(values[i] for i in _knees(x, accuracy)),
                  f"the knee of {data['_file']}'s grid over {spec['option']}, seed by seed", (data["_file"],),
                  looks(data))
    y = accuracy.mean(axis=0)
    above = _above_chord(x, y)
    log_knee = values[int(_knees(np.log(x), y))]
    return Explained(picks, "the seeds' mean accuracy scaled above the chord: " + ", ".join(
        f"{v}: {a:.3f}" for v, a in zip(values, above, strict=True))
        + f"; on a logarithmic axis the knee is {log_knee}", (data["_file"],))


@metric("least_costly_grid_step", shape="all_of")
def least_costly_grid_step(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """Along a one-option grid (``option``, e.g. the width), per seed the final test accuracy of
    each point minus that of the next larger one, paired by seed (one file, the same seeds), for
    "making it smaller is not always worse": every step, each judged at Bonferroni's level over
    the steps (the claim holds if some step loses nothing, a pick among them), the claim refuted
    only when every step loses accuracy (``AllOf`` mode "any"). ``steps``: further steps down
    between recipes, ``[smaller, larger]`` pairs (another experiment of the source that made a
    network smaller), judged alike; one not yet trained leaves the claim pending, since it could
    be the step that holds. The explanation gives every step's mean difference."""
    data = load(spec["recipe"])
    option = spec["option"]
    points = sorted(data["points"], key=lambda p: p["options"][option])
    grid = list(itertools.pairwise(points))
    if not grid:
        raise ValueError(f"{data['_file']} holds one point: no step along {option!r}")
    # (label, smaller run's point, its file's data, larger run's point, its data)
    steps = [(f"{option} {a['options'][option]} - {option} {b['options'][option]}", a, data, b, data)
             for a, b in grid]
    for smaller, larger in spec.get("steps", []):
        try:
            small, large = load(smaller), load(larger)
        except WantsRun as why:  # say what the steps measured so far show, from the evidence
            raise type(why)(f"{why}; the steps measured so far, mean difference of test accuracy: "
                            f"{_step_means(steps)}", why.recipe) from None
        steps.append((f"{smaller} - {larger}", _single(small), small, _single(large), large))
    differences = tuple(
        _difference(f"{label}, test accuracy", list(a["final"]["accuracy"]), list(b["final"]["accuracy"]),
                    data_a, data_b, len(steps))
        for label, a, data_a, b, data_b in steps)
    files = tuple(dict.fromkeys(f for d in differences for f in d.files))
    return Explained(AllOf(differences, mode="any"),
                     f"mean difference of each step down: {_step_means(steps)}", files)


def _step_means(steps: list[tuple[str, dict[str, Any], Result, dict[str, Any], Result]]) -> str:
    return ", ".join(f"{label}: {mean_accuracy(a) - mean_accuracy(b):+.4g}" for label, a, _, b, _ in steps)


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
    """Final test accuracy of ``recipe`` (and of ``also``, a name or a list) minus that of ``versus``: a
    recipe, a list of recipes (each compared), or a number (another source's figure)."""
    versus = spec["versus"]
    items: list[Any] = []
    for recipe in [spec["recipe"], *names(spec.get("also", []))]:
        mine, data = _finals(load, recipe)
        if isinstance(versus, (int, float)):
            items.append(Seeds(tuple(v - versus for v in mine), (data["_file"],), looks=looks(data)))
            continue
        for other_name in names(versus):
            theirs, other = _finals(load, other_name)
            items.append(_difference(f"{recipe} - {other_name}, test accuracy", mine, theirs, data, other))
    return AllOf(tuple(items))


@metric("epochs_to_loss_difference", shape="difference")
def epochs_to_loss_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Difference:
    """Epochs ``recipe`` takes to reach ``versus``'s final validation loss (its seed mean)
    minus the epochs ``versus`` takes. A seed that never reaches it counts one past its run's
    limit (the recipe's epochs, or the cap), not past its own end: early stopping ends a stalled
    run early, and its own length would score it as fast."""
    mine, data = _curves(load, spec["recipe"], "val_loss")
    theirs, other = _curves(load, spec["versus"], "val_loss")
    target = statistics.fmean(s[-1] for s in theirs)

    def below(v: float) -> bool:
        return v <= target
    mine_epochs = [first_epoch(c, below, data) for c in mine]
    their_epochs = [first_epoch(c, below, other) for c in theirs]
    return _difference(f"epochs to a validation loss of {target:.4g}, {spec['recipe']} - {spec['versus']}",
                       mine_epochs, their_epochs, data, other, discrete=True)


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
    for other_name in names(spec["versus"]):
        theirs, other = _at(load, other_name, key, epoch)
        items.append(_difference(f"{key} at epoch {epoch}, {spec['recipe']} - {other_name}",
                                 mine, theirs, data, other))
    return AllOf(tuple(items))


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
    claim. ``held_out`` (a curve, as ``test_accuracy``) carries both runs' last values of it:
    the run with the smaller metric (the steadier, say) then counts only where it does at
    least as well there (``claims.verdict``), so a run that stalls is not read as stable."""
    data = load(spec["recipe"])
    versus = names(spec["versus"])
    guard = spec.get("held_out")
    held = {other: held_out_of(load, guard, spec["recipe"], other) if guard else None for other in versus}
    items = []
    for name in names(spec["of"]):
        mine = METRICS[name]({**spec, "recipe": spec["recipe"]}, load)
        for other_name in versus:
            theirs = METRICS[name]({**spec, "recipe": other_name}, load)
            items.append(_difference(f"{name}, {spec['recipe']} - {other_name}", list(mine.values),
                                     list(theirs.values), data, load(other_name),
                                     discrete=getattr(mine, "discrete", False), held_out=held[other_name]))
    return AllOf(tuple(items))
