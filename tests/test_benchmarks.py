"""Per-batch throughput (pytest-benchmark), marker ``benchmark``.

    pytest -m benchmark --benchmark-enable --benchmark-autosave     # measure, save under .benchmarks/
    pytest -m benchmark --benchmark-enable --benchmark-compare --benchmark-compare-fail=mean:10%

The project's pytest configuration passes ``--benchmark-disable``, so a plain ``pytest`` runs
each benchmarked function once, as a smoke test, without timing it. Nothing here asserts a
speed: the trainer-vs-DataLoader, trainer-vs-plain-loop (one epoch with its evaluation) and
compiled-vs-eager ratios are computed from the saved timings and printed at the end of the
run (see conftest.py), never checked against a threshold. The compiled cases run only with
``--benchmark-enable`` (compiling takes tens of seconds) and skip otherwise.
"""

from __future__ import annotations

import pytest
import torch

import models
from claims.registry import registry
from models import cost
from training import bench
from training.recipes import batch_sizes, get

pytestmark = pytest.mark.benchmark

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
#: Per model, the batch size its source trains with; the ImageNet models run at batch 2 only,
#: which keeps VGG-16's CPU training step to seconds.
SOURCE_BATCH = batch_sizes()
COMMON_BATCH = 64
RATIO_RECIPES = ("mnist_approach3", "mnist_dense2", "lenet0")


#: (model, batch) pairs that the registry's cost claims compare (statistic throughput_ratio).
CLAIMED = {(c.measure[key], c.measure["batch"]) for c in registry()
           if c.measure.get("statistic") == "throughput_ratio" for key in ("model", "versus")}


def _cases():
    for name in models.names():
        batches = {2} if name in bench.LARGE else {SOURCE_BATCH.get(name, COMMON_BATCH), COMMON_BATCH}
        for batch in sorted(batches | {b for model, b in CLAIMED if model == name}):
            yield pytest.param(name, batch, id=f"{name}-b{batch}")


def _synced(step):
    """Wait for the GPU inside the timed region, so a round is the work, not its launch."""
    def run() -> None:
        step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
    return run


@pytest.mark.parametrize(("name", "batch"), list(_cases()))
@pytest.mark.parametrize("what", ["forward", "train-step"])
def test_throughput(benchmark, what: str, name: str, batch: int) -> None:
    """Also records, on CUDA, the allocator's peak during the rounds (beside the counted peak
    of models.cost, which leaves out the allocator's rounding and the CUDA context)."""
    torch.manual_seed(0)
    make = cost.forward_step if what == "forward" else cost.training_step
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    step = _synced(make(models.build(name), batch, DEVICE))
    benchmark.group = f"{what}-b{batch}"
    benchmark.extra_info.update(what=what, model=name, batch=batch, images_per_round=batch,
                                device=DEVICE.type, threads=torch.get_num_threads())
    if not benchmark.disabled:
        step()  # warm-up
    benchmark(step)
    if DEVICE.type == "cuda":
        benchmark.extra_info["cuda_peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
        benchmark.extra_info["gpu"] = torch.cuda.get_device_name(DEVICE)  # the reasons name it


STEPS = 20


@pytest.mark.parametrize("recipe", RATIO_RECIPES)
@pytest.mark.parametrize("loop", ["dataloader", "trainer"])
def test_trainer_against_dataloader(benchmark, recipe: str, loop: str) -> None:
    """STEPS optimizer steps per round: one model through a DataLoader, or three seeds at once
    through this trainer. conftest.py turns the pair into a ratio of model-steps per second."""
    r = get(recipe)
    arrays = bench.synthetic(bench.image_shape(r.model), n=2000)
    benchmark.group = f"trainer-vs-dataloader-{recipe}"
    seeds = 1 if loop == "dataloader" else 3
    benchmark.extra_info.update(model_steps_per_round=STEPS * seeds, recipe=recipe, loop=loop,
                                device=str(DEVICE), threads=torch.get_num_threads())
    if loop == "dataloader":
        step = bench.dataloader_step(r, arrays, DEVICE)
    else:
        step = bench.trainer_step(r, arrays, DEVICE, seeds)
    synced = _synced(lambda: [step() for _ in range(STEPS)])
    benchmark.pedantic(synced, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("recipe", ["mnist_approach3"])
@pytest.mark.parametrize("loop", ["plain", "trainer"])
def test_trainer_epoch_against_plain_loop(benchmark, recipe: str, loop: str) -> None:
    """One epoch with its evaluation, one seed: this trainer, or the plain slicing loop (the
    data as one tensor, randperm slices, torch.optim.Adam). conftest.py turns the pair into
    the trainer's speed over the loop's (``trainer_vs_plain_loop``; goal: 2 or more)."""
    r = get(recipe)
    data = bench.prepare(r, bench.synthetic(bench.image_shape(r.model), n=2000), DEVICE)
    epoch = bench.plain_epoch(r, data) if loop == "plain" else bench.trainer_epoch(r, data, [0])
    benchmark.group = f"trainer-vs-plain-loop-{recipe}"
    benchmark.extra_info.update(epoch_loop=loop, recipe=recipe, models_per_round=1, images=2000,
                                device=str(DEVICE), threads=torch.get_num_threads())
    benchmark.pedantic(_synced(epoch), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("recipe", ["mnist_approach3"])
@pytest.mark.parametrize("seeds", ["one", "three"])
def test_seeds_epoch_against_one_seed(benchmark, recipe: str, seeds: str) -> None:
    """One epoch with its evaluation of this trainer, one seed or three side by side (on the
    CPU, in threads: training.parallel). conftest.py turns the pair into three seeds' models
    per second over one seed's (``seeds_vs_one``; goal on the CPU: 1/0.6 = 1.67 or more)."""
    r = get(recipe)
    data = bench.prepare(r, bench.synthetic(bench.image_shape(r.model), n=2000), DEVICE)
    count = {"one": 1, "three": 3}[seeds]
    epoch = bench.trainer_epoch(r, data, list(range(count)))
    benchmark.group = f"seeds-vs-one-{recipe}"
    benchmark.extra_info.update(seed_count=seeds, recipe=recipe, models_per_round=count, images=2000,
                                device=str(DEVICE), threads=torch.get_num_threads())
    benchmark.pedantic(_synced(epoch), rounds=5, warmup_rounds=1)


#: Models whose training step is timed compiled (torch.compile, inductor) against eager.
COMPILED = ("mnist_approach3", "lenet", "kmnist_gap")


@pytest.mark.parametrize("name", COMPILED)
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_compiled_training_step(benchmark, mode: str, name: str) -> None:
    """One training step at the source's batch size, the model compiled or not; conftest.py
    turns the pair into a ratio. Compiling takes tens of seconds, worth it only when timed."""
    if mode == "compiled" and benchmark.disabled:
        pytest.skip("torch.compile is timed only with --benchmark-enable (compiling takes tens of seconds)")
    batch = SOURCE_BATCH[name]
    torch.manual_seed(0)
    step = cost.training_step(models.build(name), batch, DEVICE)
    if mode == "compiled":
        step.model = torch.compile(step.model)
    benchmark.group = f"compile-{name}-b{batch}"
    benchmark.extra_info.update(compile=mode, model=name, batch=batch, images_per_round=batch,
                                device=DEVICE.type, threads=torch.get_num_threads())
    synced = _synced(step)
    if not benchmark.disabled:
        synced()  # compiles, and warms up
    benchmark(synced)
