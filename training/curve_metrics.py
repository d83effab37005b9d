"""Readings of training curves, each a definition fixed before measuring: the notebook's
(dense-vs-conv: the gap between train and validation, their jitter), qualitative statements
about curves (convergence, over-fitting compared, curves closing in) and the MNIST post's
(tds-mnist-10k: epochs to an accuracy, falls, where a run settles). Registered in
``training.metric_registry``; epochs count from 1.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from training.measurements import AllOf, Seeds
from training.metric_registry import (
    Result,
    _counts,
    _curves,
    _difference,
    _seeds,
    _series,
    _single,
    epoch_limit,
    first_epoch,
    held_out_of,
    looks,
    metric,
    names,
)


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


# -- qualitative statements about training curves, each read by a definition fixed before measuring --
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
    return _seeds([first(c) for c in curves], data, discrete=True)


@metric("overfitting_gap_difference", shape="all_of")
def overfitting_gap_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> AllOf:
    """Over-fitting compared between runs: per seed, the last epoch's training accuracy (Keras'
    running mean, as the post's curves plot it) minus its validation accuracy, of ``recipe``
    minus that of each ``versus`` (a recipe or a list). Below zero: ``recipe``'s fit to the
    training data runs less far ahead of the held-out data, i.e. it over-fits less. ``against``
    names the held-out curve (default ``val_accuracy``; ``test_accuracy`` where a run monitors
    the test set and holds no validation split). Each comparison carries both runs' last
    held-out accuracies: the verdict reads a smaller gap as less over-fitting only where that
    run does at least as well on held-out data (``claims.verdict``), not where it under-fits."""
    held_out = spec.get("against", "val_accuracy")

    def gaps(recipe: str) -> tuple[list[float], Result]:
        train, data = _curves(load, recipe, "accuracy")
        val, _ = _curves(load, recipe, held_out)
        return [t[-1] - v[-1] for t, v in zip(train, val, strict=True)], data
    mine, data = gaps(spec["recipe"])
    items = []
    for other_name in names(spec["versus"]):
        theirs, other = gaps(other_name)
        what = f"last epoch's training - {held_out.replace('_', ' ')}, {spec['recipe']} - {other_name}"
        items.append(_difference(what, mine, theirs, data, other,
                                 held_out=held_out_of(load, held_out, spec["recipe"], other_name)))
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
@metric("epochs_to_test_accuracy")
def epochs_to_test_accuracy(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """How fast a run converges: per seed, the first epoch (from 1) at which the test accuracy
    reaches ``threshold``; a seed that never reaches it counts one past the run's limit (not
    past its own end, which early stopping may have cut short)."""
    curves, data = _curves(load, spec["recipe"], "test_accuracy")
    reached = [first_epoch(c, lambda v: v >= spec["threshold"], data) for c in curves]
    return _counts(reached, [epoch_limit(data) + 1] * len(curves), data, beyond_limit=True)


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
