"""What the layers between the convolutions cost in a training step: the ceiling on fusing them.

Issue 15 asks for a trainer at most half the plain loop's time per model. The trainer's step
on one core is about the plain loop's (``python -m training.bench --steps``), so the half
must come from a cheaper step, and fused kernels for BatchNorm, ReLU and max pooling are the
lever left (docs/performance.md). This times a training step of a recipe's model (one batch
of random images, Adam: ``models.cost.training_step``; the trainer's CPU kernels on) with
those layers taken out, one kind after another (BatchNorm, then max pooling replaced by a
strided slice that keeps the shapes, then ReLU): what remains is less than any fused kernel
of those layers could leave, since a kernel that normalises still reads and writes the
activations. The variants are not trained models; only their time is read.

    python -m training.bench_layers mnist_approach3
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

import models
from models import cost, kernels
from training.bench import alternating

#: The variants, each taking out one more kind of layer than the one before.
VARIANTS = ("as built", "without BatchNorm", "without BatchNorm and pooling", "convolutions alone")


class _Subsample(nn.Module):
    """Every second row and column (floored as a 2x2 'valid' pooling is): the pooling's output
    shape for the cost of a view forward (its backward still writes a zeroed input-sized
    gradient, and the next convolution reads a strided input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return x[..., : h - h % 2 : 2, : w - w % 2 : 2]


def without(model: nn.Module, variant: str) -> nn.Module:
    """``model`` (changed in place, nested containers included) with the layers that
    ``variant`` takes out replaced by identities; output shapes stay as they were."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
    level = VARIANTS.index(variant)
    for parent_name, parent in list(model.named_modules()):
        for name, layer in list(parent.named_children()):
            where = f"{parent_name}.{name}" if parent_name else name
            if level >= 1 and isinstance(layer, nn.BatchNorm2d | nn.BatchNorm1d):
                setattr(parent, name, nn.Identity())
            elif level >= 2 and isinstance(layer, nn.MaxPool2d):
                two = (layer.kernel_size, layer.stride) in ((2, 2), ((2, 2), (2, 2)))
                if not two or layer.padding not in (0, (0, 0)):
                    raise ValueError(f"layer {where}: only 2x2 pooling of stride 2 is replaced, not {layer}")
                setattr(parent, name, _Subsample())
            elif level >= 3 and getattr(layer, "activation", None) == "relu":
                layer.activation = None
    return model


def step_ms(recipe_name: str, rounds: int = 8, steps: int = 20) -> dict[str, float]:
    """CPU time of this thread per training step (ms) of each variant of the recipe's model,
    at its batch size (``models.cost.training_step``: random images, Adam), the trainer's CPU
    kernels on: median of ``rounds`` alternating rounds of ``steps`` steps
    (``bench.alternating``)."""
    from training.recipes import get

    recipe = get(recipe_name)

    def runner(variant: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = without(models.build(recipe.model, **recipe.options), variant)
        step = cost.training_step(model, recipe.batch_size, "cpu")

        def run() -> None:
            for _ in range(steps):
                step()
        return run

    with kernels.enabled():
        seconds = alternating({v: runner(v) for v in VARIANTS}, rounds, clock=time.thread_time)
    return {v: s / steps * 1e3 for v, s in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m training.bench_layers``: a training step of a recipe's model with
    BatchNorm, pooling and ReLU taken out in turn, one thread (the ceiling on fusing them)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.bench_layers", description=main.__doc__)
    parser.add_argument("recipe", nargs="?", default="mnist_approach3")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds of 20 steps (8)")
    args = parser.parse_args(argv)
    from training.recipes import RecipeError, get

    try:
        recipe = get(args.recipe)
    except RecipeError as error:
        parser.error(str(error))
    torch.set_num_threads(1)
    ms = step_ms(args.recipe, args.rounds)
    full = ms[VARIANTS[0]]
    print(f"{args.recipe}: one training step of random images at batch {recipe.batch_size} with the "
          f"trainer's CPU kernels, one thread, CPU time (median of {args.rounds} alternating rounds of 20 "
          "steps)")
    for variant, t in ms.items():
        print(f"  {variant:30s} {t:6.2f} ms  {t / full:.2f} of the step as built")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
