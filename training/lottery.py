"""Lottery-ticket pruning (Frankle & Carbin) as the MNIST post applies it to approach 2:
global L1 magnitude pruning of the convolution kernels (biases and BatchNorm untouched),
masks kept across iterations, survivors rewound to their initial values and retrained.

The schedule is data, so that the readings of the post can be compared:
- ``removed_after_iteration``: the cumulative fraction removed after each iteration, as the
  post reports it (20%, then 55.77%);
- ``rate`` + ``rounds``: the paper's iterative pruning, ``rate`` of what remains each round;
- ``target`` + ``rounds``: the post's own formula, the same rate each round reaching ``target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune


@dataclass(frozen=True)
class Schedule:
    """Cumulative fractions of the prunable weights removed after iterations 1, 2, ..."""

    removed: tuple[float, ...]
    scope: str = "global"  # or "layer": each layer pruned by the same fraction

    def __post_init__(self) -> None:
        if not self.removed or any(not 0 < f < 1 for f in self.removed) \
                or list(self.removed) != sorted(self.removed):
            raise ValueError(f"a pruning schedule is increasing fractions in (0, 1), got {self.removed!r}")
        if self.scope not in ("global", "layer"):
            raise ValueError(f"pruning scope must be 'global' or 'layer', got {self.scope!r}")

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Schedule:
        """From a TOML table: ``removed_after_iteration = [...]``, or ``rate``/``target`` with ``rounds``."""
        scope = spec.get("scope", "global")
        if "removed_after_iteration" in spec:
            return cls(tuple(spec["removed_after_iteration"]), scope)
        rounds = spec.get("rounds")
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"a 'rate' or 'target' schedule needs rounds >= 1, got {rounds!r}")
        if "rate" in spec:
            rate = spec["rate"]
        elif "target" in spec:
            rate = 1 - (1 - spec["target"]) ** (1 / rounds)
        else:
            raise ValueError("a pruning schedule needs removed_after_iteration, or rate or target with "
                             f"rounds; got keys {sorted(spec)}")
        return cls(tuple(1 - (1 - rate) ** k for k in range(1, rounds + 1)), scope)


def conv_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """What the post prunes: every convolution kernel."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]


def prune_to(model: nn.Module, fraction: float, scope: str = "global") -> None:
    """Prune ``model``'s conv kernels by L1 magnitude until ``fraction`` of them is removed in
    all; existing masks stay (torch's PruningContainer prunes only among the survivors)."""
    targets = conv_weights(model)
    total = sum(m.weight.numel() for m, _ in targets)
    already = sum(int((m.weight_mask == 0).sum()) for m, _ in targets if hasattr(m, "weight_mask"))
    if scope == "global":
        more = round(fraction * total) - already
        if more > 0:
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=more)
        return
    for module, name in targets:
        removed = int((module.weight_mask == 0).sum()) if hasattr(module, "weight_mask") else 0
        more = round(fraction * module.weight.numel()) - removed
        if more > 0:
            prune.l1_unstructured(module, name, amount=more)


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current masks by parameter name (``0.weight``), for the trainer."""
    return {f"{name}.weight": module.weight_mask.detach().clone() for name, module in model.named_modules()
            if hasattr(module, "weight_mask")}


def remaining(model: nn.Module) -> int:
    """Conv kernel weights not pruned."""
    return sum(int(m.weight_mask.sum()) if hasattr(m, "weight_mask") else m.weight.numel()
               for m, _ in conv_weights(model))


def rewind(trained: nn.Module, initial: dict[str, torch.Tensor]) -> nn.Module:
    """The winning ticket: the survivors' initial values under the trained network's masks.
    Returns a plain module (pruning made permanent), masked weights exactly zero."""
    found = masks(trained)
    for module, name in conv_weights(trained):
        if hasattr(module, "weight_mask"):
            prune.remove(module, name)
    with torch.no_grad():
        trained.load_state_dict(initial)
        for key, mask in found.items():
            trained.get_parameter(key).mul_(mask)
    return trained


def apply_masks(model: nn.Module, found: dict[str, torch.Tensor]) -> nn.Module:
    """Re-attach saved masks to a plain module (to prune further from where it stood)."""
    for key, mask in found.items():
        module = model.get_submodule(key.rsplit(".", 1)[0])
        prune.custom_from_mask(module, "weight", mask.to(module.weight.device))
    return model


def trainable_after(model: nn.Module) -> int:
    """Trainable parameters that are not pruned (what the post calls the final model's)."""
    pruned = sum(int((m.weight_mask == 0).sum()) for m, _ in conv_weights(model) if hasattr(m, "weight_mask"))
    return sum(p.numel() for p in model.parameters() if p.requires_grad) - pruned
