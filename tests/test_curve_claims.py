"""The training metrics and structural statistics that read the KMNIST and Cats-vs-Dogs posts'
qualitative sentences (claims/data/machinecurve-gap.toml, aiml-gap-cats-dogs.toml): each
definition computed by hand on small made-up curves, and the claims judged both ways."""

from __future__ import annotations

import pytest

from claims.measures import measure
from claims.registry import registry
from claims.verdict import HOLDS, INCONCLUSIVE, REFUTED, judge
from training import metrics, results

pytestmark = pytest.mark.unit


def _claim(claim_id: str):
    return next(c for c in registry() if c.id == claim_id)


def _write(tmp_path, monkeypatch, recipe: str, seeds: list[int],
           curves: dict[str, list[list[float]]]) -> None:
    """A result file whose one point has, per logged key, one curve per seed."""
    length = len(next(iter(curves.values()))[0])
    epochs = [{key: [c[e] for c in per_seed] for key, per_seed in curves.items()} for e in range(length)]
    result = {"recipe": recipe, "recipe_table": {"epochs": length}, "epochs_cap": None, "limit": None,
              "provenance": {}, "seeds": seeds, "points": [{"epochs": epochs, "final": {}}]}
    results.write(results.path_for(recipe, tmp_path), result)
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))


def test_epochs_to_near_best_is_the_first_epoch_within_the_margin(tmp_path, monkeypatch) -> None:
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0, 1, 2], {"val_accuracy": [
        [0.90, 0.955, 0.96, 0.962], [0.93, 0.94, 0.949, 0.961], [0.96, 0.95, 0.955, 0.962]]})
    spec = _claim("kmnist.traditional.converges-quickly").measure
    assert metrics.compute(spec).values == (2, 4, 1)
    assert judge(_claim("kmnist.traditional.converges-quickly")).verdict == HOLDS  # mean 2.33 <= 5
    late = [[0.5 + 0.01 * e for e in range(25)]] * 3  # within 0.01 of the best only at the end
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0, 1, 2], {"val_accuracy": late})
    assert metrics.compute(spec).values == (24, 24, 24)
    verdict = judge(_claim("kmnist.traditional.converges-quickly"))  # a count with no spread
    assert verdict.verdict == INCONCLUSIVE and "seeds that differ would decide" in verdict.reason
    late = [[0.5 + step * e for e in range(25)] for step in (0.01, 0.02, 0.005)]
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0, 1, 2], {"val_accuracy": late})
    assert metrics.compute(spec).values == (24, 25, 23)
    assert judge(_claim("kmnist.traditional.converges-quickly")).verdict == REFUTED


def test_epochs_to_near_best_of_a_loss_looks_for_its_lowest(tmp_path, monkeypatch) -> None:
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0], {"val_loss": [[0.5, 0.3, 0.295, 0.4]]})
    spec = {"metric": "epochs_to_near_best", "recipe": "kmnist_traditional", "key": "val_loss",
            "margin": 0.01}
    assert metrics.compute(spec).values == (2,)


def test_curves_gap_change_pairs_by_seed_or_meets_the_seed_mean(tmp_path, monkeypatch) -> None:
    _write(tmp_path, monkeypatch, "kmnist_gap", [0, 1], {"val_accuracy": [[0.80, 0.90], [0.70, 0.95]]})
    control = {"val_accuracy": [[0.90, 0.95], [0.94, 0.96]]}
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0, 1], control)
    spec = _claim("kmnist.gap-vs-dense.curves-converge").measure
    assert metrics.compute(spec).values == pytest.approx((0.05 - 0.10, 0.01 - 0.24))
    # other seeds: each GAP seed against the control's seed-mean curve (0.92, 0.955)
    _write(tmp_path, monkeypatch, "kmnist_traditional", [5, 6], control)
    assert metrics.compute(spec).values == pytest.approx((0.055 - 0.12, 0.005 - 0.22))
    # diverging: the GAP model falls behind
    _write(tmp_path, monkeypatch, "kmnist_gap", [0, 1, 2], {"val_accuracy": [[0.90, 0.80]] * 3})
    _write(tmp_path, monkeypatch, "kmnist_traditional", [0, 1, 2], {"val_accuracy": [[0.91, 0.95]] * 3})
    assert judge(_claim("kmnist.gap-vs-dense.curves-converge")).verdict == REFUTED


def test_overfitting_gap_difference_compares_last_epoch_train_minus_val(tmp_path, monkeypatch) -> None:
    _write(tmp_path, monkeypatch, "cats_dogs_gap", [0, 1, 2],
           {"accuracy": [[0.7, 0.85]] * 3, "val_accuracy": [[0.7, 0.83], [0.7, 0.82], [0.7, 0.84]]})
    _write(tmp_path, monkeypatch, "cats_dogs_dense", [0, 1, 2],
           {"accuracy": [[0.8, 0.99]] * 3, "val_accuracy": [[0.75, 0.80], [0.75, 0.79], [0.75, 0.81]]})
    measured = metrics.compute(_claim("cats-dogs.gap.less-overfitting").measure)
    (item,) = measured.items
    assert item.paired and item.a == pytest.approx((0.02, 0.03, 0.01))
    assert item.b == pytest.approx((0.19, 0.20, 0.18))
    assert judge(_claim("cats-dogs.gap.less-overfitting")).verdict == HOLDS
    _write(tmp_path, monkeypatch, "cats_dogs_gap", [0, 1, 2],
           {"accuracy": [[0.8, 0.99]] * 3, "val_accuracy": [[0.7, 0.60], [0.7, 0.61], [0.7, 0.62]]})
    assert judge(_claim("cats-dogs.gap.less-overfitting")).verdict == REFUTED


def test_structural_statistics_read_the_built_models() -> None:
    assert measure({"statistic": "layer_types", "model": "kmnist_gap", "start": 6}) == [
        "Conv2D", "GlobalAveragePooling2D", "Activation"]
    assert measure({"statistic": "output_size", "model": "cats_dogs_gap", "layer": "max_pooling2d_2"}) == 6400
    assert measure({"statistic": "output_size", "model": "kmnist_gap", "layer": "conv2d_2", "axis": -1}) == 10
    assert measure({"statistic": "normalized_range"}) == [0.0, 1.0]
