"""``python -m training.profile_step RECIPE ...``: where one training step's time goes.

For each recipe, this trainer's step of ``--seeds`` copies at once (on CUDA the vmapped
path) on the recipe's real data: the wall time per step, synchronised, then
``torch.profiler``'s tables of the ops by device time and by host time. On a borrowed GPU
this is the first thing to run before changing the trainer (docs/gpu.md): a step whose
device time is far below its wall time is bound by the host (kernel launches), one whose
device time fills it by the kernels themselves.

On the CPU it gives the wall time only: the CPU trainer runs each seed in a worker thread,
which torch.profiler does not follow (``python -m training.bench_layers`` breaks a CPU step
down by layer instead).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from training import datasets, recipes
from training.bench import _sync, timed, trainer_step
from training.cli_args import device_spec, positive_int
from training.run import keep_memory_for


def profile_recipe(name: str, device: torch.device, steps: int, seeds: int, rows: int) -> str:
    recipe = recipes.get(name)
    step = trainer_step(recipe, datasets.load(recipe.dataset), device, seeds=seeds)
    wall_ms = timed(step, steps, device).seconds / steps * 1e3  # after 5 untimed steps
    head = f"=== {name}: one step of {seeds} copies, {wall_ms:.2f} ms wall ({device})"
    if device.type != "cuda":
        return head + " (no op tables on the CPU: python -m training.bench_layers breaks a step down)"
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    table = prof.key_averages()
    width = {"max_name_column_width": 60}
    return "\n".join([head, table.table(sort_by="self_cuda_time_total", row_limit=rows, **width),
                      table.table(sort_by="self_cpu_time_total", row_limit=rows // 2, **width)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.profile_step",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("recipe", nargs="+", choices=recipes.names(), metavar="RECIPE")
    parser.add_argument("--steps", type=positive_int, default=10,
                        help="timed and profiled steps, after 5 untimed (default 10)")
    parser.add_argument("--seeds", type=positive_int, default=3, help="copies trained at once (default 3)")
    parser.add_argument("--rows", type=positive_int, default=22,
                        help="ops listed by device time (default 22)")
    parser.add_argument("--device", type=device_spec, default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:N (default: cuda when there is one)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device")
    keep_memory_for(args.recipe, device)  # as claims train does, before any thread starts
    if device.type == "cuda":  # as the trainer runs on CUDA (Keras' TF32 on Ampere and later)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    for name in args.recipe:
        print(profile_recipe(name, device, args.steps, args.seeds, args.rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
