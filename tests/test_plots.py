"""The plots show the claims they serve: claimed figures as labelled lines, percent axes,
networks named with their parameter counts, markers on short runs, nothing cut off.
Made-up result files; no training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from training import plots  # noqa: E402
from training.plots import Annotation, Labels  # noqa: E402

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent


def _point(accuracy: list[float], options: dict | None = None, seeds: int = 2) -> dict:
    """A grid point whose mean test accuracy follows ``accuracy``, one entry per epoch."""
    accuracies, losses = ("accuracy", "val_accuracy", "test_accuracy"), ("loss", "val_loss", "test_loss")
    epochs = [{key: [a + 0.001 * s for s in range(seeds)] for key in accuracies}
              | {key: [1 - a] * seeds for key in losses} for a in accuracy]
    confusion = np.eye(10, dtype=int) * 90
    confusion[5, 3] = 7
    return {"options": options or {}, "epochs": epochs,
            "final": {"accuracy": epochs[-1]["test_accuracy"], "confusion": [confusion.tolist()] * seeds}}


def _result(points: list[dict], recipe: str = "made_up", seeds: int = 2,
            device: str = "cpu: x86_64, 4 threads") -> dict:
    return {"recipe": recipe, "points": points, "seeds": list(range(seeds)),
            "provenance": {"device": device}, "recipe_table": {"dataset": "mnist"}}


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def _legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _climb(epochs: int, start: float = 0.9, end: float = 0.99) -> list[float]:
    return list(start + (end - start) * (1 - np.exp(-np.arange(epochs) / 3)))


def test_a_claimed_accuracy_is_a_labelled_horizontal_line() -> None:
    label = "claimed best test accuracy > 99%"
    fig = plots.learning_curves_figure(_result([_point(_climb(20))]),
                                       Labels("approach 3", annotations=(Annotation(0.99, label),)))
    accuracy = fig.axes[1]
    claimed = [line for line in accuracy.get_lines() if line.get_label() == label]
    assert claimed and list(claimed[0].get_ydata()) == [0.99, 0.99]
    assert label in _legend_texts(accuracy)


def test_accuracy_axes_are_in_percent() -> None:
    result = _result([_point(_climb(20))])
    fig = plots.learning_curves_figure(result)
    assert isinstance(fig.axes[1].yaxis.get_major_formatter(), PercentFormatter)
    assert not isinstance(fig.axes[0].yaxis.get_major_formatter(), PercentFormatter)  # loss stays a number
    fig = plots.comparison_figure([result, {**result, "recipe": "other"}], "test_accuracy")
    assert isinstance(fig.axes[0].yaxis.get_major_formatter(), PercentFormatter)
    fig.canvas.draw()
    assert all(t.get_text().endswith("%") for t in fig.axes[0].get_yticklabels() if t.get_text())


def test_a_one_epoch_run_draws_markers() -> None:
    fig = plots.learning_curves_figure(_result([_point([0.95])]))
    curves = [line for ax in fig.axes for line in ax.get_lines() if line.get_label() in ("train", "test")]
    assert curves and all(line.get_marker() == "o" for line in curves)
    fig = plots.learning_curves_figure(_result([_point(_climb(40))]))  # long runs: lines only
    assert all(line.get_marker() in ("None", None, "") for line in fig.axes[1].get_lines())


def _clipped(fig) -> list[str]:
    """Lines with a point inside the x range of their axes but outside its y range."""
    cut = []
    for ax in fig.axes:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for line in ax.get_lines():
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            if len(x) != len(y) or line.get_transform() != ax.transData:  # axhline/axvline span the axes
                continue
            inside = (x >= x0) & (x <= x1) & np.isfinite(y)
            if np.any((y[inside] < y0) | (y[inside] > y1)):
                cut.append(f"{ax.get_title() or ax.get_ylabel()}: {line.get_label()}")
    return cut


def test_no_curve_is_cut_off() -> None:
    """A lottery iteration that starts far lower than the others (the committed lottery plot
    cut such a curve off below 94%) stays on every panel, the zoomed one included."""
    iterations = [_point(_climb(30, start), {"iteration": k, "removed": r})
                  for k, (start, r) in enumerate(((0.95, 0.0), (0.93, 0.2), (0.6, 0.5577)))]
    notes = (Annotation(0.99, "claimed > 99%"), Annotation(0.992, "claimed ≈ 99.2%", point=2))
    fig = plots.learning_curves_figure(_result(iterations), Labels("approach 2", annotations=notes))
    assert len(fig.axes) == 3, "the settled epochs get a zoomed panel"
    assert _clipped(fig) == []
    low = min(np.nanmin(line.get_ydata()) for line in fig.axes[1].get_lines())
    assert fig.axes[1].get_ylim()[0] <= low < 0.7


def test_legends_name_the_networks_with_their_parameter_counts() -> None:
    iterations = [_point(_climb(10), {"iteration": 0, "removed": 0.0}),
                  _point(_climb(10), {"iteration": 2, "removed": 0.5577, "remaining": [2309, 2309]})]
    fig = plots.learning_curves_figure(_result(iterations), Labels("approach 2", params=(5382, 2471)))
    legend = _legend_texts(fig.axes[1])
    assert "test, original (5,382 parameters)" in legend
    assert "test, iteration 2, 55.77% pruned (2,471 parameters)" in legend
    one = _result([_point(_climb(10))], recipe="mnist_approach3")
    fig = plots.comparison_figure([one], "test_accuracy", "MNIST",
                                  lambda r: Labels("approach 3", params=(3090,)))
    assert _legend_texts(fig.axes[0]) == ["approach 3 (3,090 parameters)"]
    fig = plots.learning_curves_figure(one, Labels("approach 3", params=(3090,)))
    assert fig.get_suptitle() == "approach 3 (3,090 parameters)"


def test_titles_read_aloud() -> None:
    """One seed, one thread: no '1 seeds' or '1 threads'; the recipe id only without a name."""
    result = _result([_point(_climb(5))], recipe="mnist_dense0", seeds=1, device="cpu: x86_64, 1 threads")
    for fig in (plots.learning_curves_figure(result, Labels('Dense "Tensor Tutorial"')),
                plots.confusion_matrix_figure(result, labels=Labels('Dense "Tensor Tutorial"'))):
        text = " ".join(_texts(fig))
        assert "1 seed" in text and "1 seeds" not in text
        assert "mnist_dense0" not in text
    assert "1 thread" in " ".join(_texts(plots.learning_curves_figure(result)))
    assert "1 threads" not in " ".join(_texts(plots.learning_curves_figure(result)))


def test_the_width_grid_is_drawn_against_parameters_with_the_knee_marked() -> None:
    widths = (32, 64, 128, 256)
    grid = [_point([0.95 + 0.01 * min(i, 2.3)], {"hidden": w}) for i, w in enumerate(widths)]
    labels = Labels("Dense, width grid", params=(25450, 50890, 101770, 203530),
                    points=tuple(f"{w} neurons" for w in widths),
                    annotations=(Annotation(128, "claimed knee at 128 neurons", "option"),
                                 Annotation(128, "measured knee", "option", measured=True)))
    fig = plots.grid_accuracy_figure(_result(grid), labels)
    ax = fig.axes[0]
    assert "parameters" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["25,450", "50,890", "101,770", "203,530"]
    knee = [line for line in ax.get_lines() if line.get_label() == "claimed knee at 128 neurons"]
    assert knee and list(knee[0].get_xdata()) == [101770, 101770]
    measured = [line for line in ax.get_lines() if line.get_label() == "measured knee"]
    assert measured and list(measured[0].get_xdata()) == [101770]
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert "128 neurons" in _texts(fig)


def test_claimed_confusions_are_outlined() -> None:
    labels = Labels("Dense with 128 neurons", annotations=(Annotation("5->3", "claimed", "confusion"),))
    fig = plots.confusion_matrix_figure(_result([_point([0.95])]), labels=labels)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_label() == "claimed"]
    assert [(b.get_x(), b.get_y()) for b in boxes] == [(2.5, 4.5)]  # column 3 predicted, row 5 true


def test_the_registry_gives_names_counts_and_claimed_figures() -> None:
    """claims.figures turns the registry into labels: the source's name of the network, its
    trainable parameters built on the meta device, and each claim's figure."""
    from claims import figures

    a3 = _result([_point([0.99])], recipe="mnist_approach3")
    a3["recipe_table"] |= {"model": "mnist_approach3", "options": {}}
    a3 = figures.describe(a3)
    assert a3.name == "approach 3" and a3.params == (3090,)
    assert any(n.value == 0.99 and "> 99%" in n.label and n.metric == "test_accuracy" for n in a3.annotations)
    dense0 = _result([_point([0.98])], recipe="mnist_dense0")
    dense0["recipe_table"] |= {"model": "mnist_dense", "options": {}}
    dense0 = figures.describe(dense0)
    assert dense0.name == 'Dense "Tensor Tutorial"' and dense0.params == (407050,)
    (accuracy,) = [n for n in dense0.annotations if n.metric == "test_accuracy"]
    assert accuracy.value == 0.984 and accuracy.band == pytest.approx((0.982, 0.986))
    assert accuracy.label == "claimed test accuracy 98.4% ± 0.2 (shaded)"
    lottery = _result([_point([0.99], {"iteration": 0, "removed": 0.0, "remaining": None}),
                       _point([0.99], {"iteration": 2, "removed": 0.5577, "remaining": [2309, 2309]})],
                      recipe="mnist_approach2_lottery")
    lottery["recipe_table"] |= {"model": "mnist_approach2", "options": {}}
    assert figures.parameter_counts(lottery) == (5382, 2471)  # the post's 2,471 after pruning


def test_display_keys_stay_out_of_recipes() -> None:
    """A recipe's title names the network in figures only: it is not part of the Recipe, so
    adding one changes neither result files nor the key a checkpoint is resumed by."""
    from claims.registry import recipes as tables
    from training.recipes import get

    assert tables()["mnist_approach3"]["title"] == "approach 3"
    assert "title" not in get("mnist_approach3").extra


def test_committed_plots_stay_small() -> None:
    for png in sorted((ROOT / "results" / "plots").glob("*.png")):
        assert png.stat().st_size < 200_000, png.name


def test_a_claim_finds_the_plots_that_show_it(tmp_path) -> None:
    """What a page embeds beside a claim: its recipe's figures that exist, and comparisons."""
    from claims import figures
    from claims.registry import registry

    (claim,) = [c for c in registry() if c.measure.get("metric") == "best_test_accuracy"
                and c.measure.get("recipe") == "mnist_approach3"]
    (tmp_path / "plots").mkdir()
    for name in ("mnist_approach3.png", "mnist_approach3_confusion.png", "mnist_10k_test_accuracy.png",
                 "mnist_approach2.png"):
        (tmp_path / "plots" / name).write_bytes(b"")
    assert [p.name for p in figures.figures_for(claim, tmp_path)] == \
        ["mnist_approach3.png", "mnist_approach3_confusion.png", "mnist_10k_test_accuracy.png"]
    structural = next(c for c in registry() if c.measure.get("statistic") == "params")
    assert figures.figures_for(structural, tmp_path) == []


# --- figures record what they were drawn from -------------------------------------------------

def _written(tmp_path: Path, result: dict) -> dict:
    from training import results

    results.write(results.path_for(result["recipe"], tmp_path), result)
    return result


def _load(tmp_path: Path):
    from training import results

    def load(recipe: str) -> dict | None:
        path = results.path_for(recipe, tmp_path)
        return results.read(path) if path.exists() else None
    return load


def test_a_figure_records_the_result_it_was_drawn_from_as_the_file_reads_back(tmp_path) -> None:
    """The stamp is the digest of the result as the run returns it, and equally of its file
    read back (the file adds its format tag; JSON turns tuples into lists)."""
    from training import results

    result = _result([_point(_climb(5))], recipe="mnist_approach3")
    result["seeds"] = tuple(result["seeds"])
    drawn = plots.draw_all(_written(tmp_path, result), tmp_path, _load(tmp_path))
    assert [p.name for p in drawn] == ["mnist_approach3.png", "mnist_approach3_confusion.png"]
    read_back = results.read(results.path_for("mnist_approach3", tmp_path))
    assert "format" in read_back and plots.digest(read_back) == plots.digest(result)
    for png in drawn:
        assert plots.drawn_from(png) == {"mnist_approach3": plots.digest(result)}
    assert plots.stale(tmp_path) == []


def test_a_comparison_records_every_result_it_shows_and_a_grid_its_own(tmp_path) -> None:
    runs = {name: _written(tmp_path, _result([_point(_climb(4 + i))], recipe=name))
            for i, name in enumerate(["mnist_approach1", "mnist_approach2", "mnist_approach3"])}
    grid = _written(tmp_path, _result([_point(_climb(4), {"width": w}) for w in (8, 16)],
                                      recipe="mnist_dense_width_grid"))
    drawn = plots.draw_all(runs["mnist_approach3"], tmp_path, _load(tmp_path))
    assert drawn[-1].name == "mnist_10k_test_accuracy.png"
    assert plots.drawn_from(drawn[-1]) == {name: plots.digest(r) for name, r in runs.items()}
    (curves, accuracy) = plots.draw_all(grid, tmp_path, _load(tmp_path))
    assert accuracy.name == "mnist_dense_width_grid_accuracy.png"
    stamp = {"mnist_dense_width_grid": plots.digest(grid)}
    assert plots.drawn_from(accuracy) == plots.drawn_from(curves) == stamp
    for name in ("mnist_approach1", "mnist_approach2"):
        plots.draw_all(runs[name], tmp_path, _load(tmp_path))
    assert plots.stale(tmp_path) == []
    # a comparison stamped with fewer results than it shows is caught
    plots._save(plots.comparison_figure(list(runs.values())[:2], "test_accuracy"),
                tmp_path / "plots" / "mnist_10k_test_accuracy.png", list(runs.values())[:2])
    assert plots.stale(tmp_path) == [
        "mnist_10k_test_accuracy.png: drawn from mnist_approach1, mnist_approach2, "
        "not mnist_approach1, mnist_approach2, mnist_approach3"]


def test_a_figure_left_behind_by_newer_results_is_stale(tmp_path) -> None:
    from training import results

    result = _written(tmp_path, _result([_point(_climb(5))], recipe="mnist_approach3"))
    plots.draw_all(result, tmp_path, _load(tmp_path))
    # a seed joined; figures not redrawn
    more = _written(tmp_path, _result([_point(_climb(5), seeds=3)], recipe="mnist_approach3", seeds=3))
    assert plots.stale(tmp_path) == [
        "mnist_approach3.png: drawn from another state of mnist_approach3.json",
        "mnist_approach3_confusion.png: drawn from another state of mnist_approach3.json"]
    plots.draw_all(more, tmp_path, _load(tmp_path))
    assert plots.stale(tmp_path) == []
    results.path_for("mnist_approach3", tmp_path).unlink()
    assert plots.stale(tmp_path) == [
        "mnist_approach3.png: drawn from mnist_approach3, which has no result file now (delete it)",
        "mnist_approach3_confusion.png: drawn from mnist_approach3, which has no result file now (delete it)"]


def test_figures_missing_unstamped_or_unreadable_are_named(tmp_path) -> None:
    result = _written(tmp_path, _result([_point(_climb(5))], recipe="mnist_approach3"))
    assert plots.stale(tmp_path) == [
        "mnist_approach3.png: missing, though mnist_approach3.json is there",
        "mnist_approach3_confusion.png: missing, though mnist_approach3.json is there"]
    (tmp_path / "plots").mkdir()
    plots.learning_curves_figure(result).savefig(tmp_path / "plots" / "mnist_approach3.png")  # no stamp
    (tmp_path / "plots" / "mnist_approach3_confusion.png").write_bytes(b"not a picture")
    problems = plots.stale(tmp_path)
    assert problems[0] == "mnist_approach3.png: does not record the results it was drawn from"
    assert problems[1].startswith("mnist_approach3_confusion.png: cannot read what it was drawn from (")
    assert len(problems) == 2


def test_the_committed_figures_show_the_committed_results() -> None:
    """Every figure under results/plots was drawn from the result files as they are now, and
    every result file has its figures."""
    assert plots.stale(ROOT / "results") == [], plots.REDRAW


def test_claims_plots_check_lists_what_is_stale_and_draws_nothing(tmp_path, capsys) -> None:
    from claims.__main__ import main

    result = _written(tmp_path, _result([_point(_climb(5))], recipe="mnist_approach3"))
    assert main(["plots", "--check", "--results", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "mnist_approach3.png: missing, though mnist_approach3.json is there",
        "mnist_approach3_confusion.png: missing, though mnist_approach3.json is there"]
    assert "redraw with 'python -m claims plots'" in err and not (tmp_path / "plots").exists()
    plots.draw_all(result, tmp_path, _load(tmp_path))
    assert main(["plots", "--check", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
