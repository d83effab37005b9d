"""Metrics of the lottery-ticket experiment: one result point per pruning iteration,
0 = unpruned, every iteration rewinding the same seed's initialisation. Registered in
``training.metric_registry``; epochs count from 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from training.curve_metrics import _falls
from training.measurements import AllOf, Difference, Explained, Seeds
from training.metric_registry import Result, _counts, _seeds, _series, epoch_limit, first_epoch, looks, metric


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


@metric("pruned_epochs_to_99_difference", shape="all_of")
def pruned_epochs_to_99_difference(spec: dict[str, Any], load: Callable[[str], Result]) -> Explained:
    """Epochs to reach 99% test accuracy of each pruned iteration minus the unpruned network's,
    paired by seed (every iteration rewinds the same seed's initialisation), one part per
    iteration: "the pruned network does not learn faster" must hold of each, and a mean over
    the iterations would let a slow one carry a fast one (found by a reviewer). Never reaching
    99% counts as one past the run's limit (not its own end, which early stopping may have cut
    short). The explanation gives each iteration's epochs per seed."""
    data = load(spec["recipe"])

    def epochs_to_99(point: dict[str, Any]) -> list[int]:
        return [first_epoch(s, lambda a: a >= 0.99, data) for s in _series(point, "test_accuracy")]
    epochs = [epochs_to_99(p) for p in data["points"]]
    each = ", ".join(f"iteration {k}: {tuple(e)}" for k, e in enumerate(epochs))
    parts = tuple(Difference(tuple(map(float, pruned)), tuple(map(float, epochs[0])), True,
                             f"epochs to 99% test accuracy, iteration {k} - unpruned", (data["_file"],),
                             looks=looks(data), discrete=True)
                  for k, pruned in enumerate(epochs[1:], start=1))
    return Explained(AllOf(parts), f"epochs to 99% per seed, {each}", (data["_file"],))


@metric("epochs_run_at_iteration")
def epochs_run_at_iteration(spec: dict[str, Any], load: Callable[[str], Result]) -> Seeds:
    """Per seed, how many epochs pruning iteration ``iteration`` (0 = unpruned) ran before
    EarlyStopping (or the recipe's end) stopped it."""
    data = load(spec["recipe"])
    point = data["points"][spec["iteration"]]
    runs = [len(s) for s in _series(point, "loss")]
    return _counts(runs, [epoch_limit(data)] * len(runs), data)


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
