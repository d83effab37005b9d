"""What each plot shows besides the run: the claims it serves. Per recipe, the network's
name as its source gives it (the recipe table's ``title``, ``point_title`` for grid points),
its trainable parameters (the builders on the meta device), its source, and every training
claim about it with a figure to draw (a claimed accuracy, loss, epoch, knee or confusion),
handed to ``training.plots``, which knows only result files.

``python -m claims plots`` and ``train`` draw through ``draw`` here, so the committed
plots are redrawn from the committed results with their claims on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from claims.measures import Explained, measure
from claims.registry import DATA_DIR, Claim, load_file, recipes, registry
from training import metrics, plots, results
from training.measurements import plural
from training.plots import Annotation, Labels


@dataclass(frozen=True)
class Shown:
    """How a training metric of a claim is drawn: on which curve (``Annotation.metric``)
    and what the legend calls it ({epoch} and {iteration} come from the measure table)."""

    metric: str
    what: str
    #: For an epoch: the panel it is about (loss or accuracy; '' both).
    on: str = ""


#: Claim metrics (``measure.metric``) that put a figure on a plot; others (comparisons
#: between runs, a drop per iteration) are told by the report, not drawn.
SHOWN = {
    "test_accuracy": Shown("test_accuracy", "test accuracy"),
    "best_test_accuracy": Shown("test_accuracy", "best test accuracy"),
    "best_grid_test_accuracy": Shown("test_accuracy", "best grid point's test accuracy"),
    "test_accuracy_at_epoch": Shown("test_accuracy", "test accuracy after epoch {epoch}"),
    "final_train_accuracy": Shown("accuracy", "final train accuracy"),
    "val_accuracy_plateau": Shown("val_accuracy", "validation accuracy plateau"),
    "min_best_test_accuracy_over_iterations": Shown("test_accuracy", "best test accuracy, every iteration"),
    "best_test_accuracy_at_iteration": Shown("test_accuracy", "best test accuracy, iteration {iteration}"),
    "test_loss": Shown("test_loss", "test loss"),
    "best_val_loss_epoch": Shown("epoch", "validation loss worsens from epoch", on="loss"),
    "epochs_run": Shown("epoch", "epochs run"),
    "grid_knee": Shown("option", "trade-off of performance and size"),
    "confusions": Shown("confusion", "top 2 confusions"),
}
_RELATIONS = {"==": "", "<": "< ", "<=": "≤ ", ">": "> ", ">=": "≥ "}


def _percent(value: float) -> str:
    return f"{100 * value:.2f}".rstrip("0").rstrip(".") + "%"


def _number(value: Any, metric: str) -> str:
    if metric.endswith("accuracy"):
        return _percent(value)
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _band(claim: Claim) -> tuple[float, float] | None:
    """What the claim allows: its interval, or its value ± tolerance."""
    if claim.relation == "in":
        return (float(claim.claimed[0]), float(claim.claimed[1]))
    if claim.relation != "==" or not claim.tolerance:
        return None
    spread = max(claim.tolerance.get("abs", 0.0), claim.tolerance.get("rel", 0.0) * abs(claim.claimed))
    return (claim.claimed - spread, claim.claimed + spread) if spread else None


def _shaded(band: tuple[float, float] | None, metric: str) -> tuple[float, float] | None:
    """The band as drawn: an accuracy's stops at 100%."""
    if band is None or not metric.endswith("accuracy"):
        return band
    return (band[0], min(band[1], 1.0))


def _label(claim: Claim, shown: Shown, point_name: Callable[[Any], str]) -> str:
    what = shown.what.format(**claim.measure)
    if shown.metric == "option":
        return f"claimed {what} at {point_name(claim.claimed)}"
    if shown.metric == "confusion":
        return f"claimed {what}: " + ", ".join(c.replace("->", "→") for c in claim.claimed)
    if claim.relation == "in":
        low, high = (_number(v, shown.metric) for v in claim.claimed)
        return f"claimed {what} between {low} and {high}"
    text = f"claimed {what} {_RELATIONS[claim.relation]}{_number(claim.claimed, shown.metric)}"
    band = _band(claim)
    if band is None:
        return text
    spread = (band[1] - band[0]) / 2 * (100 if shown.metric.endswith("accuracy") else 1)
    return f"{text} ± {spread:.2g} (shaded)"


def annotations(claim: Claim, point_name: Callable[[Any], str] = str) -> list[Annotation]:
    """The figures one training claim puts on its recipe's plots (none for most comparisons)."""
    shown = SHOWN.get(claim.measure.get("metric", ""))
    if shown is None or isinstance(claim.claimed, bool):
        return []
    label = _label(claim, shown, point_name)
    if shown.metric == "confusion":
        return [Annotation(cell, label, "confusion") for cell in claim.claimed]
    value = None if claim.relation == "in" else claim.claimed
    band = _shaded(_band(claim), shown.metric)
    return [Annotation(value, label, shown.metric, band, claim.measure.get("epoch"),
                       claim.measure.get("iteration"), on=shown.on)]


def claims_of(recipe: str) -> list[Claim]:
    """The training claims measured on ``recipe``'s own result file, in registry order."""
    return [c for c in registry() if c.measure.get("statistic") == "training"
            and c.measure.get("recipe") == recipe]


@cache
def _source_title(source_file: str) -> str:
    return load_file(DATA_DIR / source_file)[0].source.title


def _trainable(model: str, options: dict[str, Any]) -> int:
    return int(measure({"statistic": "params", "model": model, "options": options, "which": "trainable"}))


def parameter_counts(result: dict[str, Any]) -> tuple[int, ...]:
    """Trainable parameters of each point of a run: its model with the recipe's and the
    point's options; a lottery iteration counts only the convolution weights it kept."""
    table = result["recipe_table"]
    counts = []
    for point in result["points"]:
        options = dict(point["options"])
        if "removed" in options:  # a lottery iteration: options say what was pruned, not how to build
            total = _trainable(table["model"], table["options"])
            kept = options.get("remaining")
            if kept:
                prunable = measure({"statistic": "prunable", "model": table["model"],
                                    "options": table["options"]})
                total -= prunable - round(sum(kept) / len(kept))
            counts.append(total)
        else:
            counts.append(_trainable(table["model"], {**table["options"], **options}))
    return tuple(counts)


def _measured_knee(claim: Claim, directory: Path | None) -> tuple[list[Any], int, int] | None:
    """The knees the seeds' runs pick most often (the claim's own metric; several where they
    tie), how many pick each and of how many, or None when the result cannot be read."""
    try:
        value = metrics.compute(claim.measure, directory)
    except (metrics.WantsRun, KeyError, ValueError):
        return None
    picks = value.value if isinstance(value, Explained) else value
    counts = picks.counts()
    runs = counts[0][1]
    return [knee for knee, n in counts if n == runs], runs, len(picks.picks)


def describe(result: dict[str, Any], directory: Path | None = None) -> Labels:
    """The labels of ``result``'s figures: name, parameter counts, source and claims."""
    recipe = result["recipe"]
    table = recipes().get(recipe, {})
    name = table.get("title", recipe)
    point_title = table.get("point_title")

    def point_name(value: Any) -> str:  # a grid option's value as the source names the point
        options = result["points"][0]["options"]
        return point_title.format(**{k: value for k in options}) if point_title else f"{value}"
    names = tuple(point_title.format(**p["options"]) for p in result["points"]) if point_title else ()
    notes: list[Annotation] = []
    for claim in claims_of(recipe):
        notes += annotations(claim, point_name)
        if claim.measure.get("metric") == "grid_knee":
            measured = _measured_knee(claim, directory)
            if measured is not None:
                knees, runs, seeds = measured
                each = "each " if len(knees) > 1 else ""  # a tie is drawn as a tie, not as one winner
                label = (f"measured knee (Kneedle): {' and '.join(point_name(k) for k in knees)}, "
                         f"{each}picked by {runs} of {plural(seeds, 'seed')}")
                notes += [Annotation(knee, label if i == 0 else "", "option", measured=True)
                          for i, knee in enumerate(knees)]
    source = _source_title(table["source_file"]) if "source_file" in table else ""
    return Labels(name, parameter_counts(result), names, source, tuple(notes))


def draw(result: dict[str, Any], directory: Path | None = None) -> list[Path]:
    """Every figure ``result`` takes part in, with its claims, under DIR/plots."""
    def load(recipe: str) -> dict[str, Any] | None:
        path = results.path_for(recipe, directory)
        return results.read(path) if path.exists() else None
    return plots.draw_all(result, results.results_dir(directory), load,
                          lambda r: describe(r, directory))


def figures_for(claim: Claim, directory: Path | None = None) -> list[Path]:
    """The drawn plots that show a training claim's run (its recipe's own figures and the
    comparisons it takes part in), for pages that embed a plot beside its claim."""
    recipe = claim.measure.get("recipe")
    if claim.measure.get("statistic") != "training" or not isinstance(recipe, str):
        return []
    return plots.figures_of(recipe, results.results_dir(directory))
