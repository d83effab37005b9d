"""The notebook's readings of its training curves (training/curve_metrics.py: train_val_gap,
early_val_advantage, val_jitter_ratio, val_jitter_difference; training/metrics.py:
final_train_loss), the Keras l1_l2 penalty statistic and dotted recipe fields: each computes
what its docstring defines."""

from __future__ import annotations

import math

import pytest

from claims.measures import MeasureError, measure
from claims.registry import registry
from claims.verdict import HOLDS, REFUTED, judge
from training import metrics, results

pytestmark = pytest.mark.unit


def _claim(claim_id: str):
    return next(c for c in registry() if c.id == claim_id)


def _write(tmp_path, monkeypatch, recipe: str, curves: dict[str, list[list[float]]]) -> None:
    """A result file whose one point has the given per-seed curves (key -> [seed][epoch])."""
    seeds = len(next(iter(curves.values())))
    epochs = len(next(iter(curves.values()))[0])
    rows = [{key: [curves[key][s][e] for s in range(seeds)] for key in curves} for e in range(epochs)]
    result = {"recipe": recipe, "recipe_table": {"epochs": epochs}, "epochs_cap": None, "limit": None,
              "provenance": {}, "seeds": list(range(seeds)), "points": [{"epochs": rows}]}
    results.write(results.path_for(recipe, tmp_path), result)
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))


def _curves(train_acc, val_acc, train_loss, val_loss, seeds=3):
    """The same curves for every seed, each nudged by a seed-sized offset so seeds differ."""
    def per_seed(curve):
        return [[v + 1e-4 * s for v in curve] for s in range(seeds)]
    return {"accuracy": per_seed(train_acc), "val_accuracy": per_seed(val_acc),
            "loss": per_seed(train_loss), "val_loss": per_seed(val_loss)}


def test_train_val_gap_reads_the_last_epochs(tmp_path, monkeypatch) -> None:
    n = 20
    train_acc = [0.9 + 0.005 * e for e in range(n)]
    # validation below training over the last 10 epochs only: overfitting visible at the end
    val_acc = [a + 0.01 if e < n - 10 else a - 0.02 for e, a in enumerate(train_acc)]
    train_loss = [0.3 - 0.01 * e for e in range(n)]
    val_loss = [v - 0.01 if e < n - 10 else v + 0.05 for e, v in enumerate(train_loss)]
    _write(tmp_path, monkeypatch, "mnist_dense1", _curves(train_acc, val_acc, train_loss, val_loss))
    gap = metrics.compute({"recipe": "mnist_dense1", "metric": "train_val_gap", "last": 10})
    assert [round(i.mean, 6) for i in gap.items] == [0.02, 0.05]
    assert judge(_claim("dense-vs-conv.dense1.still-overfitting")).verdict == HOLDS
    early = metrics.compute({"recipe": "mnist_dense1", "metric": "early_val_advantage", "first": 3})
    assert [round(i.mean, 6) for i in early.items] == [0.01, 0.01]
    assert judge(_claim("dense-vs-conv.dense1.val-better-early")).verdict == HOLDS
    # the same curves for the 128-neuron network: 'no longer visible' is refuted
    _write(tmp_path, monkeypatch, "mnist_dense2", _curves(train_acc, val_acc, train_loss, val_loss))
    assert judge(_claim("dense-vs-conv.dense2.overfitting-not-visible")).verdict == REFUTED


def test_jitter_is_the_spread_of_the_changes_over_the_second_half(tmp_path, monkeypatch) -> None:
    n = 40
    # a steep initial descent in the training curve (first half) must not count as jitter
    wobble = [0.02 * (-1) ** e for e in range(n)]
    train_loss = [1.0 - 0.04 * e if e < n // 2 else 0.2 - 0.001 * e + w / 10 for e, w in enumerate(wobble)]
    train_acc = [0.8 + 0.004 * e if e < n // 2 else 0.9 + 0.0001 * e + w / 40 for e, w in enumerate(wobble)]
    val_loss = [0.15 + w for w in wobble]
    val_acc = [0.97 + w / 4 for w in wobble]
    _write(tmp_path, monkeypatch, "mnist_dense0", _curves(train_acc, val_acc, train_loss, val_loss))
    ratio = metrics.compute({"recipe": "mnist_dense0", "metric": "val_jitter_ratio"})
    # over the second halves the validation curves wobble ten times as much as the training ones
    assert all(math.isclose(v, 10, rel_tol=0.05) for item in ratio.items for v in item.values)
    assert judge(_claim("dense-vs-conv.dense0.val-variance-high")).verdict == HOLDS
    # a network whose validation curves wobble half as much: lower variation, paired by seed
    _write(tmp_path, monkeypatch, "mnist_dense1",
           _curves(train_acc, [0.97 + w / 8 for w in wobble], train_loss, [0.15 + w / 2 for w in wobble]))
    difference = metrics.compute({"recipe": "mnist_dense1", "metric": "val_jitter_difference",
                                  "versus": "mnist_dense0"})
    assert all(item.paired and sum(item.a) < sum(item.b) for item in difference.items)
    assert judge(_claim("dense-vs-conv.dense1.val-variation-lower")).verdict == HOLDS


def test_final_train_loss_is_the_last_epoch(tmp_path, monkeypatch) -> None:
    loss = [0.5, 0.1, 0.003]
    _write(tmp_path, monkeypatch, "lenet0", _curves([0.9] * 3, [0.9] * 3, loss, loss))
    assert metrics.compute({"recipe": "lenet0", "metric": "final_train_loss"}).values[0] == 0.003


def test_the_penalty_statistic_measures_the_keras_l1_l2_sum(monkeypatch) -> None:
    spec = {"statistic": "penalty", "model": "lenet", "options": {"l1_l2": [1e-5, 1e-5]}}
    assert measure({**spec, "term": "l2", "what": "factor"}) == 1.0
    assert measure({**spec, "term": "l2", "what": "degree"}) == 2.0
    assert measure({**spec, "term": "l1", "what": "degree"}) == 1.0
    # it measures the implementation: a penalty with the formula's 1/2 would measure 0.5 and 2
    import models.layers

    def halved(model):
        total = 0.0
        for name, l1, l2 in models.layers.regularized(model):
            w = model.get_parameter(name)
            total = total + l1 * w.abs().sum() + 0.5 * l2 * w.square().sum()
        return total
    monkeypatch.setattr(models.layers, "penalty", halved)
    assert measure({**spec, "term": "l2", "what": "factor"}) == 0.5
    with pytest.raises(MeasureError):
        measure({"statistic": "penalty", "model": "lenet", "term": "l2", "what": "factor"})


def test_recipe_fields_read_into_tables() -> None:
    spec = {"statistic": "recipe_data", "recipe": "lenet3_halved"}
    assert measure({**spec, "field": "options.dense"}) == [60, 42]
    with pytest.raises(MeasureError, match="no field"):
        measure({**spec, "field": "options.nothing"})


def test_accuracy_drop_per_iteration_judges_each_step_not_the_telescoped_mean() -> None:
    """(b0 - b1 + b1 - b2) / 2 is (b0 - b2) / 2: a mean over the steps would never look at
    iteration 1. Each step is its own part: a rise between 1 and 2 shows there."""
    def point(*best: float) -> dict:
        return {"epochs": [{"test_accuracy": [b - 0.01 for b in best]}, {"test_accuracy": list(best)}]}
    data = {"_file": "lottery.json", "points": [point(0.993, 0.994), point(0.992, 0.993),
                                                 point(0.9925, 0.991)]}
    measured = metrics.compute({"metric": "accuracy_drop_per_iteration", "recipe": "lottery"},
                               load={"lottery": data}.__getitem__)
    first, second = measured.items
    assert first.values == pytest.approx((0.001, 0.001)) and second.values == pytest.approx((-0.0005, 0.002))


def test_test_accuracy_rise_after_compares_the_later_half_with_the_earlier() -> None:
    def run(*curves: list[float]) -> dict:
        epochs = [{"test_accuracy": [c[e] for c in curves]} for e in range(len(curves[0]))]
        return {"_file": "run.json", "points": [{"epochs": epochs}]}
    spec = {"metric": "test_accuracy_rise_after", "recipe": "run", "after": 2}
    rising, flat = [0.5, 0.9, 0.98, 0.985, 0.99, 0.992], [0.5, 0.9, 0.99, 0.99, 0.99, 0.99]
    measured = metrics.compute(spec, load={"run": run(rising, flat)}.__getitem__)
    assert measured.values == pytest.approx((0.0085, 0.0))  # (0.99 + 0.992) / 2 - (0.98 + 0.985) / 2
    with pytest.raises(ValueError, match="fewer than two epochs after epoch 5"):
        metrics.compute({**spec, "after": 5}, load={"run": run(rising)}.__getitem__)
