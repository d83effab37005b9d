"""``python -m claims train`` and ``python -m claims recipes``: run the sources' recipes.

Arguments are checked as they are parsed (``training.cli_args``: ``positive_int``,
``seed_range``, ``device_spec``),
and the results directory is checked writable, before anything trains. torch is imported by
the commands that need it, not by this module, so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from training import plots, recipes, results
from training.cli_args import (  # noqa: F401 (read as training_cli.X by the claims commands)
    MAX_SEEDS,
    SEED_END,
    SeedList,
    device_spec,
    positive_int,
    positive_seconds,
    seed_range,
)

if TYPE_CHECKING:
    import torch


# --- commands --------------------------------------------------------------------------------

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
    import torch

    from training.run import default_device

    if text is None:
        return default_device()
    device_spec(text)
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {text}: no CUDA device here; use --device cpu to train on the CPU")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(text)


@dataclass(frozen=True)
class _Target:
    """What a run does with a recipe's result file: write it (nothing held), add its seeds to
    the result held, or nothing (``done``: the file holds these very seeds of this table)."""

    held: dict[str, Any] | None = None
    done: bool = False


def _target(name: str, seeds: list[int], args: argparse.Namespace) -> _Target:
    """Refuses (ResultError) what would lose a finished result: seeds that overlap the file's
    without being the same, another recipe table, cap or subset."""
    from training.run import epochs_cap

    path = results.path_for(name, args.results)
    if args.replace or not path.exists():
        return _Target()
    how = (f"Train other seeds to add them to it (e.g. --seeds {_next_seeds(path)}), or pass --replace "
           "to write this run over it")
    recipe = recipes.get(name)
    head = {"recipe": name, "recipe_table": asdict(recipe), "seeds": seeds,
            "epochs_cap": epochs_cap(recipe, args.max_epochs), "limit": None}
    held = results.read(path)  # a damaged file: Damaged says how to restore it or retrain it
    try:
        if sorted(held.get("seeds") or []) == sorted(seeds):  # the same run again: done if alike
            results.mergeable(held, {**head, "seeds": []}, points=False)
            return _Target(held, done=True)
        results.mergeable(held, head, points=False)
    except results.ResultError as why:
        if not _seeds_would_join(held, head):  # not the seeds: the cap, the table or the subset differ
            how = (f"Other seeds would not join it either: train into another directory (--results DIR), "
                   f"or as {path.name} was trained; --replace writes this run over it and loses its "
                   f"seeds {' '.join(map(str, held.get('seeds') or []))}")
        raise results.ResultError(f"{path} already holds a result that seeds {' '.join(map(str, seeds))} "
                                  f"cannot join: {why}. {how}") from None
    return _Target(held)


def _seeds_would_join(held: dict[str, Any], head: dict[str, Any]) -> bool:
    """Whether seeds the file does not hold could join it, as this run's settings stand."""
    fresh = [max(held.get("seeds") or [0]) + 1]
    try:
        results.mergeable(held, {**head, "seeds": fresh}, points=False)
    except results.ResultError:
        return False
    return True


def _next_seeds(path: Path) -> str:
    try:
        held = results.read(path)["seeds"]
        start = max(held) + 1
    except (results.ResultError, KeyError, TypeError, ValueError):
        return "3-4"
    return f"{start}-{start + 1}"


def _train(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(recipes.names() if args.all else args.recipe))
    if not names:
        raise ValueError("name at least one recipe (see 'python -m claims recipes') or pass --all")
    for name in names:
        recipes.get(name)  # fail early on a typo, before any training
    seeds = list(args.seeds or results.DEFAULT_SEEDS)
    device = _device(args.device)
    results.check_writable(args.results)
    with ExitStack() as held:
        for name in names:  # a second run of these recipes into this directory stops here
            held.enter_context(results.lock(name, args.results))
        targets = {name: _target(name, seeds, args) for name in names}
        _check_datasets([name for name in names if not targets[name].done], args.data_root)
        return _train_locked(args, names, seeds, device, targets)


def _check_datasets(names: list[str], root: Path | None) -> None:
    """Every dataset the recipes read is on disk and verified before the first of them trains:
    a dataset found missing after hours of training the recipes named before it would cost
    a rerun of the whole command to learn. The error names the recipes that could train."""
    from training import datasets

    needed = dict.fromkeys(recipes.get(name).dataset for name in names)
    problems: dict[str, datasets.DatasetError] = {}
    for dataset in needed:
        try:
            datasets.check(dataset, root)
        except datasets.DatasetError as error:
            problems[dataset] = error
    if not problems:
        return
    first = next(iter(problems.values()))
    if len(problems) == len(needed) == 1:
        raise first
    blocked = [name for name in names if recipes.get(name).dataset in problems]
    ready = [name for name in names if name not in blocked]
    text = "; ".join(str(error).rstrip(".") for error in problems.values())
    text += f". Nothing was trained: {' '.join(blocked)} read {' and '.join(problems)}"
    if ready:
        text += f"; without them this can train now: python -m claims train {' '.join(ready)}"
    raise type(first)(text)


class Stopped(KeyboardInterrupt):
    """A signal asked a training run to stop (see ``_stopped_by_signals``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While a recipe trains, SIGTERM (and SIGINT, where it is not ignored) raise ``Stopped``,
    so ``kill`` stops a run as Ctrl-C does: the lock is released and the last finished epoch's
    checkpoint is kept (a checkpoint is written whole or not at all). A SIGINT the shell set to
    be ignored stays ignored: a script's background job is spared the terminal's Ctrl-C."""
    def stop(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    caught = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    before = {s: signal.signal(s, stop) for s in caught}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _train_locked(args: argparse.Namespace, names: list[str], seeds: list[int], device: torch.device,
                  targets: dict[str, _Target]) -> int:
    import torch

    from training.run import keep_memory_for, train_recipe

    keep_memory_for(names, device)  # before any thread starts (training.memory)
    if args.threads:
        torch.set_num_threads(args.threads)
    deadline = time.time() + args.time_limit if args.time_limit else None
    for number, name in enumerate(names):
        path, held = results.path_for(name, args.results), targets[name].held
        if targets[name].done:
            print(f"{name}: {path} already holds seeds {' '.join(map(str, seeds))}: nothing to train "
                  "(--replace trains them again)")
            continue
        left = " ".join(names[number:])
        try:
            with _stopped_by_signals():
                result = train_recipe(name, seeds=seeds, device=device, directory=args.results,
                                      max_epochs=args.max_epochs, data_root=args.data_root,
                                      progress=not args.quiet, resume=not args.restart,
                                      deadline=deadline, add_to=held)
        except Stopped as signalled:
            kept = (f"{name} keeps the checkpoint of its last finished epoch"
                    if any(results.checkpoint_path(name, 0, args.results).parent.glob("point*.pt"))
                    else f"{name} had finished no epoch, so it starts over")
            print(f"stopped by {signalled}: {kept}. Not finished: {left}. Run the same command again "
                  "to go on.", file=sys.stderr)
            return 128 + signalled.signum
        if result is None:
            print(f"time limit of {args.time_limit:g} s reached: {name} stopped at its last finished epoch "
                  f"(checkpoint kept). Not finished: {left}. Run the same command again to go on.",
                  file=sys.stderr)
            return 3
        print(f"{name}: {_summary(result)} -> {path}")
        if held is not None:
            print(f"  seeds {' '.join(map(str, seeds))} joined the seeds "
                  f"{' '.join(map(str, held['seeds']))} already there")
        if not args.no_plots:
            _draw(args.draw, result, args.results)
    return 0


#: How a result's figures are drawn: (result, results directory) -> the files written.
Draw = Callable[[dict, "Path | None"], list[Path]]


def draw_plain(result: dict, directory: Path | None) -> list[Path]:
    """The figures of ``result`` labelled with recipe ids only: the claims layer, above this
    one, passes its own ``draw`` to ``add``, which names the networks and their claims."""
    def load(recipe: str) -> dict | None:
        path = results.path_for(recipe, directory)
        return results.read(path) if path.exists() else None
    return plots.draw_all(result, results.results_dir(directory), load)


def _draw(draw: Draw, result: dict, directory: Path | None) -> None:
    drawn = draw(result, directory)
    if not drawn and not plots.available():
        print("  (no plots: install matplotlib)", file=sys.stderr)
    for figure in drawn:
        print(f"  plot: {figure}")


def _plots(args: argparse.Namespace) -> int:
    where = results.check_readable(args.results)
    for name in args.recipe or ():
        recipes.get(name)  # an unknown recipe is a typo, not a result still to train
    if args.check:
        problems = plots.stale(where)
        for line in problems:
            print(line)
        if problems:
            print(plots.REDRAW, file=sys.stderr)
        return 1 if problems else 0
    names = args.recipe or [n for n in recipes.names() if results.path_for(n, args.results).exists()]
    if not names:
        print(f"no result files in {where}: nothing to draw", file=sys.stderr)
    for name in names:
        path = results.path_for(name, args.results)
        if not path.exists():
            raise FileNotFoundError(f"no result {path}: run 'python -m claims train {name}' first")
        print(f"{name}:")
        _draw(args.draw, results.read(path), args.results)
    return 0


def _summary(result: dict) -> str:
    accs = [sum(p["final"]["accuracy"]) / len(p["final"]["accuracy"]) for p in result["points"]]
    best = max(accs)
    grid = f" (best of {len(accs)} grid points)" if len(accs) > 1 else ""
    return (f"test accuracy {best:.4f}{grid}, mean of seeds {result['seeds']}, "
            f"{result['provenance']['wall_s']} s on {result['provenance']['device']}")


def _bench(args: argparse.Namespace) -> int:
    import torch

    import models
    from training import bench

    for name in args.ratio:
        recipes.get(name)  # a typo fails before the models are timed, not after
    for name in args.model:
        models.entry(name)
    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{results.device_name(device)}, torch {torch.__version__}\n", flush=True)
    bench.print_model_table(args.model or [n for n in models.names() if n not in bench.LARGE], args.batch,
                            device)
    for recipe_name in args.ratio:
        recipe = recipes.get(recipe_name)
        arrays = bench.synthetic(bench.image_shape(recipe.model))
        base = bench.timed(bench.dataloader_step(recipe, arrays, device), args.steps, device)
        ours = bench.timed(bench.trainer_step(recipe, arrays, device, args.seeds), args.steps, device,
                           seeds=args.seeds)
        print(f"\n{recipe_name} (batch {recipe.batch_size}): DataLoader loop {base.model_steps_per_s:,.1f} "
              f"steps/s; this trainer {ours.model_steps_per_s:,.1f} model-steps/s with {args.seeds} "
              f"seeds at once: ratio {ours.model_steps_per_s / base.model_steps_per_s:.2f}x", flush=True)
        epoch = bench.epoch_ratio(recipe, bench.prepare(recipe, arrays, device), [0], rounds=1)
        print(f"  one epoch with its evaluation, {len(arrays.train_labels):,} synthetic images, one seed: "
              f"this trainer {epoch.trainer_s:.2f} s, the plain slicing loop {epoch.plain_s:.2f} s "
              f"({epoch.ratio:.2f}x its time)", flush=True)
    return 0


def add(sub: argparse._SubParsersAction, draw: Draw = draw_plain) -> None:
    """The training commands; ``draw`` draws a result's figures (``train`` and ``plots``)."""
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
               "  python -m claims train lenet0 --seeds 0-4 --device cpu\n"
               "  python -m claims train lenet0 --seeds 5 6   (adds seeds 5 6 to results/lenet0.json)\n\n"
               "A run holds a lock per recipe in the results directory (.locks/RECIPE.lock): a second "
               "run of the\nsame recipe into the same directory stops at once and names the first "
               "one's pid. Seeds that are\nnot yet in an existing result file join it (the file then "
               "holds both runs, each part's\nprovenance kept). Seeds it holds already are refused "
               "unless --replace, but the very same\nseeds of the same recipe table are done: "
               "nothing trains, so a command stopped by --time-limit\ngoes on where it stopped "
               "when run again.\n\n"
               "On the CPU, where a recipe named holds tensors above 32 MiB (the Fashion post's "
               "per-pixel\nnetworks), the process keeps freed memory instead of returning it "
               "(glibc), for all the\nrecipes it trains: training/memory.py.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("recipe", nargs="*", help="recipe names (see 'python -m claims recipes')")
    train.add_argument("--all", action="store_true", help="every recipe")
    train.add_argument("--seeds", type=seed_range, nargs="+", action=SeedList, metavar="SEED",
                       help="distinct seeds trained together, single or as ranges: 0 1 2, 0-9, 0 1 5-7 "
                            "(default: 0 1 2)")
    train.add_argument("--device", type=device_spec,
                       help="cpu, cuda or cuda:N (default: cuda when there is one)")
    train.add_argument("--threads", type=positive_int,
                       help="CPU cores to use: on the CPU the seeds train side by side in this many "
                            "threads, one core each (default: torch's thread count, often the cores)")
    train.add_argument("--results", type=Path, metavar="DIR",
                       help="where result files go (default: $LEAN_CNN_RESULTS or results/)")
    train.add_argument("--data-root", type=Path, metavar="DIR",
                       help="where the datasets are (default: $LEAN_CNN_DATA or data/)")
    train.add_argument("--max-epochs", type=positive_int, metavar="N",
                       help="cap the recipe's epochs (the result is marked as a prefix run)")
    train.add_argument("--time-limit", type=positive_seconds, metavar="SECONDS",
                       help="stop cleanly before an epoch that would end past this many seconds from "
                            "now (checkpoint kept, exit status 3); the same command resumes")
    train.add_argument("--restart", action="store_true",
                       help="discard the recipe's checkpoints and start over")
    train.add_argument("--replace", action="store_true",
                       help="write over an existing result file instead of adding seeds to it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not draw plots")
    train.add_argument("--until-decided", type=positive_int, metavar="MAX",
                       help="instead of naming recipes: add seeds to the recipes whose claims are "
                            "inconclusive, as many as would decide them, up to MAX seeds per recipe, "
                            "then judge again (claims that would need more are listed)")
    train.set_defaults(run=_train, draw=draw)

    plot = sub.add_parser("plots", help="draw the plots of existing result files",
                          description="Learning curves, comparisons and confusion matrices from "
                                      "results/*.json, saved under results/plots/.")
    plot.add_argument("recipe", nargs="*", help="recipes (default: every one with a result file)")
    plot.add_argument("--results", type=Path, metavar="DIR", help="where the result files are")
    plot.add_argument("--check", action="store_true",
                      help="draw nothing: list the figures that do not show the result files as they "
                           "are now (exit status 1 if any)")
    plot.set_defaults(run=_plots, draw=draw)

    bench = sub.add_parser(
        "bench", help="throughput of every model, and this trainer against a DataLoader loop",
        description="Per model: parameters, forward FLOPs per image (torch.utils.flop_counter), images "
                    "per second forward and per training step on this device. Then, per --ratio "
                    "recipe, optimizer steps per second of this trainer (data on the device, "
                    "--seeds models per step) against a plain DataLoader loop on the same model "
                    "and batch size. Timings are this machine's, not a claim.")
    bench.add_argument("model", nargs="*", help="models (default: all but the ImageNet-sized ones)")
    bench.add_argument("--batch", type=positive_int, default=64, help="batch size of the per-model rows (64)")
    bench.add_argument("--device", type=device_spec,
                       help="cpu, cuda or cuda:N (default: cuda when there is one)")
    bench.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    bench.add_argument("--ratio", nargs="*", default=["mnist_approach3", "mnist_dense2"], metavar="RECIPE",
                       help="recipes for the trainer-vs-DataLoader ratio (default: mnist_approach3 "
                            "mnist_dense2; none: --ratio)")
    bench.add_argument("--steps", type=positive_int, default=100,
                       help="timed steps per ratio measurement (100)")
    bench.add_argument("--seeds", type=positive_int, default=3, help="models per step in this trainer (3)")
    bench.set_defaults(run=_bench)
