"""Helpers shared by the builder modules."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from models.registry import require


def output_shape(layers: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape (without batch) of ``layers`` applied to one input.

    Builders use it to size a Dense layer after Flatten, as Keras infers it. The layers the
    builders use are worked out by arithmetic (``_shape``); any other module is traced on the
    meta device. Why not always trace: the first convolution on the meta device costs a
    process 1-5 s of imports, which every ``claims train`` would pay for nothing.
    """
    shape = tuple(input_shape)
    try:
        shape = _shape(layers, shape)
        if min(shape, default=1) < 1:
            raise ValueError(f"the layers leave {shape}")
    except _Unknown:
        probe = copy.deepcopy(layers).to("meta").eval()  # no compute, no BatchNorm statistics
        try:
            shape = tuple(probe(torch.zeros(1, *shape, device="meta")).shape[1:])
        except RuntimeError as error:
            raise ValueError(f"input shape {shape} is too small for these layers: {error}") from None
    except ValueError as error:
        raise ValueError(f"input shape {tuple(input_shape)} is too small for these layers: {error}") from None
    return shape


def largest_output(layers: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Elements of the largest tensor that ``layers``, or its input, holds for one input (no
    batch axis): worked out like ``output_shape``, by arithmetic where it can be, else traced
    on the meta device."""
    def walk(module: nn.Module, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        if not isinstance(module, nn.Sequential):
            out = _shape(module, shape)
            return out, math.prod(out)
        largest = 0
        for child in module:
            shape, size = walk(child, shape)
            largest = max(largest, size)
        return shape, largest

    try:
        return max(math.prod(input_shape), walk(layers, tuple(input_shape))[1])
    except _Unknown:
        sizes = [math.prod(input_shape)]
        probe = copy.deepcopy(layers).to("meta").eval()
        leaves = [m for m in probe.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel())) for m in leaves]
        probe(torch.zeros(1, *input_shape, device="meta"))
        for hook in hooks:
            hook.remove()
        return max(sizes)


class _Unknown(Exception):
    """A module whose output shape ``_shape`` does not know how to work out."""


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of ``module`` on one input of ``shape`` (no batch axis), or _Unknown."""
    from models import layers

    if min(shape, default=1) < 1:  # a layer before left nothing
        raise ValueError(f"a layer leaves {shape}")
    if isinstance(module, nn.Sequential):
        for child in module:
            shape = _shape(child, shape)
        return shape
    if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout, nn.ReLU, nn.LocalResponseNorm,
                           nn.Identity, layers.Activation)):
        return shape
    if isinstance(module, nn.Conv2d) and len(shape) == 3 and module.in_channels == shape[0]:
        if module.padding == "same":
            return (module.out_channels, *shape[1:])
        pad = (0, 0) if module.padding == "valid" else _pair(module.padding)
        return (module.out_channels, *(
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip(shape[1:], module.kernel_size, module.stride, pad, module.dilation,
                                        strict=True)))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and len(shape) == 3 and not module.ceil_mode:
        kernel, stride, pad = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        dilation = _pair(getattr(module, "dilation", 1))
        return (shape[0], *((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d
                            in zip(shape[1:], kernel, stride, pad, dilation, strict=True)))
    if isinstance(module, layers.GlobalAveragePooling2D) and len(shape) == 3:
        return shape[:1]
    if isinstance(module, (layers.Flatten, nn.Flatten)) and getattr(module, "end_dim", -1) == -1 \
            and getattr(module, "start_dim", 1) == 1:
        return (math.prod(shape),)
    if isinstance(module, layers.Dense) and len(shape) == 3 and shape[0] == module.in_features:
        return (module.out_features, *shape[1:])
    if isinstance(module, nn.Linear) and shape[-1] == module.in_features and len(shape) == 1:
        return (module.out_features,)
    raise _Unknown(type(module).__name__)


def check_rate(name: str, rate: float) -> float:
    require(0.0 <= rate < 1.0, f"{name} must be a dropout rate in [0, 1), got {rate!r}")
    return rate


def check_positive(name: str, value: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    require(ok, f"{name} must be a positive integer, got {value!r}")
    return value
