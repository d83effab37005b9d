"""Figures a reader would rather look at than a table, saved beside the result files:
learning curves as the sources draw them (train vs validation, loss and accuracy), a
comparison of several recipes on one axis, the confusion matrix and a grid's accuracy
against its size.

Each figure shows the claims it serves when the caller says what they are: ``Labels``
names the network as its source does, gives its parameter counts and the claimed figures
(``Annotation``), drawn as labelled lines beside the measured curves. The claims layer
gathers them (``claims.figures``); this module reads only result files, so training can
draw plain figures without the registry. Accuracies are stored as fractions and shown in
percent, as every quote gives them.

matplotlib is optional (``pip install matplotlib``); without it, nothing is drawn and the
caller is told so.

The labels, the claims and the pieces every figure shares are in ``training.plot_parts``;
every name stays importable from here.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from training.measurements import plural
from training.plot_parts import (  # noqa: F401
    CLAIM_STYLE,
    DPI,
    SHORT_RUN,
    Annotation,
    Describe,
    Labels,
    _band,
    _claims,
    _curve,
    _detail,
    _device,
    _epochs,
    _heading,
    _is_accuracy,
    _parameters,
    _percent,
    _pyplot,
    _save,
    _tag,
    _with_params,
    _zoom,
    _zoomed,
    available,
    digest,
    drawn_from,
    plain,
)


def _accuracy_keys(result: dict[str, Any]) -> list[str]:
    """The accuracy curves a learning-curve figure draws: train, validation and test of one
    run, or the test curves of grid points and lottery iterations."""
    return ["accuracy", "val_accuracy", "test_accuracy"] if len(result["points"]) == 1 else ["test_accuracy"]


def _panel(note: Annotation, panel: str) -> bool:
    """Whether a claim goes on the loss or the accuracy panel of the learning curves."""
    return note.on in ("", panel) if note.metric == "epoch" else note.metric.endswith(panel)


def learning_curves_figure(result: dict[str, Any], labels: Labels | None = None) -> Any:
    """Loss and accuracy per epoch, seed mean with a ±1 std band: train, validation, test;
    several grid points or lottery iterations side by side by their test curves. The
    claims are lines on their axis; a zoomed accuracy panel is added when the climb of the
    first epochs would squeeze the claimed values together. No panel cuts a curve off."""
    plt = _pyplot()
    labels = labels or plain(result)
    points = result["points"]
    notes = list(labels.annotations)
    accuracy_notes = [n for n in notes if _panel(n, "accuracy")]
    loss_notes = [n for n in notes if _panel(n, "loss")]
    claimed = {n.metric for n in accuracy_notes if n.metric != "epoch"}
    zoomed = [k for k in _accuracy_keys(result) if k in claimed] or _accuracy_keys(result)
    limits = _zoom([_curve(p, k) for p in points for k in zoomed],
                   [n for n in accuracy_notes if n.epoch is None])
    fig, axes = plt.subplots(1, 3 if limits else 2, figsize=(15 if limits else 10.5, 4.6),
                             layout="constrained")
    colors: dict[Any, Any] = {}  # grid point or curve -> colour
    accuracy_lines: list[Any] = []  # the ones the zoom repeats
    for ax, what, own in zip(axes, ("loss", "accuracy"), (loss_notes, accuracy_notes), strict=False):
        drawn = []
        if len(points) == 1:
            for key, name, color in ((what, "train", "C0"), (f"val_{what}", "validation", "C1"),
                                     (f"test_{what}", "test", "C2")):  # a role keeps its colour
                line = _band(ax, points[0], key, name, color)
                drawn.append(line if key in zoomed else None)
                colors[key] = color  # a claim about this curve is drawn in its colour
        else:  # grid points or lottery iterations: their test curves side by side, as the post draws them
            for i, point in enumerate(points):
                name = _with_params(labels.point_name(i, point["options"]), labels.point_params(i))
                drawn.append(line := _band(ax, point, f"test_{what}", f"test, {name}"))
                if line is not None:
                    colors[i] = line.get_color()
        if what == "accuracy":
            accuracy_lines = [line for line in drawn if line is not None]
        _claims(ax, own, colors)
        _epochs(ax)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if what == "accuracy":
            _percent(ax)
        ax.legend(fontsize="x-small", loc="upper right" if what == "loss" else "lower right")
    if limits:
        names = {"accuracy": "train", "val_accuracy": "validation", "test_accuracy": "test"}
        shown = [names[k] for k in zoomed]
        what = (", ".join(shown[:-1]) + " and " if len(shown) > 1 else "") + shown[-1] + " accuracy"
        _zoomed(axes[2], accuracy_lines, accuracy_notes, colors, limits, "accuracy", what)
    _heading(fig, labels.heading(), _detail(result, labels))
    return fig


def learning_curves(result: dict[str, Any], path: Path, labels: Labels | None = None) -> Path:
    return _save(learning_curves_figure(result, labels), path, [result])


def comparison_figure(results: list[dict[str, Any]], key: str, title: str = "",
                      describe: Describe = plain) -> Any:
    """One metric of several recipes on one axis (e.g. GAP vs Dense validation loss), each
    named as its source does with its parameter count, its claims in its colour."""
    plt = _pyplot()
    described = [describe(r) for r in results]
    notes = [replace(n, label=f"{labels.name}: {n.label}", point=i)
             for i, labels in enumerate(described) for n in labels.annotations if n.metric == key]
    limits = _zoom([_curve(r["points"][0], key) for r in results], [n for n in notes if n.epoch is None])
    fig, axes = plt.subplots(1, 2 if limits else 1, figsize=(12 if limits else 6.5, 4.6), squeeze=False,
                             layout="constrained")
    ax = axes[0][0]
    lines, colors = [], {}
    for i, (result, labels) in enumerate(zip(results, described, strict=True)):
        line = _band(ax, result["points"][0], key, _with_params(labels.name, labels.point_params(0)))
        if line is not None:
            lines.append(line)
            colors[i] = line.get_color()
    _claims(ax, notes, colors)
    _epochs(ax)
    ax.set_ylabel(key.replace("val_", "validation_").replace("_", " "))
    ax.grid(alpha=0.3)
    if _is_accuracy(key):
        _percent(ax)
    ax.legend(fontsize="x-small", loc="lower right" if _is_accuracy(key) else "upper right")
    if limits:
        _zoomed(axes[0][1], lines, notes, colors, limits, ax.get_ylabel())
    seeds = {len(r["seeds"]) for r in results}
    sources = sorted({labels.source for labels in described if labels.source})
    spread = f"mean of {plural(seeds.pop(), 'seed')} ± 1 std" if len(seeds) == 1 else "seed means ± 1 std"
    _heading(fig, title or key, " · ".join([*sources, spread]))
    return fig


def comparison(results: list[dict[str, Any]], key: str, path: Path, title: str = "",
               describe: Describe = plain) -> Path:
    return _save(comparison_figure(results, key, title, describe), path, results)


def confusion_matrix_figure(result: dict[str, Any], classes: list[str] | None = None,
                            labels: Labels | None = None) -> Any:
    """The test confusion matrix summed over seeds, true class in rows; the cells a claim
    names ('5->3') outlined."""
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    labels = labels or plain(result)
    matrix = np.asarray(result["points"][0]["final"]["confusion"]).sum(0)
    k = matrix.shape[0]
    names = classes or [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
    shown = matrix.astype(float)
    np.fill_diagonal(shown, np.nan)  # the errors are the story; the diagonal would drown them
    image = ax.imshow(shown, cmap="Reds")
    dark = 0.6 * np.nanmax(shown) if np.isfinite(shown).any() else np.inf
    for i in range(k):
        for j in range(k):
            color = "gray" if i == j else "white" if matrix[i, j] > dark else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    for note in labels.annotations:
        if note.metric == "confusion":
            true, predicted = (int(c) for c in note.value.split("->"))
            ax.add_patch(Rectangle((predicted - 0.5, true - 0.5), 1, 1, fill=False, edgecolor="royalblue",
                                   linewidth=2.5, label=note.label))
    if any(n.metric == "confusion" for n in labels.annotations):
        handles, texts = ax.get_legend_handles_labels()
        ax.legend(handles[:1], texts[:1], fontsize="x-small", loc="upper center",
                  bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    from matplotlib.ticker import MaxNLocator

    fig.colorbar(image, ax=ax, fraction=0.046, ticks=MaxNLocator(integer=True))
    _heading(fig, f"{labels.heading()}: test errors",
             f"{plural(len(result['seeds']), 'seed')} summed; the diagonal is grey")
    return fig


def confusion_matrix(result: dict[str, Any], path: Path, classes: list[str] | None = None,
                     labels: Labels | None = None) -> Path:
    return _save(confusion_matrix_figure(result, classes, labels), path, [result])


def grid_accuracy_figure(result: dict[str, Any], labels: Labels | None = None) -> Any:
    """Final test accuracy against a one-option grid's size, seed mean ± 1 std, as the
    notebook plots its width search ('Accuracy as function of number of neurons'): on a
    parameter-count axis when the counts are known, the claimed and the measured knee marked."""
    plt = _pyplot()
    labels = labels or plain(result)
    points = result["points"]
    (option,) = points[0]["options"]
    values = [p["options"][option] for p in points]
    counts = [labels.point_params(i) for i in range(len(points))]
    by_params = all(c is not None for c in counts)
    x = np.asarray(counts if by_params else values, dtype=float)
    accuracy = np.asarray([p["final"]["accuracy"] for p in points])
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    ax.errorbar(x, accuracy.mean(1), yerr=accuracy.std(1), marker="o", capsize=3, label="test accuracy")
    for i, point in enumerate(points):
        ax.annotate(labels.point_name(i, point["options"]), (x[i], accuracy[i].mean()),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize="x-small")
    for note in labels.annotations:
        if note.metric != "option" or note.value not in values:
            continue
        at = x[values.index(note.value)]
        if note.measured:
            ax.plot([at], [accuracy[values.index(note.value)].mean()], marker="o", markersize=16,
                    markerfacecolor="none", markeredgecolor="crimson", linestyle="none", label=note.label)
        else:
            ax.axvline(at, color="black", label=note.label, **CLAIM_STYLE)
    _claims(ax, [n for n in labels.annotations if _is_accuracy(n.metric)], {})
    ax.set_xscale("log")
    if by_params:
        ax.set_xticks(x, [f"{int(c):,}" for c in x])
        ax.set_xlabel("trainable parameters (log scale)")
    else:
        ax.set_xticks(x, [str(v) for v in values])
        ax.set_xlabel(option)
    ax.minorticks_off()
    ax.margins(x=0.08, y=0.12)
    ax.set_ylabel("test accuracy (final epoch)")
    _percent(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower right")
    _heading(fig, labels.name, _detail(result, labels))
    return fig


def grid_accuracy(result: dict[str, Any], path: Path, labels: Labels | None = None) -> Path:
    return _save(grid_accuracy_figure(result, labels), path, [result])


#: Side-by-side figures the sources draw: (file name, recipes, metric, title).
COMPARISONS = [
    ("kmnist_gap_vs_dense_val_loss.png", ["kmnist_gap", "kmnist_traditional"], "val_loss",
     "KMNIST: GAP vs Dense head, validation loss"),
    ("cats_dogs_val_accuracy.png", ["cats_dogs_dense", "cats_dogs_dense_dropout", "cats_dogs_pool_as_coded"],
     "val_accuracy", "Cats vs Dogs: validation accuracy"),
    ("mnist_10k_test_accuracy.png", ["mnist_approach1", "mnist_approach2", "mnist_approach3"],
     "test_accuracy", "MNIST under 10k parameters: test accuracy"),
]


#: The figures of one recipe, by kind: learning curves, a one-option grid's accuracy against
#: its size, the confusion matrix of a single run.
OWN = {"curves": "{recipe}.png", "grid": "{recipe}_accuracy.png", "confusion": "{recipe}_confusion.png"}


def figures_of(recipe: str, directory: Path) -> list[Path]:
    """The drawn figures (under DIR/plots) that show ``recipe``: its own and the comparisons
    it takes part in, for pages that put a claim beside its plot."""
    names = [pattern.format(recipe=recipe) for pattern in OWN.values()]
    names += [name for name, recipes, _, _ in COMPARISONS if recipe in recipes]
    return [directory / "plots" / name for name in names if (directory / "plots" / name).exists()]


def own_figures(result: dict[str, Any]) -> list[str]:
    """The kinds of ``OWN`` figure that ``result`` gets: always its learning curves; a
    one-option grid's accuracy against its size; a single run's confusion matrix (MNIST and
    Fashion-MNIST, whose result files keep one)."""
    kinds = ["curves"]
    options = [p["options"] for p in result["points"]]
    if len(options) > 1 and all(len(o) == 1 and isinstance(next(iter(o.values())), (int, float))
                                for o in options):  # a lottery's points carry three options
        kinds.append("grid")
    if len(result["points"]) == 1 and result["recipe_table"]["dataset"] in ("mnist", "fashion-mnist"):
        kinds.append("confusion")
    return kinds


def draw_all(result: dict[str, Any], directory: Path, load: Any, describe: Describe = plain) -> list[Path]:
    """Every figure that ``result`` takes part in (``own_figures``, and the ``COMPARISONS``
    whose every recipe has a result); ``load(recipe)`` reads other results or None,
    ``describe(result)`` names a recipe's network and claims (plain ids without it)."""
    if not available():
        return []
    labels = describe(result)
    draw = {"curves": learning_curves, "grid": grid_accuracy,
            "confusion": lambda r, path, labels: confusion_matrix(r, path, labels=labels)}
    out = [draw[kind](result, directory / "plots" / OWN[kind].format(recipe=result["recipe"]), labels)
           for kind in own_figures(result)]
    for name, recipes, key, title in COMPARISONS:
        if result["recipe"] in recipes:
            others = [load(r) for r in recipes]
            if all(o is not None for o in others):
                out.append(comparison(others, key, directory / "plots" / name, title, describe))
    return out


#: What to do about what ``stale`` lists.
REDRAW = "redraw with 'python -m claims plots'; delete a figure whose result file is gone"


def stale(directory: Path) -> list[str]:
    """What is out of date among the figures under DIR/plots, one line each: a figure that
    does not record what it was drawn from or cannot be read, one drawn from another state of
    a result file than the one there now (more seeds since, say) or from a result file that is
    gone, and a figure that a result file should have and has not. Empty when every figure
    shows the results as they are. The stamp covers the results, not the claims' lines and
    labels drawn beside them."""
    from training import recipes, results

    @cache  # each result file read and digested once, however many figures show it
    def current(recipe: str) -> dict[str, Any] | None:
        path = results.path_for(recipe, directory)
        return results.read(path) if path.exists() else None

    @cache
    def current_digest(recipe: str) -> str:
        return digest(current(recipe))

    plots_dir = directory / "plots"
    problems, stamps = [], {}
    for png in sorted(plots_dir.glob("*.png")):
        try:
            stamp = drawn_from(png)
        except (OSError, ValueError) as error:  # not an image; a stamp that is not JSON
            problems.append(f"{png.name}: cannot read what it was drawn from ({error})")
            continue
        if stamp is None:
            problems.append(f"{png.name}: does not record the results it was drawn from")
            continue
        stamps[png.name] = stamp
        for recipe, drawn in sorted(stamp.items()):
            if current(recipe) is None:
                problems.append(f"{png.name}: drawn from {recipe}, which has no result file now (delete it)")
                continue
            if current_digest(recipe) != drawn:
                problems.append(f"{png.name}: drawn from another state of {recipe}.json")
    have = {r for r in recipes.names() if current(r) is not None}
    expected = {OWN[kind].format(recipe=r): [r] for r in sorted(have) for kind in own_figures(current(r))}
    expected |= {name: shown for name, shown, _, _ in COMPARISONS if set(shown) <= have}
    for name, shown in sorted(expected.items()):
        if not (plots_dir / name).exists():
            problems.append(f"{name}: missing, though {', '.join(f'{r}.json' for r in shown)} "
                            f"{'is' if len(shown) == 1 else 'are'} there")
        elif name in stamps and sorted(stamps[name]) != sorted(shown):
            problems.append(f"{name}: drawn from {', '.join(sorted(stamps[name]))}, "
                            f"not {', '.join(sorted(shown))}")
    return problems
