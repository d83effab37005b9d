"""A Keras-faithful ``fit`` that trains several seeds of one model at once.

Why not ``model.fit`` in PyTorch with a DataLoader: the networks here are tiny, so a run is
dominated by per-batch overhead. The data lives on the device as one tensor, batches are
index slices of it, and the seeds are one *stack*: every parameter carries a leading seed
axis. On CUDA one step runs all seeds (``torch.func.vmap`` over ``functional_call``). On the
CPU, where vmapped convolutions are slower than a loop, each seed is a chain of steps of its
own, and the chains run side by side in threads, one core each (``training.parallel``):
a seed computes exactly what it would alone.

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
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from models import kernels
from models.layers import output_activation
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
from training.parallel import SeedPool
from training.recipes import Recipe
from training.stack import Stack

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


class Trainer:
    """Runs one recipe on one stack of seeds; ``fit`` is resumable through ``checkpoint``."""

    def __init__(self, recipe: Recipe, stack: Stack, data: Data, *, seeds: list[int],
                 masks: dict[str, Tensor] | None = None, vmapped: bool | None = None,
                 workers: int | None = None) -> None:
        """``workers``: threads that run the seeds side by side on the CPU, one intra-op
        thread each (default: as many as torch has intra-op threads; training keeps at most
        one per seed busy, evaluation all of them, a (seed, batch) pair each)."""
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
        self.epoch = 0
        self.history: list[dict[str, list[float]]] = []
        self.best_state: dict[str, Tensor] | None = None
        self.final_state: dict[str, Tensor] | None = None
        self._call = vmap(stack.call, in_dims=(0, 0, 0, 0, 0), randomness="different")
        self.workers = workers or torch.get_num_threads()
        self._pool: SeedPool | None = None
        # sees (seed, indices) of every training step: on the CPU from the seed's worker
        # thread, a seed's steps in order; under vmap from the calling thread
        self.fed: Callable[[int, Tensor], None] | None = None

    # -- forward ---------------------------------------------------------------------------
    def close(self) -> None:
        """End the seeds' worker threads now rather than when the trainer is collected."""
        if self._pool is not None:
            self._pool.close()

    def pool(self) -> SeedPool:
        if self._pool is None or self._pool.closed or self._pool.workers != self.workers:
            self._pool = SeedPool(self.workers)  # a stop closes the pool it happened in
        return self._pool

    def forward(self, x: Tensor, noise: dict[str, Tensor] | None = None) -> Tensor:
        """Logits (S, B, K) of stacked inputs x (S, B, C, H, W) on the vmapped path (CUDA);
        ``noise``, per Dropout layer, the (S, ...) uniform draws of a training step. The CPU
        path calls each seed on its own (``_seed_steps``, ``_eval_logits``)."""
        if not self.vmapped:
            raise RuntimeError("Trainer.forward is the vmapped path's; on the CPU seeds run one by one")
        stack = self.stack
        return self._call(stack.params, stack.buffers, stack.rates, noise or {}, x)

    def _noise(self, shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Each Dropout layer's uniform draws for one step on inputs of one copy's ``shape``,
        every copy from its own stream."""
        noise = {}
        for name, draws in self.stack.dropout_draws(shape).items():
            # drawn in place into one (S, ...) tensor: the same draws as stacking each copy's,
            # without a second copy of them (the Fashion networks' draws are 157 MB a copy)
            drawn = torch.empty((len(self.dropout_generators), *draws.drawn), device=self.device)
            for row, g in zip(drawn, self.dropout_generators, strict=True):
                torch.rand(draws.drawn, generator=g, device=self.device, out=row)
            noise[name] = draws.view(drawn)
        return noise

    def penalty(self, seed: int | None = None) -> Tensor:
        """Each copy's L1/L2 penalty (S,) from the stacked weights, or with ``seed`` that copy's
        alone (1,) from its own tensors (``Stack.seed_tensors``), the same arithmetic per row."""
        if seed is None:
            weights, rows = self.stack.params, slice(None)
        else:
            weights, rows = self.stack.seed_tensors(seed)[0], slice(seed, seed + 1)
        total = torch.zeros(self.stack.seeds if seed is None else 1, device=self.device)
        for name, (l1, l2) in self.stack.penalties.items():
            w = weights[name].reshape(len(total), -1)
            total = total + l1[rows] * w.abs().sum(1) + l2[rows] * w.square().sum(1)
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
        if not self.vmapped:
            _, _, last = self._seed_steps([idx])
            return torch.cat([loss for loss, _ in last]), torch.stack([logits for _, logits in last])
        x, y = self.data.train.x[idx], self.data.train.y[idx]
        logits = self.forward(x, self._noise(tuple(x.shape[1:])))
        loss = _loss(self.recipe, logits, y).mean(1) + self.penalty()
        loss.sum().backward()
        self.optimizer.step(self.active, self.masks)
        return loss, logits

    def _seed_steps(self, batches: list[Tensor], progress: Callable[[], None] | None = None,
                    ) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """Every seed's optimizer steps on its rows of ``batches`` (each (S, B)), the seeds
        as chains side by side (``SeedPool.chains``). Returns per seed the sum of loss times
        batch size, the count of correct predictions, and the last step's loss and logits;
        a seed's arithmetic is the stacked step's, on its own tensors."""
        s, recipe, train = self.stack.seeds, self.recipe, self.data.train
        draws = {b: self.stack.dropout_draws((b, *train.x.shape[1:]))  # the meta passes, in this thread
                 for b in {idx.shape[1] for idx in batches}}
        t0, lrs = self.optimizer.t, (self.lr * self.active).tolist()
        keys = list(self.stack.params)
        loss_sum = [torch.zeros(1, device=self.device) for _ in range(s)]
        correct = [torch.zeros(1, device=self.device) for _ in range(s)]
        last: list[Any] = [None] * s

        def run(i: int, start: int, stop: int) -> None:
            params, _ = self.stack.seed_tensors(i)
            leaves = [params[k] for k in keys]
            generator = self.dropout_generators[i]
            for k in range(start, stop):
                idx = batches[k][i].to(self.device)
                if self.fed:
                    self.fed(i, idx)
                x, y = train.x[idx], train.y[idx][None]
                with torch.enable_grad():
                    noise = {k: d.draw(generator, self.device) for k, d in draws[len(idx)].items()}
                    logits = self.stack.seed_logits(i, x, noise)[None]
                    loss = _loss(recipe, logits, y).mean(1) + self.penalty(i)
                    grads = torch.autograd.grad(loss.sum(), leaves)
                self.optimizer.update(i, leaves, grads, t0 + k + 1, lrs[i])
                with torch.no_grad():
                    for name, mask in (self.masks or {}).items():
                        params[name].mul_(mask[i])
                    loss = loss.detach()
                    loss_sum[i] += loss * idx.shape[0]
                    correct[i] += _correct(recipe, logits, y).sum(1)
                last[i] = (loss, logits.detach()[0])

        # a seed EarlyStopping stopped trains no more (its weights are frozen and its logs
        # blank); under vmap it runs at learning rate 0 with the others
        training = [i for i, active in enumerate(self.active.tolist()) if active]
        with kernels.enabled():  # the CPU's faster convolution backward (models.kernels)
            self.pool().chains(len(training), len(batches), lambda j, a, b: run(training[j], a, b), progress)
        self.optimizer.t = t0 + len(batches)
        return torch.cat(loss_sum), torch.cat(correct), last

    def train_epoch(self, progress: Callable[[], None] | None = None) -> dict[str, Tensor]:
        self.stack.base.train()
        train = self.data.train
        batches = self._batches(len(train))
        seen = sum(idx.shape[1] for idx in batches)
        if not self.vmapped:
            loss_sum, correct, _ = self._seed_steps(batches, progress)
            return {"loss": loss_sum / seen, "accuracy": correct / seen}
        loss_sum = torch.zeros(self.stack.seeds, device=self.device)
        correct = torch.zeros(self.stack.seeds, device=self.device)
        for idx in batches:
            idx = idx.to(self.device)
            for i in range(self.stack.seeds if self.fed else 0):
                self.fed(i, idx[i])
            y = train.y[idx]
            loss, logits = self.step(idx)
            b = idx.shape[1]
            with torch.no_grad():
                loss_sum += loss.detach() * b
                correct += _correct(self.recipe, logits, y).sum(1)
            if progress:
                progress()
        return {"loss": loss_sum / seen, "accuracy": correct / seen}

    @torch.no_grad()
    def evaluate(self, split: Split, *, confusion: bool = False) -> dict[str, Tensor]:
        """Loss (with penalty, as Keras reports it) and accuracy of every seed on ``split``."""
        self.stack.base.eval()
        s = self.stack.seeds
        bs = self.recipe.eval_batch
        loss_sum = torch.zeros(s, device=self.device)
        correct = torch.zeros(s, device=self.device)
        k = self.data.classes
        matrix = torch.zeros(s, k, k, device=self.device, dtype=torch.long) if confusion else None
        probs = []
        starts = range(0, len(split), bs)
        for start, logits in zip(starts, self._eval_logits(split, starts, bs), strict=True):
            y = split.y[start:start + bs]
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

    def _eval_logits(self, split: Split, starts: range, bs: int) -> Any:
        """Each batch's logits (S, B, K); on the CPU every (seed, batch) pair is a task of its
        own for the pool, so that S seeds keep every worker busy."""
        s = self.stack.seeds
        if self.vmapped:
            return (self.forward(x.expand(s, *x.shape)) for x in (split.x[a:a + bs] for a in starts))

        def one(job: tuple[int, int]) -> Tensor:
            i, a = job
            with torch.no_grad():
                return self.stack.seed_logits(i, split.x[a:a + bs])
        outs = self.pool().map(one, [(i, a) for a in starts for i in range(s)])
        return (torch.stack(outs[j * s:(j + 1) * s]) for j in range(len(starts)))

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
