"""A faster CPU convolution backward for the tiny layers of the sources' networks.

Why: on the CPU, oneDNN's convolution backward is slow for 1-16 channels (the weight
gradient of a 1->2 channel 3x3 convolution at batch 125 takes several times its forward)
and it is the largest part of a training step of these networks. The same arithmetic done
otherwise is faster: the weight gradient as a convolution whose batch is the input's
channels and whose channels are the batch (``conv2d(x^T, g^T)``, the forward kernel oneDNN
does well), the bias gradient as a sum; the input gradient is PyTorch's own.
Measured in a whole training step of mnist_approach3: 8% less CPU time (docs/performance.md).
A 2x2 max pooling written as the largest of four strided quarter-images was measured too,
and was slower than PyTorch's in a step (the gradient's scatter costs more than it saves).

Results equal PyTorch's up to the order of float additions in the weight gradient.
``enabled()`` turns the kernel on for CPU tensors (the trainer does, on its loop path);
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
            grad_x = torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], [p, p], [1, 1], False,
                                                         [0, 0], 1, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (p, p, p, p)) if p else x
            grad_w = F.conv2d(padded.transpose(0, 1), grad.transpose(0, 1)).transpose(0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    return Conv2dSmall.apply(x, weight, bias, padding)
