"""Keras-shaped layers in PyTorch.

The sources describe their networks as Keras layers, and their printed summaries count
one row per Keras layer. These thin modules keep that one-to-one mapping (a Conv2D with
its activation is one module, as in Keras) so that a summary row of ours can be compared
with a summary row of theirs, and so that Keras defaults can be reproduced when asked.

Output activations (softmax, sigmoid) are recorded but not applied in ``forward``: the
models return logits, which is what PyTorch losses expect and what Keras itself feeds its
cross-entropy (it unwraps the softmax). ``models.probabilities`` applies them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models import kernels

#: Activations applied inside a layer's forward.
HIDDEN_ACTIVATIONS = {None: None, "linear": None, "relu": F.relu}
#: Activations that end a classifier; kept as metadata, applied by ``probabilities``.
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")


def _check_activation(activation: str | None) -> str | None:
    if activation not in HIDDEN_ACTIVATIONS and activation not in OUTPUT_ACTIVATIONS:
        valid = sorted(str(a) for a in (*HIDDEN_ACTIVATIONS, *OUTPUT_ACTIVATIONS))
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(valid)}")
    return activation


def _activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    fn = HIDDEN_ACTIVATIONS.get(activation)
    return fn(x) if fn is not None else x


class Conv2D(nn.Conv2d):
    """Keras ``Conv2D``: stride 1, ``padding`` 'valid' or 'same', optional activation."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3, *,
                 padding: str = "valid", activation: str | None = None, groups: int = 1,
                 stride: int = 1) -> None:
        if padding not in ("valid", "same"):
            raise ValueError(f"Conv2D padding must be 'valid' or 'same', got {padding!r}")
        if padding == "same" and stride != 1:
            raise ValueError("Conv2D padding='same' is only supported with stride 1")
        super().__init__(in_channels, filters, kernel_size, stride=stride, padding=padding,
                         groups=groups)
        self.activation = _check_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        if kernels.active(x) and self.groups == 1 and self.stride == (1, 1) and k % 2:
            pad = k // 2 if self.padding == "same" else 0
            return _activate(kernels.conv2d(x, self.weight, self.bias, pad), self.activation)
        return _activate(super().forward(x), self.activation)


class Dense(nn.Linear):
    """Keras ``Dense``: acts on the last axis of a channels-last tensor.

    Our image tensors are channels-first, so on a 4-D input the layer acts on the channel
    axis of every pixel, which is what Keras does to a (H, W, C) input.
    """

    def __init__(self, in_features: int, units: int, *, activation: str | None = None) -> None:
        super().__init__(in_features, units)
        self.activation = _check_activation(activation)
        self.regularizer: tuple[float, float] | None = None  # Keras l1_l2 on the kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            y = super().forward(x.movedim(1, -1)).movedim(-1, 1)
        else:
            y = super().forward(x)
        return _activate(y, self.activation)


class BatchNormalization(nn.BatchNorm2d):
    """Keras ``BatchNormalization`` over channels, for (N, C) and (N, C, H, W) inputs.

    ``keras=True`` uses Keras' momentum 0.99 (PyTorch's 0.01) and epsilon 1e-3.
    """

    def __init__(self, num_features: int, *, keras: bool = True) -> None:
        if keras:
            super().__init__(num_features, eps=1e-3, momentum=0.01)
        else:
            super().__init__(num_features)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"BatchNormalization expects 2-D or 4-D input, got {input.dim()}-D")


class MaxPooling2D(nn.MaxPool2d):
    """Keras ``MaxPooling2D``: pool and stride 2, 'valid' (floors odd sizes)."""

    def __init__(self, pool_size: int = 2) -> None:
        super().__init__(pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        two = self.kernel_size in (2, (2, 2)) and self.stride in (2, (2, 2))
        plain = self.padding in (0, (0, 0)) and self.dilation in (1, (1, 1)) and not self.ceil_mode
        if two and plain and not self.return_indices and x.dim() == 4 and x.is_floating_point() \
                and kernels.active(x):
            return kernels.max_pool2d(x)
        return super().forward(x)


class AveragePooling2D(nn.AvgPool2d):
    """Keras ``AveragePooling2D``: pool and stride 2 by default, 'valid'."""

    def __init__(self, pool_size: int = 2) -> None:
        super().__init__(pool_size)


class GlobalAveragePooling2D(nn.Module):
    """Keras ``GlobalAveragePooling2D``: the mean of each feature map, (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Flatten(nn.Module):
    """Keras ``Flatten``: flattens in channels-last order, as Keras does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


class Dropout(nn.Dropout):
    """Keras ``Dropout``.

    While a stack of networks trains as one (``training.trainer``), the trainer sets
    ``noise``, the uniform draws of this copy's own random stream (so that a copy's masks do
    not depend on the copies beside it), and ``rates``, this copy's rate as a tensor where
    the copies differ in their rates. ``F.dropout`` can take neither, so the mask is made
    here. Otherwise both are None and the layer is ``nn.Dropout``.
    """

    rates: torch.Tensor | None = None
    noise: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.rates is None and self.noise is None):
            return super().forward(x)
        rate = self.p if self.rates is None else self.rates
        noise = torch.rand_like(x) if self.noise is None else self.noise
        # TF 2's dropout: x times 1 / (1 - rate), computed in double precision and rounded
        # once to x's dtype, where the draw is at least the rate, else 0. A copy of a stack
        # (``rates`` in float64) gets the very scale of its network alone. The scale and the
        # mask as one tensor: the forward and the backward each pass over x once (the
        # per-pixel Fashion networks' hidden tensors are 157 MB a copy)
        scale = 1 / (1 - rate)
        if isinstance(scale, torch.Tensor):
            scale = scale.to(x.dtype)
        return x * torch.where(noise >= rate, scale, 0.0).to(x.dtype)


class Activation(nn.Module):
    """Keras ``Activation`` layer."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = _check_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(x, self.activation)

    def extra_repr(self) -> str:
        return repr(self.activation)


class InputLayer(nn.Identity):
    """Keras ``InputLayer``: shown by functional models' summaries, does nothing."""


def keras_init_(model: nn.Module) -> nn.Module:
    """Keras' default initialisation: glorot-uniform kernels, zero biases.

    PyTorch's default (kaiming-uniform with a=sqrt(5), uniform biases) trains differently;
    the sources trained with Keras, so faithful runs use this.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def regularized(model: nn.Module) -> list[tuple[str, float, float]]:
    """(kernel parameter name, l1, l2) of every Dense layer with a Keras ``l1_l2`` regularizer."""
    return [(f"{name}.weight", *module.regularizer) for name, module in model.named_modules()
            if isinstance(module, Dense) and module.regularizer is not None]


def forward_structure(model: nn.Module) -> list[tuple[str, str, dict[str, object]]]:
    """What a model's forward pass depends on besides its weights and what a stack of
    networks can vary per network: every module's type and plain settings (widths,
    activations, strides). Left out: Keras penalties, which act in the loss, and the rates
    of ``Dropout``, which a stack sets per network (``Dropout.rates``)."""
    def settings(module: nn.Module) -> dict[str, object]:
        varied = ("regularizer", "p") if isinstance(module, Dropout) else ("regularizer",)
        return {k: v for k, v in vars(module).items() if not k.startswith("_") and k not in varied}
    return [(name, type(module).__name__, settings(module)) for name, module in model.named_modules()]


def penalty(model: nn.Module) -> torch.Tensor:
    """Sum of the Keras ``l1_l2`` kernel penalties: l1 * sum|w| + l2 * sum w**2."""
    total = torch.zeros(())
    for name, l1, l2 in regularized(model):
        w = model.get_parameter(name)
        total = total + l1 * w.abs().sum() + l2 * w.square().sum()
    return total


def output_activation(model: nn.Module) -> str | None:
    """The activation Keras would apply at the model's output, if any."""
    last = None
    for module in model.modules():
        if isinstance(module, (Dense, Conv2D, Activation)):
            last = module.activation
    return last if last in OUTPUT_ACTIVATIONS else None


def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities, as the Keras model would output them."""
    logits = model(x)
    kind = output_activation(model)
    if kind == "softmax":
        return logits.softmax(dim=1)
    if kind == "sigmoid":
        return logits.sigmoid()
    return logits
