"""What the figures of ``training.plots`` are drawn from: what a figure says beyond its
result file (``Labels``, the claimed figures as ``Annotation``), matplotlib loaded only when
a figure is drawn, seed-mean curves with their ±1 std bands, axes of whole epochs and of
percent, the claimed values as lines, the zoom on the settled epochs, headings and saving.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.measurements import plural

#: Runs with at most this many epochs draw a marker per epoch (one epoch is one point,
#: and a line through one point draws nothing).
SHORT_RUN = 12
DPI = 100
CLAIM_STYLE = {"linestyle": "--", "linewidth": 1.2}


@dataclass(frozen=True)
class Annotation:
    """A claimed figure, drawn where the run can be compared with it.

    ``metric`` says what the value is and so where it goes: an epoch-log key (``accuracy``,
    ``val_accuracy``, ``test_accuracy``, the same with ``loss``) draws a horizontal line on
    that quantity's axis; ``epoch`` a vertical line at an epoch; ``option`` a grid option's
    value (the knee of a width grid); ``confusion`` a 'true->predicted' cell of the confusion
    matrix. Accuracies are fractions, as result files hold them.
    """

    value: Any
    label: str
    metric: str = "test_accuracy"
    #: The range the claim allows (its tolerance, or a claimed interval), shaded.
    band: tuple[float, float] | None = None
    #: A claim about one epoch: a marker there instead of a line across the plot.
    epoch: int | None = None
    #: The grid point or lottery iteration it is about (drawn in that curve's colour).
    point: int | None = None
    #: A measured mark (the knee found in the results) rather than the source's claim.
    measured: bool = False
    #: For an ``epoch``: the panel it is about, ``loss`` or ``accuracy`` ('': both).
    on: str = ""


@dataclass(frozen=True)
class Labels:
    """What a recipe's figures say beyond its result file: the network's name as the
    source gives it, trainable parameters per point, per-point names, the source, claims."""

    name: str
    params: tuple[int | None, ...] = ()
    points: tuple[str, ...] = ()
    source: str = ""
    annotations: tuple[Annotation, ...] = ()

    def point_name(self, index: int, options: dict[str, Any]) -> str:
        return self.points[index] if index < len(self.points) else _tag(options)

    def point_params(self, index: int) -> int | None:
        return self.params[index] if index < len(self.params) else None

    def heading(self) -> str:
        """The name, with the parameter count when all points share one."""
        counts = {p for p in self.params if p is not None}
        return f"{self.name} ({_parameters(counts.pop())})" if len(counts) == 1 else self.name


#: What the claims layer says about a result's recipe (``claims.figures.describe``).
Describe = Callable[[dict[str, Any]], Labels]


def plain(result: dict[str, Any]) -> Labels:
    """The labels of a result nobody described: its recipe id and no claims."""
    return Labels(name=result["recipe"])


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


def _parameters(count: int) -> str:
    return f"{count:,} parameter{'s' if count != 1 else ''}"


def _device(text: str) -> str:
    """Provenance's device, read aloud ('1 threads' was written by older runs); a file that
    joined runs of one machine with different thread counts says so once ('cpu: x86_64, 1 and 2
    threads'), so that the caption fits under the figure."""
    runs = list(dict.fromkeys(text.split(" | ")))
    heads = {r.rpartition(", ")[0] for r in runs}
    if len(runs) > 1 and len(heads) == 1 and all(r.endswith("threads") for r in runs):
        counts = " and ".join(r.rpartition(", ")[2].split()[0] for r in runs)
        return f"{heads.pop()}, {counts} threads"
    return re.sub(r"\b1 threads\b", "1 thread", " | ".join(runs))


def _tag(options: dict[str, Any]) -> str:
    """A grid point's or a lottery iteration's legend label."""
    if "removed" in options:
        k = options["iteration"]
        removed = f"{100 * options['removed']:.2f}".rstrip("0").rstrip(".")
        return "original" if k == 0 else f"iteration {k}, {removed}% pruned"
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _with_params(name: str, count: int | None) -> str:
    return f"{name} ({_parameters(count)})" if count is not None else name


def _curve(point: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.array([e[key] for e in point["epochs"] if key in e], dtype=float)  # (epochs, seeds)
    if values.ndim != 2:  # the run did not log this metric (no validation split, say)
        return np.arange(0), np.zeros(0), np.zeros(0)
    epochs = np.arange(1, len(values) + 1)
    return epochs, np.nanmean(values, axis=1), np.nanstd(values, axis=1)


def _band(ax: Any, point: dict[str, Any], key: str, label: str, color: Any = None) -> Any:
    """The seed mean with a ±1 std band; a marker per epoch on short runs. The line, or None."""
    epochs, mean, std = _curve(point, key)
    if not len(epochs):
        return None
    marker = "o" if len(epochs) <= SHORT_RUN else None
    (line,) = ax.plot(epochs, mean, label=label, color=color, marker=marker, markersize=4)
    ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def _is_accuracy(key: str) -> bool:
    return key.endswith("accuracy")


def _percent(ax: Any) -> None:
    """Fractions on the y axis read as percent, with as many decimals as the tick step needs
    (98.8%, not 98.800%)."""
    from matplotlib.ticker import PercentFormatter

    class Percent(PercentFormatter):
        def __call__(self, x: float, pos: Any = None) -> str:
            ticks = 100 * np.asarray(self.axis.get_majorticklocs() if self.axis is not None else [x])
            exact = (d for d in range(5) if np.allclose(ticks, np.round(ticks, d), atol=1e-6))
            self.decimals = next(exact, 5)
            return super().__call__(x, pos)

    ax.yaxis.set_major_formatter(Percent(xmax=1))


def _epochs(ax: Any) -> None:
    """An x axis of whole epochs."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _claims(ax: Any, annotations: list[Annotation], colors: dict[Any, Any]) -> None:
    """Horizontal lines (or one-epoch markers) at the claimed values, vertical ones at
    claimed epochs, each in the colour of the curve it is about and named in the legend."""
    for note in annotations:
        color = colors.get(note.metric if note.point is None else note.point, "black")
        if note.epoch is not None:
            ax.plot([note.epoch], [note.value], marker="^", color=color, markersize=9,
                    markerfacecolor="none", markeredgewidth=1.5, linestyle="none", label=note.label)
            continue
        line, span = (ax.axvline, ax.axvspan) if note.metric == "epoch" else (ax.axhline, ax.axhspan)
        if note.value is not None:
            line(note.value, color=color, label=note.label, **CLAIM_STYLE)
        if note.band:  # the claim's tolerance, or a claimed interval (value None) on its own
            span(*note.band, color=color, alpha=0.07, linewidth=0,
                 label=note.label if note.value is None else None)


def _zoom(series: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
          annotations: list[Annotation]) -> tuple[int, float, float] | None:
    """Where the settled part of the curves and the claimed values lie: (first epoch, low,
    high), or None when the whole run already reads well at full scale. A zoom leaves out
    the first quarter of the epochs, whose climb flattens the part the claims are about."""
    series = [s for s in series if len(s[0])]
    if not series or max(len(s[0]) for s in series) < 8:
        return None
    first = max(3, max(len(s[0]) for s in series) // 4)
    claimed = [n.value for n in annotations if n.metric != "epoch" and n.value is not None]
    claimed += [b for n in annotations if n.metric != "epoch" and n.band for b in n.band]
    every = np.concatenate([np.r_[m - s, m + s] for _, m, s in series] + [np.asarray(claimed, float)])
    settled = np.concatenate([m[x >= first] for x, m, _ in series] + [np.asarray(claimed, float)])
    every, settled = every[np.isfinite(every)], settled[np.isfinite(settled)]
    low, high = settled.min(), settled.max()
    if high - low > 0.4 * (every.max() - every.min()):
        return None
    pad = 0.08 * (high - low or 0.01)
    return first, float(low - pad), float(high + pad)


def _zoomed(zoom_ax: Any, lines: list[Any], annotations: list[Annotation],
            colors: dict[Any, Any], limits: tuple[int, float, float], ylabel: str,
            what: str = "") -> None:
    """The settled epochs of ``lines`` again, on limits that hold every value they show."""
    first, low, high = limits
    for line in lines:
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        keep = x >= first
        zoom_ax.plot(x[keep], y[keep], color=line.get_color(), marker=line.get_marker(), markersize=4)
    _claims(zoom_ax, [n for n in annotations if n.metric != "epoch"], colors)
    last = max(len(line.get_xdata()) for line in lines)
    zoom_ax.set_xlim(first - 0.5, last + 0.5)
    zoom_ax.set_ylim(low, high)
    zoom_ax.set_title(f"{what or ylabel},\nzoomed: epochs {first}–{last}, seed means", fontsize="small")
    _epochs(zoom_ax)
    zoom_ax.set_ylabel(ylabel)
    zoom_ax.grid(alpha=0.3)
    if _is_accuracy(ylabel.replace(" ", "_")):
        _percent(zoom_ax)


def _heading(fig: Any, title: str, detail: str) -> None:
    """The network and what the figure shows on top; where it comes from as a caption below."""
    fig.suptitle(title)
    fig.supxlabel(detail, fontsize="small", color="dimgray")


def _detail(result: dict[str, Any], labels: Labels) -> str:
    seeds = plural(len(result["seeds"]), "seed")
    parts = [labels.source] if labels.source else []
    parts += [f"mean of {seeds} ± 1 std", _device(result["provenance"]["device"])]
    return " · ".join(parts)


#: The PNG text chunk in which a figure records the result files it was drawn from.
STAMP = "lean-cnn-claims drawn from"


def digest(result: dict[str, Any]) -> str:
    """sha256 of a result's content (its canonical JSON, without the file's format tag), as a
    figure records it: the same for the result a run returns and for its file read back."""
    content = {k: v for k, v in result.items() if k != "format"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _save(fig: Any, path: Path, drawn_from: Sequence[dict[str, Any]]) -> Path:
    """Write the figure with a stamp of what it shows (recipe -> ``digest`` of its result), so
    that a figure left behind by newer seeds can be told from a current one (``drawn_from``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = json.dumps({r["recipe"]: digest(r) for r in drawn_from}, sort_keys=True)
    fig.savefig(path, dpi=DPI, metadata={STAMP: stamp})
    _pyplot().close(fig)
    return path


def drawn_from(path: Path) -> dict[str, str] | None:
    """The recipes and result digests a saved figure was drawn from; None for a figure
    without the stamp (drawn before figures carried it)."""
    from PIL import Image

    with Image.open(path) as image:
        stamp = image.text.get(STAMP)
    return None if stamp is None else json.loads(stamp)
