"""What Keras computes that PyTorch does not, as the trainer reproduces it on stacked seeds.

Adam with Keras' epsilon placement, the EarlyStopping and ReduceLROnPlateau state per seed,
what ``fit`` returns, the per-sample losses and accuracies of stacked logits, and Keras'
Precision and Recall. ``training.trainer`` runs them; they live apart so that each can be
read, and tested, against Keras' own definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from training.recipes import Recipe

BETA1, BETA2 = 0.9, 0.999  # Keras' Adam defaults (beta_1, beta_2)
AMSGRAD = False  # nor AMSGrad (Keras' default too)
REDUCE_LR_MIN_DELTA = 1e-4  # Keras ReduceLROnPlateau default


def _expand(per_seed: Tensor, like: Tensor) -> Tensor:
    return per_seed.reshape(-1, *([1] * (like.dim() - 1)))


def _select(which: Tensor, new: dict[str, Tensor], old: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per seed, ``new`` where ``which`` (S,) is true, else ``old``."""
    return {k: torch.where(_expand(which, v), v, old[k]) for k, v in new.items()}


class KerasAdam:
    """Adam with Keras' epsilon placement, on stacked tensors, one learning rate per seed.

    On the CPU each seed's update is one call of PyTorch's fused Adam kernel on that seed's
    slices, with the epsilon that makes PyTorch's formula Keras': PyTorch divides by
    ``sqrt(v)/sqrt(1-b2^t) + eps'``, so ``eps' = epsilon/sqrt(1-b2^t)`` gives Keras'
    ``sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v) + epsilon)``. One pass over the weights instead of
    six per tensor; a seed's arithmetic does not depend on the seeds beside it. Elsewhere
    (CUDA, where the learning rates stay on the device) the formula is written out in
    multi-tensor ops (``_written_out``).
    """

    def __init__(self, params: dict[str, Tensor], lr: Tensor, epsilon: float) -> None:
        if AMSGRAD:
            raise NotImplementedError("AMSGrad: the written-out update (CUDA) has none")
        self.params, self.lr, self.epsilon, self.t = params, lr, epsilon, 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}

    @torch.no_grad()
    def step(self, active: Tensor, masks: dict[str, Tensor] | None = None) -> None:
        self.t += 1
        if self.lr.device.type == "cpu":
            self._fused(active)
        else:
            self._written_out(active)
        for k, p in self.params.items():
            if masks and k in masks:
                p.mul_(masks[k])
            p.grad = None

    def _written_out(self, active: Tensor) -> None:
        """Keras' update of every seed at once, ``p -= alpha * m / (sqrt(v) + epsilon)`` with
        ``alpha`` the seed's bias-corrected rate, in PyTorch's multi-tensor (foreach) ops: each
        line is one kernel over all the weights on CUDA, where a step of these small networks
        is bound by kernel launches (docs/gpu.md), instead of one kernel per weight tensor.
        Only the per-seed rate, broadcast, is applied tensor by tensor (``m * alpha`` first, as
        the per-tensor formula multiplies, so the result is the same to the bit)."""
        keys = list(self.params)
        if not keys:  # nothing to train (the foreach ops refuse empty lists)
            return
        params = [self.params[k] for k in keys]
        grads = [p.grad for p in params]
        ms, vs = [self.m[k] for k in keys], [self.v[k] for k in keys]
        alpha = self.lr * active * (math.sqrt(1 - BETA2 ** self.t) / (1 - BETA1 ** self.t))
        torch._foreach_lerp_(ms, grads, 1 - BETA1)
        torch._foreach_mul_(vs, BETA2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - BETA2)
        denominators = torch._foreach_sqrt(vs)
        torch._foreach_add_(denominators, self.epsilon)
        # the per-seed rate broadcasts: one product per tensor (a foreach product of tensors of
        # other shapes would fall back to that anyway, where a version allows it at all)
        steps = [m * _expand(alpha, p) for m, p in zip(ms, params, strict=True)]
        torch._foreach_div_(steps, denominators)
        torch._foreach_sub_(params, steps)

    def _fused(self, active: Tensor) -> None:
        keys = list(self.params)
        for i, lr in enumerate((self.lr * active).tolist()):
            self.update(i, [self.params[k][i] for k in keys], [self.params[k].grad[i] for k in keys],
                        self.t, lr)

    @torch.no_grad()
    def update(self, seed: int, params: list[Tensor], grads: list[Tensor] | tuple[Tensor, ...], t: int,
               lr: float) -> None:
        """Step ``t`` of one seed: its ``params`` (in the order of ``self.params``) and their
        ``grads``, with PyTorch's fused kernel on the seed's slices of the moments. The
        trainer's CPU path calls it from the seed's thread; ``self.t`` is the caller's to keep."""
        keys = list(self.params)
        # the kernel walks a gradient's memory in its parameter's order: a gradient of another
        # layout (models.kernels' weight gradient is a transpose) must be made contiguous
        grads = [g.contiguous() for g in grads]
        moments = [self.m[k][seed] for k in keys], [self.v[k][seed] for k in keys]
        steps = [torch.tensor(float(t), device=params[0].device)] * len(keys)
        torch._fused_adam_(params, grads, *moments, [], steps, lr=lr, beta1=BETA1, beta2=BETA2,
                           weight_decay=0.0, eps=self.epsilon / math.sqrt(1 - BETA2 ** t), amsgrad=AMSGRAD,
                           maximize=False)

    def state(self) -> dict[str, Any]:
        return {"t": self.t, "m": self.m, "v": self.v, "lr": self.lr}

    def load(self, state: dict[str, Any]) -> None:
        self.t = state["t"]
        for k in self.params:
            self.m[k].copy_(state["m"][k])
            self.v[k].copy_(state["v"][k])
        self.lr.copy_(state["lr"])


@dataclass
class Callbacks:
    """EarlyStopping and ReduceLROnPlateau state, one entry per seed (Keras semantics)."""

    seeds: int
    mode: str
    best: list[float] = field(default_factory=list)
    wait: list[int] = field(default_factory=list)
    lr_best: list[float] = field(default_factory=list)
    lr_wait: list[int] = field(default_factory=list)
    stopped_epoch: list[int | None] = field(default_factory=list)
    best_epoch: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = self.best or [worst] * self.seeds
        self.wait = self.wait or [0] * self.seeds
        self.lr_best = self.lr_best or [worst] * self.seeds
        self.lr_wait = self.lr_wait or [0] * self.seeds
        self.stopped_epoch = self.stopped_epoch or [None] * self.seeds
        self.best_epoch = self.best_epoch or [None] * self.seeds

    def better(self, current: float, reference: float, min_delta: float = 0.0) -> bool:
        if self.mode == "min":
            return current < reference - min_delta
        return current > reference + min_delta


@dataclass
class History:
    """What ``fit`` returns: per-seed, per-epoch logs and the final evaluation."""

    epochs: list[dict[str, list[float]]]  # one dict per epoch: metric -> value per seed
    stopped_epoch: list[int | None]
    best_epoch: list[int | None]
    final: dict[str, list[Any]]  # test_loss, test_accuracy, precision, recall, confusion


def _loss(recipe: Recipe, logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample loss of stacked logits (S, B, K) against labels (S, B) or (B,)."""
    if recipe.loss == "binary_crossentropy":
        logits = logits.squeeze(-1)
        return F.binary_cross_entropy_with_logits(logits, y.float().expand_as(logits), reduction="none")
    s, b, k = logits.shape
    return F.cross_entropy(logits.reshape(s * b, k), y.expand(s, b).reshape(-1),
                           reduction="none").reshape(s, b)


def _correct(recipe: Recipe, logits: Tensor, y: Tensor) -> Tensor:
    if recipe.loss == "binary_crossentropy":
        return ((logits.squeeze(-1) > 0).long() == y).float()
    return (logits.argmax(-1) == y).float()


def _keras_precision_recall(probs: Tensor, y: Tensor, classes: int) -> tuple[Tensor, Tensor]:
    """``tf.keras.metrics.Precision()/Recall()`` on one-hot labels: every (sample, class)
    entry is a binary decision at threshold 0.5, counted over all entries (micro)."""
    if probs.shape[-1] == 1:
        pred = probs.squeeze(-1) > 0.5
        truth = y.bool().expand_as(pred)
    else:
        pred = probs > 0.5
        truth = F.one_hot(y, classes).bool().expand_as(pred)
    tp = (pred & truth).sum((1, 2) if pred.dim() == 3 else 1).float()
    predicted = pred.sum((1, 2) if pred.dim() == 3 else 1).float()
    actual = truth.sum((1, 2) if truth.dim() == 3 else 1).float()
    return tp / predicted.clamp(min=1), tp / actual.clamp(min=1)
