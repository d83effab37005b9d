"""Throughput: this trainer against the plain PyTorch loop a tutorial would write.

The baseline is what the sources' readers run: a Dataset that turns one uint8 image at a
time into a float tensor, a ``torch.utils.data.DataLoader`` with ``shuffle=True``, one model,
``torch.optim.Adam``, and a copy of every batch to the device. Ours keeps the data on the
device, slices batches by index and trains several seeds in one step. Both run the same
model and batch size; the figure that matters is the ratio of model-steps per second.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import models
from training.recipes import Recipe
from training.run import _seeded_models, pad_to, prepare
from training.trainer import Stack, Trainer

#: ImageNet-sized models, left out of the default table (seconds per batch on a CPU).
LARGE = ("alexnet", "alexnet_paper", "vgg16")


class ImageArrays(Dataset):
    """uint8 images converted one at a time, as torchvision's MNIST with ToTensor() does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> None:
        self.images, self.labels, self.size = images, labels, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float().div(255.0)
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        return pad_to(x, self.size), int(self.labels[i])


@dataclass(frozen=True)
class Throughput:
    steps: int
    seconds: float
    seeds: int = 1

    @property
    def model_steps_per_s(self) -> float:
        """Optimizer steps per second summed over the models trained together."""
        return self.steps * self.seeds / self.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataloader_step(recipe: Recipe, arrays, device: torch.device) -> Callable[[], None]:
    """One step of the plain loop: next DataLoader batch to the device, one model, torch's Adam."""
    size = tuple(models.entry(recipe.model).input_shape[1:])
    loader = DataLoader(ImageArrays(arrays.train_images, arrays.train_labels, size),
                        batch_size=recipe.batch_size, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    model = models.build(recipe.model, **recipe.options).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, eps=recipe.epsilon)
    batches = iter(loader)

    def step() -> None:
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def trainer_step(recipe: Recipe, arrays, device: torch.device, seeds: int = 3) -> Callable[[], None]:
    """One step of this trainer: device-resident data, an index slice, ``seeds`` models at once."""
    data = prepare(recipe, arrays, device)
    trainer = Trainer(recipe, Stack.of(_seeded_models(recipe, {}, list(range(seeds))), device), data,
                      seeds=list(range(seeds)))
    trainer.stack.base.train()
    batches = trainer._batches(len(data.train))
    count = 0

    def step() -> None:
        nonlocal count
        trainer.step(batches[count % len(batches)].to(device))
        count += 1
    return step


def timed(step: Callable[[], None], steps: int, device: torch.device, seeds: int = 1,
          warmup: int = 5) -> Throughput:
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return Throughput(steps, time.perf_counter() - start, seeds)


def synthetic(shape: tuple[int, ...], n: int = 6000, classes: int = 10, seed: int = 0):
    """Random uint8 images of a dataset's shape: throughput does not depend on the pixels."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = rng.integers(0, classes, n)
    return SimpleNamespace(train_images=images, train_labels=labels, test_images=images[:1000],
                           test_labels=labels[:1000], classes=tuple(str(c) for c in range(classes)))


def image_shape(model: str) -> tuple[int, ...]:
    """The uint8 image shape (H, W) or (H, W, C) a model's source feeds it."""
    c, h, w = models.entry(model).input_shape
    return (h, w) if c == 1 else (h, w, c)


def forward_step(model: torch.nn.Module, batch: int, device: torch.device) -> Callable[[], None]:
    """Inference on one batch of random images."""
    x = torch.randn(batch, *model.input_shape, device=device)
    model = model.to(device).eval()

    def step() -> None:
        with torch.no_grad():
            model(x)
    return step


def training_step(model: torch.nn.Module, batch: int, device: torch.device) -> Callable[[], None]:
    """One training step on one batch: forward, cross-entropy, backward, Adam."""
    x = torch.randn(batch, *model.input_shape, device=device)
    model = model.to(device).train()
    with torch.no_grad():
        shape = model(x[:2]).shape[1:]  # (K,), or more axes for the per-pixel Dense models
    y = torch.randint(0, shape[-1], (batch, *shape[:-1]), device=device)
    optimizer = torch.optim.Adam(model.parameters())

    def step() -> None:
        out = model(x)
        if shape[-1] == 1:
            loss = F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())
        else:
            loss = F.cross_entropy(out.reshape(-1, shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def images_per_s(make: Callable[..., Callable[[], None]], model: torch.nn.Module, batch: int,
                 device: torch.device, repeats: int = 5) -> float:
    """Images per second of ``make(model, batch, device)``'s step (forward_step, training_step)."""
    return batch * timed(make(model, batch, device), repeats, device, warmup=2).model_steps_per_s


def flops_per_image(model: torch.nn.Module) -> int:
    """Forward FLOPs of one image (torch.utils.flop_counter: a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter:
        meta(torch.zeros(1, *model.input_shape, device="meta"))
    return counter.get_total_flops()
