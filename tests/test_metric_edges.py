"""The edges of the metrics, one test per way a metric could be broken unseen.

A mutation review (one small change at a time to ``training.metric_registry``, ``metrics``,
``curve_metrics``, ``lottery_metrics`` and ``measurements``: an epoch counted from 0, a window one short, a
minimum for a maximum, a seed paired by position) found changes that no test noticed, or that
only the README's verdict tables caught on the committed results. Each test below computes a
metric on a tiny made-up result and fails on one of them.
"""

from __future__ import annotations

import math

import pytest

from training import metrics, results

pytestmark = pytest.mark.unit


def _file(name="r.json", seeds=(0, 1, 2), epochs=None, parts=0, limit=None, cap=None, points=None, **kw):
    d = {"_file": name, "seeds": list(seeds), "recipe_table": {"epochs": epochs or 10}, "epochs_cap": cap,
         "limit": limit, "provenance": {"parts": [{"seeds": [s]} for s in range(parts)]} if parts else {},
         "points": points or []}
    d.update(kw)
    return d


def _curves(key_curves: dict[str, list[list[float]]], **kw):
    """A one-point file: key -> per seed curve (all seeds the same length)."""
    n = len(next(iter(key_curves.values()))[0])
    rows = [{k: [c[e] for c in cs] for k, cs in key_curves.items()} for e in range(n)]
    return _file(points=[{"epochs": rows}], epochs=kw.pop("epochs", n), **kw)


def _compute(spec, **files):
    return metrics.compute(spec, load=files.__getitem__)


# -- metric_registry ------------------------------------------------------------------------------
def test_a_file_loaded_twice_is_one_file_for_looks():
    d = _file(parts=2)  # one addition of seeds: 2 looks
    assert metrics.looks(d) == 2
    assert metrics.looks(d, dict(d)) == 2  # the same _file loaded twice (two dicts, as loader gives)


def test_every_seed_at_the_limit_is_not_a_count_without_spread():
    d = _curves({"loss": [[0.5] * 3] * 3}, epochs=3)
    m = _compute({"metric": "epochs_run", "recipe": "r"}, r=d)
    assert m.values == (3.0, 3.0, 3.0) and m.censored == 3 and m.discrete is False


def test_values_not_one_per_seed_are_not_paired():
    a, b = _file("a.json", seeds=(0, 1, 2, 3)), _file("b.json", seeds=(0, 1, 2, 3))
    diff = metrics._difference("x", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], a, b)
    assert diff.paired is False


def test_a_grid_s_best_point_is_its_best_not_its_last():
    grid = _file("grid.json", points=[{"final": {"accuracy": [0.993, 0.994, 0.992]}},
                                      {"final": {"accuracy": [0.990, 0.991, 0.989]}}])
    one = _file("one.json", points=[{"final": {"accuracy": [0.990, 0.990, 0.991]}}])
    m = _compute({"metric": "best_grid_test_accuracy_difference", "recipe": "grid", "versus": "one"},
                 grid=grid, one=one)
    assert m.a == (0.993, 0.994, 0.992)


def test_a_full_length_run_on_a_subset_never_decides(tmp_path):
    # not capped, so only the subset check can stop it; the directory name holds no 'subset'
    d = _curves({"test_accuracy": [[0.99, 0.995]] * 3}, epochs=2, limit=100)
    d["points"][0]["final"] = {"accuracy": [0.995] * 3}
    d.pop("_file")
    results.write(results.path_for("mnist_approach1", tmp_path), {"recipe": "mnist_approach1", **d})
    for metric in ("best_test_accuracy", "test_accuracy"):
        with pytest.raises(metrics.CappedRun, match="100-image subset"):
            metrics.compute({"metric": metric, "recipe": "mnist_approach1"}, directory=tmp_path)


def test_the_label_says_the_seeds_both_trained_when_either_run_has_more():
    a, b = _file("a.json", seeds=(0, 1, 2)), _file("b.json", seeds=(0, 1, 2, 3))
    diff = metrics._difference("x", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], a, b)
    assert diff.paired and diff.what == "x (the 3 seeds both trained)"
    assert diff.b == (1.0, 2.0, 3.0)


# -- metrics ---------------------------------------------------------------------------------------
def test_val_accuracy_plateau_is_the_mean_over_the_second_half():
    d = _curves({"val_accuracy": [[0.1, 0.2, 0.3, 0.5]] * 3})
    plateau = _compute({"metric": "val_accuracy_plateau", "recipe": "r"}, r=d)
    assert plateau.values == pytest.approx((0.4,) * 3)


def test_best_val_loss_epoch_is_a_count():
    d = _curves({"val_loss": [[0.5, 0.3, 0.4], [0.5, 0.2, 0.4], [0.5, 0.3, 0.1]]})
    m = _compute({"metric": "best_val_loss_epoch", "recipe": "r"}, r=d)
    assert m.values == (2.0, 2.0, 3.0) and m.discrete


def test_epochs_to_loss_targets_the_versus_final_loss_not_its_minimum():
    a = _curves({"val_loss": [[0.6, 0.45, 0.4]] * 3}, name="a.json", epochs=30)
    b = _curves({"val_loss": [[0.6, 0.3, 0.5]] * 3}, name="b.json", epochs=30)  # final 0.5, min 0.3
    m = _compute({"metric": "epochs_to_loss_difference", "recipe": "a", "versus": "b"}, a=a, b=b)
    assert m.a == (2.0, 2.0, 2.0) and m.b == (2.0, 2.0, 2.0)


def test_epoch_difference_reads_the_named_epoch_from_1():
    a = _curves({"val_accuracy": [[0.5, 0.7, 0.9]] * 3}, name="a.json")
    b = _curves({"val_accuracy": [[0.4, 0.5, 0.95]] * 3}, name="b.json")
    m = _compute({"metric": "epoch_difference", "recipe": "a", "versus": "b", "key": "val_accuracy",
                  "epoch": 2}, a=a, b=b)
    (item,) = m.items
    assert item.a == (0.7,) * 3 and item.b == (0.5,) * 3


def test_a_paired_difference_of_counts_is_a_count():
    def stopped(*epochs):  # a seed's loss, then NaN once early stopping ended it
        return [[0.5] * n + [math.nan] * (10 - n) for n in epochs]
    a = _curves({"loss": stopped(5, 6, 7)}, name="a.json")
    b = _curves({"loss": stopped(4, 5, 6)}, name="b.json")
    m = _compute({"metric": "paired_difference", "of": "epochs_run", "recipe": "a", "versus": "b"}, a=a, b=b)
    (item,) = m.items
    assert item.a == (5.0, 6.0, 7.0) and item.discrete


def test_a_difference_from_a_number_carries_the_file_s_looks():
    d = _file(parts=2, points=[{"final": {"accuracy": [0.99, 0.991, 0.992]}}])
    m = _compute({"metric": "test_accuracy_difference", "recipe": "r", "versus": 0.98}, r=d)
    (item,) = m.items
    assert item.looks == 2


def test_val_loss_rise_without_from_is_over_the_minimum():
    d = _curves({"val_loss": [[0.5, 0.2, 0.3]] * 3})
    assert _compute({"metric": "val_loss_rise", "recipe": "r"}, r=d).values == pytest.approx((0.1,) * 3)


# -- caught before only by the README's verdict tables on the committed results -------------------
def test_best_test_accuracy_is_the_best_epoch():
    d = _curves({"test_accuracy": [[0.9, 0.99, 0.98]] * 3})
    assert _compute({"metric": "best_test_accuracy", "recipe": "r"}, r=d).values == (0.99,) * 3


def test_test_accuracy_at_epoch_counts_from_1():
    d = _curves({"test_accuracy": [[0.9, 0.99, 0.98]] * 3})
    at = _compute({"metric": "test_accuracy_at_epoch", "recipe": "r", "epoch": 2}, r=d)
    assert at.values == (0.99,) * 3


def test_final_train_accuracy_is_the_last_epoch():
    d = _curves({"accuracy": [[0.9, 0.95, 0.93]] * 3})
    assert _compute({"metric": "final_train_accuracy", "recipe": "r"}, r=d).values == (0.93,) * 3


def test_best_val_loss_epoch_counts_from_1():
    d = _curves({"val_loss": [[0.5, 0.3, 0.4]] * 3})
    assert _compute({"metric": "best_val_loss_epoch", "recipe": "r"}, r=d).values == (2.0,) * 3


def test_val_loss_rise_from_an_epoch_counts_from_1():
    d = _curves({"val_loss": [[0.5, 0.3, 0.4, 0.6]] * 3})
    m = _compute({"metric": "val_loss_rise", "recipe": "r", "from": 2}, r=d)
    assert m.values == pytest.approx((0.3,) * 3)


def test_paired_difference_pairs_on_the_versus_file_s_seeds():
    a = _curves({"test_accuracy": [[0.90], [0.91], [0.92], [0.93]]}, name="a.json", seeds=(0, 1, 2, 3))
    b = _curves({"test_accuracy": [[0.80], [0.81], [0.82]]}, name="b.json", seeds=(1, 2, 3), parts=2)
    m = _compute({"metric": "paired_difference", "of": "best_test_accuracy", "recipe": "a", "versus": "b"},
                 a=a, b=b)
    (item,) = m.items
    assert item.paired and item.a == (0.91, 0.92, 0.93) and item.looks == 2


def test_early_val_advantage_reads_epochs_1_to_first():
    d = _curves({"accuracy": [[0.5, 0.6, 0.7]] * 3, "val_accuracy": [[0.6, 0.7, 0.5]] * 3,
                 "loss": [[0.5, 0.4, 0.3]] * 3, "val_loss": [[0.4, 0.3, 0.6]] * 3})
    m = _compute({"metric": "early_val_advantage", "recipe": "r", "first": 2}, r=d)
    assert [i.values for i in m.items] == [pytest.approx((0.1,) * 3), pytest.approx((0.1,) * 3)]


def test_jitter_is_the_sample_standard_deviation():
    wobbly = [0.0, 0.0, 0.0, 0.0, 0.1, 0.3]  # second half 0, 0.1, 0.3: changes 0.1, 0.2
    a = _curves({"val_loss": [wobbly] * 3, "val_accuracy": [wobbly] * 3}, name="a.json")
    b = _curves({"val_loss": [[0.0] * 6] * 3, "val_accuracy": [[0.0] * 6] * 3}, name="b.json")
    m = _compute({"metric": "val_jitter_difference", "recipe": "a", "versus": "b"}, a=a, b=b)
    assert m.items[0].a == pytest.approx((math.sqrt(0.005),) * 3)


# -- curve_metrics ---------------------------------------------------------------------------------
def test_a_seed_reaching_the_mark_at_the_last_epoch_is_not_censored():
    d = _curves({"test_accuracy": [[0.5, 0.9, 0.99], [0.99, 0.99, 0.99], [0.5, 0.99, 0.99]]}, epochs=3)
    m = _compute({"metric": "epochs_to_test_accuracy", "recipe": "r", "threshold": 0.98}, r=d)
    assert m.values == (3.0, 1.0, 2.0) and m.censored == 0


def test_a_mark_never_reached_is_beyond_the_limit():
    d = _curves({"test_accuracy": [[0.5, 0.9, 0.95], [0.99, 0.99, 0.99], [0.5, 0.99, 0.99]]}, epochs=3)
    m = _compute({"metric": "epochs_to_test_accuracy", "recipe": "r", "threshold": 0.98}, r=d)
    assert m.values == (4.0, 1.0, 2.0) and m.censored == 1 and m.beyond_limit


def test_falls_up_to_an_epoch_past_a_seed_s_stop_stop_at_its_last():
    short = [0.9, 0.8, 0.85, 0.8] + [math.nan] * 16  # early stopping after 4 epochs
    full = [0.9, 0.8] * 10
    point = lambda: {"epochs": [{"test_accuracy": [c[e] for c in (short, full)]} for e in range(20)]}  # noqa: E731
    d = _file(seeds=(0, 1), points=[point(), point()])
    m = _compute({"metric": "iteration_test_accuracy_falls_difference", "recipe": "r", "iteration": 1,
                  "versus": 0, "to": 15}, r=d)
    assert m.a[0] == pytest.approx((0.1 + 0.0 + 0.05) / 3)


def test_early_minus_late_splits_after_epoch_split():
    # falls: epoch 2: 0.1, epoch 3: 0, epoch 4: 0.2, epoch 5: 0
    d = _curves({"test_accuracy": [[0.9, 0.8, 0.85, 0.65, 0.7]] * 3})
    m = _compute({"metric": "test_accuracy_falls_early_minus_late", "recipe": "r", "split": 3}, r=d)
    assert m.values == pytest.approx(((0.1 + 0.0) / 2 - (0.2 + 0.0) / 2,) * 3)


def test_mean_test_accuracy_after_starts_at_epoch_after_plus_1():
    d = _curves({"test_accuracy": [[0.5, 0.9, 0.98, 0.99]] * 3})
    m = _compute({"metric": "mean_test_accuracy_after", "recipe": "r", "after": 2}, r=d)
    assert m.values == pytest.approx((0.985,) * 3)


def test_rise_after_an_odd_tail_puts_the_middle_epoch_in_the_later_half():
    d = _curves({"test_accuracy": [[0.5, 0.9, 0.96, 0.98, 0.99]] * 3})
    m = _compute({"metric": "test_accuracy_rise_after", "recipe": "r", "after": 2}, r=d)
    assert m.values == pytest.approx(((0.98 + 0.99) / 2 - 0.96,) * 3)


def test_a_seed_stopped_early_and_tested_each_epoch_scores_1():
    nan = math.nan
    d = _curves({"loss": [[0.5, 0.4, nan], [0.5, 0.4, 0.3], [0.5, 0.4, 0.3]],
                 "test_accuracy": [[0.9, 0.95, nan], [0.9, 0.95, 0.96], [0.9, 0.95, 0.96]]})
    assert _compute({"metric": "test_evaluated_each_epoch", "recipe": "r"}, r=d).values == (1.0, 1.0, 1.0)


def test_falls_from_epoch_1_start_at_epoch_2():
    d = _curves({"test_accuracy": [[0.5, 0.9, 0.8]] * 3})
    m = _compute({"metric": "test_accuracy_falls", "recipe": "r", "from": 1}, r=d)
    assert m.values == pytest.approx((0.05,) * 3)  # no fall 'into epoch 1' from the last epoch


# -- lottery_metrics -------------------------------------------------------------------------------
def _lottery(*iterations: list[list[float]], key="test_accuracy", epochs=None, **kw):
    """iterations: per iteration, per seed curve of ``key``."""
    points = [{"epochs": [{key: [c[e] for c in it]} for e in range(len(it[0]))]} for it in iterations]
    return _file(points=points, seeds=range(len(iterations[0])), epochs=epochs or len(iterations[0][0]), **kw)


def test_the_minimum_over_iterations_includes_the_unpruned():
    d = _lottery([[0.97, 0.98]] * 3, [[0.98, 0.99]] * 3, [[0.985, 0.99]] * 3)
    m = _compute({"metric": "min_best_test_accuracy_over_iterations", "recipe": "r"}, r=d)
    assert m.values == (0.98,) * 3


def test_pruned_epochs_to_99_are_counts():
    d = _lottery([[0.98, 0.99, 0.99], [0.99, 0.99, 0.99], [0.98, 0.98, 0.99]],
                 [[0.99, 0.99, 0.99], [0.99, 0.99, 0.99], [0.98, 0.99, 0.99]], epochs=10)
    m = _compute({"metric": "pruned_epochs_to_99_difference", "recipe": "r"}, r=d)
    (part,) = m.value.items
    assert part.a == (1.0, 1.0, 2.0) and part.b == (2.0, 1.0, 3.0) and part.discrete


def test_a_pruning_iteration_that_ran_to_the_limit_is_censored():
    nan = math.nan
    runs = [[0.5] * 3, [0.5, 0.5, nan], [0.5] * 3]
    d = _lottery(runs, runs, key="loss", epochs=3)
    m = _compute({"metric": "epochs_run_at_iteration", "recipe": "r", "iteration": 1}, r=d)
    assert m.values == (3.0, 2.0, 3.0) and m.censored == 2 and m.discrete


def test_falls_difference_reads_both_iterations_up_to_to():
    early = [0.9, 0.8, 0.9, 0.8, 0.9, 0.9]  # falls 0.1 at epochs 2 and 4
    late = [0.9, 0.9, 0.9, 0.9, 0.9, 0.5]   # one fall of 0.4, after epoch 4
    d = _lottery([early] * 3, [early] * 3)
    d2 = _lottery([late] * 3, [early] * 3)
    spec = {"metric": "iteration_test_accuracy_falls_difference", "recipe": "r", "iteration": 1, "versus": 0,
            "to": 4}
    assert _compute(spec, r=d).b == pytest.approx((0.2 / 3,) * 3)
    assert _compute(spec, r=d2).b == pytest.approx((0.0,) * 3)


def test_iteration_early_minus_late_splits_after_split():
    c = [0.9, 0.8, 0.85, 0.65, 0.7]  # falls: epoch 2: 0.1, 3: 0, 4: 0.2, 5: 0
    d = _lottery([c] * 3, [c] * 3)
    m = _compute({"metric": "iteration_test_accuracy_falls_early_minus_late", "recipe": "r", "iteration": 1,
                  "split": 3}, r=d)
    assert m.values == pytest.approx((0.05 - 0.1,) * 3)


def test_an_iteration_s_best_is_its_best_epoch():
    d = _lottery([[0.97, 0.99, 0.98]] * 3, [[0.97, 0.995, 0.98]] * 3)
    m = _compute({"metric": "best_test_accuracy_at_iteration", "recipe": "r", "iteration": 1}, r=d)
    assert m.values == (0.995,) * 3


def test_epochs_run_at_iteration_reads_that_iteration():
    nan = math.nan
    d = _lottery([[0.5] * 4] * 3, [[0.5, 0.5, nan, nan]] * 3, key="loss", epochs=10)
    run = _compute({"metric": "epochs_run_at_iteration", "recipe": "r", "iteration": 1}, r=d)
    assert run.values == (2.0,) * 3


# -- measurements ----------------------------------------------------------------------------------
def test_a_difference_reads_a_minus_b():
    d = metrics.Difference((0.3, 0.4), (0.1, 0.2), True, "x")
    assert "mean difference 0.2 " in str(d)
    r = metrics.Difference((1.0, 1.0), (0.0, 0.0), False, "t", log_ratio=True)
    assert "ratio 2.718 " in str(r)


def test_top_lists_tied_cells_in_row_order():
    # ties among the largest counts (2s): the stable order lists them by row, then column
    m = [[9, 1, 1, 0, 0, 0, 0, 0, 0, 2], [1, 9, 1, 1, 2, 2, 1, 1, 1, 2], [0, 2, 9, 0, 1, 2, 1, 0, 2, 2],
         [2, 0, 0, 9, 0, 1, 0, 0, 1, 1], [1, 0, 0, 0, 9, 2, 1, 1, 0, 1], [2, 1, 1, 2, 2, 9, 1, 2, 2, 1],
         [2, 2, 2, 1, 2, 0, 9, 2, 2, 1], [1, 0, 1, 1, 2, 2, 0, 9, 1, 1], [2, 1, 0, 0, 2, 1, 1, 1, 9, 1],
         [0, 2, 0, 0, 2, 1, 0, 0, 1, 9]]
    ranking = metrics.Ranking((tuple(map(tuple, m)),))
    assert [c for c, _ in ranking.top(4)] == ["0->9", "1->4", "1->5", "1->9"]


def test_top_sums_the_seeds_and_names_true_then_predicted():
    a = ((5, 3, 0), (0, 5, 0), (0, 0, 5))  # seed 1: 0 taken for 1, three times
    b = ((5, 0, 0), (0, 5, 0), (4, 0, 5))  # seed 2: 2 taken for 0, four times
    ranking = metrics.Ranking((a, b))
    assert ranking.top(2) == [("2->0", 4), ("0->1", 3)]


def test_seeds_std_is_the_sample_standard_deviation():
    assert metrics.Seeds((1.0, 2.0, 3.0)).std == 1.0


def test_top_never_lists_a_correct_cell_as_an_error():
    m = ((5, 0, 0), (1, 5, 0), (0, 0, 5))  # one error, 1 taken for 0
    assert metrics.Ranking((m,)).top(2) == [("1->0", 1), ("0->1", 0)]


# -- measures_data ---------------------------------------------------------------------------------
def test_prepared_shape_is_height_then_width(monkeypatch):
    import types

    import numpy as np

    from claims import measures_data
    from training import datasets
    fake = types.SimpleNamespace(train_images=np.zeros((2, 20, 30), np.uint8), train_labels=np.array([0, 1]),
                                 test_images=np.zeros((1, 20, 30), np.uint8), test_labels=np.array([0]))
    monkeypatch.setattr(datasets, "load", lambda name: fake)
    assert measures_data._prepared_shape("not-square-kill-D02", "train", "images") == [2, 20, 30, 1]


def test_a_recipe_field_reads_the_table_before_its_extra(tmp_path, monkeypatch):
    from claims.measures import measure
    d = _curves({"test_accuracy": [[0.99]] * 3}, epochs=10)
    d["recipe_table"]["extra"] = {"epochs": 99}
    d.pop("_file")
    results.write(results.path_for("kill_d05", tmp_path), {"recipe": "kill_d05", **d})
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    assert measure({"statistic": "recipe", "recipe": "kill_d05", "field": "epochs"}) == 10


def test_a_capped_run_gives_no_final_figure(tmp_path):
    d = _curves({"test_accuracy": [[0.98, 0.99]] * 3}, epochs=40, cap=2)
    d["points"][0]["final"] = {"accuracy": [0.99] * 3}
    d.pop("_file")
    results.write(results.path_for("mnist_approach3", tmp_path), {"recipe": "mnist_approach3", **d})
    with pytest.raises(metrics.CappedRun, match="capped at 2"):
        metrics.compute({"metric": "test_accuracy", "recipe": "mnist_approach3"}, directory=tmp_path)
    best = metrics.compute({"metric": "best_test_accuracy", "recipe": "mnist_approach3"}, directory=tmp_path)
    assert best.lower_bound and best.values == (0.99,) * 3


def test_unpaired_gap_change_meets_the_control_s_last_epoch():
    gap = _curves({"val_accuracy": [[0.80, 0.90], [0.70, 0.95]]}, name="g.json", seeds=(0, 1))
    control = _curves({"val_accuracy": [[0.90, 0.99, 0.95], [0.94, 0.98, 0.96]]}, name="c.json", seeds=(5, 6))
    gap["points"][0]["epochs"].append({"val_accuracy": [0.90, 0.95]})  # three epochs each
    m = _compute({"metric": "curves_gap_change", "recipe": "g", "versus": "c"}, g=gap, c=control)
    last, first = (0.95 + 0.96) / 2, (0.90 + 0.94) / 2  # the control's epoch means (not its best)
    assert m.values == pytest.approx((abs(0.90 - last) - abs(0.80 - first),
                                      abs(0.95 - last) - abs(0.70 - first)))
