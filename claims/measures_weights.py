"""Statistics of models built with real weights (seed 0), where values matter: pruning
(which ranks real weights), the regularization penalty, the initialisation against Keras'
defaults, and whether a network is one affine map.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
from torch import nn

import models
from claims.measure_registry import MeasureError, _meta_model, _options, statistic
from training.measurements import Explained


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
    if report != "removed_percent":
        return _count_pruned(model, report)
    total = sum(m.weight.numel() for m, _ in conv_weights(model))
    removed = 100 * (1 - remaining(model) / total)
    target = spec["schedule"].get("target")
    if target is None:
        return removed
    n = spec["schedule"]["rounds"]
    return Explained(removed, (
        f"the schedule removes one rate r of the remaining weights each round, so that {n} rounds "
        f"remove p = {_pct(target)} in all: 1 - (1 - r)^{n} = p, r = 1 - (1 - p)^(1/{n}) = "
        f"{_pct(1 - (1 - target) ** (1 / n))}; after {iteration} round(s) 1 - (1 - r)^{iteration} = "
        f"{_pct(schedule.removed[iteration - 1])}, {removed:.4f}% of the {total:,} kernel weights in "
        f"whole weights; p^(1/{n}) read literally would be {_pct(target ** (1 / n))} in the first round "
        f"({target * 100:.4g}^(1/{n}) = {(target * 100) ** (1 / n):.3g}% with p in percent)"))


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


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


@statistic("trainer_setting")
def trainer_setting(spec: dict[str, Any]) -> Any:
    """A setting the trainer fixes for every recipe (``name``: Adam's beta_1, beta_2 or amsgrad,
    as ``training.keras`` sets them, or fit's shuffle, as the trainer behaves): what a source's
    Keras code passes is checked against what the runs here used."""
    from training import keras

    settings = {"beta_1": lambda: keras.BETA1, "beta_2": lambda: keras.BETA2,
                "amsgrad": lambda: keras.AMSGRAD, "shuffle": _shuffles_every_epoch}
    if spec["name"] not in settings:
        raise MeasureError(f"trainer_setting: name must be one of {', '.join(settings)}, "
                           f"got {spec['name']!r}")
    return settings[spec["name"]]()


@cache
def _shuffles_every_epoch(images: int = 20) -> bool:
    """Keras' ``fit(shuffle=True)``, observed in a real trainer of two seeds over two epochs:
    the indices its steps are fed give each seed every training image once an epoch, in an
    order that changes from epoch to epoch and differs between the seeds' runs. Once per
    process (about a second): the claims that ask and the report's checks ask it again."""
    from dataclasses import replace
    from types import SimpleNamespace

    import numpy as np

    from training.recipes import get
    from training.run import prepare, seeded_trainer

    cpu, seeds, rng = torch.device("cpu"), [0, 1], np.random.default_rng(0)
    recipe = replace(get("mnist_dense0"), batch_size=4, validation_split=None, steps_per_epoch=None)
    arrays = SimpleNamespace(train_images=rng.integers(0, 256, (images, 28, 28), dtype=np.uint8),
                             train_labels=rng.integers(0, 10, images), classes=tuple("0123456789"),
                             test_images=np.zeros((4, 28, 28), np.uint8), test_labels=np.zeros(4, int))
    trainer = seeded_trainer(recipe, prepare(recipe, arrays, cpu), seeds)
    epochs = []
    for _ in range(2):
        fed: list[list[torch.Tensor]] = [[] for _ in seeds]
        trainer.fed = lambda seed, idx, fed=fed: fed[seed].append(idx.clone())
        trainer.train_epoch()
        epochs.append([torch.cat(mine).tolist() for mine in fed])  # per seed, the images in the order fed
    every = list(range(images))
    whole = all(sorted(order) == every for epoch in epochs for order in epoch)
    new_each_epoch = all(first != second for first, second in zip(*epochs, strict=True))
    new_each_run = all(epoch[0] != epoch[1] for epoch in epochs)
    return whole and new_each_epoch and new_each_run


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
