"""Run a recipe end to end: data onto the device, every grid point with all seeds at once,
a checkpoint after every epoch, and a result file with provenance at the end.

    python -m claims train mnist_approach3 --seeds 0 1 2
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import models
from models.layers import forward_structure
from training import datasets, lottery, memory, results
from training.metrics import best_point
from training.recipes import Recipe, get
from training.trainer import Data, Split, Stack, Trainer

DEFAULT_SEEDS = results.DEFAULT_SEEDS
# 2: each copy draws its Dropout masks from its own stream; 3: in the order its input lies in
# memory (the per-pixel networks' changed); earlier checkpoints start over
CHECKPOINT_FORMAT = 3


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_tf32(device: torch.device) -> dict[str, bool] | None:
    """On CUDA, let float32 matrix multiplies and convolutions use TF32 tensor cores, as
    TensorFlow does by default on Ampere and later GPUs (the sources trained with Keras);
    returns the settings for provenance. None on other devices (no TF32 there)."""
    if device.type != "cuda":
        return None
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}


def _images(images: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W[, C]) -> float (N, C, H', W') in [0, 1], zero-padded (centred) to ``size``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return pad_to(x.float().div_(255.0), size).contiguous()  # one float copy, divided in place


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the last two axes to ``size``, centred (LeNet's 28 -> 32, as the notebook does)."""
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dh < 0 or dw < 0:
        raise ValueError(f"images of {tuple(x.shape[-2:])} are larger than the model's input {size}")
    if dh or dw:
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    return x


def prepare(recipe: Recipe, arrays: Any, device: torch.device, limit: int | None = None) -> Data:
    """Normalize as the sources do (x / 255), pad to the model's input, and hold out Keras'
    ``validation_split``: the last fraction of the training arrays, taken before shuffling.

    ``limit`` keeps the first ``limit`` training and test images (machinery tests only).
    """
    size = tuple(models.entry(recipe.model).input_shape[1:])

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return Split(_images(images, size, device), torch.as_tensor(labels, dtype=torch.long, device=device))

    train = split(arrays.train_images, arrays.train_labels)
    test = split(arrays.test_images, arrays.test_labels)
    val = None
    if recipe.validation_split is not None:
        at = int(len(train) * (1.0 - recipe.validation_split))  # Keras' split_at
        train, val = Split(train.x[:at], train.y[:at]), Split(train.x[at:], train.y[at:])
    elif getattr(arrays, "val_images", None) is not None:
        val = split(arrays.val_images, arrays.val_labels)
    return Data(train, test, val, classes=len(arrays.classes))


def _seeded_models(recipe: Recipe, options: dict[str, Any], seeds: list[int]) -> list[torch.nn.Module]:
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(models.build(recipe.model, **{**recipe.options, **options}))
    return out


def seeded_trainer(recipe: Recipe, data: Data, seeds: list[int]) -> Trainer:
    """A trainer of ``seeds`` on ``data``'s device, each seed's model built as a run builds it."""
    stack = Stack.of(_seeded_models(recipe, {}, seeds), data.train.x.device)
    return Trainer(recipe, stack, data, seeds=seeds)


def largest_tensor(name: str) -> int:
    """Bytes of the largest layer output one copy of recipe ``name`` holds, in a training
    step or an evaluation batch, over its grid points: what ``training.memory`` decides by,
    worked out by arithmetic (``models.largest_output``), so that start-up traces nothing."""
    recipe = get(name)
    batch = max(recipe.batch_size, recipe.eval_batch)
    largest = 0
    for options in plan_points(recipe):
        with torch.device("meta"):
            model = models.build(recipe.model, **{**recipe.options, **_build_options(options)})
        largest = max(largest, models.largest_output(model, model.input_shape))
    return batch * torch.get_default_dtype().itemsize * largest


def keep_memory_for(names: list[str], device: torch.device) -> bool:
    """On the CPU, ``training.memory.keep_freed_memory`` for the largest tensor of recipes
    ``names``: what an entry point calls before it starts any thread."""
    return device.type == "cpu" and memory.keep_freed_memory(max(largest_tensor(n) for n in names))


def best_options(recipe: Recipe, directory: Path | None) -> dict[str, Any]:
    """Options a recipe takes from another recipe's best grid point (its mean test accuracy)."""
    chosen = {}
    for option, other in recipe.best_of.items():
        path = results.path_for(other, directory)
        if not path.exists():
            raise FileNotFoundError(f"recipe {recipe.name!r} takes {option!r} from the best grid point of "
                                    f"{other!r}: run 'python -m claims train {other}' first")
        chosen[option] = best_point(results.read(path)["points"])["options"][option]
    return chosen


def train_recipe(name: str, *, seeds: list[int] | tuple[int, ...] = DEFAULT_SEEDS,
                 device: torch.device | None = None, directory: Path | None = None,
                 max_epochs: int | None = None, limit: int | None = None, data_root: Path | None = None,
                 arrays: Any = None, progress: bool = True, resume: bool = True,
                 stop_after: int | None = None, deadline: float | None = None,
                 vmapped: bool | None = None, stack_grid: bool = True,
                 add_to: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Train every grid point of recipe ``name`` with ``seeds``; write and return the result.

    ``max_epochs`` caps the recipe's epochs: the run is then a prefix of the recipe's run and
    the result file says so. ``stop_after`` stops after that many epochs in this call, and
    ``deadline`` (a ``time.time()``) before an epoch that would end past it, judged by the
    last epoch's length; both leave the checkpoint for a later call to resume and return None.
    With ``stack_grid``, consecutive grid points whose models differ only in their penalties
    or Dropout rates train as one stack (points times seeds), each with the result it would
    have alone. Without ``resume``, the recipe's checkpoints are discarded first. ``add_to``:
    an earlier result of other seeds that this run's seeds join (``results.merge``); the file
    then holds both, written in one atomic step.
    """
    recipe = get(name)
    device = device or default_device()
    seeds = list(seeds)
    if max_epochs is not None and max_epochs < 1:
        raise ValueError(f"max_epochs must be 1 or more, not {max_epochs}")
    cap = epochs_cap(recipe, max_epochs)
    epochs = cap or recipe.epochs
    if epochs != recipe.epochs:
        recipe = Recipe(**{**asdict(recipe), "epochs": epochs})
    if arrays is None:
        arrays = datasets.load(recipe.dataset, data_root)
    data = prepare(recipe, arrays, device, limit)
    fixed = best_options(recipe, directory)
    origin = results.provenance(device)  # the code as it was when the run started
    origin["datasets"] = {recipe.dataset: datasets.describe(arrays)}
    if (tf32 := use_tf32(device)) is not None:
        origin["tf32"] = tf32
    head = {"recipe": name, "recipe_table": asdict(get(name)), "seeds": seeds, "epochs_cap": cap,
            "limit": limit}
    if add_to is not None:  # before any training: the seeds must be able to join
        results.mergeable(add_to, {**head, "provenance": origin}, points=False)
    started, wall = time.time(), 0.0
    points: list[dict[str, Any]] = []
    plan = plan_points(recipe)
    if not resume:
        for number in range(len(plan)):
            results.checkpoint_path(name, number, directory).unlink(missing_ok=True)
    carried: dict[str, Any] | None = None  # a lottery iteration's trained weights and masks
    for group in stack_groups(recipe, plan, fixed, stack_grid):
        group_options = [{**fixed, **plan[number]} for number in group]
        keys = [_key(recipe, options, seeds, limit, device) for options in group_options]
        states = [results.load_checkpoint(results.checkpoint_path(name, number, directory), device)
                  if resume else None for number in group]
        if all(st is not None and st.get("key") == k and "finished" in st
               for st, k in zip(states, keys, strict=True)):
            for st in states:  # done before a kill
                points.append({"options": st["options"], **st["finished"]})
                wall += st["wall_s"]
            carried = states[-1].get("carried")
            continue
        key = keys[0] if len(group) == 1 else repr(keys)  # a stacked group resumes as a whole
        ckpt, state = results.checkpoint_path(name, group[0], directory), states[0]
        modules: list[torch.nn.Module] = []
        for options in group_options:
            built, masks = _point_models(recipe, options, seeds, carried)
            modules += built
        stack = Stack.of(modules, device)
        stacked_masks = None
        if masks:
            stacked_masks = {k: torch.stack([m[k] for m in masks]).to(device) for k in masks[0]}
        trainer = Trainer(recipe, stack, data, seeds=seeds * len(group), masks=stacked_masks, vmapped=vmapped)
        group_wall = 0.0
        if state is not None and state.get("key") == key:
            trainer.restore(state["trainer"])
            group_wall = state["wall_s"]
        t0 = time.time()
        bar = _bar(recipe, group, len(plan), len(data.train), progress, trainer.epoch)
        ran, last = 0, 0.0
        while not trainer.done:
            if (stop_after is not None and ran >= stop_after) or (
                    deadline is not None and time.time() + last > deadline):
                bar.close()
                return None
            begun = time.time()
            row = trainer.run_epoch(bar.update)
            ran, last = ran + 1, time.time() - begun
            bar.set_postfix_str(_postfix(row))
            results.save_checkpoint(ckpt, {"key": key, "trainer": trainer.checkpoint(),
                                           "wall_s": group_wall + time.time() - t0})
        bar.close()
        history = asdict(trainer.finish())
        trainer.close()
        group_wall += time.time() - t0
        wall += group_wall
        if recipe.pruning:  # a lottery iteration is a group of its own
            carried = {"states": [stack.module(i).state_dict() for i in range(len(seeds))], "masks": masks}
            remaining = [sum(int(v.sum()) for v in m.values()) for m in masks] if masks else None
            group_options[0]["remaining"] = remaining
        shares = [_members(history, j * len(seeds), (j + 1) * len(seeds)) for j in range(len(group))]
        # The group's first point holds the in-progress checkpoint: it is written over last, so
        # that a run stopped among these writes still resumes the group from its last epoch.
        for j in reversed(range(len(group))):
            results.save_checkpoint(results.checkpoint_path(name, group[j], directory), {
                "key": keys[j], "finished": shares[j], "options": group_options[j],
                "wall_s": group_wall / len(group), "carried": carried})
        points += [{"options": o, **share} for o, share in zip(group_options, shares, strict=True)]
    result = {
        **head,
        "provenance": {**origin, "wall_s": round(wall, 1), "finished": results.now(),
                       "elapsed_s": round(time.time() - started, 1),
                       "vmapped": vmapped if vmapped is not None else device.type == "cuda",
                       "grid_stacked": stack_grid},
        "points": points,
    }
    if add_to is not None:
        result = results.merge(add_to, result)
    results.write(results.path_for(name, directory), result)
    for number in range(len(plan)):
        results.checkpoint_path(name, number, directory).unlink(missing_ok=True)
    return result


def epochs_cap(recipe: Recipe, max_epochs: int | None) -> int | None:
    """The epochs a ``max_epochs`` cap leaves when it shortens the recipe, else None."""
    return max_epochs if max_epochs is not None and max_epochs < recipe.epochs else None


def stack_groups(recipe: Recipe, plan: list[dict[str, Any]], fixed: dict[str, Any],
                 stack_grid: bool) -> list[list[int]]:
    """The plan's points in runs that share one stack: consecutive points whose models have
    the same forward pass (``models.layers.forward_structure``). A lottery's iterations run
    one after the other, each starting from the last one's weights."""
    if recipe.pruning or not stack_grid or len(plan) == 1:
        return [[number] for number in range(len(plan))]
    with torch.device("meta"):
        structures = [forward_structure(models.build(recipe.model, **{**recipe.options, **fixed, **options}))
                      for options in plan]
    groups: list[list[int]] = []
    for number, structure in enumerate(structures):
        if groups and structures[groups[-1][0]] == structure:
            groups[-1].append(number)
        else:
            groups.append([number])
    return groups


def _members(history: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """A grid point's share of a stacked run's history: its seeds' entries, up to the last
    epoch in which one of them still trained (where its own run would have ended)."""
    epochs = [{k: v[lo:hi] for k, v in row.items()} for row in history["epochs"]]
    while epochs and all(math.isnan(x) for x in epochs[-1]["loss"]):
        epochs.pop()
    return {"epochs": epochs, "stopped_epoch": history["stopped_epoch"][lo:hi],
            "best_epoch": history["best_epoch"][lo:hi],
            "final": {k: v[lo:hi] for k, v in history["final"].items()}}


def plan_points(recipe: Recipe) -> list[dict[str, Any]]:
    """The runs of a recipe: its grid points, or the lottery's iterations (0 = unpruned)."""
    if not recipe.pruning:
        return recipe.grid_points()
    schedule = lottery.Schedule.from_spec(recipe.pruning)
    return [{"iteration": k, "removed": f} for k, f in enumerate((0.0, *schedule.removed))]


def _build_options(options: dict[str, Any]) -> dict[str, Any]:
    """A grid point's options without a lottery iteration's bookkeeping: what builds it."""
    return {k: v for k, v in options.items() if k not in ("iteration", "removed")}


def _point_models(recipe: Recipe, options: dict[str, Any], seeds: list[int],
                  carried: dict[str, Any] | None) -> tuple[list[torch.nn.Module], list[dict] | None]:
    """Fresh seeded models, or for a lottery iteration: the previous iteration's trained
    weights pruned further, then rewound to the seeds' initial values (the winning tickets)."""
    fresh = _seeded_models(recipe, _build_options(options), seeds)
    if not recipe.pruning or options["iteration"] == 0:
        return fresh, None
    scope = lottery.Schedule.from_spec(recipe.pruning).scope
    tickets, masks = [], []
    for model, trained, found in zip(fresh, carried["states"], carried["masks"] or [{}] * len(seeds),
                                     strict=True):
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(trained)
        lottery.apply_masks(model, found)
        lottery.prune_to(model, options["removed"], scope)
        masks.append(lottery.masks(model))
        tickets.append(lottery.rewind(model, initial))
    return tickets, masks


def _key(recipe: Recipe, options: dict[str, Any], seeds: list[int], limit: int | None,
         device: torch.device) -> str:
    """What a checkpoint must match to be resumed: the same checkpoint format, kind of device
    (the random streams differ between them), recipe, grid point, seeds and data."""
    return repr((CHECKPOINT_FORMAT, device.type, asdict(recipe), sorted(options.items()), seeds, limit))


def _postfix(row: dict[str, list[float]]) -> str:
    def mean(key: str) -> float:
        values = [v for v in row.get(key, []) if v == v]
        return sum(values) / len(values) if values else float("nan")
    parts = [f"loss {mean('loss'):.4f}", f"acc {mean('accuracy'):.4f}"]
    if "val_accuracy" in row:
        parts.append(f"val {mean('val_accuracy'):.4f}")
    parts.append(f"test {mean('test_accuracy'):.4f}")
    return ", ".join(parts)


def _bar(recipe: Recipe, group: list[int], points: int, n: int, progress: bool, done_epochs: int) -> Any:
    """A tqdm bar over the batches of all epochs; a disabled one (its calls do nothing) when quiet.
    Where stderr is a log file, not a terminal, it redraws once a minute: every redraw is a line
    of the log there (a new-user trial found a log filled with them)."""
    import sys

    from tqdm.auto import tqdm

    per_epoch = recipe.steps_per_epoch or -(-n // recipe.batch_size)
    which = f"{group[0] + 1}" if len(group) == 1 else f"{group[0] + 1}-{group[-1] + 1}"
    label = recipe.name if points == 1 else f"{recipe.name} [{which}/{points}]"
    return tqdm(total=per_epoch * recipe.epochs, initial=per_epoch * done_epochs, desc=label,
                unit="batch", dynamic_ncols=True, leave=True, disable=not progress,
                mininterval=0.1 if sys.stderr.isatty() else 60.0)


def needed_recipes(spec: dict[str, Any], dependencies: bool = True) -> list[str]:
    """The recipes whose results a training claim reads, dependencies (``best_of``: a grid whose
    best point a recipe takes, trained first, not read by the claim) first unless left out."""
    named: list[str] = []
    for key in ("recipe", "versus", "also", "recipes", "steps"):
        value = spec.get(key)
        if isinstance(value, str):
            named.append(value)
        elif isinstance(value, list):  # not a number: ``versus = 0.8643`` is the source's figure
            for v in value:
                if isinstance(v, str):
                    named.append(v)
                elif isinstance(v, list):  # ``steps``: pairs of recipes
                    named += [w for w in v if isinstance(w, str)]
    ordered: list[str] = []
    for name in named:
        for dependency in get(name).best_of.values() if dependencies else ():
            if dependency not in ordered:
                ordered.append(dependency)
        if name not in ordered:
            ordered.append(name)
    return ordered


def ensure(names: list[str], *, device: torch.device, directory: Path | None = None,
           seeds: list[int] | tuple[int, ...] = DEFAULT_SEEDS, progress: bool = False,
           deadline: float | None = None) -> str | None:
    """Train each recipe that has no result file yet; return the one that ``deadline``
    stopped (its checkpoint kept), else None. A lock per recipe keeps parallel workers
    (pytest-xdist) from training the same recipe twice or writing over each other; here a
    worker waits for the lock, where ``python -m claims train`` stops."""
    for name in names:
        path = results.path_for(name, directory)
        if path.exists():
            continue
        with results.lock(name, directory, wait=True):
            if not path.exists() and train_recipe(  # another worker may have finished it meanwhile
                    name, seeds=seeds, device=device, directory=directory, progress=progress,
                    deadline=deadline) is None:
                return name
    return None


def worker_device() -> torch.device:
    """CUDA device for this pytest-xdist worker (gw0 -> cuda:0, gw1 -> cuda:1, ...), else cpu."""
    import os

    if not torch.cuda.is_available():
        return torch.device("cpu")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return torch.device(f"cuda:{index % torch.cuda.device_count()}")
