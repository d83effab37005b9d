"""Figures a reader would rather look at than a table, saved beside the result files:
learning curves as the sources draw them (train vs validation, loss and accuracy), a
comparison of several recipes on one axis, and the confusion matrix.

matplotlib is optional (``pip install matplotlib``); without it, nothing is drawn and the
caller is told so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(point: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.array([e[key] for e in point["epochs"] if key in e], dtype=float)  # (epochs, seeds)
    if values.ndim != 2:  # the run did not log this metric (no validation split, say)
        return np.arange(0), np.zeros(0), np.zeros(0)
    epochs = np.arange(1, len(values) + 1)
    return epochs, np.nanmean(values, axis=1), np.nanstd(values, axis=1)


def _band(ax: Any, point: dict[str, Any], key: str, label: str) -> None:
    epochs, mean, std = _curve(point, key)
    if not len(epochs):
        return
    (line,) = ax.plot(epochs, mean, label=label)
    ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)


def _tag(options: dict[str, Any]) -> str:
    """A grid point's or a lottery iteration's legend label."""
    if "removed" in options:
        k = options["iteration"]
        return "original" if k == 0 else f"iteration {k}, {options['removed']:.2%} pruned"
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _settled(result: dict[str, Any]) -> float:
    """A lower accuracy limit that leaves out each curve's first two epochs (when it has more)."""
    curves = [_curve(p, "test_accuracy")[1] for p in result["points"]]
    lows = [np.min(c[2:] if len(c) > 2 else c, initial=1.0) for c in curves]
    return float(min(lows)) - 0.005


def learning_curves(result: dict[str, Any], path: Path) -> Path:
    """Loss and accuracy per epoch, seed mean with a ±1 std band: train, validation, test."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, what in zip(axes, ("loss", "accuracy"), strict=True):
        if len(result["points"]) == 1:
            point = result["points"][0]
            for key, label in ((what, "train"), (f"val_{what}", "validation"), (f"test_{what}", "test")):
                _band(ax, point, key, label)
        else:  # grid points or lottery iterations: their test curves side by side, as the post draws them
            for point in result["points"]:
                _band(ax, point, f"test_{what}", f"test, {_tag(point['options'])}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if len(result["points"]) > 1:  # the first epochs' spread would flatten the curves that matter
        axes[1].set_ylim(bottom=max(axes[1].get_ylim()[0], _settled(result)))
    seeds = len(result["seeds"])
    fig.suptitle(f"{result['recipe']}: mean of {seeds} seeds ± 1 std ({result['provenance']['device']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def comparison(results: list[dict[str, Any]], key: str, path: Path, title: str = "") -> Path:
    """One metric of several recipes on one axis (e.g. GAP vs Dense validation loss)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        _band(ax, result["points"][0], key, result["recipe"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or key)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix(result: dict[str, Any], path: Path, classes: list[str] | None = None) -> Path:
    """The test confusion matrix summed over seeds, true class in rows."""
    plt = _pyplot()
    matrix = np.asarray(result["points"][0]["final"]["confusion"]).sum(0)
    k = matrix.shape[0]
    labels = classes or [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    shown = matrix.astype(float)
    np.fill_diagonal(shown, np.nan)  # the errors are the story; the diagonal would drown them
    image = ax.imshow(shown, cmap="Reds")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="black" if i != j else "gray")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{result['recipe']}: test errors, {len(result['seeds'])} seeds summed")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def grid_accuracy(result: dict[str, Any], path: Path) -> Path:
    """Final test accuracy against a one-option grid's value, seed mean ± 1 std, as the
    notebook plots its width search ('Accuracy as function of number of neurons')."""
    plt = _pyplot()
    (option,) = result["points"][0]["options"]
    values = [p["options"][option] for p in result["points"]]
    accuracy = np.asarray([p["final"]["accuracy"] for p in result["points"]])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(values, accuracy.mean(1), yerr=accuracy.std(1), marker="o", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.set_xlabel(option)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.set_title(f"{result['recipe']}: {len(result['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: Side-by-side figures the sources draw: (file name, recipes, metric, title).
COMPARISONS = [
    ("kmnist_gap_vs_dense_val_loss.png", ["kmnist_gap", "kmnist_traditional"], "val_loss",
     "KMNIST: GAP vs Dense head, validation loss"),
    ("cats_dogs_val_accuracy.png", ["cats_dogs_dense", "cats_dogs_dense_dropout", "cats_dogs_pool_as_coded"],
     "val_accuracy", "Cats vs Dogs: validation accuracy"),
    ("mnist_10k_test_accuracy.png", ["mnist_approach1", "mnist_approach2", "mnist_approach3"],
     "test_accuracy", "MNIST under 10k parameters: test accuracy"),
]


def draw_all(result: dict[str, Any], directory: Path, load: Any) -> list[Path]:
    """Every figure that ``result`` takes part in; ``load(recipe)`` reads other results or None."""
    if not available():
        return []
    out = [learning_curves(result, directory / "plots" / f"{result['recipe']}.png")]
    options = [p["options"] for p in result["points"]]
    if len(options) > 1 and all(len(o) == 1 and isinstance(next(iter(o.values())), (int, float))
                                for o in options):  # a lottery's points carry three options
        out.append(grid_accuracy(result, directory / "plots" / f"{result['recipe']}_accuracy.png"))
    if len(result["points"]) == 1 and result["recipe_table"]["dataset"] in ("mnist", "fashion-mnist"):
        out.append(confusion_matrix(result, directory / "plots" / f"{result['recipe']}_confusion.png"))
    for name, recipes, key, title in COMPARISONS:
        if result["recipe"] in recipes:
            others = [load(r) for r in recipes]
            if all(o is not None for o in others):
                out.append(comparison(others, key, directory / "plots" / name, title))
    return out
