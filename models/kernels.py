"""Faster CPU kernels for the tiny layers of the sources' networks: a convolution backward
and a 2x2 max pooling.

Why: on the CPU, oneDNN's convolution backward is slow for 1-16 channels (the weight
gradient of a 1->2 channel 3x3 convolution at batch 125 takes several times its forward)
and it is the largest part of a training step of these networks. The same arithmetic done
otherwise is faster: the weight gradient as a convolution whose batch is the input's
channels and whose channels are the batch (``conv2d(x^T, g^T)``, the forward kernel oneDNN
does well), the bias gradient as a sum. The input gradient is PyTorch's own, except for
layers of at most 2 input and 4 output channels, where it is the forward convolution of the
output gradient with the flipped, transposed kernel (in a step of mnist_approach3, 1.3 ms
instead of 2.4 ms for its 2->4 layer; for 4 or more input channels, or 8 outputs, oneDNN's
own is faster). Measured in the trainer's step of mnist_approach3: 8% less CPU time for the
weight gradient, then 8-11% less for the input gradient (docs/performance.md).

PyTorch's CPU max pooling takes 1.6 ms for approach 3's 125x4x24x24 activations, as long as
a convolution. ``max_pool2d`` deinterleaves the four pixels of each window into four
contiguous quarter-images (one copy), takes their maximum and works out PyTorch's own index
(the first maximum in row-major order) with elementwise comparisons; the gradient is
PyTorch's scatter by those indices. Alone 0.81 ms against 1.63, and 4-6% of the trainer's step
(a strided version without the copy was measured slower than PyTorch's in a step: strided
elementwise kernels are slow).

Results equal PyTorch's up to the order of float additions in the convolution's gradients;
the pooling's values and indices are PyTorch's exactly, except that in a window holding NaN
the index may point at another of its elements (the value is NaN either way), and a window
of 0.0 and -0.0 may give the other zero. The in-window offset is computed in float32, exact
for planes up to 2**24 - 1 pixels wide.
``enabled()`` turns the kernels on for CPU tensors (the trainer does, on its loop path);
builders, summaries and counted costs (``models.cost``) always see stock PyTorch, so what
the claims count does not depend on this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

_ON = False


@contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Use these kernels for CPU tensors inside the block (not under vmap: the trainer's
    CUDA path keeps cuDNN)."""
    global _ON
    before, _ON = _ON, on
    try:
        yield
    finally:
        _ON = before


def active(x: Tensor) -> bool:
    return _ON and x.device.type == "cpu"


class Conv2dSmall(torch.autograd.Function):
    """``F.conv2d`` (stride 1, zero padding ``padding``, no groups) with the backward above."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, bias, padding = inputs
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        p = ctx.padding
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _input_grad(grad, x, weight, p)
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (p, p, p, p)) if p else x
            grad_w = F.conv2d(padded.transpose(0, 1), grad.transpose(0, 1)).transpose(0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def _input_grad(grad: Tensor, x: Tensor, weight: Tensor, padding: int) -> Tensor:
    out_channels, in_channels, k = weight.shape[:3]
    if in_channels <= 2 and out_channels <= 4:  # measured: oneDNN's backward is slow only here
        return F.conv2d(grad, weight.flip(2, 3).transpose(0, 1), padding=k - 1 - padding)
    return torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], [padding, padding], [1, 1],
                                               False, [0, 0], 1, [True, False, False])[0]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    return Conv2dSmall.apply(x, weight, bias, padding)


class MaxPool2x2(torch.autograd.Function):
    """``F.max_pool2d(x, 2, return_indices=True)`` of a 4-D float tensor, with PyTorch's
    indices (into each input plane) and PyTorch's backward."""

    @staticmethod
    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        ho, wo = h // 2, w // 2
        quarters = x[..., : 2 * ho, : 2 * wo].reshape(n * c * ho, 2, wo, 2).permute(1, 3, 0, 2).contiguous()
        a, b, c_, d = quarters[0, 0], quarters[0, 1], quarters[1, 0], quarters[1, 1]
        top, bottom = torch.maximum(a, b), torch.maximum(c_, d)
        out = torch.maximum(top, bottom)
        # the window's offset in the plane, in float (exact for these small integers, and
        # faster than integer or boolean selections): right = 1, lower = w; ties keep the first
        right_top, right_bottom, lower = (b > a).float(), (d > c_).float(), (bottom > top).float()
        offset = (right_bottom - right_top).add_(w).mul_(lower).add_(right_top)
        rows, columns = torch.arange(ho, device=x.device), torch.arange(0, 2 * wo, 2, device=x.device)
        corner = rows.mul_(2 * w).unsqueeze(1) + columns  # each window's top-left pixel
        index = offset.to(torch.int64).view(n * c, ho, wo).add_(corner)
        return out.view(n, c, ho, wo), index.view(n, c, ho, wo)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0], output[1])
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    def backward(ctx, grad: Tensor, _):
        x, index = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                               index)


def max_pool2d(x: Tensor) -> Tensor:
    """A 2x2 max pooling of stride 2 ('valid': odd sizes are floored) of (N, C, H, W) floats;
    PyTorch's own, and its error, for an empty input or one smaller than a window."""
    if x.numel() == 0 or min(x.shape[-2:]) < 2:
        return F.max_pool2d(x, 2)
    return MaxPool2x2.apply(x)[0]
