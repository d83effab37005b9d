"""What a claim can measure: a registry of statistics, each a function of the claim's
``measure`` table. Structural statistics build the model on the meta device (no memory,
no compute) except where values matter (pruning ranks real weights).

A statistic that cannot be measured yet raises ``Pending`` with what is missing.

This module holds the statistics of a model's structure and counted costs. The registry,
``measure`` and the model helpers are in ``claims.measure_registry``; expressions over other
measurements in ``claims.expressions``; statistics of models with real weights (pruning,
the penalty, initialisation, the affine residual) in ``claims.measures_weights``; those of
datasets, result files and recipes in ``claims.measures_data``. Importing this module
registers them all, and every name stays importable from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from claims.expressions import as_list, evaluate, expression  # noqa: F401
from claims.measure_registry import (  # noqa: F401
    _REQUIRED,
    STATISTICS,
    MeasureError,
    Pending,
    Statistic,
    Unmeasurable,
    _frozen,
    _meta_model,
    _options,
    _row,
    _spec_summary,
    _summary,
    measure,
    statistic,
)
from claims.measures_data import (  # noqa: F401
    dataset,
    external,
    normalized_range,
    prepared_shape,
    recipe,
    recipe_data,
    training,
)
from claims.measures_weights import (  # noqa: F401
    _compose_affine,
    affine_residual,
    keras_init,
    penalty,
    prunable,
    pruned,
    pruning_schedule,
)
from models import cost
from models.layers import Activation, Conv2D, Dense
from training.metrics import AllOf, Difference, Explained


@statistic("params")
def params(spec: dict[str, Any]) -> int:
    """Keras' Total / Trainable / Non-trainable params (``which``, default total)."""
    which = spec.get("which", "total")
    if which not in ("total", "trainable", "non_trainable"):
        raise MeasureError(f"params: which must be total, trainable or non_trainable, got {which!r}")
    return getattr(_spec_summary(spec), which)


@statistic("layer_params")
def layer_params(spec: dict[str, Any]) -> int:
    """Parameters of one summary row (``row`` index or Keras-style ``layer`` name)."""
    return _row(spec).params


@statistic("output_shape")
def output_shape(spec: dict[str, Any]) -> list[int]:
    """Output shape of one summary row, channels-last, without the batch axis."""
    return list(_row(spec).output_shape)


@statistic("layer_count")
def layer_count(spec: dict[str, Any]) -> int:
    """Rows of the summary, or rows of one layer ``type`` (e.g. Conv2D)."""
    rows = _spec_summary(spec).rows
    kind = spec.get("type")
    return sum(1 for r in rows if kind is None or r.type == kind)


@statistic("largest_layers")
def largest_layers(spec: dict[str, Any]) -> list[int]:
    """1-based positions, among the layers of ``type``, of the ``k`` with the most parameters."""
    rows = [r for r in _spec_summary(spec).rows if r.type == spec["type"]]
    ranked = sorted(range(len(rows)), key=lambda i: -rows[i].params)[: spec["k"]]
    return sorted(i + 1 for i in ranked)


@statistic("activations")
def activations(spec: dict[str, Any]) -> int:
    """How many layers apply ``activation`` (e.g. relu) in the built model."""
    model = _meta_model(spec["model"], _options(spec))
    return sum(1 for m in model.modules()
               if isinstance(m, (Conv2D, Dense, Activation)) and m.activation == spec["activation"])


@statistic("neurons")
def neurons(spec: dict[str, Any]) -> int:
    """Output units of every convolution and fully connected layer, for one image."""
    model = _meta_model(spec["model"], _options(spec))
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        total += output[0].numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model.eval()
        model(torch.zeros(1, *model.input_shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return total


@statistic("macs")
def macs(spec: dict[str, Any]) -> int:
    """Multiply-accumulates of one forward pass on one image (torch.utils.flop_counter / 2)."""
    return cost.flops_per_image(_meta_model(spec["model"], _options(spec))) // 2


@statistic("peak_training_memory")
def peak_training_memory(spec: dict[str, Any]) -> int:
    """Bytes live at the peak of one Adam training step at ``batch`` (MemTracker, meta device)."""
    return cost.peak_training_memory(_meta_model(spec["model"], _options(spec)), spec["batch"]).total


@statistic("throughput_ratio")
def throughput_ratio(spec: dict[str, Any]) -> Explained:
    """Images per second of ``model`` over ``versus``, both timed in one saved pytest-benchmark
    run on ``device`` (``step``: forward or train-step, at ``batch``), judged over its rounds;
    where earlier sessions are kept beside it, in each session, and decided only where they
    agree. The explanation puts the latest session's time beside the counted costs, so a claim
    that holds on parameters but not on time says so."""
    from training import bench_files as bench

    step, batch, device = spec["step"], spec["batch"], spec["device"]
    try:
        mines, others = (bench.timings(step, spec[key], batch, device) for key in ("model", "versus"))
    except bench.BenchmarkMissing as why:
        raise Pending(str(why), "benchmarks") from None
    except bench.BenchmarkDamaged as why:
        raise Pending(f"{why}, or restore it from git", f"repair {why.path.stem}") from None
    pairs = [(m, o) for m in mines for o in others if m.file == o.file]
    mine, other = pairs[0]
    if any(len(t.rounds) < 2 for pair in pairs for t in pair):
        raise Pending(f"needs the per-round times of both timings in {mine.file} (pytest-benchmark's "
                      "stats.data): run the benchmarks again", "benchmarks")
    ratio = mine.images_per_s / other.images_per_s
    theirs, ours = (cost.cost(_meta_model(spec[key], ()), batch) for key in ("versus", "model"))
    counted = {"trainable parameters": theirs.trainable / ours.trainable,
               "FLOPs": theirs.flops_per_image / ours.flops_per_image,
               "peak memory": theirs.peak_training.total / ours.peak_training.total}
    fewer = ", ".join(f"{r:.3g}x fewer {what}" if r >= 1 else f"{1 / r:.3g}x more {what}"
                      for what, r in counted.items())
    on_params = "holds" if counted["trainable parameters"] > 1 else "fails"
    on_time = "holds" if ratio > 1 else "fails"
    # the speed-up is the other's time over this one's: judged over the rounds, on log times
    speedups = [Difference(tuple(math.log(t) for t in o.rounds), tuple(math.log(t) for t in m.rounds),
                           False, f"{spec['versus']} over {spec['model']}, seconds per {step} of {batch} "
                           f"images in {m.file}" + (f" ({m.machine})" if m.machine else ""), (m.file,),
                           log_ratio=True) for m, o in pairs]
    speedup = AllOf(tuple(speedups), mode="agree")  # decided by two sessions or more (MIN_SESSIONS)
    where = f"{mine.file}, {mine.machine}" if mine.machine else mine.file
    return Explained(speedup, (
        f"{spec['model']} {mine.seconds_per_batch * 1e3:.3g} ms and {spec['versus']} "
        f"{other.seconds_per_batch * 1e3:.3g} ms per {step} of {batch} images ({mine.device}, "
        f"{mine.threads} threads, {where}); against it {spec['model']} has {fewer}: "
        f"the claim {on_params} on parameters and {on_time} on time in the latest session"),
        tuple(m.file for m, _ in pairs))


def _keras_layers(model: nn.Module) -> list[nn.Module]:
    """The model's layers in Keras' order: its leaf modules, one per summary row."""
    return [m for m in model.modules() if not list(m.children())]


def _pair(value: Any) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


#: How each argument of a Keras layer call reads off our Keras-shaped layers (models.layers).
_LAYER_ATTRIBUTES: dict[str, Callable[[nn.Module], Any]] = {
    "type": lambda m: [type(m).__name__],
    "filters": lambda m: m.out_channels,
    "kernel_size": lambda m: _pair(m.kernel_size),
    "pool_size": lambda m: _pair(m.kernel_size),
    "strides": lambda m: _pair(m.stride),
    "padding": lambda m: [m.padding if isinstance(m.padding, str) else "valid" if not any(_pair(m.padding))
                          else f"padding {m.padding}"],
    "activation": lambda m: [m.activation or "linear"],
    "units": lambda m: m.out_features,
    "rate": lambda m: m.p,
    "kernel_regularizer": lambda m: None if m.regularizer is None else list(m.regularizer),
    "momentum": lambda m: 1 - m.momentum,  # PyTorch weighs the new batch; Keras the running mean
    "epsilon": lambda m: m.eps,
}


@statistic("layer_config")
def layer_config(spec: dict[str, Any]) -> Any:
    """An argument of the Keras layer call at ``row`` (in Keras' layer order) as the built model
    has it: type, filters, kernel_size, strides, padding, activation, pool_size, units, rate,
    kernel_regularizer; ``input_shape`` (channels-last; ``channel_axis = false`` drops a single
    channel, as Keras' (28, 28)); ``count``, the layers from ``row`` on. An attribute the layer
    does not have measures None, which no claimed value equals."""
    model = _meta_model(spec["model"], _options(spec))
    layers, row, attribute = _keras_layers(model), spec["row"], spec["attribute"]
    if attribute == "count":
        return len(layers) - row
    if attribute == "input_shape":
        channels, *size = model.input_shape
        return size if not spec.get("channel_axis", True) and channels == 1 else [*size, channels]
    if attribute not in _LAYER_ATTRIBUTES:
        raise MeasureError(f"layer_config: unknown attribute {attribute!r}; valid: "
                           f"{', '.join([*_LAYER_ATTRIBUTES, 'input_shape', 'count'])}")
    if not 0 <= row < len(layers):
        return None  # the code has a layer the builder does not
    try:
        return _LAYER_ATTRIBUTES[attribute](layers[row])
    except AttributeError:
        return None


@statistic("layer_types")
def layer_types(spec: dict[str, Any]) -> list[str]:
    """The Keras types of the summary rows ``start`` (default 0) up to ``stop`` (default the
    end), in order: which layers a model is made of, as a sentence lists them."""
    rows = _spec_summary(spec).rows[spec.get("start", 0):spec.get("stop")]
    return [r.type for r in rows]


@statistic("output_size")
def output_size(spec: dict[str, Any]) -> int:
    """Values per image at one summary row's output: the product of its output shape, or,
    with ``axis``, that one axis (``-1``: the channels, i.e. the feature maps)."""
    shape = list(_row(spec).output_shape)
    if "axis" in spec:
        return shape[spec["axis"]]
    size = 1
    for n in shape:
        size *= n
    return size


@statistic("model_input")
def model_input(spec: dict[str, Any]) -> list[int]:
    """The input a built ``model`` takes, channels-last as Keras writes it: (height, width, channels)."""
    channels, *size = _meta_model(spec["model"], _options(spec)).input_shape
    return [*size, channels]
