"""A Keras-faithful ``fit`` that trains several seeds of one model at once.

Why not ``model.fit`` in PyTorch with a DataLoader: the networks here are tiny, so a run is
dominated by per-batch overhead. The data lives on the device as one tensor, batches are
index slices of it, and the seeds are one *stack*: every parameter carries a leading seed
axis, and one step runs all seeds (``torch.func.vmap`` over ``functional_call`` on CUDA,
a loop over seed slices on the CPU, where vmapped convolutions are slower than a loop).

What Keras does and PyTorch does not, reproduced here:
- Adam as Keras writes it: ``p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + epsilon)``
  (PyTorch adds epsilon to the bias-corrected ``sqrt(v)``: not the same at epsilon 1e-4).
- The reported training loss and accuracy are running means over the epoch, in train mode;
  ``val_*`` and ``test_*`` are evaluated in eval mode at the epoch's end.
- L1/L2 kernel penalties are added to the loss.
- EarlyStopping (patience, baseline, restore_best_weights, which restores only when the
  callback stops training) and ReduceLROnPlateau (factor, patience, min_delta 1e-4),
  each seed on its own: a stopped seed's learning rate is zero and its weights frozen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from models import kernels
from models.layers import Dropout, output_activation, regularized
from training.keras import (  # noqa: F401 (KerasAdam, BETA1, BETA2: imported from here too)
    BETA1,
    BETA2,
    REDUCE_LR_MIN_DELTA,
    Callbacks,
    History,
    KerasAdam,
    _correct,
    _keras_precision_recall,
    _loss,
    _select,
)
from training.recipes import Recipe

# added to a seed for its Dropout stream, apart from its shuffling stream on the CPU
DROPOUT_STREAM = 1 << 32
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr")


@dataclass
class Split:
    """Images (N, C, H, W) float and labels (N,) long, on the training device."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Data:
    train: Split
    test: Split
    val: Split | None = None
    classes: int = 10


@dataclass
class Stack:
    """S copies of one architecture as stacked tensors, plus a stateless copy to call.

    The copies (seeds, or grid points times seeds) share one architecture; they may differ
    in their Keras ``l1_l2`` penalties, which act in the loss (``penalties``: per regularized
    kernel, the (S,) l1 and l2 coefficients), and in their Dropout rates (``rates``: per
    Dropout layer, the (S,) rates; empty when every copy has the same ones).
    """

    base: nn.Module
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    penalties: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    rates: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def of(cls, modules: list[nn.Module], device: torch.device) -> Stack:
        penalties: dict[str, tuple[Tensor, Tensor]] = {}
        for i, module in enumerate(modules):
            for name, l1, l2 in regularized(module):
                pair = penalties.setdefault(name, (torch.zeros(len(modules), device=device),
                                                   torch.zeros(len(modules), device=device)))
                pair[0][i], pair[1][i] = l1, l2
        rates = {name: torch.tensor([m.get_submodule(name).p for m in modules], device=device)
                 for name, layer in modules[0].named_modules() if isinstance(layer, Dropout)}
        rates = {name: r for name, r in rates.items() if bool((r != r[0]).any())}
        params, buffers = stack_module_state([m.to(device) for m in modules])
        base = modules[0].to("meta")
        return cls(base, {k: v.detach().requires_grad_() for k, v in params.items()},
                   {k: v.detach() for k, v in buffers.items()}, penalties, rates)

    @property
    def seeds(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def state(self) -> dict[str, Tensor]:
        return {**{k: v.detach().clone() for k, v in self.params.items()},
                **{k: v.clone() for k, v in self.buffers.items()}}

    def load(self, state: dict[str, Tensor], which: Tensor | None = None) -> None:
        """Copy ``state`` in, for every seed or only where ``which`` (S,) is true."""
        if which is not None:
            state = _select(which, state, self.state())
        with torch.no_grad():
            for k, v in (*self.params.items(), *self.buffers.items()):
                v.copy_(state[k])

    def module(self, seed: int) -> nn.Module:
        """One seed as an ordinary module on the CPU (for saving, pruning, inspecting)."""
        import copy

        module = copy.deepcopy(self.base).to_empty(device="cpu")
        module.load_state_dict({k: v[seed].detach().cpu() for k, v in self.state().items()})
        return module


class Trainer:
    """Runs one recipe on one stack of seeds; ``fit`` is resumable through ``checkpoint``."""

    def __init__(self, recipe: Recipe, stack: Stack, data: Data, *, seeds: list[int],
                 masks: dict[str, Tensor] | None = None, vmapped: bool | None = None) -> None:
        self.recipe, self.stack, self.data, self.seeds, self.masks = recipe, stack, data, seeds, masks
        self.device = next(iter(stack.params.values())).device
        self.vmapped = self.device.type == "cuda" if vmapped is None else vmapped
        s = stack.seeds
        self.lr = torch.full((s,), float(recipe.learning_rate), device=self.device)
        self.active = torch.ones(s, device=self.device)
        self.optimizer = KerasAdam(stack.params, self.lr, recipe.epsilon)
        self.callbacks = Callbacks(s, recipe.mode)
        self.output = output_activation(stack.base)
        # one shuffling stream per seed, and one Dropout stream per copy on the device: a
        # copy's batches and masks do not depend on the copies beside it
        self.generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
        self.dropout_generators = [torch.Generator(device=self.device).manual_seed(seed + DROPOUT_STREAM)
                                   for seed in seeds]
        # the shared module's Dropout layers, on which each call sets a copy's rates and draws
        self._dropouts = {name: m for name, m in stack.base.named_modules() if isinstance(m, Dropout)}
        self._dropout_shapes: dict[tuple[int, ...], dict[str, torch.Size]] = {}
        self.epoch = 0
        self.history: list[dict[str, list[float]]] = []
        self.best_state: dict[str, Tensor] | None = None
        self.final_state: dict[str, Tensor] | None = None
        self._call = vmap(self._one, in_dims=(0, 0, 0, 0, 0), randomness="different")

    # -- forward ---------------------------------------------------------------------------
    def _one(self, params: dict[str, Tensor], buffers: dict[str, Tensor], rates: dict[str, Tensor],
             noise: dict[str, Tensor], x: Tensor) -> Tensor:
        """One copy's logits; its Dropout rates (where the copies differ in them) and its
        Dropout draws are set on the shared module for this call only."""
        layers = self._dropouts
        for name, rate in rates.items():
            layers[name].rates = rate
        for name, draws in noise.items():
            layers[name].noise = draws
        try:
            return functional_call(self.stack.base, (params, buffers), (x,))
        finally:
            for layer in layers.values():
                layer.rates = layer.noise = None

    def forward(self, x: Tensor, noise: dict[str, Tensor] | None = None) -> Tensor:
        """Logits (S, B, K) of stacked inputs x (S, B, C, H, W); ``noise``, per Dropout layer,
        the (S, ...) uniform draws of a training step."""
        stack, noise = self.stack, noise or {}
        if self.vmapped:
            return self._call(stack.params, stack.buffers, stack.rates, noise, x)
        def copy(i: int, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v[i] for k, v in tensors.items()}
        with kernels.enabled():  # the CPU's faster convolution backward (models.kernels)
            outs = [self._one(copy(i, stack.params), copy(i, stack.buffers), copy(i, stack.rates),
                              copy(i, noise), x[i]) for i in range(stack.seeds)]
        return torch.stack(outs)

    def _noise(self, shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Each Dropout layer's uniform draws for one step on inputs of one copy's ``shape``,
        every copy from its own stream."""
        if shape not in self._dropout_shapes:  # one pass on the meta device finds the shapes
            seen: dict[str, torch.Size] = {}
            hooks = [layer.register_forward_pre_hook(
                         lambda _, args, name=name: seen.__setitem__(name, args[0].shape))
                     for name, layer in self._dropouts.items()]
            try:
                with torch.no_grad():
                    self.stack.base(torch.empty(shape, device="meta"))
            finally:
                for hook in hooks:
                    hook.remove()
            self._dropout_shapes[shape] = seen
        return {name: torch.stack([torch.rand(size, generator=g, device=self.device)
                                   for g in self.dropout_generators])
                for name, size in self._dropout_shapes[shape].items()}

    def penalty(self) -> Tensor:
        total = torch.zeros(self.stack.seeds, device=self.device)
        for name, (l1, l2) in self.stack.penalties.items():
            w = self.stack.params[name].flatten(1)
            total = total + l1 * w.abs().sum(1) + l2 * w.square().sum(1)
        return total

    # -- one epoch -------------------------------------------------------------------------
    def _batches(self, n: int) -> list[Tensor]:
        """Index batches (S, B) for one epoch: a fresh permutation per seed (Keras shuffles
        every epoch); with ``steps_per_epoch``, full batches drawn across passes."""
        bs = self.recipe.batch_size
        if self.recipe.steps_per_epoch is None:
            order = torch.stack([torch.randperm(n, generator=g) for g in self.generators])
            return list(order.to(self.device).split(bs, dim=1))  # one copy per epoch: no per-step sync
        need = self.recipe.steps_per_epoch * bs
        passes = math.ceil(need / n)
        order = torch.stack([torch.cat([torch.randperm(n, generator=g) for _ in range(passes)])[:need]
                             for g in self.generators])
        return list(order.to(self.device).split(bs, dim=1))

    def step(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """One optimizer step of every seed on its batch ``idx`` (S, B) of the training split;
        returns the per-seed loss (penalty included) and the logits."""
        x, y = self.data.train.x[idx], self.data.train.y[idx]
        logits = self.forward(x, self._noise(tuple(x.shape[1:])))
        loss = _loss(self.recipe, logits, y).mean(1) + self.penalty()
        loss.sum().backward()
        self.optimizer.step(self.active, self.masks)
        return loss, logits

    def train_epoch(self, progress: Callable[[], None] | None = None) -> dict[str, Tensor]:
        self.stack.base.train()
        train = self.data.train
        loss_sum = torch.zeros(self.stack.seeds, device=self.device)
        correct = torch.zeros(self.stack.seeds, device=self.device)
        seen = 0
        for idx in self._batches(len(train)):
            idx = idx.to(self.device)
            y = train.y[idx]
            loss, logits = self.step(idx)
            b = idx.shape[1]
            with torch.no_grad():
                loss_sum += loss.detach() * b
                correct += _correct(self.recipe, logits, y).sum(1)
            seen += b
            if progress:
                progress()
        return {"loss": loss_sum / seen, "accuracy": correct / seen}

    @torch.no_grad()
    def evaluate(self, split: Split, *, confusion: bool = False) -> dict[str, Tensor]:
        """Loss (with penalty, as Keras reports it) and accuracy of every seed on ``split``."""
        self.stack.base.eval()
        s = self.stack.seeds
        bs = self.recipe.validation_batch_size or 1000
        loss_sum = torch.zeros(s, device=self.device)
        correct = torch.zeros(s, device=self.device)
        k = self.data.classes
        matrix = torch.zeros(s, k, k, device=self.device, dtype=torch.long) if confusion else None
        probs = []
        for start in range(0, len(split), bs):
            x, y = split.x[start:start + bs], split.y[start:start + bs]
            logits = self.forward(x.expand(s, *x.shape))
            loss_sum += _loss(self.recipe, logits, y).sum(1)
            correct += _correct(self.recipe, logits, y).sum(1)
            if confusion:
                pred = (logits.squeeze(-1) > 0).long() if k == 2 and logits.shape[-1] == 1 \
                    else logits.argmax(-1)
                flat = (y * k).expand(s, -1) + pred + (torch.arange(s, device=self.device) * k * k)[:, None]
                matrix += torch.bincount(flat.flatten(), minlength=s * k * k).reshape(s, k, k)
                probs.append(logits.softmax(-1) if self.output == "softmax" else logits.sigmoid())
        out = {"loss": loss_sum / len(split) + self.penalty(), "accuracy": correct / len(split)}
        if confusion:
            out["confusion"] = matrix
            out["precision"], out["recall"] = _keras_precision_recall(torch.cat(probs, 1), split.y, k)
        return out

    # -- callbacks -------------------------------------------------------------------------
    def _end_epoch(self, logs: dict[str, list[float]]) -> None:
        r, cb, epoch = self.recipe, self.callbacks, self.epoch
        trained = self.active.bool().clone()  # seeds that ran this epoch (stopping ones included)
        current = logs[r.monitor]
        improved = torch.zeros(self.stack.seeds, dtype=torch.bool, device=self.device)
        for i in range(self.stack.seeds):
            if not self.active[i]:
                continue
            value = current[i]
            if r.reduce_lr_patience is not None:  # Keras ReduceLROnPlateau
                if cb.better(value, cb.lr_best[i], REDUCE_LR_MIN_DELTA):
                    cb.lr_best[i], cb.lr_wait[i] = value, 0
                else:
                    cb.lr_wait[i] += 1
                    if cb.lr_wait[i] >= r.reduce_lr_patience:
                        self.lr[i] *= r.reduce_lr_factor
                        cb.lr_wait[i] = 0
            if r.early_stopping_patience is None:
                continue
            cb.wait[i] += 1  # Keras EarlyStopping (TF >= 2.9): wait resets only past the baseline
            if cb.better(value, cb.best[i]):
                cb.best[i], cb.best_epoch[i] = value, epoch
                improved[i] = True
                if r.early_stopping_baseline is None or cb.better(value, r.early_stopping_baseline):
                    cb.wait[i] = 0
                continue
            if cb.wait[i] >= r.early_stopping_patience and epoch > 0:
                cb.stopped_epoch[i] = epoch
                self.active[i] = 0
        if r.restore_best and improved.any():
            state = self.stack.state()
            self.best_state = state if self.best_state is None else _select(improved, state, self.best_state)
        state = self.stack.state()
        self.final_state = state if self.final_state is None else _select(trained, state, self.final_state)

    # -- the loop ----------------------------------------------------------------------------
    def run_epoch(self, progress: Callable[[], None] | None = None) -> dict[str, list[float]]:
        """One Keras epoch for every still-active seed: train, evaluate, callbacks."""
        logs = self.train_epoch(progress)
        if self.data.val is not None:
            logs.update({f"val_{k}": v for k, v in self.evaluate(self.data.val).items()})
        logs.update({f"test_{k}": v for k, v in self.evaluate(self.data.test).items()})
        logs["lr"] = self.lr.clone()
        row = {k: [float(x) for x in v.tolist()] for k, v in logs.items()}
        for k in row:  # a stopped seed logs nothing more
            row[k] = [x if a else math.nan for x, a in zip(row[k], self.active.tolist(), strict=True)]
        self._end_epoch(row)
        self.history.append(row)
        self.epoch += 1
        return row

    @property
    def done(self) -> bool:
        return self.epoch >= self.recipe.epochs or not bool(self.active.any())

    def finish(self) -> History:
        """Final weights (best ones where EarlyStopping stopped a seed and restores) and the
        final test evaluation with precision, recall and the confusion matrix."""
        if self.final_state is not None:
            self.stack.load(self.final_state)
        if self.recipe.restore_best and self.best_state is not None:
            stopped = torch.tensor([e is not None for e in self.callbacks.stopped_epoch], device=self.device)
            self.stack.load(self.best_state, stopped)
        final = self.evaluate(self.data.test, confusion=True)
        return History(self.history, list(self.callbacks.stopped_epoch), list(self.callbacks.best_epoch),
                       {k: v.tolist() for k, v in final.items()})

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "stack": self.stack.state(), "optimizer": self.optimizer.state(),
                "active": self.active, "callbacks": self.callbacks.__dict__.copy(),
                "history": self.history, "best_state": self.best_state, "final_state": self.final_state,
                "generators": [g.get_state() for g in self.generators],
                "dropout_generators": [g.get_state() for g in self.dropout_generators]}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.history = state["epoch"], state["history"]
        self.stack.load(state["stack"])
        self.optimizer.load(state["optimizer"])
        self.active.copy_(state["active"])
        self.callbacks = Callbacks(**state["callbacks"])
        self.best_state, self.final_state = state["best_state"], state["final_state"]
        # generator states are CPU byte tensors, whatever device the checkpoint was loaded to
        for g, saved in zip((*self.generators, *self.dropout_generators),
                            (*state["generators"], *state["dropout_generators"]), strict=True):
            g.set_state(saved.cpu())
