"""A Keras-convention summary of any model: one row per layer, output shapes, parameters.

Why not torchinfo: it counts ``nn.Parameter`` only, while Keras counts BatchNorm's moving
mean and variance as non-trainable parameters, and the sources' totals include them. The
layer trace is a forward hook on each leaf module, which is all a summary needs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
from tabulate import tabulate
from torch import nn

#: Buffers that are bookkeeping, not parameters, in Keras' eyes.
_NOT_WEIGHTS = {"num_batches_tracked"}


def keras_name(class_name: str) -> str:
    """Keras' ``to_snake_case``: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def count(module: nn.Module, recurse: bool = True) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras counts them: frozen parameters and BatchNorm's
    running statistics are non-trainable."""
    trainable = frozen = 0
    for p in module.parameters(recurse=recurse):
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    for name, b in module.named_buffers(recurse=recurse):
        if name.rsplit(".", 1)[-1] not in _NOT_WEIGHTS and b.is_floating_point():
            frozen += b.numel()
    return trainable, frozen


def channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) -> (H, W, C), as Keras prints image tensors; other ranks unchanged."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else shape


@dataclass(frozen=True)
class LayerRow:
    name: str  # Keras-style, numbered within the model: conv2d, conv2d_1, ...
    type: str
    output_shape: tuple[int, ...]  # without the batch axis, channels-last like Keras
    trainable: int
    non_trainable: int

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Summary:
    model: str
    rows: tuple[LayerRow, ...]
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def layer(self, name: str) -> LayerRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"model {self.model!r} has no layer {name!r}; "
                       f"layers: {', '.join(r.name for r in self.rows)}")

    def format(self, channels_first: bool = False) -> str:
        def shape(row: LayerRow) -> str:
            s = row.output_shape
            if channels_first and len(s) == 3:
                s = (s[2], s[0], s[1])
            return str((None, *s))

        table = tabulate(
            [(f"{r.name} ({r.type})", shape(r), f"{r.params:,}") for r in self.rows],
            headers=("Layer (type)", "Output Shape", "Param #"), tablefmt="simple",
            colalign=("left", "left", "right"))
        return "\n".join([
            f'Model: "{self.model}"', table, "",
            f"Total params: {self.total:,}",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.non_trainable:,}",
        ])


def summarize(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Summary:
    """Trace one forward pass (batch of 2, eval mode, on the model's device) and count."""
    shape = tuple(input_shape or model.input_shape)
    leaves = [m for m in model.modules() if not list(m.children())]
    seen: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda mod, _inp, out: seen.append((mod, tuple(out.shape[1:]))))
             for m in leaves]
    device = next(iter(model.parameters()), torch.zeros(())).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, *shape, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    numbering: Counter[str] = Counter()
    rows = []
    for module, out in seen:
        kind = type(module).__name__
        base = keras_name(kind)
        name = base if numbering[base] == 0 else f"{base}_{numbering[base]}"
        numbering[base] += 1
        trainable, frozen = count(module, recurse=False)
        rows.append(LayerRow(name, kind, channels_last(out), trainable, frozen))
    trainable, frozen = count(model)
    return Summary(getattr(model, "model_name", type(model).__name__), tuple(rows), trainable, frozen)
