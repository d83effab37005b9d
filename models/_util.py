"""Helpers shared by the builder modules."""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.registry import require


def output_shape(layers: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape (without batch) of ``layers`` applied to one input, traced on the meta device.

    Builders use it to size a Dense layer after Flatten, as Keras infers it.
    """
    probe = copy.deepcopy(layers).to("meta").eval()  # no compute, no BatchNorm statistics
    try:
        return tuple(probe(torch.zeros(1, *input_shape, device="meta")).shape[1:])
    except RuntimeError as error:
        raise ValueError(f"input shape {tuple(input_shape)} is too small for these layers: {error}") from None


def check_rate(name: str, rate: float) -> float:
    require(0.0 <= rate < 1.0, f"{name} must be a dropout rate in [0, 1), got {rate!r}")
    return rate


def check_positive(name: str, value: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    require(ok, f"{name} must be a positive integer, got {value!r}")
    return value
