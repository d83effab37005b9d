"""What a claim can measure: a registry of statistics, each a function of the claim's
``measure`` table. Structural statistics build the model on the meta device (no memory,
no compute) except where values matter (pruning ranks real weights).

A statistic that cannot be measured yet raises ``Pending`` with what is missing.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import nn

import models
from models import cost
from models.layers import Activation, Conv2D, Dense
from models.summary import Summary, summarize
from training.metrics import Difference, Explained


class Pending(Exception):
    """The measurement needs something this run does not have (training results, data)."""


class MeasureError(ValueError):
    """The measure table is wrong: unknown statistic, missing key, bad expression."""


class Unmeasurable(Exception):
    """A figure about work outside this suite's reach; the message says whose it is."""


Statistic = Callable[[dict[str, Any]], Any]
STATISTICS: dict[str, Statistic] = {}


def statistic(name: str) -> Callable[[Statistic], Statistic]:
    def wrap(fn: Statistic) -> Statistic:
        STATISTICS[name] = fn
        return fn
    return wrap


def measure(spec: dict[str, Any]) -> Any:
    name = spec.get("statistic")
    if name not in STATISTICS:
        raise MeasureError(f"unknown statistic {name!r}; valid: {', '.join(sorted(STATISTICS))}")
    missing = [key for key in _REQUIRED.get(name, ()) if key not in spec]
    if missing:
        raise MeasureError(f"statistic {name!r} needs the key(s) {', '.join(missing)}")
    try:
        return STATISTICS[name](spec)
    except KeyError as error:  # an unknown model, dataset, recipe or key below the statistic
        raise MeasureError(f"statistic {name!r}: {error.args[0] if error.args else error}") from None
    except (TypeError, IndexError, ArithmeticError, RecursionError) as error:
        raise MeasureError(f"statistic {name!r}: {error}") from None


#: Keys a statistic cannot do without, checked before it runs (so that an unknown model named in
#: the table is not mistaken for a missing key).
_REQUIRED = {"params": ("model",), "layer_params": ("model",), "output_shape": ("model",),
             "layer_count": ("model",), "expression": ("expr",), "training": ("recipe", "metric"),
             "recipe": ("recipe", "field"), "recipe_data": ("recipe", "field"),
             "dataset": ("dataset", "fact")}


def _frozen(value: Any) -> Any:
    """TOML gives lists and dicts; builders and caches want tuples."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _options(spec: dict[str, Any]) -> tuple:
    return _frozen(spec.get("options", {}))


@cache
def _meta_model(name: str, options: tuple) -> nn.Module:
    with torch.device("meta"):
        return models.build(name, **dict(options))


@cache
def _summary(name: str, options: tuple) -> Summary:
    return summarize(_meta_model(name, options))


def _spec_summary(spec: dict[str, Any]) -> Summary:
    return _summary(spec["model"], _options(spec))


def _row(spec: dict[str, Any]):
    summary = _spec_summary(spec)
    if "row" in spec:
        row, count = spec["row"], len(summary.rows)
        if not isinstance(row, int) or isinstance(row, bool) or not -count <= row < count:
            raise MeasureError(f"row {row!r} is not a row of {spec['model']!r}, which has "
                               f"{len(summary.rows)} rows (0 to {len(summary.rows) - 1})")
        return summary.rows[row]
    return summary.layer(spec["layer"])


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
    run on ``device`` (``step``: forward or train-step, at ``batch``). The explanation puts the
    time beside the counted costs, so a claim that holds on parameters but not on time says so."""
    from training import bench

    step, batch, device = spec["step"], spec["batch"], spec["device"]
    try:
        mine, other = (bench.timing(step, spec[key], batch, device) for key in ("model", "versus"))
    except bench.BenchmarkMissing as why:
        raise Pending(str(why)) from None
    if len(mine.rounds) < 2 or len(other.rounds) < 2:
        raise Pending(f"needs the per-round times of both timings in {mine.file} (pytest-benchmark's "
                      "stats.data): run the benchmarks again")
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
    speedup = Difference(tuple(math.log(t) for t in other.rounds), tuple(math.log(t) for t in mine.rounds),
                         False, f"{spec['versus']} over {spec['model']}, seconds per {step} of {batch} "
                         "images", (mine.file,), log_ratio=True)
    return Explained(speedup, (
        f"{spec['model']} {mine.seconds_per_batch * 1e3:.3g} ms and {spec['versus']} "
        f"{other.seconds_per_batch * 1e3:.3g} ms per {step} of {batch} images ({mine.device}, "
        f"{mine.threads} threads, {mine.file}); against it {spec['model']} has {fewer}: "
        f"the claim {on_params} on parameters and {on_time} on time"), (mine.file,))


@statistic("prunable")
def prunable(spec: dict[str, Any]) -> int:
    """Convolution kernel weights: what the post prunes (biases and BatchNorm untouched)."""
    from training.lottery import conv_weights

    return sum(m.weight.numel() for m, _ in conv_weights(_meta_model(spec["model"], _options(spec))))


def _count_pruned(model: nn.Module, count: str) -> int:
    from training.lottery import remaining, trainable_after

    counters = {"remaining": remaining, "trainable": trainable_after}
    if count not in counters:
        raise MeasureError(f"count must be one of {', '.join(counters)}, got {count!r}")
    return counters[count](model)


@statistic("pruned")
def pruned(spec: dict[str, Any]) -> int:
    """Global L1 magnitude pruning of the conv kernels by ``amount`` (a fraction), then count
    ``remaining`` conv weights or all non-zero ``trainable`` parameters."""
    from training.lottery import prune_to

    torch.manual_seed(0)
    model = models.build(spec["model"], **dict(_options(spec)))
    prune_to(model, spec["amount"])
    return _count_pruned(model, spec.get("count", "remaining"))


@statistic("pruning_schedule")
def pruning_schedule(spec: dict[str, Any]) -> Any:
    """Run a pruning ``schedule`` (see ``training.lottery.Schedule``) on real weights, iteration
    after iteration with the masks kept, and report after ``iteration`` (default: the last)
    the ``remaining`` or ``trainable`` count, or the ``removed_percent`` of the conv kernels."""
    from training.lottery import Schedule, conv_weights, prune_to, remaining

    schedule = Schedule.from_spec(spec["schedule"])
    torch.manual_seed(0)
    model = models.build(spec["model"], **dict(_options(spec)))
    iteration = spec.get("iteration", len(schedule.removed))
    if not 1 <= iteration <= len(schedule.removed):
        raise MeasureError(f"iteration must be 1..{len(schedule.removed)}, got {iteration!r}")
    for fraction in schedule.removed[:iteration]:
        prune_to(model, fraction, schedule.scope)
    report = spec.get("report", "remaining")
    if report == "removed_percent":
        total = sum(m.weight.numel() for m, _ in conv_weights(model))
        return 100 * (1 - remaining(model) / total)
    return _count_pruned(model, report)


@statistic("penalty")
def penalty(spec: dict[str, Any]) -> float:
    """What the code's ``regularizers.l1_l2`` call adds to the loss, as this suite reproduces
    Keras (``models.layers.penalty``, ``l1 * sum|w| + l2 * sum w**2``; the trainer's stacked step
    adds the same sums), measured on the first
    regularized kernel of ``model`` with real (seed 0) weights: ``what = "factor"``, the
    penalty's change per unit of the ``term``'s coefficient (``l1`` or ``l2``) divided by that
    term's norm (``||w||_1`` or ``||w||_2**2``); ``what = "degree"``, the exponent k with
    penalty(2w) = 2**k penalty(w) for that term alone (1 for a norm or distance, 2 for a squared norm)."""
    from models.layers import penalty as keras_penalty
    from models.layers import regularized

    torch.manual_seed(0)
    model = models.build(spec["model"], **dict(_options(spec)))
    kernels = regularized(model)
    if not kernels:
        raise MeasureError(f"penalty: {spec['model']} has no regularized kernel with these options")
    name = kernels[0][0]
    layer = model.get_submodule(name.rsplit(".", 1)[0])
    others = [model.get_submodule(n.rsplit(".", 1)[0]) for n, _, _ in kernels[1:]]
    for module in others:
        module.regularizer = (0.0, 0.0)
    term, what = spec["term"], spec["what"]
    if term not in ("l1", "l2") or what not in ("factor", "degree"):
        raise MeasureError(f"penalty: term must be l1 or l2, what factor or degree: {term!r}, {what!r}")
    coefficient = (1.0, 0.0) if term == "l1" else (0.0, 1.0)
    w = layer.weight.detach()
    with torch.no_grad():
        layer.regularizer = (0.0, 0.0)
        base = float(keras_penalty(model))
        layer.regularizer = coefficient
        once = float(keras_penalty(model)) - base
        if what == "factor":
            norm = float(w.abs().sum()) if term == "l1" else float(w.square().sum())
            return round(once / norm, 9)
        layer.weight.mul_(2.0)
        twice = float(keras_penalty(model)) - base
    return round(float(torch.log2(torch.tensor(twice / once))), 6)


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
              ast.USub: operator.neg, ast.Lt: operator.lt,
              ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
              ast.Eq: operator.eq}
def _round(x: Any, digits: Any = None) -> Any:
    if digits is not None and not (isinstance(digits, int) and abs(digits) <= _MAX_DIGITS):
        raise MeasureError(f"round: digits must be an integer within ±{_MAX_DIGITS}, got {digits!r}")
    return round(x) if digits is None else round(x, digits)


_FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": _round, "int": int, "len": len}
#: Bounds on what one expression may do, so that no claim file can hang or crash the report.
_MAX_LENGTH, _MAX_DEPTH, _MAX_DIGITS, _MAX_MAGNITUDE, _MAX_REFERENCE_DEPTH = 1000, 40, 30, 1e30, 20
_reference_depth = 0


def evaluate(expr: str, names: dict[str, Any]) -> Any:
    """Arithmetic and comparisons over numbers and named measurements; nothing else."""
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Compare) and all(type(o) in _OPERATORS for o in node.ops):
            left, ok = ev(node.left), True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                ok = ok and _OPERATORS[type(op)](left, right)
                left = right
            return ok
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return all(ev(v) for v in node.values)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise MeasureError(f"expression {expr!r}: {ast.dump(node)[:60]} is not allowed "
                           f"(numbers, names {sorted(names)}, + - * / // %, comparisons, "
                           f"{', '.join(_FUNCTIONS)})")
    if not isinstance(expr, str) or len(expr) > _MAX_LENGTH:
        raise MeasureError(f"expression must be a string of at most {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise MeasureError(f"expression {expr!r} is not valid: {getattr(error, 'msg', error)}") from None
    depth = _depth(tree)
    if depth > _MAX_DEPTH:
        raise MeasureError(f"expression {expr[:60]!r} nests {depth} deep; at most {_MAX_DEPTH}")
    try:
        value = ev(tree)
    except (ArithmeticError, ValueError, TypeError) as error:  # 1/0, int(1e999), a list plus a number
        if isinstance(error, MeasureError):
            raise
        raise MeasureError(f"expression {expr!r}: {type(error).__name__}: {error}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > _MAX_MAGNITUDE:
        raise MeasureError(f"expression {expr!r} gives {value:.3g}, beyond ±{_MAX_MAGNITUDE:g}")
    return value


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0) if len(children) < 10_000 else _MAX_DEPTH + 1


@statistic("expression")
def expression(spec: dict[str, Any]) -> Any:
    """``expr`` over constants and ``refs``, each ref itself a measure table."""
    global _reference_depth
    if _reference_depth >= _MAX_REFERENCE_DEPTH:
        raise MeasureError(f"references nested deeper than {_MAX_REFERENCE_DEPTH}")
    refs = spec.get("refs", {})
    if not isinstance(refs, dict):
        raise MeasureError(f"refs must be a table of name = measure table, got {refs!r}")
    _reference_depth += 1
    try:
        values = {name: measure(ref if isinstance(ref, dict) else {"statistic": None})
                  for name, ref in refs.items()}
    finally:
        _reference_depth -= 1
    return evaluate(spec["expr"], values)


@statistic("dataset")
def dataset(spec: dict[str, Any]) -> Any:
    """A ``fact`` about a ``dataset`` (size, split_sizes, image_shape, classes, ...), measured
    on the files under the data root; pending while they are absent or damaged."""
    from training import datasets

    name = spec["dataset"]
    try:
        facts = datasets.facts(name)
    except datasets.UnknownDataset as error:
        raise MeasureError(str(error)) from None
    except datasets.DataMissing as error:
        raise Pending(f"needs the {name} dataset: {error}") from None
    except datasets.DatasetError as error:  # a wrong digest, a malformed file
        raise Pending(f"needs an intact {name} dataset: {error}") from None
    if spec["fact"] not in facts:
        raise MeasureError(f"dataset: unknown fact {spec['fact']!r}; {name} has {', '.join(facts)}")
    return facts[spec["fact"]]


@statistic("training")
def training(spec: dict[str, Any]) -> Any:
    """A statistic of a training run of ``recipe`` (accuracy, loss, epochs, a comparison),
    read from its result file under ``results/``: only a run that happened gives a verdict."""
    from training import metrics

    try:
        return metrics.compute(spec)
    except (metrics.NotRun, metrics.CappedRun) as why:
        raise Pending(str(why)) from None


@statistic("recipe")
def recipe(spec: dict[str, Any]) -> Any:
    """A hyper-parameter the run actually used, read from its result file's recipe."""
    from training import metrics

    try:
        data = metrics.loader(allow_capped=True)(spec["recipe"])
    except (metrics.NotRun, metrics.CappedRun) as why:
        raise Pending(str(why)) from None
    table = data["recipe_table"]
    field = spec["field"]
    from training.recipes import DOCUMENTATION_KEYS

    if field in DOCUMENTATION_KEYS:
        raise MeasureError(f"recipe field {field!r} is kept for documentation and no trainer code reads it: "
                           "check it as the code sets it with statistic 'recipe_data'")
    head = field.split(".")[0]
    if head not in table and head not in table.get("extra", {}):
        raise MeasureError(f"recipe {spec['recipe']!r} has no field {field!r}")
    return _field(table if head in table else table["extra"], field, spec["recipe"])


def _field(table: dict[str, Any], field: str, name: str) -> Any:
    """``field`` of a recipe table; a dotted field reads into its tables (``options.hidden``,
    ``grid.dropout.product``)."""
    value: Any = table
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            raise MeasureError(f"recipe {name!r} has no field {field!r}")
        value = value[key]
    return value


def _recipes() -> dict[str, dict[str, Any]]:
    from claims.registry import recipes

    return recipes()


@statistic("recipe_data")
def recipe_data(spec: dict[str, Any]) -> Any:
    """A hyper-parameter as the source's code sets it, from the registry's recipe table;
    lets the source's prose be checked against its own code."""
    table = _recipes()
    if spec["recipe"] not in table:
        raise MeasureError(f"unknown recipe {spec['recipe']!r}; recipes: {', '.join(sorted(table))}")
    return _field(table[spec["recipe"]], spec["field"], spec["recipe"])


@statistic("external")
def external(spec: dict[str, Any]) -> Any:
    """A figure about work outside this suite's reach (hardware, training days)."""
    raise Unmeasurable(spec["why"])


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


@statistic("as_list")
def as_list(spec: dict[str, Any]) -> list[Any]:
    """The measure ``of`` as a one-item list: a claimed string (a loss, an optimizer) is a list."""
    return [measure(spec["of"])]


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


@statistic("normalized_range")
def normalized_range(spec: dict[str, Any]) -> list[float]:
    """[lowest, highest] value the trainer's input normalization (the sources' ``x / 255``,
    ``training.run``) gives the stored uint8 pixels 0 and 255: the range the network sees."""
    import numpy as np

    from training.run import _images

    pixels = np.array([[[0, 255]]], dtype=np.uint8)  # one 1x2 greyscale image: darkest, brightest
    x = _images(pixels, (1, 2), torch.device("cpu"))
    return [float(x.min()), float(x.max())]


def _compose_affine(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's Dense layers composed into one affine map of the flattened input (channels
    first, as ``x.flatten(1)``): ``(W, b)`` with ``W x + b`` what the layers' weights give when
    nothing but them acts. Handles the chain Keras builds from Dense layers on an image: Dense
    layers on the channel axis of every pixel (one per-pixel map, composed as matrices), Flatten
    (its own order of the values, read off the layer itself), then Dense layers on vectors;
    InputLayer and Dropout (eval mode) are identities. Any other layer is not composable here."""
    from models.layers import Dropout as KerasDropout
    from models.layers import Flatten, InputLayer

    channels, *size = model.input_shape
    pixels = size[0] * size[1]
    a = torch.eye(channels, dtype=torch.float64)            # per-pixel map: channels x input channels
    c = torch.zeros(channels, dtype=torch.float64)
    full: tuple[torch.Tensor, torch.Tensor] | None = None   # after Flatten: (W, b) on the whole input
    order: torch.Tensor | None = None                       # Flatten's order, for the next Dense
    for layer in (m for m in model.modules() if not list(m.children())):  # Keras' layer order
        if isinstance(layer, (InputLayer, KerasDropout, nn.Identity)):
            continue
        if isinstance(layer, Flatten):
            width = a.shape[0]
            index = torch.arange(width * pixels).reshape(1, width, *size)
            order = layer(index).flatten()  # flat position -> channels-first index (c, h, w)
            continue
        if not isinstance(layer, nn.Linear):
            raise MeasureError(f"affine_residual: cannot compose a {type(layer).__name__} layer")
        w, bias = layer.weight.detach().double(), layer.bias.detach().double()
        if order is not None:  # the first Dense after Flatten: reorder its columns channels-first
            width = a.shape[0]
            cf = torch.empty_like(w)
            cf[:, order] = w
            cf = cf.reshape(w.shape[0], width, pixels)
            full = (torch.einsum("kcp,cd->kdp", cf, a).reshape(w.shape[0], -1),
                    bias + torch.einsum("kcp,c->k", cf, c))
            order = None
        elif full is None:
            a, c = w @ a, w @ c + bias
        else:
            full = (w @ full[0], w @ full[1] + bias)
    if full is None:
        raise MeasureError("affine_residual: the model has no Flatten followed by a Dense layer")
    return full


@cache
def _affine_residual(name: str, options: tuple, seed: int, inputs: int) -> float:
    torch.manual_seed(seed)
    model = models.build(name, **dict(options)).double().eval()
    with torch.no_grad():
        for module in model.modules():  # Keras sets biases to zero; training moves them
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.normal_(0.0, 0.1)
        w, b = _compose_affine(model)
        x = torch.rand(inputs, *model.input_shape, dtype=torch.float64)  # pixels in [0, 1]
        return float((model(x) - (x.flatten(1) @ w.T + b)).abs().max())


@statistic("affine_residual")
def affine_residual(spec: dict[str, Any]) -> float:
    """Is the network one affine map? ``model`` (with ``options``) is built with real weights
    (``seed``, default 0: Keras' glorot-uniform kernels, biases drawn N(0, 0.1^2) so that their
    path is composed too) in float64 and eval mode; its Dense layers are composed into one map
    ``W x + b`` of the input's pixels (``_compose_affine``: weights only, no activation); the
    result is the largest absolute difference between the network's logits and the map's over
    ``inputs`` (default 16) random images with pixels uniform in [0, 1]. Rounding alone leaves
    about 1e-12: the network is that affine map, i.e. a multinomial logistic regression on the
    pixels. An activation that acts between the layers (ReLU) leaves a difference of the size of
    the logits themselves."""
    return _affine_residual(spec["model"], _options(spec), spec.get("seed", 0), spec.get("inputs", 16))


@cache
def _prepared_shape(dataset: str, split: str, array: str) -> list[int]:
    import numpy as np

    from training import datasets
    from training.run import _images

    data = datasets.load(dataset)
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    if array == "images":  # what the trainer feeds: x / 255 with a channel axis, shown channels-last
        # the trainer's transform maps each image alone: one image gives the shape of all
        _, c, h, w = _images(images[:1], tuple(images.shape[1:3]), torch.device("cpu")).shape
        return [len(images), h, w, c]
    classes = np.unique(data.test_labels).shape[0]  # num_classes = np.unique(y_test).shape[0]
    prepared = {"labels": labels,
                "labels_expanded": np.expand_dims(labels, axis=1),
                "one_hot": np.eye(classes, dtype=np.float32)[labels]}  # keras.utils.to_categorical
    if array not in prepared:
        raise MeasureError(f"prepared_shape: array must be images, {', '.join(prepared)}; got {array!r}")
    return list(prepared[array].shape)


@statistic("prepared_shape")
def prepared_shape(spec: dict[str, Any]) -> list[int]:
    """The shape (as numpy prints it, channels-last) of a ``split`` (train or test) of
    ``dataset`` after the source's preparation, computed on the files: ``images``, the arrays
    the trainer feeds (``training.run``: x / 255 with a channel axis, as the code's
    ``np.expand_dims(x / 255, axis=3)``); ``labels``; ``labels_expanded``
    (``np.expand_dims(y, axis=1)``); ``one_hot`` (``keras.utils.to_categorical`` with the
    classes counted in the test labels, as the code counts them)."""
    from training import datasets

    try:
        return _prepared_shape(spec["dataset"], spec["split"], spec["array"])
    except datasets.DataMissing as error:
        raise Pending(f"needs the {spec['dataset']} dataset: {error}") from None
    except datasets.DatasetError as error:
        raise Pending(f"needs an intact {spec['dataset']} dataset: {error}") from None


@statistic("keras_init")
def keras_init(spec: dict[str, Any]) -> float:
    """How the built ``model``'s Dense and Conv2D layers start (seed 0), against Keras' defaults:
    ``check = "bias"``, the largest absolute bias (zeros: 0); ``check = "glorot"``, over every
    kernel, the largest |max|w| / limit - 1| with limit = sqrt(6 / (fan_in + fan_out)), the
    bound of glorot-uniform: near 0 when each kernel fills its glorot interval and no more
    (PyTorch's default, kaiming-uniform with a = sqrt(5), has limit 1 / sqrt(fan_in))."""
    torch.manual_seed(0)
    model = models.build(spec["model"], **dict(_options(spec)))
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    check = spec["check"]
    if check == "bias":
        return max(float(m.bias.detach().abs().max()) for m in layers if m.bias is not None)
    if check != "glorot":
        raise MeasureError(f"keras_init: check must be bias or glorot, got {check!r}")
    worst = 0.0
    for m in layers:
        w = m.weight.detach()
        receptive = w[0, 0].numel() if w.dim() > 2 else 1
        limit = (6.0 / ((w.shape[1] + w.shape[0]) * receptive)) ** 0.5
        worst = max(worst, abs(float(w.abs().max()) / limit - 1.0))
    return round(worst, 6)


@statistic("model_input")
def model_input(spec: dict[str, Any]) -> list[int]:
    """The input a built ``model`` takes, channels-last as Keras writes it: (height, width, channels)."""
    channels, *size = _meta_model(spec["model"], _options(spec)).input_shape
    return [*size, channels]
