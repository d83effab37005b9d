"""Throughput: this trainer against the plain PyTorch loop a tutorial would write.

The baseline is what the sources' readers run: a Dataset that turns one uint8 image at a
time into a float tensor, a ``torch.utils.data.DataLoader`` with ``shuffle=True``, one model,
``torch.optim.Adam``, and a copy of every batch to the device. Ours keeps the data on the
device, slices batches by index and trains several seeds in one step. Both run the same
model and batch size; the figure that matters is the ratio of model-steps per second.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import models
from training.bench_files import (  # noqa: F401 (read as bench.X by the claims)
    BenchmarkMissing,
    Timing,
    benchmark_file,
    sessions,
    timing,
    timings,
)
from training.recipes import Recipe
from training.run import keep_memory_for, pad_to, prepare, seeded_trainer
from training.trainer import Data

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
    trainer = seeded_trainer(recipe, data, list(range(seeds)))
    trainer.stack.base.train()
    batches = trainer._batches(len(data.train))
    count = 0

    def step() -> None:
        nonlocal count
        trainer.step(batches[count % len(batches)].to(device))
        count += 1
    return step


def plain_epoch(recipe: Recipe, data: Data, seed: int = 0) -> Callable[[], float]:
    """One epoch of the plain slicing loop a careful tutorial would write, and its evaluation:
    the data as one tensor on the device, ``randperm`` slices, one model, ``torch.optim.Adam``
    (PyTorch's epsilon), then the test split in eval mode at batch 1000. Returns the epoch's
    function; it returns the test accuracy (so that nothing is optimised away)."""
    torch.manual_seed(seed)
    device = data.train.x.device
    model = models.build(recipe.model, **recipe.options).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, eps=recipe.epsilon)
    x, y = data.train.x, data.train.y

    def epoch() -> float:
        model.train()
        for idx in torch.randperm(len(y), device=device).split(recipe.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(data.test), 1000):
                logits = model(data.test.x[start:start + 1000])
                correct += int((logits.argmax(1) == data.test.y[start:start + 1000]).sum())
        return correct / len(data.test)
    return epoch


def trainer_epoch(recipe: Recipe, data: Data, seeds: list[int]) -> Callable[[], float]:
    """One Keras epoch of this trainer (train, evaluate, callbacks) for ``seeds`` at once;
    the function returns the mean test accuracy."""
    trainer = seeded_trainer(recipe, data, seeds)

    def epoch() -> float:
        row = trainer.run_epoch()
        return sum(row["test_accuracy"]) / len(seeds)
    return epoch


@dataclass(frozen=True)
class EpochRatio:
    """Seconds per epoch of this trainer (``seeds`` models) and of a baseline of one model
    (``plain_s``: the plain loop, or in ``seeds_ratio`` this trainer with one seed), measured
    alternately in one process, so that a busy machine slows both alike."""

    recipe: str
    seeds: int
    trainer_s: float
    plain_s: float

    @property
    def ratio(self) -> float:
        """The trainer's time over the baseline's, per model trained (goal: at most 0.5
        against the plain loop, 0.6 against one seed)."""
        return self.trainer_s / self.seeds / self.plain_s


def alternating(runs: dict[str, Callable[[], Any]], rounds: int,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds of each of ``runs`` by ``clock`` (wall time unless told), over ``rounds``
    rounds in which they take turns, after one untimed call of each: a busy machine slows
    them alike."""
    import statistics

    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def epoch_ratio(recipe: Recipe, data: Data, seeds: list[int], rounds: int = 3) -> EpochRatio:
    """Median of ``rounds`` alternating epochs of each, after one untimed epoch of each."""
    runs = {"plain": plain_epoch(recipe, data), "trainer": trainer_epoch(recipe, data, seeds)}
    t = alternating(runs, rounds)
    return EpochRatio(recipe.name, len(seeds), t["trainer"], t["plain"])


def seeds_ratio(recipe: Recipe, data: Data, seeds: list[int], rounds: int = 3) -> EpochRatio:
    """Median of ``rounds`` alternating epochs (evaluation included) of the seeds together
    and of the first seed alone, after one untimed epoch of each: an ``EpochRatio`` whose
    baseline is one seed of this trainer (goal of its ratio: at most 0.6)."""
    runs = {"one": trainer_epoch(recipe, data, seeds[:1]), "many": trainer_epoch(recipe, data, seeds)}
    t = alternating(runs, rounds)
    return EpochRatio(recipe.name, len(seeds), t["many"], t["one"])


#: The per-model table of ``claims bench``: headers, and widths that fit every model's row, so
#: that each row can be printed as soon as it is measured.
HEADERS = ("model", "trainable", "MFLOPs/image", "batch", "peak train MiB", "forward img/s", "train img/s")
WIDTHS = (23, 10, 12, 5, 14, 13, 11)


def table_line(cells: tuple) -> str:
    """One line of the table: the model name left-aligned, the figures right-aligned."""
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True)))


def model_row(name: str, batch: int, device: torch.device) -> tuple[str, ...]:
    """Counted costs and measured throughput of one model at ``batch`` on ``device``."""
    from models import cost

    model = models.build(name)
    counted = cost.cost(model, batch)
    return (name, f"{counted.trainable:,}", f"{counted.flops_per_image / 1e6:,.2f}", str(batch),
            f"{counted.peak_training.total / 2**20:,.1f}",
            f"{images_per_s(cost.forward_step, model, batch, device, repeats=10):,.0f}",
            f"{images_per_s(cost.training_step, model, batch, device):,.0f}")


def print_model_table(names: list[str], batch: int, device: torch.device, progress: bool = True) -> None:
    """The table of ``claims bench``, a row printed as each model is measured, under a
    progress bar (on stderr) that names the model being measured."""
    from tqdm.auto import tqdm

    print(table_line(HEADERS))
    print(table_line(tuple("-" * w for w in WIDTHS)), flush=True)
    # no bar where stderr is not a terminal: it would interleave with the table in a log
    with tqdm(names, unit="model", disable=None if progress else True, leave=False) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            bar.write(table_line(model_row(name, batch, device)))


def step_cpu_ms(recipe: Recipe, data: Data, seeds: list[int], rounds: int = 12,
                steps: int = 20) -> dict[str, float]:
    """CPU time of the process per training step (ms), median of ``rounds`` alternating
    rounds of ``steps`` steps (``alternating``, after one untimed round of each): the plain
    loop's step (one model) and this trainer's (``seeds`` at once). CPU time, unlike wall
    time, is little changed by other processes on the machine; it is the process's, all
    threads', because the trainer's seeds run in threads of their own
    (``training.parallel``). It counts work, not waiting: seeds side by side on two cores
    take less wall time than their CPU time."""
    torch.manual_seed(0)
    model = models.build(recipe.model, **recipe.options).to(data.train.x.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, eps=recipe.epsilon)
    order = torch.randperm(len(data.train), device=data.train.x.device).split(recipe.batch_size)
    trainer = seeded_trainer(recipe, data, seeds)
    trainer.stack.base.train()
    batches = trainer._batches(len(data.train))

    def plain(i: int) -> None:
        idx = order[i % len(order)]
        loss = F.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def ours(i: int) -> None:
        trainer.step(batches[i % len(batches)])

    def rounds_of(step: Callable[[int], None]) -> Callable[[], None]:
        done = itertools.count()

        def run() -> None:
            for _ in range(steps):
                step(next(done))
        return run
    seconds = alternating({"plain": rounds_of(plain), "trainer": rounds_of(ours)}, rounds,
                          clock=time.process_time)
    return {name: s / steps * 1e3 for name, s in seconds.items()}


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


def images_per_s(make: Callable[..., Callable[[], None]], model: torch.nn.Module, batch: int,
                 device: torch.device, repeats: int = 5) -> float:
    """Images per second of ``make(model, batch, device)``'s step (a models.cost step maker)."""
    return batch * timed(make(model, batch, device), repeats, device, warmup=2).model_steps_per_s


# --- Reading a saved pytest-benchmark run (results/benchmarks-DEVICE.json) -----------------

def main(argv: list[str] | None = None) -> int:
    """``python -m training.bench``: one recipe's epoch, this trainer against the plain loop,
    on the real dataset (the figure of docs/performance.md)."""
    import argparse

    from training import datasets
    from training.recipes import get

    parser = argparse.ArgumentParser(prog="python -m training.bench", description=main.__doc__)
    parser.add_argument("recipe", nargs="?", default="mnist_approach3")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds trained at once (0)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each, alternating (3)")
    parser.add_argument("--steps", action="store_true",
                        help="time training steps in CPU time (12 alternating rounds of 20), not epochs")
    parser.add_argument("--against-one", action="store_true",
                        help="time the seeds' epoch against the first seed's alone, not the plain loop")
    args = parser.parse_args(argv)
    keep_memory_for([args.recipe], torch.device("cpu"))  # as claims train does
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get(args.recipe)
    start = time.perf_counter()
    data = prepare(recipe, datasets.load(recipe.dataset), torch.device("cpu"))
    print(f"{recipe.name}: data loaded and prepared in {time.perf_counter() - start:.2f} s; "
          f"{torch.get_num_threads()} threads", flush=True)
    if args.steps:
        ms = step_cpu_ms(recipe, data, args.seeds)
        print(f"one training step, CPU time (median of 12 rounds of 20): this trainer {ms['trainer']:.1f} "
              f"ms for {len(args.seeds)} seed(s), the plain loop {ms['plain']:.1f} ms for one: "
              f"{ms['trainer'] / len(args.seeds) / ms['plain']:.2f}x its time per model")
        return 0
    if args.against_one:
        sr = seeds_ratio(recipe, data, args.seeds, args.rounds)
        print(f"one epoch with its evaluation (median of {args.rounds}): {sr.seeds} seeds "
              f"{sr.trainer_s:.2f} s, seed {args.seeds[0]} alone {sr.plain_s:.2f} s: "
              f"{sr.ratio:.2f}x one seed's time per seed ({sr.trainer_s / sr.plain_s:.2f}x in all)")
        return 0
    r = epoch_ratio(recipe, data, args.seeds, args.rounds)
    print(f"one epoch with its evaluation (median of {args.rounds}): this trainer {r.trainer_s:.2f} s for "
          f"{r.seeds} seed(s), the plain slicing loop {r.plain_s:.2f} s for one: {r.ratio:.2f}x its time "
          "per model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
