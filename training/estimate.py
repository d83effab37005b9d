"""What a recipe will cost on a GPU before it runs: counted work per training step, times
steps, epochs, seeds and grid points, on an assumed H100/H200-class device.

The counts are made once per (model, options, batch) on the meta device, so they take
milliseconds and need no GPU: every aten op of one training step as ``training.trainer``
runs it (forward with this trainer's Dropout masks, the loss, backward, Keras' Adam written
out as on CUDA) is counted for its FLOPs (``torch.utils.flop_counter``), the bytes it reads
and writes (its tensor arguments and results; views move nothing) and one kernel launch.
A stack of S copies runs each op once on S times the data (``torch.func.vmap``), so bytes
and FLOPs scale with S and launches do not, except the Dropout draws (one per copy, each
from its own stream).

A step takes the longest of three floors: compute (FLOPs at a fraction of the TF32 peak),
memory (bytes at a fraction of the bandwidth) and launches (a fixed host cost per op). The
networks here are small, so most are launch-bound: the estimate is then the host's speed,
which no datasheet gives; ``Calibration`` rescales it from epochs timed on the device.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

import models
from models.layers import Dropout
from training.recipes import Recipe, get, own_tables

#: Host-side work per training step besides the model's ops: the batch's gather, the
#: running loss and accuracy sums (``Trainer.train_epoch``).
BOOKKEEPING_OPS = 12
#: Per epoch: evaluation bookkeeping, the callbacks, the one host sync that reads the logs.
EPOCH_FIXED_S = 0.01
#: Per stack of copies: building the models, stacking them, the first step's warm-up.
GROUP_SETUP_S = 1.0
#: Per recipe: the data loaded and copied to the device.
RECIPE_SETUP_S = 2.0


@dataclass(frozen=True)
class Device:
    """An accelerator as the estimate assumes it: datasheet peaks and what we expect to
    reach of them. The fractions and the launch cost are assumptions, stated so that a
    calibration on the device can correct them."""

    name: str
    tf32_flops: float  # dense TF32 tensor-core peak, FLOP/s
    bf16_flops: float  # dense BF16 peak, FLOP/s (not used: the trainer runs in float32/TF32)
    bandwidth: float  # HBM bytes/s
    memory: float  # bytes
    compute_fraction: float = 0.3  # small convolutions and matmuls reach a fraction of peak
    # Measured on the first GPU run (an H200, 2026-11-30, docs/gpu.md), 3 copies a step:
    # the Fashion per-pixel step moved its counted bytes at 35% of the bandwidth (7.50 ms for
    # 12.7 GB), and approach 3's took 12.87 ms for the 266 ops counted here, 48 us an op (the datasheet
    # guesses before it, 70% and 20 us, were 2-2.4 times too fast). Both were counted with
    # the Adam and Dropout of that run; the trainer's since (multi-tensor Adam, 133 ops for
    # approach 3; draws in place) is untimed on a GPU, and these per-op and per-byte costs
    # carried over to it are a guess the calibration on the device corrects.
    memory_fraction: float = 0.35
    launch_s: float = 48e-6  # per op: PyTorch's eager dispatch plus vmap's batching rules
    checkpoint_bandwidth: float = 1e9  # bytes/s: device -> host copy and torch.save to local disk

    def describe(self) -> str:
        return (f"{self.name}: TF32 {self.tf32_flops / 1e12:.0f} TFLOP/s dense (BF16 "
                f"{self.bf16_flops / 1e12:.0f}), HBM {self.bandwidth / 1e12:.2f} TB/s, "
                f"{self.memory / 2**30:.0f} GiB; assumed reachable: {self.compute_fraction:.0%} of the "
                f"TF32 peak, {self.memory_fraction:.0%} of the bandwidth, {self.launch_s * 1e6:.0f} us "
                f"of host time per op launched, checkpoints at {self.checkpoint_bandwidth / 1e9:.0f} GB/s")


DEVICES = {
    "h100": Device("H100 SXM", tf32_flops=495e12, bf16_flops=989e12, bandwidth=3.35e12, memory=80 * 2**30),
    "h200": Device("H200", tf32_flops=495e12, bf16_flops=989e12, bandwidth=4.8e12, memory=141 * 2**30),
}


def device_for(name: str) -> Device:
    """The assumed device for a CUDA device name (``torch.cuda.get_device_name``) or a key of
    DEVICES; H200 where nothing matches."""
    lowered = name.lower()
    for key, device in DEVICES.items():
        if key in lowered:
            return device
    return DEVICES["h200"]


# -- counting one step -----------------------------------------------------------------------

@dataclass(frozen=True)
class Work:
    """Counted work of one pass of one copy: FLOPs, bytes read and written, ops launched."""

    flops: int
    bytes: int
    launches: int
    dropout_layers: int = 0

    def seconds(self, device: Device, copies: int) -> tuple[float, str]:
        """Time of this pass for ``copies`` stacked copies, and which floor set it."""
        floors = {
            "compute": copies * self.flops / (device.tf32_flops * device.compute_fraction),
            "memory": copies * self.bytes / (device.bandwidth * device.memory_fraction),
            "launch": (self.launches + self.dropout_layers * copies) * device.launch_s,
        }
        bound = max(floors, key=floors.__getitem__)
        return floors[bound], bound


class _Traffic(TorchDispatchMode):
    """Counts ops that are not views and the bytes of their tensor arguments and results."""

    def __init__(self) -> None:
        super().__init__()
        self.launches = 0
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        if not any(r.alias_info is not None and not r.alias_info.is_write for r in returns):
            self.launches += 1
            self.bytes += _nbytes((args, kwargs, out))
            if not returns:  # an in-place op returning nothing (the foreach ones): its writes
                self.bytes += _nbytes([a for a, spec in zip(args, func._schema.arguments, strict=False)
                                       if spec.alias_info is not None and spec.alias_info.is_write])
        return out


def _nbytes(tree: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor))


def _loss(loss: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The trainer's loss (``training.trainer._loss``) for one copy."""
    import torch.nn.functional as F

    if loss == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def key(options: dict[str, Any]) -> str:
    """Builder options as a cache key (JSON: lists and tuples alike)."""
    return json.dumps(options, sort_keys=True)


@cache
def count(model: str, options: str, batch: int, loss: str, train: bool) -> Work:
    """Counted work of one training step (``train``) or one evaluation batch of one copy of
    ``model`` built with ``options`` (``key``)."""
    from training.trainer import KerasAdam

    with torch.device("meta"):
        net = models.build(model, **json.loads(options))
    net.train(train)
    dropouts = [m for m in net.modules() if isinstance(m, Dropout)]
    x = torch.zeros(batch, *net.input_shape, device="meta")

    def draw(layer: Dropout, args: tuple) -> None:  # the trainer's per-copy uniform draws
        layer.noise = torch.rand_like(args[0])  # drawn in place into the stacked tensor

    hooks = [d.register_forward_pre_hook(draw) for d in dropouts] if train else []
    traffic = _Traffic()
    try:
        with FlopCounterMode(display=False) as flops, traffic:
            if train:
                logits = net(x)
                y = torch.zeros(logits.shape[:-1], dtype=torch.long, device="meta")
                _loss(loss, logits, y).backward()
                params = {k: p for k, p in net.named_parameters() if p.requires_grad}
                lr = torch.full((1,), 1e-3, device="meta")
                KerasAdam(params, lr, 1e-7).step(torch.ones(1, device="meta"))
            else:
                with torch.no_grad():
                    logits = net(x)
                    y = torch.zeros(logits.shape[:-1], dtype=torch.long, device="meta")
                    _loss(loss, logits, y)
    finally:
        for hook in hooks:
            hook.remove()
        for d in dropouts:
            d.noise = None
    # the trainer draws one rand per copy (counted here once), in place into the stacked tensor
    return Work(flops.get_total_flops(), traffic.bytes,
                traffic.launches + (BOOKKEEPING_OPS if train else 4), len(dropouts) if train else 0)


def parameter_bytes(model: str, options: str) -> int:
    with torch.device("meta"):
        net = models.build(model, **json.loads(options))
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


# -- a recipe --------------------------------------------------------------------------------

def source_epochs(name: str) -> int | None:
    """The epochs the source reports for this very recipe (``expected_epochs`` in its own
    table, never inherited through ``base``: a sibling's figure is not this run's)."""
    return own_tables().get(name, {}).get("expected_epochs")


@cache
def cached_recipe(name: str) -> Recipe:
    """``training.recipes.get``, once per process (it parses every claim file)."""
    return get(name)


@dataclass(frozen=True)
class Estimate:
    """A recipe's estimated time on ``device``: every stack group of it, all seeds batched."""

    recipe: str
    device: str
    copies: list[int]  # per stack group: grid points x seeds trained as one stack
    steps_per_epoch: int
    epochs: int  # expected per stack group
    epochs_from: str  # "source" (its reported figure), "cap" (the recipe's epochs)
    step_s: float  # one training step of the largest group
    bound: str  # what sets the step's time: compute, memory or launch
    epoch_s: float  # one epoch of the largest group, evaluation and checkpoint included
    group_epoch_s: list[float]  # one epoch of each stack group
    seconds: float  # the whole recipe, setup included
    step_bytes: int  # bytes moved per step of the largest group
    memory_bound_epoch_s: float  # steps x bytes / bandwidth (the floor no launch overhead hides)
    checkpoint_bytes: int  # written after every epoch, largest group

    def seconds_for(self, epochs: list[int]) -> float:
        """Estimated seconds of a run that trained ``epochs`` epochs in each stack group."""
        return RECIPE_SETUP_S + sum(GROUP_SETUP_S * (e > 0) + e * s
                                    for e, s in zip(epochs, self.group_epoch_s, strict=True))

    def line(self) -> str:
        groups = f"{len(self.copies)} stacks of {max(self.copies)}" if len(self.copies) > 1 \
            else f"{self.copies[0]} copies"
        return (f"{self.recipe}: {groups}, {self.steps_per_epoch} steps/epoch x {self.epochs} epochs "
                f"({self.epochs_from}); {self.step_s * 1e3:.2f} ms/step ({self.bound}-bound), "
                f"{self.epoch_s:.2f} s/epoch, total {self.seconds:.0f} s")


def _dependency_options(recipe: Recipe) -> dict[str, Any]:
    """Options a recipe takes from another recipe's best grid point: its first grid point
    stands in (the choice changes rates, not the work)."""
    chosen = {}
    for option, other in recipe.best_of.items():
        chosen[option] = cached_recipe(other).grid_points()[0][option]
    return chosen


def split_sizes(recipe: Recipe, sizes: dict[str, int]) -> tuple[int, int, int]:
    """(train, validation, test) images as ``training.run.prepare`` cuts them."""
    train, val = sizes["train_size"], sizes.get("val_size", 0)
    if recipe.validation_split is not None:
        at = int(train * (1.0 - recipe.validation_split))
        train, val = at, train - at
    return train, val, sizes["test_size"]


def estimate(name: str, device: Device, sizes: dict[str, int], seeds: int = 3,
             epochs: int | None = None) -> Estimate:
    """Estimate recipe ``name`` for ``seeds`` seeds on ``device``; ``sizes`` holds the
    dataset's ``train_size``, ``test_size`` and, where it has one, ``val_size``.
    ``epochs`` overrides the expected epochs (the rest of a run stopped part way)."""
    from training.run import plan_points, stack_groups

    table = cached_recipe(name)
    plan = plan_points(table)
    fixed = _dependency_options(table)
    groups = stack_groups(table, plan, fixed, True)
    reported = source_epochs(name)
    expected = epochs if epochs is not None else min(reported or table.epochs, table.epochs)
    source = "given" if epochs is not None else ("source" if reported else "cap")
    train, val, test = split_sizes(table, sizes)
    steps = table.steps_per_epoch or math.ceil(train / table.batch_size)
    eval_batch = table.eval_batch
    eval_batches = math.ceil(val / eval_batch) + math.ceil(test / eval_batch)
    total, largest, per_group = RECIPE_SETUP_S, None, []
    for group in groups:
        options = {**table.options, **fixed,
                   **{k: v for k, v in plan[group[0]].items() if k not in ("iteration", "removed")}}
        frozen = key(options)
        copies = len(group) * seeds
        step = count(table.model, frozen, table.batch_size, table.loss, True)
        evaluation = count(table.model, frozen, eval_batch, table.loss, False)
        step_s, bound = step.seconds(device, copies)
        eval_s = eval_batches * evaluation.seconds(device, copies)[0]
        # stack, Adam's m and v, the last trained state, and the best one where it restores
        states = 4 + int(table.restore_best)
        ckpt = states * copies * parameter_bytes(table.model, frozen)
        epoch_s = steps * step_s + eval_s + ckpt / device.checkpoint_bandwidth + EPOCH_FIXED_S
        total += GROUP_SETUP_S + expected * epoch_s
        per_group.append(epoch_s)
        if largest is None or epoch_s > largest[2]:
            floor = steps * copies * step.bytes / device.bandwidth
            largest = (copies, step_s, epoch_s, bound, copies * step.bytes, floor, ckpt)
    assert largest is not None
    _, step_s, epoch_s, bound, step_bytes, floor, ckpt = largest
    return Estimate(name, device.name, [len(g) * seeds for g in groups], steps, expected, source,
                    step_s, bound, epoch_s, per_group, total, step_bytes, floor, ckpt)


# -- calibration on the device ------------------------------------------------------------------

@dataclass
class Calibration:
    """Measured over estimated time per epoch, from the epochs timed so far on the device;
    every later estimate is multiplied by it (1 until something is measured). Recipes bound
    by the same floor (launches, memory, compute) are rescaled by their own kind's ratios
    where there are some: the first GPU run's launch-bound and memory-bound steps were off by
    different factors."""

    #: recipe -> (measured, estimated, the bound of its estimate, "" where not given)
    measured: dict[str, tuple[float, float, str]] = field(default_factory=dict)

    def add(self, recipe: str, measured_epoch_s: float, estimated_epoch_s: float, bound: str = "") -> None:
        self.measured[recipe] = (measured_epoch_s, estimated_epoch_s, bound)

    @property
    def factor(self) -> float:
        """The median of the measured/estimated ratios (robust to one odd recipe)."""
        return self.factor_for("")

    def factor_for(self, bound: str) -> float:
        """The median ratio of the recipes bound like ``bound``, else of all of them."""
        alike = [m / e for m, e, b in self.measured.values() if e > 0 and bound and b == bound]
        ratios = sorted(alike or [m / e for m, e, _ in self.measured.values() if e > 0])
        if not ratios:
            return 1.0
        mid = len(ratios) // 2
        return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2

    def seconds(self, estimate: Estimate) -> float:
        """The recipe's estimate rescaled: by its own measured epochs where there are some,
        else by the recipes bound alike."""
        if estimate.recipe in self.measured:
            measured, estimated, _ = self.measured[estimate.recipe]
            return estimate.seconds * measured / estimated
        return estimate.seconds * self.factor_for(estimate.bound)
