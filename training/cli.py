"""``python -m claims train`` and ``python -m claims recipes``: run the sources' recipes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

import models
from models import cost
from training import plots, recipes, results
from training.run import DEFAULT_SEEDS, default_device, train_recipe


def _recipes(_args: argparse.Namespace) -> int:
    from training.run import plan_points, stack_groups

    rows = []
    for name in recipes.names():
        r = recipes.get(name)
        plan = plan_points(r)
        path = results.path_for(name)
        rows.append((name, r.model, r.dataset, r.epochs, r.batch_size, len(plan),
                     len(stack_groups(r, plan, {}, stack_grid=True)), "yes" if path.exists() else "-"))
    print(tabulate(rows, headers=("recipe", "model", "dataset", "epochs", "batch", "points", "runs",
                                  "result"), tablefmt="simple"))
    print("\npoints: grid points or lottery iterations; runs: how many trainings they take, grid "
          "points that differ only in penalties or dropout rates training as one stack")
    return 0


def _device(text: str | None) -> torch.device:
    if text is None:
        return default_device()
    device = torch.device(text)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device here; use --device cpu to train on the CPU")
    return device


def _train(args: argparse.Namespace) -> int:
    names = recipes.names() if args.all else args.recipe
    if not names:
        raise ValueError("name at least one recipe (see 'python -m claims recipes') or pass --all")
    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in names:
        recipes.get(name)  # fail early on a typo, before any training
    deadline = time.time() + args.time_limit if args.time_limit else None
    for number, name in enumerate(names):
        result = train_recipe(name, seeds=args.seeds, device=device, directory=args.results,
                              max_epochs=args.max_epochs, data_root=args.data_root,
                              progress=not args.quiet, resume=not args.restart, deadline=deadline)
        if result is None:
            left = " ".join(names[number:])
            print(f"time limit of {args.time_limit:g} s reached: {name} stopped at its last finished epoch "
                  f"(checkpoint kept). Not finished: {left}. Run the same command again to go on.",
                  file=sys.stderr)
            return 3
        path = results.path_for(name, args.results)
        print(f"{name}: {_summary(result)} -> {path}")
        if not args.no_plots:
            _draw(result, args.results)
    return 0


def _draw(result: dict, directory: Path | None) -> None:
    # The claims layer names the networks and draws their claims; this command is its entry point.
    from claims import figures

    drawn = figures.draw(result, directory)
    if not drawn and not plots.available():
        print("  (no plots: install matplotlib)", file=sys.stderr)
    for figure in drawn:
        print(f"  plot: {figure}")


def _plots(args: argparse.Namespace) -> int:
    names = args.recipe or [n for n in recipes.names() if results.path_for(n, args.results).exists()]
    for name in names:
        path = results.path_for(name, args.results)
        if not path.exists():
            raise FileNotFoundError(f"no result {path}: run 'python -m claims train {name}' first")
        print(f"{name}:")
        _draw(results.read(path), args.results)
    return 0


def _summary(result: dict) -> str:
    accs = [sum(p["final"]["accuracy"]) / len(p["final"]["accuracy"]) for p in result["points"]]
    best = max(accs)
    grid = f" (best of {len(accs)} grid points)" if len(accs) > 1 else ""
    return (f"test accuracy {best:.4f}{grid}, mean of seeds {result['seeds']}, "
            f"{result['provenance']['wall_s']} s on {result['provenance']['device']}")


def _bench(args: argparse.Namespace) -> int:
    from training import bench

    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.model or [n for n in models.names() if n not in bench.LARGE]:
        model = models.build(name)
        batch = args.batch
        counted = cost.cost(model, batch)
        rows.append((name, f"{counted.trainable:,}", f"{counted.flops_per_image / 1e6:,.2f}", batch,
                     f"{counted.peak_training.total / 2**20:,.1f}",
                     f"{bench.images_per_s(cost.forward_step, model, batch, device, repeats=10):,.0f}",
                     f"{bench.images_per_s(cost.training_step, model, batch, device):,.0f}"))
    where = results.device_name(device)
    print(tabulate(rows, headers=("model", "trainable", "MFLOPs/image", "batch", "peak train MiB",
                                       "forward img/s", "train img/s"),
                   tablefmt="simple"))
    print(f"\n{where}, torch {torch.__version__}")
    for recipe_name in args.ratio:
        recipe = recipes.get(recipe_name)
        arrays = bench.synthetic(bench.image_shape(recipe.model))
        base = bench.timed(bench.dataloader_step(recipe, arrays, device), args.steps, device)
        ours = bench.timed(bench.trainer_step(recipe, arrays, device, args.seeds), args.steps, device,
                           seeds=args.seeds)
        print(f"{recipe_name} (batch {recipe.batch_size}): DataLoader loop {base.model_steps_per_s:,.1f} "
              f"steps/s; this trainer {ours.model_steps_per_s:,.1f} model-steps/s with {args.seeds} "
              f"seeds at once: ratio {ours.model_steps_per_s / base.model_steps_per_s:.2f}x")
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    lst = sub.add_parser("recipes", help="list the training recipes of the sources",
                         description="Every training recipe of the sources, and whether a result exists.")
    lst.set_defaults(run=_recipes)

    train = sub.add_parser(
        "train", help="train recipes and write their result files",
        description="Train a source's recipe with several seeds at once (the data on the device, "
                    "Keras semantics) and write results/RECIPE.json with provenance, plus plots. "
                    "A killed run resumes from its last finished epoch when run again.",
        epilog="examples:\n  python -m claims train mnist_approach3\n"
               "  python -m claims train --all --device cuda\n"
               "  python -m claims train lenet0 --seeds 0 1 2 3 4 --device cpu",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("recipe", nargs="*", help="recipe names (see 'python -m claims recipes')")
    train.add_argument("--all", action="store_true", help="every recipe")
    train.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                       help="seeds trained together (default: 0 1 2)")
    train.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    train.add_argument("--results", type=Path, metavar="DIR",
                       help="where result files go (default: $LEAN_CNN_RESULTS or results/)")
    train.add_argument("--data-root", type=Path, metavar="DIR",
                       help="where the datasets are (default: $LEAN_CNN_DATA or data/)")
    train.add_argument("--max-epochs", type=int, metavar="N",
                       help="cap the recipe's epochs (the result is marked as a prefix run)")
    train.add_argument("--time-limit", type=float, metavar="SECONDS",
                       help="stop cleanly before an epoch that would end past this many seconds from "
                            "now (checkpoint kept, exit status 3); the same command resumes")
    train.add_argument("--restart", action="store_true", help="ignore a checkpoint and start over")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not draw plots")
    train.set_defaults(run=_train)

    plot = sub.add_parser("plots", help="draw the plots of existing result files",
                          description="Learning curves, comparisons and confusion matrices from "
                                      "results/*.json, saved under results/plots/.")
    plot.add_argument("recipe", nargs="*", help="recipes (default: every one with a result file)")
    plot.add_argument("--results", type=Path, metavar="DIR", help="where the result files are")
    plot.set_defaults(run=_plots)

    bench = sub.add_parser(
        "bench", help="throughput of every model, and this trainer against a DataLoader loop",
        description="Per model: parameters, forward FLOPs per image (torch.utils.flop_counter), images "
                    "per second forward and per training step on this device. Then, per --ratio "
                    "recipe, optimizer steps per second of this trainer (data on the device, "
                    "--seeds models per step) against a plain DataLoader loop on the same model "
                    "and batch size. Timings are this machine's, not a claim.")
    bench.add_argument("model", nargs="*", help="models (default: all but the ImageNet-sized ones)")
    bench.add_argument("--batch", type=int, default=64, help="batch size of the per-model rows (64)")
    bench.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    bench.add_argument("--threads", type=int, help="CPU threads for torch")
    bench.add_argument("--ratio", nargs="*", default=["mnist_approach3", "mnist_dense2"], metavar="RECIPE",
                       help="recipes for the trainer-vs-DataLoader ratio (default: mnist_approach3 "
                            "mnist_dense2; none: --ratio)")
    bench.add_argument("--steps", type=int, default=100, help="timed steps per ratio measurement (100)")
    bench.add_argument("--seeds", type=int, default=3, help="models per step in this trainer (3)")
    bench.set_defaults(run=_bench)
